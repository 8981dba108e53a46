//! The token endpoint (RFC 6749 §3.2, §4.1.3, §4.4, §5, §6; RFC 8628 §3.4, §3.5; RFC 9068;
//! OIDC Core §3.1.3).
//!
//! Shape of each grant: parse (protocol) → authenticate the client (constant time) → load the
//! code or refresh token → check (protocol) → decide what to issue (`keycard_protocol::issue`)
//! → sign → persist atomically → respond. Signing comes before the write, so a token that was
//! committed is always a token that was answered. This file decides nothing itself.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use keycard_jose::{SigningKey, TokenTyp};
use keycard_os::{new_id, new_secret};
use keycard_protocol::claims::{self, AccessTokenClaims, IdTokenClaims, Profile};
use keycard_protocol::device::Poll;
use keycard_protocol::issue::{self, GrantFacts, UserTokenRequest};
use keycard_protocol::pkce::CodeVerifier;
use keycard_protocol::policy::{self, Client, Flow};
use keycard_protocol::redirect::RedirectUri;
use keycard_protocol::token::{self, StoredCode, TokenRequest, TokenResponse, TokenType};
use keycard_protocol::{
    Audience, AuthorizationCode, BearerToken, DeviceCode, GrantId, IdToken, Jti, OAuthError,
    RefreshToken, ScopeSet, UserId, wire,
};
use keycard_store::{AccessTokenRecord, Grant, NewRefreshToken, Redeemed, Store, User};
use keycard_validate::wire_response;

use crate::access::authenticate_client;
use crate::app::App;
use crate::error::ServerError;
use crate::http::no_store_json;

type Result<T> = std::result::Result<T, ServerError>;

fn bad(e: OAuthError) -> ServerError {
    ServerError::token(e)
}

/// Any method but POST gets a JSON error (RFC 6749 §3.2, RFC 7662 §2.1, RFC 7009 §2.1: these
/// endpoints are POST only).
pub(crate) async fn method_not_allowed() -> Response {
    let mut r = wire_response(wire::token_error(&OAuthError::invalid_request(
        "this endpoint accepts POST only",
    )));
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}

pub(crate) async fn token_post<S: Store>(
    State(app): State<Arc<App<S>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let (params, client) = authenticate_client(&app, &headers, &body).await?;
    let req = TokenRequest::parse(&params).map_err(bad)?;
    token::check_grant_allowed(&client, req.grant_type()).map_err(bad)?;
    // Each grant's future is boxed: held inline, every request's future would be as large as
    // the largest grant's (the code and refresh grants hold store futures), and axum and hyper
    // move it by value several times before it first runs (memcpy was 2 % of a client
    // credentials request's CPU).
    let resp = match req {
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            Box::pin(code_grant(
                &app,
                &client,
                &code,
                redirect_uri.as_ref(),
                code_verifier.as_ref(),
            ))
            .await?
        }
        TokenRequest::RefreshToken {
            refresh_token,
            scope,
        } => Box::pin(refresh_grant(&app, &client, &refresh_token, scope.as_ref())).await?,
        TokenRequest::ClientCredentials { scope, target } => {
            Box::pin(client_credentials(
                &app,
                &client,
                scope.as_ref(),
                target.as_ref(),
            ))
            .await?
        }
        TokenRequest::DeviceCode { device_code } => {
            Box::pin(device_grant(&app, &client, &device_code)).await?
        }
    };
    Ok(no_store_json(&resp))
}

/// Disabled or removed users get no tokens from any grant.
async fn active_user<S: Store>(app: &App<S>, id: &UserId) -> Result<User> {
    match app.store.user_by_id(id).await? {
        Some(u) if !u.disabled => Ok(u),
        _ => Err(bad(OAuthError::invalid_grant("the user is not active"))),
    }
}

async fn code_grant<S: Store>(
    app: &App<S>,
    client: &Client,
    code: &AuthorizationCode,
    redirect_uri: Option<&RedirectUri>,
    verifier: Option<&CodeVerifier>,
) -> Result<TokenResponse> {
    let hash = code.hash();
    let stored = app
        .store
        .code(&hash)
        .await?
        .ok_or_else(|| bad(OAuthError::invalid_grant("unknown or expired code")))?;
    let facts = StoredCode {
        client_id: &stored.grant.client_id,
        redirect_uri: &stored.redirect_uri,
        redirect_uri_sent: stored.redirect_uri_sent,
        code_challenge: &stored.code_challenge,
        expires_at: stored.expires_at,
    };
    // A request that is invalid on its own (wrong client, verifier) is refused without
    // revoking anything, so it cannot be used to kill someone else's grant (OAuth 2.1 §7.5.2).
    token::check_code(&facts, &client.id, redirect_uri, verifier, app.now()).map_err(bad)?;
    if stored.used {
        reuse_detected(app, &stored.grant.id, "authorization code").await?;
    }
    let user = active_user(app, &stored.grant.user_id).await?;
    let profile = user.profile();
    let scope = &stored.grant.scope;
    let issued =
        issue_user_tokens(app, client, &stored.grant, scope, scope, Some(&profile)).await?;
    match app
        .store
        .redeem_code(&hash, issued.refresh.as_ref(), &issued.record)
        .await?
    {
        Redeemed::Won => {}
        Redeemed::AlreadyUsed => {
            reuse_detected(app, &stored.grant.id, "authorization code").await?
        }
    }
    crate::metrics::token_issued("authorization_code");
    Ok(issued.response)
}

