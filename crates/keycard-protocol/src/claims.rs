//! Token contents: RFC 9068 access-token claims, OIDC Core §2 id-token claims, the RFC 6749
//! §5.1 token response, and OIDC Core §5.3 userinfo claims chosen by scope.
//!
//! Pure construction: the caller supplies `now`, the `jti` and the user's profile.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::time::UnixTime;
use crate::values::{
    Audience, ClientId, GrantId, Issuer, Jti, Nonce, ScopeSet, SessionId, Subject, UserId,
};

/// `aud` as a string or an array (RFC 7519 §4.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Aud {
    One(Audience),
    Many(Vec<Audience>),
}

impl Aud {
    pub fn from_vec(mut v: Vec<Audience>) -> Aud {
        if v.len() == 1 {
            Aud::One(v.remove(0))
        } else {
            Aud::Many(v)
        }
    }

    pub fn contains(&self, a: &Audience) -> bool {
        self.iter().any(|x| x == a)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Audience> {
        match self {
            Aud::One(x) => std::slice::from_ref(x).iter(),
            Aud::Many(v) => v.iter(),
        }
    }
}

/// JWT access-token claims (RFC 9068 §2.2). [`crate::issue`] builds them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: Issuer,
    pub sub: Subject,
    pub aud: Aud,
    pub exp: UnixTime,
    pub iat: UnixTime,
    pub jti: Jti,
    pub client_id: ClientId,
    #[serde(skip_serializing_if = "ScopeSet::is_empty", default)]
    pub scope: ScopeSet,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub auth_time: Option<UnixTime>,
}

/// The user facts a token may carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub sub: UserId,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
}

impl Profile {
    /// A profile with only a subject.
    pub fn new(sub: UserId) -> Profile {
        Profile {
            sub,
            name: None,
            given_name: None,
            family_name: None,
            picture: None,
            email: None,
            email_verified: false,
        }
    }
}

/// Standard claims released by scope (OIDC Core §5.4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopedClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl ScopedClaims {
    pub fn for_scope(p: &Profile, scope: &ScopeSet) -> Self {
        let profile = scope.contains("profile");
        let email = scope.contains("email");
        ScopedClaims {
            name: p.name.clone().filter(|_| profile),
            given_name: p.given_name.clone().filter(|_| profile),
            family_name: p.family_name.clone().filter(|_| profile),
            picture: p.picture.clone().filter(|_| profile),
            email: p.email.clone().filter(|_| email),
            email_verified: (email && p.email.is_some()).then_some(p.email_verified),
        }
    }
}

/// ID-token claims (OIDC Core §2, §3.1.3.6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: Issuer,
    pub sub: Subject,
    pub aud: Aud,
    pub azp: ClientId,
    pub exp: UnixTime,
    pub iat: UnixTime,
    pub auth_time: UnixTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<Nonce>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<SessionId>,
    #[serde(flatten)]
    pub claims: ScopedClaims,
}

/// The `/userinfo` response (OIDC Core §5.3.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserinfoResponse {
    pub sub: Subject,
    #[serde(flatten)]
    pub claims: ScopedClaims,
}

/// The hash used for `at_hash` follows the JWS algorithm (OIDC Core §3.1.3.6): SHA-256 for
/// RS256/ES256, SHA-512 for EdDSA (Ed25519).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HalfHash {
    Sha256,
    Sha512,
}

/// `at_hash`: base64url of the left half of the hash of the access token's ASCII bytes.
pub fn at_hash(access_token: &str, alg: HalfHash) -> String {
    let d = match alg {
        HalfHash::Sha256 => digest::digest(&digest::SHA256, access_token.as_bytes()),
        HalfHash::Sha512 => digest::digest(&digest::SHA512, access_token.as_bytes()),
    };
    let bytes = d.as_ref();
    URL_SAFE_NO_PAD.encode(bytes.get(..bytes.len() / 2).unwrap_or(bytes))
}

/// The `jti` of an access token issued from a user grant: the grant id, a dot, a random part.
///
/// Carrying the grant in the `jti` lets introspection find the grant (and so a revocation of
/// its refresh-token family, RFC 7009 §2.1) without a stored row per access token, which cost
/// a write per issued token. The `jti` stays unique (the random part) and opaque to resource
/// servers; grant ids are random and say nothing about the user. Machine tokens have no grant
/// and their `jti` is the random part alone.
pub fn grant_jti(grant_id: &GrantId, random: &str) -> Jti {
    // A grant id is at most 255 bytes and the random part is ours, so the whole stays within
    // `Jti`'s 512 bytes.
    Jti::from_checked(format!("{grant_id}.{random}"))
}

/// The grant id inside a `jti` made by [`grant_jti`], if there is one.
pub fn jti_grant(jti: &Jti) -> Option<GrantId> {
    jti.as_str()
        .rsplit_once('.')
        .map(|(grant, _)| grant)
        .and_then(|g| GrantId::parse(g).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7009_s2_1_grant_is_found_from_the_access_token_jti() {
        let jti = grant_jti(&GrantId::parse("0f1e2d3c").unwrap(), "a1b2");
        assert_eq!(jti.as_str(), "0f1e2d3c.a1b2");
        assert_eq!(jti_grant(&jti).unwrap().as_str(), "0f1e2d3c");
        // Machine tokens and tokens from before grants were carried have no grant.
        assert_eq!(jti_grant(&Jti::parse("a1b2c3").unwrap()), None);
        assert_eq!(jti_grant(&Jti::parse(".a1b2").unwrap()), None);
    }

    #[test]
    fn oidc_core_s3_1_3_6_at_hash_example() {
        // Expected values computed independently with Python's hashlib and base64.
        assert_eq!(
            at_hash(
                "jHkWEdUXMU1BwAsC4vtUsZwnNEhbuo6T7fVqEHHL1R0",
                HalfHash::Sha256
            ),
            "KuJV8FgxzCLvNf7B0zoZgg"
        );
        assert_eq!(
            at_hash(
                "jHkWEdUXMU1BwAsC4vtUsZwnNEhbuo6T7fVqEHHL1R0",
                HalfHash::Sha512
            )
            .len(),
            43
        );
    }

    #[test]
    fn oidc_core_s5_4_claims_by_scope() {
        let p = Profile {
            name: Some("Alice".into()),
            email: Some("a@example.com".into()),
            email_verified: true,
            ..Profile::new(UserId::parse("u1").unwrap())
        };
        let none = ScopedClaims::for_scope(&p, &ScopeSet::parse("openid").unwrap());
        assert_eq!(none, ScopedClaims::default());
        let email = ScopedClaims::for_scope(&p, &ScopeSet::parse("openid email").unwrap());
        assert_eq!(email.email.as_deref(), Some("a@example.com"));
        assert_eq!(email.email_verified, Some(true));
        assert_eq!(email.name, None);
        let profile = ScopedClaims::for_scope(&p, &ScopeSet::parse("openid profile").unwrap());
        assert_eq!(profile.name.as_deref(), Some("Alice"));
        assert_eq!(profile.email, None);
    }
}
