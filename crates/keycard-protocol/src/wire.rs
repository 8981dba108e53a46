//! The one place where OAuth errors become responses (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3;
//! RFC 9207 §2).
//!
//! It returns plain data ([`WireError`]); each service adds a small adapter that turns it into
//! its framework's response. The matches below have no catch-all arm on purpose: a new error
//! code must be given its status here.

use crate::bearer::quote;
use crate::error::{ErrorCode, ErrorResponse, OAuthError};
use crate::redirect::RedirectUri;
use crate::secret::AuthorizationCode;
use crate::values::{Issuer, State};

/// A response to send, independent of any HTTP framework.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    pub status: u16,
    pub www_authenticate: Option<String>,
    /// A JSON body `{"error": ..., "error_description": ...}`, or empty.
    pub body: String,
}

/// The JSON error body (RFC 6749 §5.2).
pub fn json_body(e: &OAuthError) -> String {
    serde_json::to_string(&ErrorResponse::from(e)).unwrap_or_default()
}

/// Token, introspection and revocation endpoint errors (RFC 6749 §5.2).
/// `invalid_client` answers 401 with a `WWW-Authenticate: Basic` challenge. The device grant's
/// polling answers (`authorization_pending`, `slow_down`, `expired_token`, and `access_denied`
/// for a denied request) are 400 like every other token error (RFC 8628 §3.5): a polling
/// client reads the code, not the status.
pub fn token_error(e: &OAuthError) -> WireError {
    let status = match e.code {
        ErrorCode::InvalidClient => 401,
        ErrorCode::ServerError => 500,
        ErrorCode::TemporarilyUnavailable => 503,
        ErrorCode::InvalidRequest
        | ErrorCode::InvalidGrant
        | ErrorCode::InvalidScope
        | ErrorCode::InvalidTarget
        | ErrorCode::UnauthorizedClient
        | ErrorCode::UnsupportedGrantType
        | ErrorCode::UnsupportedResponseType
        | ErrorCode::UnsupportedTokenType
        | ErrorCode::AccessDenied
        | ErrorCode::AuthorizationPending
        | ErrorCode::SlowDown
        | ErrorCode::ExpiredToken
        | ErrorCode::ConsentRequired
        | ErrorCode::InteractionRequired
        | ErrorCode::LoginRequired
        | ErrorCode::RequestNotSupported
        | ErrorCode::RequestUriNotSupported
        | ErrorCode::InvalidToken
        | ErrorCode::InsufficientScope => 400,
    };
    WireError {
        status,
        www_authenticate: (e.code == ErrorCode::InvalidClient)
            .then(|| "Basic realm=\"keycard\"".to_owned()),
        body: json_body(e),
    }
}

/// A client that authenticated but lacks a permission for a Keycard extension endpoint (the
/// revocation feed): 403 `access_denied`, since its credentials are fine and asking again will
/// not help (RFC 9110 §15.5.4). Standard endpoints keep RFC 6749 §5.2's statuses.
pub fn permission_error(e: &OAuthError) -> WireError {
    WireError {
        status: 403,
        www_authenticate: None,
        body: json_body(e),
    }
}

/// Protected-resource answers (RFC 6750 §3), the one voice of the server, `keycard-validate` and
/// the gateway. No error (no credentials were sent) is a 401 with a bare challenge and an empty
/// body (§3.1). An error carries its code in the challenge — with `scope` for
/// `insufficient_scope` — and the JSON error body; the description goes only in the body. A
/// 5xx (the resource could not judge the token) has no challenge, since nothing is wrong with
/// the credentials.
pub fn bearer_error(e: Option<&OAuthError>, realm: Option<&str>, scope: Option<&str>) -> WireError {
    let mut params = Vec::new();
    if let Some(realm) = realm {
        params.push(format!("realm=\"{}\"", quote(realm)));
    }
    let Some(e) = e else {
        return WireError {
            status: 401,
            www_authenticate: Some(challenge(&params)),
            body: String::new(),
        };
    };
    let status = match e.code {
        ErrorCode::InvalidRequest => 400,
        ErrorCode::InvalidToken => 401,
        ErrorCode::InsufficientScope => 403,
        ErrorCode::ServerError => 500,
        ErrorCode::TemporarilyUnavailable => 503,
        // The device grant's polling codes never come from a protected resource; were one to
        // reach here, it is a bad request, not a bad token.
        ErrorCode::AccessDenied
        | ErrorCode::AuthorizationPending
        | ErrorCode::SlowDown
        | ErrorCode::ExpiredToken
        | ErrorCode::ConsentRequired
        | ErrorCode::InteractionRequired
        | ErrorCode::InvalidClient
        | ErrorCode::InvalidGrant
        | ErrorCode::InvalidScope
        | ErrorCode::InvalidTarget
        | ErrorCode::LoginRequired
        | ErrorCode::RequestNotSupported
        | ErrorCode::RequestUriNotSupported
        | ErrorCode::UnauthorizedClient
        | ErrorCode::UnsupportedGrantType
        | ErrorCode::UnsupportedResponseType
        | ErrorCode::UnsupportedTokenType => 400,
    };
    if status >= 500 {
        return WireError {
            status,
            www_authenticate: None,
            body: json_body(e),
        };
    }
    params.push(format!("error=\"{}\"", e.code.as_str()));
    if e.code == ErrorCode::InsufficientScope
        && let Some(scope) = scope
    {
        params.push(format!("scope=\"{}\"", quote(scope)));
    }
    WireError {
        status,
        www_authenticate: Some(challenge(&params)),
        body: json_body(e),
    }
}

