//! One newtype per protocol value (RFC 6749 Appendix A; RFC 7636 §4.1; OIDC Core §3.1.2.1).
//!
//! Values are built with `parse`, so a value that exists is valid. Secrets (codes, tokens,
//! client secrets, session ids) redact `Debug`, have no `Display`, and are stored only as their
//! SHA-256 [`TokenHash`].

use std::fmt;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::OAuthError;

/// Seconds since the Unix epoch. Time is always a parameter, never read inside this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(pub i64);

impl UnixTime {
    pub fn plus(self, secs: i64) -> UnixTime {
        UnixTime(self.0.saturating_add(secs))
    }

    pub fn secs(self) -> i64 {
        self.0
    }
}

/// Largest length accepted for identifier-like parameters (client_id, state, nonce, ...).
pub const MAX_PARAM_LEN: usize = 2048;

fn check_len(name: &'static str, s: &str, max: usize) -> Result<(), OAuthError> {
    if s.is_empty() {
        return Err(OAuthError::invalid_request(format!("{name} is empty")));
    }
    if s.len() > max {
        return Err(OAuthError::invalid_request(format!("{name} is too long")));
    }
    Ok(())
}

macro_rules! string_value {
    ($(#[$doc:meta])* $name:ident, $param:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Parses the parameter, refusing empty and oversized values.
            pub fn parse(s: &str) -> Result<Self, OAuthError> {
                check_len($param, s, $max)?;
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_value!(
    /// `client_id` (RFC 6749 §2.2): printable ASCII, at most 255 bytes here.
    ClientId, "client_id", 255
);
string_value!(
    /// `state` (RFC 6749 §4.1.1): opaque to the server, echoed verbatim.
    State, "state", MAX_PARAM_LEN
);
string_value!(
    /// `nonce` (OIDC Core §3.1.2.1): echoed in the id token.
    Nonce, "nonce", MAX_PARAM_LEN
);
string_value!(
    /// An audience: the identifier of a registered API (RFC 8707 `resource`, Auth0 `audience`).
    Audience, "audience", 1024
);
string_value!(
    /// A username chosen by an administrator.
    Username, "username", 255
);

impl ClientId {
    /// Client ids are visible ASCII (RFC 6749 Appendix A.1: VSCHAR).
    pub fn parse_strict(s: &str) -> Result<Self, OAuthError> {
        let id = Self::parse(s)?;
        if !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(OAuthError::invalid_request(
                "client_id has invalid characters",
            ));
        }
        Ok(id)
    }
}

/// The issuer identifier (RFC 8414 §2): an https URL without query or fragment, or http for
/// local development when explicitly allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issuer(String);

impl Issuer {
    pub fn parse(s: &str, allow_http: bool) -> Result<Self, String> {
        let url = url::Url::parse(s).map_err(|e| format!("issuer is not a URL: {e}"))?;
        match url.scheme() {
            "https" => {}
            "http" if allow_http => {}
            other => return Err(format!("issuer scheme {other} is not allowed (use https)")),
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("issuer must not have a query or fragment".into());
        }
        // The issuer is compared as a string everywhere, so keep exactly what was configured,
        // minus a trailing slash that would make `{issuer}/token` contain `//`.
        Ok(Issuer(s.trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }

    /// The audience of access tokens that are good only for `/userinfo`.
    pub fn userinfo_audience(&self) -> String {
        format!("{}/userinfo", self.0)
    }
}

/// SHA-256 of a secret. The store keys codes, tokens, session ids and client secrets by it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(secret: &str) -> Self {
        let d = digest::digest(&digest::SHA256, secret.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        TokenHash(out)
    }

    /// Constant-time comparison, for secrets checked against a stored hash.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self.0, &other.0).is_ok()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn from_slice(b: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(b).ok().map(TokenHash)
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hash is not secret, but eight hex digits are enough to correlate log lines.
        write!(
            f,
            "TokenHash({:02x}{:02x}{:02x}{:02x}..)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// A bearer secret: at least 128 bits of randomness, base64url without padding.
///
/// Built from caller-supplied random bytes (this crate has no RNG) or parsed from a request.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// Minimum number of random bytes in a generated secret (RFC 9700 / OAuth 2.1 §7.7: ≥ 128 bits).
pub const SECRET_BYTES: usize = 32;

impl Secret {
    pub fn from_random(bytes: &[u8; SECRET_BYTES]) -> Self {
        Secret(URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn parse(s: &str) -> Result<Self, OAuthError> {
        check_len("token", s, 4096)?;
        Ok(Secret(s.to_owned()))
    }

    /// The only way to read the secret; call it only to put it on the wire.
    pub fn secret(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// One scope token (RFC 6749 §3.3: `%x21 / %x23-5B / %x5D-7E`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);

impl Scope {
    pub fn parse(s: &str) -> Result<Self, OAuthError> {
        if s.is_empty() || s.len() > 256 {
            return Err(OAuthError::invalid_scope(
                "scope token is empty or too long",
            ));
        }
        if !s
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        {
            return Err(OAuthError::invalid_scope("scope has invalid characters"));
        }
        Ok(Scope(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A set of scopes, kept sorted so that formatting is canonical.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(std::collections::BTreeSet<Scope>);

impl ScopeSet {
    /// Parses a space-delimited list (RFC 6749 §3.3). Repeated spaces are tolerated; repeated
    /// scopes collapse.
    pub fn parse(s: &str) -> Result<Self, OAuthError> {
        if s.len() > 4096 {
            return Err(OAuthError::invalid_scope("scope is too long"));
        }
        let mut set = std::collections::BTreeSet::new();
        for part in s.split(' ').filter(|p| !p.is_empty()) {
            set.insert(Scope::parse(part)?);
        }
        Ok(ScopeSet(set))
    }

    pub fn contains(&self, s: &str) -> bool {
        self.0.iter().any(|x| x.as_str() == s)
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    pub fn insert(&mut self, s: Scope) {
        self.0.insert(s);
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.union(&other.0).cloned().collect())
    }

    pub fn difference(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.difference(&other.0).cloned().collect())
    }

    pub fn retain(&mut self, f: impl FnMut(&Scope) -> bool) {
        self.0.retain(f)
    }

    /// The canonical space-separated form.
    pub fn to_wire(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(s.as_str());
        }
        out
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<T: IntoIterator<Item = Scope>>(iter: T) -> Self {
        ScopeSet(iter.into_iter().collect())
    }
}

/// Scopes with a meaning defined by OpenID Connect Core §5.4 and §11.
pub const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc6749_s3_3_scope_rejects_backslash_and_quote() {
        assert!(Scope::parse("a\\b").is_err());
        assert!(Scope::parse("a\"b").is_err());
        assert!(Scope::parse("read:photos").is_ok());
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::from_random(&[7u8; 32]);
        assert_eq!(format!("{s:?}"), "Secret(..)");
        assert_eq!(s.secret().len(), 43);
    }

    #[test]
    fn issuer_keeps_configured_form_without_trailing_slash() {
        assert_eq!(
            Issuer::parse("https://id.example.com/", false)
                .unwrap()
                .as_str(),
            "https://id.example.com"
        );
        assert!(Issuer::parse("http://127.0.0.1:8080", false).is_err());
        assert!(Issuer::parse("http://127.0.0.1:8080", true).is_ok());
        assert!(Issuer::parse("https://a.example?x=1", false).is_err());
    }

    proptest! {
        #[test]
        fn rfc6749_s3_3_scope_parse_format_round_trips(tokens in proptest::collection::vec("[!#-\\[\\]-~]{1,12}", 0..8)) {
            let joined = tokens.join(" ");
            let set = ScopeSet::parse(&joined).unwrap();
            let again = ScopeSet::parse(&set.to_wire()).unwrap();
            prop_assert_eq!(&set, &again);
            for t in &tokens { prop_assert!(set.contains(t)); }
        }

        #[test]
        fn scope_parse_never_panics(s in "\\PC{0,64}") {
            let _ = ScopeSet::parse(&s);
        }
    }
}
