//! `GET {prefix}/callback`: the authorization response (RFC 6749 §4.1.2; RFC 9207 §2.4;
//! OpenID Connect Core §3.1.3.7), turned into a session.
//!
//! In this order: the pending login named by the login cookie is taken (once: a replayed
//! callback finds nothing); `state` must equal the one sent and `iss` the issuer (required
//! when the provider advertises `authorization_response_iss_parameter_supported`), both
//! before anything else, so a forged or mixed-up response never reaches the token endpoint
//! (RFC 9700 §4.4.2, §4.7); an error response ends here; only then is the code redeemed, and
//! the id token verified completely (signature, `iss`, `aud`, `azp`, time, `nonce`,
//! `at_hash`). The session gets a fresh id (no session fixation: an old session cookie's
//! session is deleted) and the browser goes to `return_to`.
//!
//! Every failure is 400 (503 when the provider cannot be reached) and leaves no session.
//! Note: the session cookie is `SameSite=Strict`, so the navigation that follows this
//! cross-site redirect chain does not carry it yet; the page's own requests do.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, header};
use keycard_os::new_secret;
use keycard_protocol::form::Params;
use keycard_protocol::{AuthorizationCode, Secret};
use keycard_validate::{IdTokenCheck, ValidationError};

use super::login::LoginState;
use crate::app::Bff;
use crate::error::BffError;
use crate::provider::TokenError;
use crate::session::{Tokens, secs};
use crate::store::{BffLoginKind, BffSessionKind, Profile, SessionRecord};
use crate::web::{self, SameSite};

pub(crate) async fn callback_get(
    State(bff): State<Bff>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let mut resp = match callback(&bff, &headers, query).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    };
    // Whatever happened, this login is over.
    resp.headers_mut().append(
        header::SET_COOKIE,
        web::clear_cookie(&bff.inner.settings.login_cookie, SameSite::Lax),
    );
    resp
}

fn ct_eq(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

async fn callback(
    bff: &Bff,
    headers: &HeaderMap,
    query: Option<String>,
) -> Result<Response, BffError> {
    let settings = &bff.inner.settings;
    let provider = &bff.inner.provider;
    let params = Params::parse(query.unwrap_or_default().as_bytes())
        .map_err(|_| BffError::BadRequest("malformed callback"))?;
    let cookie = web::cookie(headers, &settings.login_cookie)
        .ok_or(BffError::BadRequest("no sign-in is in progress"))?;
    let login_id = Secret::<BffLoginKind>::parse(cookie)
        .map_err(|_| BffError::BadRequest("no sign-in is in progress"))?;
    let now = bff.now();
    let record = bff
        .inner
        .store
        .take_login(&login_id.hash(), now)
        .await?
        .ok_or(BffError::BadRequest(
            "the sign-in expired or was already completed",
        ))?;
    let login = LoginState::open(bff, &record)?;

    // RFC 6749 §10.12: the response belongs to this browser's request.
    let state = params
        .get("state")
        .ok_or(BffError::BadRequest("state is missing"))?;
    if !ct_eq(state, login.state.as_str()) {
        return Err(BffError::BadRequest("state does not match"));
    }
    // RFC 9207 §2.4: the response comes from the provider the request went to.
    match params.get("iss") {
        Some(iss) if iss == settings.issuer.as_str() => {}
        Some(_) => return Err(BffError::BadRequest("iss does not match the issuer")),
        None if provider.iss_parameter_supported => {
            return Err(BffError::BadRequest("iss is missing"));
        }
        None => {}
    }
    if params.contains("error") {
        return Err(BffError::BadRequest(
            "the provider did not sign the user in",
        ));
    }
    let code = AuthorizationCode::parse(params.get("code").unwrap_or_default())
        .map_err(|_| BffError::BadRequest("code is missing"))?;
    let resp = provider
        .exchange_code(&code, &settings.redirect_uri(), &login.verifier)
        .await
        .map_err(|e| match e {
            TokenError::Refused(_) => BffError::BadRequest("the provider refused the code"),
            TokenError::Unavailable(m) => BffError::Unavailable(m),
        })?;
    let id_token = resp
        .id_token
        .clone()
        .ok_or(BffError::BadRequest("the provider sent no id token"))?;
    let check = IdTokenCheck::new()
        .nonce(&login.nonce)
        .access_token(resp.access_token.secret());
    let verified = provider
        .verifier
        .verify(id_token.secret(), &check)
        .await
        .map_err(|e| match e {
            ValidationError::KeysUnavailable(f) => BffError::Unavailable(f.to_string()),
            e => {
                tracing::warn!(error = %e, "id token refused");
                BffError::BadRequest("the id token was refused")
            }
        })?;

    let mut profile = Profile {
        name: verified.claim_str("name").map(str::to_owned),
        email: verified.claim_str("email").map(str::to_owned),
    };
    if profile.name.is_none() || profile.email.is_none() {
        let upstream = &bff.inner.upstream;
        if let Some(info) = provider
            .userinfo(upstream, &resp.access_token, verified.sub())
            .await
        {
            profile.name = profile.name.or(info.name);
            profile.email = profile.email.or(info.email);
        }
    }

    // A new session id on every sign-in; whatever session the browser had is over.
    if let Some(old) = web::cookie(headers, &settings.session_cookie)
        .and_then(|v| Secret::<BffSessionKind>::parse(v).ok())
    {
        bff.inner.store.delete_session(&old.hash()).await?;
    }
    let session_id: Secret<BffSessionKind> = new_secret();
    let id = session_id.hash();
    let expires_at = now.plus(secs(settings.absolute_timeout));
    let tokens = Tokens {
        access: resp.access_token.clone(),
        refresh: resp.refresh_token.clone(),
        id: Some(id_token),
    };
    let session = SessionRecord {
        id,
        issuer: settings.issuer.clone(),
        sub: verified.sub().clone(),
        sid: verified.sid().cloned(),
        profile,
        tokens: tokens.seal(bff, &id)?,
        generation: 0,
        access_expires_at: bff.access_expiry(&resp, now),
        created_at: now,
        idle_expires_at: now.plus(secs(settings.idle_timeout)).min(expires_at),
        expires_at,
    };
    bff.inner.store.create_session(&session).await?;
    tracing::info!(sub = %session.sub, "signed in");

    let mut out = super::see_other(login.return_to.as_str());
    out.headers_mut().append(
        header::SET_COOKIE,
        web::set_cookie(
            &settings.session_cookie,
            session_id.secret(),
            SameSite::Strict,
            settings.absolute_timeout,
        ),
    );
    Ok(out)
}
