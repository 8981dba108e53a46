//! The token endpoint (RFC 6749 §3.2, §4.1.3, §4.4, §5, §6; RFC 9068; OIDC Core §3.1.3).
//!
//! Shape of each grant: parse (protocol) → authenticate the client (constant time) → load the
//! code or refresh token → check (protocol) → sign → persist atomically → respond. Signing comes
//! before the write, so a token that was committed is always a token that was answered.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keycard_jose::{SigningKey, TokenTyp};
use keycard_protocol::claims::{self, IdTokenClaims, Profile, ScopedClaims, TokenResponse};
use keycard_protocol::policy::{self, Client, Flow, GrantType};
use keycard_protocol::token::{self, StoredCode, TokenRequest};
use keycard_protocol::{OAuthError, ScopeSet, Secret};
use keycard_store::{AccessTokenRecord, Grant, NewRefreshToken, Redeemed, Store, User};

use crate::App;
use crate::crypto::{new_id, new_secret};
use crate::error::ServerError;

type Result<T> = std::result::Result<T, ServerError>;

fn bad(e: OAuthError) -> ServerError {
    ServerError::token(e)
}

/// Any method but POST gets a JSON error (RFC 6749 §3.2, RFC 7662 §2.1, RFC 7009 §2.1: these endpoints are POST only).
pub async fn method_not_allowed() -> Response {
    let mut r = crate::error::wire_response(keycard_protocol::wire::token_error(
        &OAuthError::invalid_request("this endpoint accepts POST only"),
    ));
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}

fn no_store(body: TokenResponse) -> Response {
    let mut r = Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

pub async fn token_post<S: Store>(
    State(app): State<Arc<App<S>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let (params, client) = super::client_auth::authenticate(&app, &headers, &body).await?;
    let req = TokenRequest::parse(&params).map_err(bad)?;
    token::check_grant_allowed(&client, req.grant_type()).map_err(bad)?;
    let resp = match req {
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            code_grant(
                &app,
                &client,
                &code,
                redirect_uri.as_deref(),
                code_verifier.as_deref(),
            )
            .await?
        }
        TokenRequest::RefreshToken {
            refresh_token,
            scope,
        } => refresh_grant(&app, &client, &refresh_token, scope.as_ref()).await?,
        TokenRequest::ClientCredentials { scope, target } => {
            client_credentials(&app, &client, scope.as_ref(), target).await?
        }
    };
    Ok(no_store(resp))
}

/// Disabled or removed users get no tokens from any grant.
async fn active_user<S: Store>(app: &App<S>, id: &str) -> Result<User> {
    match app.store.user_by_id(id).await? {
        Some(u) if !u.disabled => Ok(u),
        _ => Err(bad(OAuthError::invalid_grant("the user is not active"))),
    }
}

async fn code_grant<S: Store>(
    app: &App<S>,
    client: &Client,
    code: &Secret,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
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
    let issued = issue_user_tokens(
        app,
        client,
        &stored.grant,
        &stored.grant.scope,
        &stored.grant.scope,
        Some(&user),
    )
    .await?;
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

/// RFC 6749 §4.1.2 and RFC 9700 §4.14.2: a second use revokes everything issued from the grant.
async fn reuse_detected<S: Store>(app: &App<S>, grant_id: &str, what: &'static str) -> Result<()> {
    app.store.revoke_grant(grant_id).await?;
    tracing::warn!(grant = %grant_id, kind = what, "reuse detected; grant revoked");
    Err(bad(OAuthError::invalid_grant(format!(
        "the {what} was already used; its grant is revoked"
    ))))
}

async fn refresh_grant<S: Store>(
    app: &App<S>,
    client: &Client,
    token: &Secret,
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
    target: Option<String>,
) -> Result<TokenResponse> {
    let implied =
        policy::effective_target(Flow::Machine, client, target.as_deref()).map_err(bad)?;
    let api = app.api(implied).await?;
    let lookup = move |id: &str| api.as_deref().filter(|a| a.identifier == id).cloned();
    let resolved =
        policy::resolve(Flow::Machine, client, scope, target.as_deref(), &lookup).map_err(bad)?;
    let now = app.now();
    let ttl = resolved
        .api_ttl_secs
        .unwrap_or(app.settings.access_token_ttl_secs);
    let claims = claims::access_token(
        app.settings.issuer.as_str(),
        client.id.as_str(),
        resolved.audience.into_iter().collect(),
        client.id.as_str(),
        &resolved.scope,
        new_id(),
        now,
        ttl,
        None,
    );
    let key = app.keys.current().active.clone();
    let (access_token, _) = sign(key, move |k| {
        Ok((k.sign(TokenTyp::AccessToken, &claims)?, None))
    })
    .await?;
    crate::metrics::token_issued("client_credentials");
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token: None,
        id_token: None,
        scope: resolved.scope.to_wire(),
    })
}

