//! Redirect URI registration and matching (RFC 6749 §3.1.2; RFC 9700 §2.1, §4.1.3; RFC 8252 §7.3).
//!
//! Matching is an exact byte-for-byte comparison of the whole string. The single exception is
//! a loopback IP literal over http (`127.0.0.1`, `[::1]`), whose port may differ because native
//! apps bind an ephemeral port; scheme, host, path and query must still match exactly.
//! There are no wildcards and no normalisation: `/CB`, a trailing slash, an added query or a
//! `user@host` form never match.

use crate::error::OAuthError;

/// A redirect URI as registered by an administrator, validated at registration time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectUri(String);

const LOOPBACK_PREFIXES: &[&str] = &["http://127.0.0.1", "http://[::1]"];

impl RedirectUri {
    /// Validates a URI for registration (OAuth 2.1 §2.3): absolute, no fragment, no userinfo,
    /// https, http only on loopback, or a private-use scheme containing a dot (RFC 8252 §7.1).
    pub fn register(s: &str) -> Result<Self, String> {
        if s.len() > 2000 {
            return Err("redirect URI is too long".into());
        }
        if s.bytes().any(|b| b <= 0x20 || b == 0x7f) {
            return Err("redirect URI contains spaces or control characters".into());
        }
        let url = url::Url::parse(s).map_err(|e| format!("redirect URI is not absolute: {e}"))?;
        if url.fragment().is_some() || s.contains('#') {
            return Err("redirect URI must not contain a fragment".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("redirect URI must not contain user information".into());
        }
        match url.scheme() {
            "https" => {}
            "http" => {
                // RFC 8252 §8.3: loopback by IP literal, never `localhost`, which a resolver or a
                // hosts file may send elsewhere.
                if url.host_str() == Some("localhost") {
                    return Err(
                        "use http://127.0.0.1 or http://[::1] instead of localhost (RFC 8252 §8.3)"
                            .into(),
                    );
                }
                let loopback = matches!(url.host_str(), Some("127.0.0.1") | Some("[::1]"));
                if !loopback {
                    return Err("http redirect URIs are allowed only for loopback hosts".into());
                }
            }
            "javascript" | "data" | "file" | "vbscript" | "blob" | "about" | "ftp" | "ws"
            | "wss" => {
                return Err(format!("the {} scheme is not allowed", url.scheme()));
            }
            other if other.contains('.') => {}
            _ => {
                return Err(
                    "private-use schemes must be reverse domain names (RFC 8252 §7.1)".into(),
                );
            }
        }
        // The registered string, not the parsed form, is what requests are compared against.
        if url.as_str() != s && url.as_str() != format!("{s}/") {
            return Err(format!(
                "redirect URI is not in normal form; register {}",
                url.as_str()
            ));
        }
        Ok(RedirectUri(s.to_owned()))
    }

    /// A redirect URI read back from the store, where only registered or selected ones go.
    pub fn from_stored(s: String) -> Self {
        RedirectUri(s)
    }

    /// A `redirect_uri` repeated in a token request (RFC 6749 §4.1.3): bounded and free of
    /// control characters. It is only ever compared, byte for byte, with the stored one.
    pub fn parse(s: &str) -> Result<Self, OAuthError> {
        if s.is_empty() || s.len() > 2000 || s.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(OAuthError::invalid_request("redirect_uri is malformed"));
        }
        Ok(RedirectUri(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `requested` names this registered URI exactly, or — for native apps (public
    /// clients, RFC 8252 §7.3) — differs only in the port of a loopback IP literal.
    pub fn matches_for(&self, requested: &str, any_loopback_port: bool) -> bool {
        if self.0 == requested {
            return true;
        }
        any_loopback_port && self.matches_loopback(requested)
    }

    /// Whether `requested` names this registered URI (exact match, loopback port exception).
    pub fn matches(&self, requested: &str) -> bool {
        self.matches_for(requested, true)
    }

    /// Whether this is an http loopback URI (a native app's listener, RFC 8252 §7.3).
    pub fn is_loopback(&self) -> bool {
        LOOPBACK_PREFIXES
            .iter()
            .any(|p| strip_loopback(&self.0, p).is_some())
    }

    /// Whether the browser is sent here over https, so only the real origin can receive what
    /// is sent (a claimed https URI identifies a client; a loopback port or a private-use
    /// scheme does not, RFC 8252 §8.6).
    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }

    fn matches_loopback(&self, requested: &str) -> bool {
        for prefix in LOOPBACK_PREFIXES {
            if let (Some(reg_rest), Some(req_rest)) = (
                strip_loopback(&self.0, prefix),
                strip_loopback(requested, prefix),
            ) {
                return reg_rest == req_rest;
            }
        }
        false
    }
}

/// For `http://127.0.0.1:8123/cb?x`, returns `/cb?x`; `None` when `s` is not that loopback form.
fn strip_loopback<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(prefix)?;
    let rest = match rest.strip_prefix(':') {
        Some(after_colon) => {
            let digits = after_colon.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 5 {
                return None;
            }
            let (port, tail) = after_colon.split_at(digits);
            if port.parse::<u32>().ok()? > 65535 {
                return None;
            }
            tail
        }
        None => rest,
    };
    // Anything but a path, a query or the end (for example `@evil`) is not a loopback URI.
    if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') {
        Some(rest)
    } else {
        None
    }
}

/// Picks the redirect URI for an authorization request (RFC 6749 §3.1.2.3, OAuth 2.1 §4.1.1):
/// the requested one if it matches a registration; with none requested, the only registered URI.
///
/// The loopback port may vary only for public clients (RFC 8252 §7.3 is about native apps); a
/// confidential web client registered with a loopback URI gets exact matching.
pub fn select(
    registered: &[RedirectUri],
    requested: Option<&str>,
    any_loopback_port: bool,
) -> Result<RedirectUri, OAuthError> {
    match requested {
        // The requested string, not the registered one: on loopback the port may differ, and
        // the code must be sent to the port the app listens on.
        Some(r) => registered
            .iter()
            .find(|u| u.matches_for(r, any_loopback_port))
            .map(|_| RedirectUri(r.to_owned()))
            .ok_or_else(|| {
                OAuthError::invalid_request("redirect_uri is not registered for this client")
            }),
        None => match registered {
            [only] => Ok(only.clone()),
            _ => Err(OAuthError::invalid_request("redirect_uri is required")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reg(s: &str) -> RedirectUri {
        RedirectUri::register(s).unwrap()
    }

    #[test]
    fn rfc9700_s4_1_3_exact_match_table() {
        let r = reg("https://app.example.com/cb");
        let cases = [
            ("https://app.example.com/cb", true),
            ("https://app.example.com/cb/", false),
            ("https://app.example.com/CB", false),
            ("https://APP.example.com/cb", false),
            ("https://app.example.com/cb?x=1", false),
            ("https://app.example.com/cb#f", false),
            ("http://app.example.com/cb", false),
            ("https://app.example.com:443/cb", false),
            ("https://app.example.com.evil.com/cb", false),
            ("https://user@app.example.com/cb", false),
            ("https://app.example.com/cb/../cb", false),
            ("https://app.example.com/%2e%2e/cb", false),
            ("https://app.example.com/cb%20", false),
        ];
        for (req, want) in cases {
            assert_eq!(r.matches(req), want, "{req}");
        }
    }

    #[test]
    fn rfc8252_s7_3_loopback_port_may_vary() {
        let r = reg("http://127.0.0.1/cb");
        assert!(r.matches("http://127.0.0.1:51234/cb"));
        assert!(r.matches("http://127.0.0.1/cb"));
        assert!(!r.matches("http://127.0.0.1:51234/cb2"));
        assert!(!r.matches("http://127.0.0.1:51234/cb?x"));
        assert!(!r.matches("http://127.0.0.1:80@evil.com/cb"));
        assert!(!r.matches("http://127.0.0.1.evil.com/cb"));
        assert!(!r.matches("https://127.0.0.1:51234/cb"));
        assert!(!r.matches("http://127.0.0.1:99999/cb"));
        let v6 = reg("http://[::1]:8080/cb");
        assert!(v6.matches("http://[::1]:9/cb"));
        assert!(!v6.matches("http://127.0.0.1:9/cb"));
        // GHSA-rfq3-w54c-f9q5: a loopback URI never matches a registered https URI.
        assert!(!reg("https://example.com/cb").matches("http://127.0.0.1/cb"));
    }

    #[test]
    fn oauth21_s2_3_registration_rules() {
        assert!(RedirectUri::register("https://a.example/cb#x").is_err());
        assert!(RedirectUri::register("http://a.example/cb").is_err());
        assert!(RedirectUri::register("javascript:alert(1)").is_err());
        assert!(RedirectUri::register("data:text/html,x").is_err());
        assert!(RedirectUri::register("myapp:/cb").is_err());
        assert!(RedirectUri::register("com.example.app:/cb").is_ok());
        assert!(RedirectUri::register("https://u:p@a.example/cb").is_err());
        assert!(RedirectUri::register("/relative").is_err());
        assert!(RedirectUri::register("http://127.0.0.1:3000/cb").is_ok());
        // RFC 8252 §8.3: the IP literal, never `localhost`.
        assert!(RedirectUri::register("http://localhost:3000/cb").is_err());
    }

    #[test]
    fn rfc6749_s3_1_2_3_redirect_uri_may_be_omitted_only_with_one_registration() {
        let one = [reg("https://a.example/cb")];
        assert_eq!(
            select(&one, None, true).unwrap().as_str(),
            "https://a.example/cb"
        );
        let two = [reg("https://a.example/cb"), reg("https://a.example/cb2")];
        assert!(select(&two, None, true).is_err());
        assert!(select(&two, Some("https://a.example/cb3"), true).is_err());
    }

    #[test]
    fn rfc8252_s7_3_the_port_varies_only_for_native_apps() {
        let reg = [reg("http://127.0.0.1:8788/callback")];
        assert!(select(&reg, Some("http://127.0.0.1:8789/callback"), true).is_ok());
        assert!(select(&reg, Some("http://127.0.0.1:8789/callback"), false).is_err());
        assert!(select(&reg, Some("http://127.0.0.1:8788/callback"), false).is_ok());
    }

    proptest! {
        #[test]
        fn any_one_byte_mutation_fails_to_match(pos in 0usize..64, byte in any::<u8>()) {
            let registered = "https://app.example.com/oauth/callback?tenant=blue";
            let r = reg(registered);
            let mut bytes = registered.as_bytes().to_vec();
            let i = pos % bytes.len();
            prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            if let Ok(mutated) = String::from_utf8(bytes) {
                prop_assert!(!r.matches(&mutated));
            }
        }

        #[test]
        fn any_insertion_or_deletion_fails_to_match(pos in 0usize..64, byte in any::<u8>(), delete in any::<bool>()) {
            let registered = "http://127.0.0.1/cb?x=1";
            let r = reg(registered);
            let mut bytes = registered.as_bytes().to_vec();
            let i = pos % bytes.len();
            if delete { bytes.remove(i); } else { bytes.insert(i, byte); }
            if let Ok(mutated) = String::from_utf8(bytes) {
                // The only accepted variation on loopback is a port after the host.
                let allowed = mutated.strip_prefix("http://127.0.0.1:").and_then(|t| {
                    let d = t.bytes().take_while(u8::is_ascii_digit).count();
                    (d > 0 && d <= 5 && &t[d..] == "/cb?x=1").then_some(())
                }).is_some();
                prop_assert_eq!(r.matches(&mutated), allowed, "{}", mutated);
            }
        }

        #[test]
        fn matching_never_panics(s in "\\PC{0,80}") {
            let _ = reg("http://127.0.0.1/cb").matches(&s);
            let _ = RedirectUri::register(&s);
        }
    }
}