/// RFC 8628 §3.4, §3.5: the store judges and records the poll in one step (pending,
/// `slow_down`, denied, expired); an approved code's tokens are signed, then redeemed once with
/// the refresh token. A second redemption is treated like a reused code: the grant is revoked.
async fn device_grant<S: Store>(
    app: &App<S>,
    client: &Client,
    code: &DeviceCode,
) -> Result<TokenResponse> {
    let hash = code.hash();
    let poll = app
        .store
        .poll_device_code(&hash, &client.id, app.now())
        .await?
        .ok_or_else(|| bad(OAuthError::invalid_grant("unknown device code")))?;
    if poll.outcome == Poll::AlreadyRedeemed
        && let Some(g) = &poll.grant
    {
        reuse_detected(app, &g.id, "device code").await?;
    }
    if let Some(e) = poll.outcome.error() {
        return Err(bad(e));
    }
    let grant = poll
        .grant
        .ok_or_else(|| ServerError::Internal("an approved device code without a grant".into()))?;
    let user = active_user(app, &grant.user_id).await?;
    let profile = user.profile();
    let scope = &grant.scope;
    let issued = issue_user_tokens(app, client, &grant, scope, scope, Some(&profile)).await?;
    match app
        .store
        .redeem_device_code(&hash, issued.refresh.as_ref(), &issued.record)
        .await?
    {
        Redeemed::Won => {}
        Redeemed::AlreadyUsed => reuse_detected(app, &grant.id, "device code").await?,
    }
    crate::metrics::token_issued("device_code");
    Ok(issued.response)
}

/// RFC 6749 §4.1.2 and RFC 9700 §4.14.2: a second use revokes everything issued from the grant.
async fn reuse_detected<S: Store>(
    app: &App<S>,
    grant_id: &GrantId,
    what: &'static str,
) -> Result<()> {
    app.revoking(app.store.revoke_grant(grant_id, app.revocation()))
        .await?;
    tracing::warn!(grant = %grant_id, kind = what, "reuse detected; grant revoked");
    Err(bad(OAuthError::invalid_grant(format!(
        "the {what} was already used; its grant is revoked"
    ))))
}

async fn refresh_grant<S: Store>(
    app: &App<S>,
    client: &Client,
    token: &RefreshToken,
    scope: Option<&ScopeSet>,
) -> Result<TokenResponse> {
    let hash = token.hash();
    let stored = app
        .store
        .refresh_token(&hash)
        .await?
        .ok_or_else(|| bad(OAuthError::invalid_grant("unknown refresh token")))?;
    let narrowed = token::check_refresh(
        &stored.grant.client_id,
        stored.expires_at,
        stored.grant.expires_at,
        &stored.scope,
        &client.id,
        scope,
        app.now(),
    )
    .map_err(bad)?;
    if stored.grant_revoked {
        return Err(bad(OAuthError::invalid_grant("the grant was revoked")));
    }
    if stored.used {
        reuse_detected(app, &stored.grant.id, "refresh token").await?;
    }
    // The user's state came with the token, in the same query.
    if !stored.user_active {
        return Err(bad(OAuthError::invalid_grant("the user is not active")));
    }
    let issued =
        issue_user_tokens(app, client, &stored.grant, &narrowed, &stored.scope, None).await?;
    let Some(new) = issued.refresh.as_ref() else {
        return Err(ServerError::Internal(
            "refresh grant without offline_access".into(),
        ));
    };
    match app
        .store
        .rotate_refresh_token(&hash, new, &issued.record)
        .await?
    {
        Redeemed::Won => {}
        Redeemed::AlreadyUsed => reuse_detected(app, &stored.grant.id, "refresh token").await?,
    }
    crate::metrics::token_issued("refresh_token");
    Ok(issued.response)
}