fn challenge(params: &[String]) -> String {
    if params.is_empty() {
        "Bearer".to_owned()
    } else {
        format!("Bearer {}", params.join(", "))
    }
}

/// The error redirect of the authorization endpoint (RFC 6749 §4.1.2.1 with RFC 9207 `iss`).
pub fn authorize_error_redirect(
    redirect_uri: &RedirectUri,
    e: &OAuthError,
    state: Option<&State>,
    iss: &Issuer,
) -> String {
    let mut pairs: Vec<(&str, &str)> = vec![("error", e.code.as_str())];
    if let Some(d) = &e.description {
        pairs.push(("error_description", d.as_ref()));
    }
    if let Some(s) = state {
        pairs.push(("state", s.as_str()));
    }
    pairs.push(("iss", iss.as_str()));
    append_query(redirect_uri.as_str(), &pairs)
}

/// The success redirect (RFC 6749 §4.1.2; RFC 9207).
pub fn authorize_code_redirect(
    redirect_uri: &RedirectUri,
    code: &AuthorizationCode,
    state: Option<&State>,
    iss: &Issuer,
) -> String {
    let mut pairs: Vec<(&str, &str)> = vec![("code", code.secret())];
    if let Some(s) = state {
        pairs.push(("state", s.as_str()));
    }
    pairs.push(("iss", iss.as_str()));
    append_query(redirect_uri.as_str(), &pairs)
}

/// Appends parameters to a URI that may already have a query (RFC 6749 §3.1.2 keeps it).
fn append_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", ser.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_s5_2_invalid_client_is_401_with_basic_challenge() {
        let w = token_error(&OAuthError::invalid_client("nope"));
        assert_eq!(w.status, 401);
        assert_eq!(
            w.www_authenticate.as_deref(),
            Some("Basic realm=\"keycard\"")
        );
        assert_eq!(
            w.body,
            r#"{"error":"invalid_client","error_description":"nope"}"#
        );
        assert_eq!(token_error(&OAuthError::invalid_grant("x")).status, 400);
    }

    #[test]
    fn rfc8628_s3_5_polling_errors_are_400_without_a_challenge() {
        for code in [
            ErrorCode::AuthorizationPending,
            ErrorCode::SlowDown,
            ErrorCode::ExpiredToken,
            ErrorCode::AccessDenied,
        ] {
            let w = token_error(&OAuthError::bare(code));
            assert_eq!((w.status, w.www_authenticate.as_deref()), (400, None));
            assert_eq!(w.body, format!(r#"{{"error":"{}"}}"#, code.as_str()));
        }
    }

    #[test]
    fn rfc6750_s3_challenges() {
        let w = bearer_error(None, Some("keycard"), None);
        assert_eq!(
            (w.status, w.www_authenticate.as_deref()),
            (401, Some("Bearer realm=\"keycard\""))
        );
        assert_eq!(w.body, "");
        assert_eq!(
            bearer_error(None, None, None).www_authenticate.as_deref(),
            Some("Bearer")
        );
        let w = bearer_error(
            Some(&OAuthError::bare(ErrorCode::InsufficientScope)),
            Some("keycard"),
            Some("a b"),
        );
        assert_eq!(w.status, 403);
        assert_eq!(
            w.www_authenticate.as_deref(),
            Some("Bearer realm=\"keycard\", error=\"insufficient_scope\", scope=\"a b\"")
        );
        // The description goes in the body only.
        let w = bearer_error(
            Some(&OAuthError::new(ErrorCode::InvalidToken, "expired")),
            Some("a\"b"),
            Some("ignored"),
        );
        assert_eq!(
            w.www_authenticate.as_deref(),
            Some("Bearer realm=\"a\\\"b\", error=\"invalid_token\"")
        );
        assert_eq!(
            w.body,
            r#"{"error":"invalid_token","error_description":"expired"}"#
        );
        // The resource could not judge the token: no challenge.
        let w = bearer_error(
            Some(&OAuthError::bare(ErrorCode::TemporarilyUnavailable)),
            Some("keycard"),
            None,
        );
        assert_eq!((w.status, w.www_authenticate), (503, None));
    }

    #[test]
    fn rfc9207_iss_and_state_in_redirects() {
        let iss = Issuer::parse("https://id", false).unwrap();
        let u = authorize_error_redirect(
            &RedirectUri::parse("https://a/cb?x=1").unwrap(),
            &OAuthError::bare(ErrorCode::LoginRequired),
            Some(&State::parse("s&t").unwrap()),
            &iss,
        );
        assert_eq!(
            u,
            "https://a/cb?x=1&error=login_required&state=s%26t&iss=https%3A%2F%2Fid"
        );
        let u = authorize_code_redirect(
            &RedirectUri::parse("https://a/cb").unwrap(),
            &AuthorizationCode::parse("c").unwrap(),
            None,
            &iss,
        );
        assert_eq!(u, "https://a/cb?code=c&iss=https%3A%2F%2Fid");
    }
}
