//! `GET {prefix}/login?return_to=/path`: starts an authorization code flow with PKCE S256,
//! `state` and `nonce` (RFC 6749 §4.1.1; RFC 7636 §4.3; OpenID Connect Core §3.1.2.1; RFC 8707
//! `resource`), keeping them server-side under a short-lived `__Host-`, `SameSite=Lax` cookie.
//!
//! `state`, `nonce` and the verifier are fresh 256-bit values per login; the pending login is
//! sealed in the store under the cookie's hash and taken once by the callback. `return_to`
//! passes [`ReturnTo::parse`] or becomes `/`.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::header;
use keycard_os::{new_secret, random_bytes};
use keycard_protocol::form::Params;
use keycard_protocol::pkce::{CodeChallenge, CodeVerifier};
use keycard_protocol::{Nonce, Secret, kind};
use serde::{Deserialize, Serialize};

use crate::app::Bff;
use crate::error::BffError;
use crate::return_to::ReturnTo;
use crate::seal::Purpose;
use crate::store::{BffLoginKind, LoginHash, LoginRecord};
use crate::web::{self, SameSite};

/// A pending login, as the callback needs it.
pub(crate) struct LoginState {
    pub(crate) state: keycard_protocol::State,
    pub(crate) nonce: Nonce,
    pub(crate) verifier: CodeVerifier,
    pub(crate) return_to: ReturnTo,
}

/// The sealed form, private to this module.
#[derive(Serialize, Deserialize)]
struct LoginDto {
    s: String,
    n: String,
    v: String,
    r: String,
}

impl LoginState {
    fn seal(&self, bff: &Bff, id: &LoginHash) -> Result<Vec<u8>, BffError> {
        let dto = LoginDto {
            s: self.state.as_str().to_owned(),
            n: self.nonce.as_str().to_owned(),
            v: self.verifier.secret().to_owned(),
            r: self.return_to.as_str().to_owned(),
        };
        let json = serde_json::to_vec(&dto).map_err(|e| BffError::Internal(e.to_string()))?;
        bff.inner
            .sealer
            .seal(Purpose::Login, id.as_bytes(), &json)
            .map_err(|e| BffError::Internal(e.to_string()))
    }

    pub(crate) fn open(bff: &Bff, rec: &LoginRecord) -> Result<LoginState, BffError> {
        let json = bff
            .inner
            .sealer
            .open(Purpose::Login, rec.id.as_bytes(), &rec.sealed)
            .ok_or(BffError::BadRequest("the pending login does not open"))?;
        let dto: LoginDto = serde_json::from_slice(&json)
            .map_err(|_| BffError::BadRequest("the pending login is malformed"))?;
        let bad = |_| BffError::BadRequest("the pending login is malformed");
        Ok(LoginState {
            state: keycard_protocol::State::parse(&dto.s).map_err(bad)?,
            nonce: Nonce::parse(&dto.n).map_err(bad)?,
            verifier: CodeVerifier::parse(&dto.v).map_err(bad)?,
            return_to: ReturnTo::parse(Some(&dto.r)),
        })
    }
}

pub(crate) async fn login_get(State(bff): State<Bff>, RawQuery(query): RawQuery) -> Response {
    match login(&bff, query).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn login(bff: &Bff, query: Option<String>) -> Result<Response, BffError> {
    let params = Params::parse(query.unwrap_or_default().as_bytes())
        .map_err(|_| BffError::BadRequest("malformed query"))?;
    let settings = &bff.inner.settings;
    let bad = |_| BffError::Internal("a generated value was refused".into());
    let login = LoginState {
        state: keycard_protocol::State::parse(new_secret::<kind::CsrfToken>().secret())
            .map_err(bad)?,
        nonce: Nonce::parse(new_secret::<kind::CsrfToken>().secret()).map_err(bad)?,
        verifier: CodeVerifier::from_random(&random_bytes::<32>()),
        return_to: ReturnTo::parse(params.get("return_to")),
    };
    let login_id: Secret<BffLoginKind> = new_secret();
    let id = login_id.hash();
    let now = bff.now();
    let record = LoginRecord {
        id,
        sealed: login.seal(bff, &id)?,
        expires_at: now.plus(crate::session::secs(settings.login_timeout)),
    };
    bff.inner.store.put_login(&record).await?;

    let mut url = bff.inner.provider.authorization_endpoint.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", settings.client_id.as_str())
            .append_pair("redirect_uri", &settings.redirect_uri())
            .append_pair("scope", &settings.scope.to_wire())
            .append_pair("state", login.state.as_str())
            .append_pair("nonce", login.nonce.as_str())
            .append_pair(
                "code_challenge",
                CodeChallenge::s256(&login.verifier).as_str(),
            )
            .append_pair("code_challenge_method", "S256");
        for r in &settings.resource {
            q.append_pair("resource", r.as_str());
        }
    }
    let mut resp = super::see_other(url.as_str());
    resp.headers_mut().append(
        header::SET_COOKIE,
        web::set_cookie(
            &settings.login_cookie,
            login_id.secret(),
            SameSite::Lax,
            settings.login_timeout,
        ),
    );
    Ok(resp)
}
