//! The one place where OAuth errors become responses (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3;
//! RFC 9207 §2).
//!
//! It returns plain data ([`WireError`]); each service adds a small adapter that turns it into
//! its framework's response. The matches below have no catch-all arm on purpose: a new error
//! code must be given its status here.

use crate::error::{ErrorCode, OAuthError};

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
    let mut m = serde_json::Map::new();
    m.insert("error".into(), e.code.as_str().into());
    if let Some(d) = &e.description {
        m.insert("error_description".into(), d.as_ref().into());
    }
    serde_json::Value::Object(m).to_string()
}

/// Token, introspection and revocation endpoint errors (RFC 6749 §5.2).
/// `invalid_client` answers 401 with a `WWW-Authenticate: Basic` challenge.
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

/// Protected-resource errors (RFC 6750 §3): a missing token gets a bare challenge; the others
/// carry the error code in the challenge and the body.
pub fn bearer_error(e: Option<&OAuthError>, realm: &str) -> WireError {
    let Some(e) = e else {
        return WireError {
            status: 401,
            www_authenticate: Some(format!("Bearer realm=\"{realm}\"")),
            body: String::new(),
        };
    };
    let status = match e.code {
        ErrorCode::InvalidRequest => 400,
        ErrorCode::InvalidToken => 401,
        ErrorCode::InsufficientScope => 403,
        ErrorCode::ServerError => 500,
        ErrorCode::TemporarilyUnavailable => 503,
        ErrorCode::AccessDenied
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
    let mut challenge = format!("Bearer realm=\"{realm}\", error=\"{}\"", e.code.as_str());
    if let Some(d) = &e.description {
        // The description is from the §5.2 character set, which excludes `"` and `\`.
        challenge.push_str(&format!(", error_description=\"{d}\""));
    }
    WireError {
        status,
        www_authenticate: Some(challenge),
        body: json_body(e),
    }
}

/// The error redirect of the authorization endpoint (RFC 6749 §4.1.2.1 with RFC 9207 `iss`).
pub fn authorize_error_redirect(
    redirect_uri: &str,
    e: &OAuthError,
    state: Option<&str>,
    iss: &str,
) -> String {
    let mut pairs: Vec<(&str, &str)> = vec![("error", e.code.as_str())];
    if let Some(d) = &e.description {
        pairs.push(("error_description", d.as_ref()));
    }
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", iss));
    append_query(redirect_uri, &pairs)
}

/// The success redirect (RFC 6749 §4.1.2; RFC 9207).
pub fn authorize_code_redirect(
    redirect_uri: &str,
    code: &str,
    state: Option<&str>,
    iss: &str,
) -> String {
    let mut pairs: Vec<(&str, &str)> = vec![("code", code)];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", iss));
    append_query(redirect_uri, &pairs)
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
    fn rfc6750_s3_challenges() {
        let w = bearer_error(None, "keycard");
        assert_eq!(
            (w.status, w.www_authenticate.as_deref()),
            (401, Some("Bearer realm=\"keycard\""))
        );
        let w = bearer_error(
            Some(&OAuthError::bare(ErrorCode::InsufficientScope)),
            "keycard",
        );
        assert_eq!(w.status, 403);
        assert_eq!(
            w.www_authenticate.as_deref(),
            Some("Bearer realm=\"keycard\", error=\"insufficient_scope\"")
        );
    }

    #[test]
    fn rfc9207_iss_and_state_in_redirects() {
        let u = authorize_error_redirect(
            "https://a/cb?x=1",
            &OAuthError::bare(ErrorCode::LoginRequired),
            Some("s&t"),
            "https://id",
        );
        assert_eq!(
            u,
            "https://a/cb?x=1&error=login_required&state=s%26t&iss=https%3A%2F%2Fid"
        );
        let u = authorize_code_redirect("https://a/cb", "c", None, "https://id");
        assert_eq!(u, "https://a/cb?code=c&iss=https%3A%2F%2Fid");
    }
}