async fn client_credentials<S: Store>(
    app: &App<S>,
    client: &Client,
    scope: Option<&ScopeSet>,
    target: Option<&Audience>,
) -> Result<TokenResponse> {
    let implied = policy::effective_target(Flow::Machine, client, target).map_err(bad)?;
    let api = app.api(implied).await?;
    let lookup = move |id: &Audience| api.as_deref().filter(|a| &a.identifier == id).cloned();
    let resolved = policy::resolve(Flow::Machine, client, scope, target, &lookup).map_err(bad)?;
    let (claims, expires_in) = issue::machine_token(
        &app.settings.issuer,
        client,
        &resolved,
        app.settings.access_token_ttl_secs,
        new_id::<Jti>(),
        app.now(),
    );
    let (access_token, _) = sign(app, claims, None).await?;
    crate::metrics::token_issued("client_credentials");
    Ok(TokenResponse {
        access_token,
        token_type: TokenType::Bearer,
        expires_in: Some(expires_in),
        refresh_token: None,
        id_token: None,
        scope: (!resolved.scope.is_empty()).then_some(resolved.scope),
    })
}

/// Signs the access token and, when given, the id token (whose `at_hash` is computed from the
/// signed access token, OIDC Core §3.1.3.6), off the async runtime when the algorithm is slow
/// (RSA costs about a millisecond).
async fn sign<S: Store>(
    app: &App<S>,
    access: AccessTokenClaims,
    id: Option<IdTokenClaims>,
) -> Result<(BearerToken, Option<IdToken>)> {
    let key: Arc<SigningKey> = app.keys.current().active.clone();
    let work = move |k: &SigningKey| -> std::result::Result<_, keycard_jose::JoseError> {
        let at = k.sign(TokenTyp::AccessToken, &access)?;
        let id = match id {
            Some(mut c) => {
                c.at_hash = Some(claims::at_hash(&at, k.alg().half_hash()));
                Some(k.sign(TokenTyp::IdToken, &c)?)
            }
            None => None,
        };
        Ok((at, id))
    };
    let out = if key.alg().is_slow() {
        tokio::task::spawn_blocking(move || work(&key))
            .await
            .map_err(|e| ServerError::Internal(e.to_string()))?
    } else {
        work(&key)
    };
    let (at, id) = out.map_err(|e| ServerError::Internal(e.to_string()))?;
    let parse = |e: OAuthError| ServerError::Internal(e.to_string());
    Ok((
        BearerToken::parse(&at).map_err(parse)?,
        id.map(|t| IdToken::parse(&t)).transpose().map_err(parse)?,
    ))
}

struct Issued {
    response: TokenResponse,
    refresh: Option<NewRefreshToken>,
    record: AccessTokenRecord,
}

/// Signs what `keycard_protocol::issue::user_tokens` decided and makes the refresh secret.
/// `scope` is what this response grants; `refresh_scope` what a new refresh token keeps.
async fn issue_user_tokens<S: Store>(
    app: &App<S>,
    client: &Client,
    grant: &Grant,
    scope: &ScopeSet,
    refresh_scope: &ScopeSet,
    profile: Option<&Profile>,
) -> Result<Issued> {
    let now = app.now();
    let api = app.api(grant.audience.as_ref()).await?;
    let jti_random = new_id::<Jti>();
    let decided = issue::user_tokens(&UserTokenRequest {
        issuer: &app.settings.issuer,
        client,
        grant: GrantFacts {
            id: &grant.id,
            user: &grant.user_id,
            auth_time: grant.auth_time,
            sid: grant.sid.as_ref(),
            nonce: grant.nonce.as_ref(),
            expires_at: grant.expires_at,
        },
        api: api.as_deref(),
        scope,
        refresh_scope,
        profile,
        jti_random: &jti_random,
        now,
        lifetimes: app.settings.lifetimes(),
    });
    let expires_at = decided.access.exp;
    let (access_token, id_token) = sign(app, decided.access, decided.id).await?;
    let refresh_secret: Option<RefreshToken> = decided.refresh.as_ref().map(|_| new_secret());
    let refresh = decided
        .refresh
        .zip(refresh_secret.as_ref())
        .map(|(plan, secret)| NewRefreshToken {
            hash: secret.hash(),
            grant_id: grant.id.clone(),
            scope: plan.scope,
            expires_at: plan.expires_at,
        });
    Ok(Issued {
        response: TokenResponse {
            access_token,
            token_type: TokenType::Bearer,
            expires_in: Some(decided.expires_in),
            refresh_token: refresh_secret,
            id_token,
            scope: (!scope.is_empty()).then(|| scope.clone()),
        },
        refresh,
        record: AccessTokenRecord {
            grant_id: grant.id.clone(),
            expires_at,
        },
    })
}