/// Signs off the async runtime when the algorithm is slow (RSA costs about a millisecond).
async fn sign<F>(key: Arc<SigningKey>, f: F) -> Result<(String, Option<String>)>
where
    F: FnOnce(
            &SigningKey,
        ) -> std::result::Result<(String, Option<String>), keycard_jose::JoseError>
        + Send
        + 'static,
{
    let out = if key.alg().is_slow() {
        tokio::task::spawn_blocking(move || f(&key))
            .await
            .map_err(|e| ServerError::Internal(e.to_string()))?
    } else {
        f(&key)
    };
    out.map_err(|e| ServerError::Internal(e.to_string()))
}

struct Issued {
    response: TokenResponse,
    refresh: Option<NewRefreshToken>,
    record: AccessTokenRecord,
}

/// Builds and signs the access token (and id token, and a new refresh token) for a user grant.
/// `scope` is what this response grants; `refresh_scope` what a new refresh token keeps.
/// The id token is issued at the code exchange only (`user` is given there): OIDC Core §12.2
/// lets a refresh response omit it, and leaving it out halves the signing work of a refresh.
async fn issue_user_tokens<S: Store>(
    app: &App<S>,
    client: &Client,
    grant: &Grant,
    scope: &ScopeSet,
    refresh_scope: &ScopeSet,
    user: Option<&User>,
) -> Result<Issued> {
    let now = app.now();
    let s = &app.settings;
    let api = app.api(grant.audience.as_deref()).await?;
    let openid = scope.contains("openid");
    let mut aud: Vec<String> = api.iter().map(|a| a.identifier.clone()).collect();
    if openid || aud.is_empty() {
        aud.push(s.issuer.userinfo_audience());
    }
    let ttl = api
        .as_ref()
        .map(|a| a.access_token_ttl_secs)
        .unwrap_or(s.access_token_ttl_secs);
    let at_claims = claims::access_token(
        s.issuer.as_str(),
        &grant.user_id,
        aud,
        client.id.as_str(),
        scope,
        claims::grant_jti(&grant.id, &new_id()),
        now,
        ttl,
        Some(grant.auth_time),
    );
    let id_claims = user.filter(|_| openid).map(|user| IdTokenClaims {
        iss: s.issuer.as_str().to_owned(),
        sub: user.id.clone(),
        aud: client.id.as_str().to_owned(),
        azp: client.id.as_str().to_owned(),
        exp: now.plus(s.id_token_ttl_secs).secs(),
        iat: now.secs(),
        auth_time: grant.auth_time.secs(),
        nonce: grant.nonce.clone(),
        at_hash: None,
        sid: grant.sid.clone(),
        claims: ScopedClaims::for_scope(&profile(user), scope),
    });
    let key = app.keys.current().active.clone();
    let (access_token, id_token) = sign(key, move |k| {
        let at = k.sign(TokenTyp::AccessToken, &at_claims)?;
        let id = match id_claims {
            Some(mut c) => {
                c.at_hash = Some(claims::at_hash(&at, k.alg().half_hash()));
                Some(k.sign(TokenTyp::IdToken, &c)?)
            }
            None => None,
        };
        Ok((at, id))
    })
    .await?;
    let refresh_secret = (refresh_scope.contains("offline_access")
        && client.allows(GrantType::RefreshToken))
    .then(new_secret);
    let refresh = refresh_secret.as_ref().map(|r| NewRefreshToken {
        hash: r.hash(),
        grant_id: grant.id.clone(),
        scope: refresh_scope.clone(),
        expires_at: now.plus(s.refresh_token_ttl_secs),
    });
    Ok(Issued {
        response: TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: ttl,
            refresh_token: refresh_secret.map(|r| r.secret().to_owned()),
            id_token,
            scope: scope.to_wire(),
        },
        refresh,
        record: AccessTokenRecord {
            grant_id: grant.id.clone(),
            expires_at: now.plus(ttl),
        },
    })
}

pub fn profile(u: &User) -> Profile {
    Profile {
        sub: u.id.clone(),
        name: u.name.clone(),
        given_name: u.given_name.clone(),
        family_name: u.family_name.clone(),
        picture: u.picture.clone(),
        email: u.email.clone(),
        email_verified: u.email_verified,
    }
}
