//! Bearer tokens at a protected resource (RFC 6750 §2, §3; RFC 9110 §11.1; OAuth 2.1 §5.2).
//!
//! [`extract`] finds the access token of a request: the `Authorization: Bearer` header (scheme
//! compared case-insensitively) or, where the resource accepts it, the `access_token` form
//! field of a POST (§2.2). A token in the query string is never read (RFC 9700 §4.3.2). The
//! answer to a refused request — status, `WWW-Authenticate` challenge, body — is
//! [`crate::wire::bearer_error`], the one RFC 6750 voice of the server, the validation library
//! and the gateway.
//!
//! No I/O: callers hand over the header values and the decoded form field.

use crate::error::OAuthError;

/// The access token of a request, if it presented one (RFC 6750 §2.1, §2.2).
///
/// - no `Authorization` header, or one with another scheme: no bearer credentials (`Ok(None)`,
///   which answers 401 with a bare challenge, §3.1);
/// - more than one `Authorization` header, a header that is not text, `Bearer` without a token
///   or with characters outside `b64token`, or a token sent both ways: `invalid_request`.
pub fn extract<'a, I>(
    authorization: I,
    form_token: Option<&'a str>,
) -> Result<Option<&'a str>, OAuthError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut values = authorization.into_iter();
    let from_header = match values.next() {
        None => None,
        Some(first) => {
            if values.next().is_some() {
                return Err(OAuthError::invalid_request("send one Authorization header"));
            }
            let value = std::str::from_utf8(first)
                .map_err(|_| OAuthError::invalid_request("malformed Authorization header"))?;
            header_token(value)?
        }
    };
    match (from_header, form_token) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request("send the token one way only")),
        (Some(t), None) => Ok(Some(t)),
        (None, Some(t)) => check_b64token(t).map(Some),
        (None, None) => Ok(None),
    }
}

/// The token of one `Authorization` value, `None` for another scheme.
fn header_token(value: &str) -> Result<Option<&str>, OAuthError> {
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    check_b64token(rest.trim_matches(' ')).map(Some)
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn check_b64token(token: &str) -> Result<&str, OAuthError> {
    let body = token.trim_end_matches('=');
    let valid = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if valid {
        Ok(token)
    } else {
        Err(OAuthError::invalid_request("malformed bearer token"))
    }
}

/// Escapes a quoted-string (RFC 9110 §5.6.4) and drops characters a header cannot carry.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c == ' ' || c.is_ascii_graphic() => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn ex<'a>(headers: &[&'a str], form: Option<&'a str>) -> Result<Option<&'a str>, ErrorCode> {
        extract(headers.iter().map(|h| h.as_bytes()), form).map_err(|e| e.code)
    }

    #[test]
    fn rfc6750_s2_1_authorization_header_parsing() {
        assert_eq!(
            ex(&["Bearer abc.def-_~+/=="], None),
            Ok(Some("abc.def-_~+/=="))
        );
        assert_eq!(ex(&["bEaReR  abc "], None), Ok(Some("abc")));
        assert_eq!(ex(&[], None), Ok(None));
        assert_eq!(ex(&["Basic YTpi"], None), Ok(None));
        assert_eq!(ex(&["Bearertoken"], None), Ok(None));
        for bad in [
            &["Bearer"][..],
            &["Bearer "],
            &["Bearer a b"],
            &["Bearer a=b"],
            &["Bearer \"quoted\""],
            &["Bearer a", "Bearer b"],
        ] {
            assert_eq!(ex(bad, None), Err(ErrorCode::InvalidRequest), "{bad:?}");
        }
    }

    #[test]
    fn rfc6750_s2_2_form_token_and_never_both() {
        assert_eq!(ex(&[], Some("abc")), Ok(Some("abc")));
        assert_eq!(
            ex(&["Bearer abc"], Some("abc")),
            Err(ErrorCode::InvalidRequest)
        );
        assert_eq!(ex(&[], Some("a b")), Err(ErrorCode::InvalidRequest));
        // A Basic header next to a form token is not a second bearer token.
        assert_eq!(ex(&["Basic YTpi"], Some("abc")), Ok(Some("abc")));
    }

    #[test]
    fn rfc9110_s5_6_4_quoted_string_escapes() {
        assert_eq!(quote("a\"b\\c\n"), "a\\\"b\\\\c");
    }
}
