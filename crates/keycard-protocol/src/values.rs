//! One newtype per protocol value (RFC 6749 Appendix A; RFC 7636 §4.1; OIDC Core §3.1.2.1).
//!
//! Values are built with `parse`, so a value that exists is valid, and they stay typed from the
//! request to the store and back: a `ClientId` never travels as a `String`. Each value
//! (de)serialises as its plain string, validating on the way in, so wire documents can carry
//! typed fields. Secrets live in [`crate::secret`]; time in [`crate::time`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::OAuthError;

/// Largest length accepted for identifier-like parameters.
pub const MAX_PARAM_LEN: usize = 2048;

/// Largest `state` and `nonce` accepted: they are stored with every pending login, so an
/// unauthenticated request must not be able to make that row large. 512 bytes holds any
/// random value or signed state an app needs (conformance suites send 300-odd).
pub const MAX_STATE_LEN: usize = 512;

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

            /// For values this crate composes from values already checked.
            #[allow(dead_code)]
            pub(crate) fn from_checked(s: String) -> Self {
                Self(s)
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

        // Reading a value as text is always fine; it is building one from text that must go
        // through `parse`.
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
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
    State, "state", MAX_STATE_LEN
);
string_value!(
    /// `nonce` (OIDC Core §3.1.2.1): echoed in the id token.
    Nonce, "nonce", MAX_STATE_LEN
);
string_value!(
    /// An audience: the identifier of a registered API (RFC 8707 `resource`, Auth0 `audience`,
    /// RFC 7519 §4.1.3 `aud`).
    Audience, "audience", 1024
);
string_value!(
    /// A username chosen by an administrator.
    Username, "username", 255
);
string_value!(
    /// A user's stable identifier, the `sub` of their tokens (OIDC Core §2).
    UserId, "user id", 255
);
string_value!(
    /// The identifier of an authorization grant: the family of codes, refresh tokens and access
    /// tokens issued from one authorization (RFC 9700 §4.14.2).
    GrantId, "grant id", 255
);
string_value!(
    /// `jti` (RFC 7519 §4.1.7): a token's unique identifier.
    Jti, "jti", 512
);
string_value!(
    /// `sid` (OIDC Front/Back-Channel Logout §2): the public id of a browser session.
    SessionId, "sid", 255
);
string_value!(
    /// `sub` (RFC 7519 §4.1.2): a user id for user tokens, the client id for machine tokens
    /// (RFC 9068 §2.2).
    Subject, "sub", 255
);
string_value!(
    /// `login_hint` (OIDC Core §3.1.2.1).
    LoginHint, "login_hint", 255
);
string_value!(
    /// `kid` (RFC 7515 §4.1.4): the id of a signing key.
    Kid, "kid", 256
);

/// Identifier types made from 128 random bits, as 32 lowercase hex digits (the caller draws the
/// bits; see `keycard_os::new_id`).
pub trait RandomId: Sized {
    fn from_random(bytes: &[u8; 16]) -> Self;
}

