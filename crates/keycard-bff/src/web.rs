//! Cookies (RFC 6265bis §4.1, §4.1.3.2 `__Host-` prefix) and the CSRF checks (OAuth 2.0 for
//! Browser-Based Applications §6.1.3.3; Fetch Metadata `Sec-Fetch-Site`).
//!
//! The session cookie is `__Host-`, `Secure`, `HttpOnly`, `SameSite=Strict`, `Path=/`, no
//! `Domain`; the login-state cookie the same but `SameSite=Lax`, since the provider's redirect
//! back to the callback is a cross-site navigation that must carry it. [`require_api_headers`]
//! is the check every API call and `/bff/session` passes: the custom header with its exact
//! value (a cross-origin script cannot send it without a CORS preflight the BFF never
//! answers) and no `Sec-Fetch-Site: cross-site`.
//!
//! Pure functions over headers. Not here: what the cookies hold (`routes`, `session`).

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::error::BffError;

/// The value of cookie `name` in the request, the first if it is sent twice.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// `SameSite` of a cookie.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SameSite {
    Strict,
    Lax,
}

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
        }
    }
}

/// A `Set-Cookie` value with the `__Host-` attributes.
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    same_site: SameSite,
    max_age: Duration,
) -> HeaderValue {
    let v = format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite={}; Max-Age={}",
        same_site.as_str(),
        max_age.as_secs()
    );
    // Names are checked at configuration and values are base64url: always a valid header.
    HeaderValue::try_from(v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A `Set-Cookie` value that deletes the cookie.
pub(crate) fn clear_cookie(name: &str, same_site: SameSite) -> HeaderValue {
    set_cookie(name, "", same_site, Duration::ZERO)
}

/// Refuses a request that says it comes from another site (Fetch Metadata).
pub(crate) fn refuse_cross_site(headers: &HeaderMap) -> Result<(), BffError> {
    match headers.get("sec-fetch-site").map(HeaderValue::as_bytes) {
        Some(b"cross-site") => Err(BffError::Forbidden("cross-site request")),
        _ => Ok(()),
    }
}

/// Whether the custom anti-CSRF header is present with its exact value.
pub(crate) fn has_csrf_header(headers: &HeaderMap, name: &HeaderName, value: &HeaderValue) -> bool {
    let mut all = headers.get_all(name).iter();
    matches!((all.next(), all.next()), (Some(v), None) if v == value)
}

/// The checks of every API call and of `/bff/session`.
pub(crate) fn require_api_headers(
    headers: &HeaderMap,
    name: &HeaderName,
    value: &HeaderValue,
) -> Result<(), BffError> {
    refuse_cross_site(headers)?;
    if !has_csrf_header(headers, name, value) {
        return Err(BffError::Forbidden("the anti-CSRF header is missing"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-bff-session=xyz"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("__Host-bff-session=second"),
        );
        assert_eq!(cookie(&h, "__Host-bff-session"), Some("xyz"));
        assert_eq!(cookie(&h, "__Host-bff"), None);
        assert_eq!(cookie(&h, "a"), Some("1"));
    }

    #[test]
    fn rfc6265bis_s4_1_3_2_host_cookie_attributes() {
        let v = set_cookie("__Host-s", "v", SameSite::Strict, Duration::from_secs(60));
        assert_eq!(
            v,
            "__Host-s=v; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=60"
        );
        assert!(!v.to_str().unwrap().contains("Domain"));
        let c = clear_cookie("__Host-l", SameSite::Lax);
        assert_eq!(
            c,
            "__Host-l=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"
        );
    }

    #[test]
    fn bba_s6_1_3_3_custom_header_and_fetch_metadata() {
        let name = HeaderName::from_static("x-csrf");
        let one = HeaderValue::from_static("1");
        let check = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(*k, HeaderValue::from_static(v));
            }
            require_api_headers(&h, &name, &one).is_ok()
        };
        assert!(check(&[("x-csrf", "1")]));
        assert!(check(&[("x-csrf", "1"), ("sec-fetch-site", "same-origin")]));
        assert!(!check(&[]));
        assert!(!check(&[("x-csrf", "0")]));
        assert!(!check(&[("x-csrf", "1"), ("x-csrf", "1")]));
        assert!(!check(&[("x-csrf", "1"), ("sec-fetch-site", "cross-site")]));
    }
}