/// 32 hex digits, within every id type's bounds.
fn hex_id(bytes: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

macro_rules! random_ids {
    ($($t:ident),*) => {$(
        impl RandomId for $t {
            fn from_random(bytes: &[u8; 16]) -> Self {
                $t(hex_id(bytes))
            }
        }
    )*};
}

random_ids!(GrantId, UserId, SessionId, Jti, Kid, State, Nonce);

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

impl Username {
    /// The form usernames are compared in: RFC 8265 §3.3 (UsernameCaseMapped) — width and
    /// compatibility mapping (NFKC), then Unicode lower case, then NFC — so `Alice`, `alice`
    /// and `ＡＬＩＣＥ` are one account, for uniqueness, lookup and login throttling alike.
    pub fn folded(&self) -> String {
        use unicode_normalization::UnicodeNormalization as _;
        let mapped: String = self.0.nfkc().collect();
        mapped.to_lowercase().nfc().collect()
    }
}

/// An id token's audience is the client it was issued to (OIDC Core §2 `aud`); a client id is
/// always a valid audience (at most 255 bytes, not empty).
impl From<&ClientId> for Audience {
    fn from(c: &ClientId) -> Audience {
        Audience(c.0.clone())
    }
}

impl From<&UserId> for Subject {
    fn from(u: &UserId) -> Subject {
        Subject(u.0.clone())
    }
}

impl From<&ClientId> for Subject {
    fn from(c: &ClientId) -> Subject {
        Subject(c.0.clone())
    }
}

impl Subject {
    /// Whether this subject is the given client (a machine token, RFC 9068 §2.2).
    pub fn is_client(&self, c: &ClientId) -> bool {
        self.0 == c.0
    }

    /// This subject as a user id.
    pub fn to_user_id(&self) -> UserId {
        UserId(self.0.clone())
    }
}

/// The issuer identifier (RFC 8414 §2): an https URL without query or fragment, or http for
/// local development when explicitly allowed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Issuer(String);

impl Issuer {
    /// Parses a configured issuer: https (or http when allowed), no query or fragment, and no
    /// trailing slash, which would make `{issuer}/token` contain `//`.
    pub fn parse(s: &str, allow_http: bool) -> Result<Self, String> {
        Issuer::check(s, allow_http)?;
        Ok(Issuer(s.trim_end_matches('/').to_owned()))
    }

    /// An issuer as another party states it (discovery, `iss` claims): compared as an exact
    /// string everywhere (RFC 8414 §3.3), so it is kept byte for byte, trailing slash and all.
    pub fn from_wire(s: &str) -> Result<Self, String> {
        Issuer::check(s, true)?;
        Ok(Issuer(s.to_owned()))
    }

    fn check(s: &str, allow_http: bool) -> Result<(), String> {
        let url = url::Url::parse(s).map_err(|e| format!("issuer is not a URL: {e}"))?;
        match url.scheme() {
            "https" => {}
            "http" if allow_http => {}
            other => return Err(format!("issuer scheme {other} is not allowed (use https)")),
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("issuer must not have a query or fragment".into());
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }

    /// `{issuer}{path}` for one of this issuer's endpoints.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.0.trim_end_matches('/'))
    }

    /// The audience of access tokens that are good only for `/userinfo`.
    pub fn userinfo_audience(&self) -> Audience {
        Audience(self.endpoint("/userinfo"))
    }
}

impl std::ops::Deref for Issuer {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Issuer {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Issuer {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Issuer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Issuer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Issuer::from_wire(&s).map_err(serde::de::Error::custom)
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

impl PartialEq<str> for Scope {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Scope {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A set of scopes, kept sorted so that formatting is canonical. On the wire it is the
/// space-delimited string of RFC 6749 §3.3.
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

    pub fn len(&self) -> usize {
        self.0.len()
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

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_wire())
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ScopeSet::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Scopes with a meaning defined by OpenID Connect Core §5.4 and §11.
pub const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// `max_age` (OIDC Core §3.1.2.1): the longest time, in seconds, since the user last typed a
/// password that this request accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MaxAge(i64);

impl MaxAge {
    pub fn parse(s: &str) -> Result<Self, OAuthError> {
        MaxAge::from_secs(s.parse::<i64>().unwrap_or(-1))
    }

    pub fn from_secs(secs: i64) -> Result<Self, OAuthError> {
        if secs < 0 {
            return Err(OAuthError::invalid_request(
                "max_age must be a non-negative integer",
            ));
        }
        Ok(MaxAge(secs))
    }

    pub fn secs(self) -> i64 {
        self.0
    }

    /// Whether a session authenticated at `auth_time` is too old at `now`.
    /// `max_age=0` always is (OIDC Core §3.1.2.1: it means `prompt=login`), even within the
    /// second the user signed in.
    pub fn is_exceeded(self, auth_time: crate::UnixTime, now: crate::UnixTime) -> bool {
        self.0 == 0 || now.secs().saturating_sub(auth_time.secs()) > self.0
    }
}

/// The `prompt` parameter (OIDC Core §3.1.2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

impl Prompt {
    /// Parses the space-delimited values; `none` with any other value is an error.
    pub fn parse(p: Option<&str>) -> Result<Prompt, OAuthError> {
        let mut prompt = Prompt::default();
        for v in p.unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
            match v {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" => prompt.consent = true,
                // Keycard has one account per browser session, so the chooser is the login page.
                "select_account" => prompt.login = true,
                _ => return Err(OAuthError::invalid_request("unknown prompt value")),
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return Err(OAuthError::invalid_request(
                "prompt=none cannot be combined with other values",
            ));
        }
        Ok(prompt)
    }
}

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
    fn rfc8265_s3_3_usernames_fold_case_and_width() {
        let f = |s: &str| Username::parse(s).unwrap().folded();
        assert_eq!(f("Alice"), "alice");
        assert_eq!(f("ＡＬＩＣＥ"), "alice");
        assert_eq!(f("ÉMILE"), f("émile"));
        // A decomposed accent folds like the composed one.
        assert_eq!(f("E\u{301}mile"), f("Émile"));
        assert_ne!(f("alice"), f("alice2"));
    }

    #[test]
    fn values_deserialize_through_their_parser() {
        let id: ClientId = serde_json::from_str("\"app\"").unwrap();
        assert_eq!(id.as_str(), "app");
        assert!(serde_json::from_str::<ClientId>("\"\"").is_err());
        let s: ScopeSet = serde_json::from_str("\"b a\"").unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"a b\"");
        // Another provider's issuer is kept exactly, trailing slash and all.
        let i: Issuer = serde_json::from_str("\"https://tenant.example.com/\"").unwrap();
        assert_eq!(i.as_str(), "https://tenant.example.com/");
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
