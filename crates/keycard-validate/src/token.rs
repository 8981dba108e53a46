//! The validated access token handed to handlers.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// A validated RFC 9068 access token: signature, `typ`, `iss`, `aud` and time have been checked.
///
/// Only [`Validator::validate`](crate::Validator::validate) creates one. It holds the claims,
/// never the token string.
#[derive(Clone, Debug)]
pub struct AccessToken {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) client_id: String,
    pub(crate) aud: Vec<String>,
    pub(crate) scope: BTreeSet<String>,
    pub(crate) jti: String,
    pub(crate) exp: u64,
    pub(crate) iat: u64,
    pub(crate) auth_time: Option<u64>,
    pub(crate) claims: Map<String, Value>,
}

impl AccessToken {
    /// `iss`: the issuer, equal to the validator's.
    pub fn iss(&self) -> &str {
        &self.iss
    }

    /// `sub`: the resource owner, or the client for client-credentials tokens (RFC 9068 §2.2).
    pub fn sub(&self) -> &str {
        &self.sub
    }

    /// `client_id`: the client the token was issued to (RFC 9068 §2.2).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// `aud`: every audience of the token; one of them is this resource server.
    pub fn aud(&self) -> &[String] {
        &self.aud
    }

    /// `scope`: the granted scopes (RFC 9068 §2.2.3); empty when the claim is absent.
    pub fn scope(&self) -> &BTreeSet<String> {
        &self.scope
    }

    /// Whether `scope` contains this scope token.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.contains(scope)
    }

    /// `jti`: the token's unique identifier.
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// `exp` in Unix seconds.
    pub fn exp(&self) -> u64 {
        self.exp
    }

    /// `iat` in Unix seconds.
    pub fn iat(&self) -> u64 {
        self.iat
    }

    /// `auth_time` in Unix seconds, when the token carries it.
    pub fn auth_time(&self) -> Option<u64> {
        self.auth_time
    }

    /// All claims, for anything not typed above.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
}

/// Splits a `scope` value (RFC 6749 §3.3) into its tokens.
pub(crate) fn parse_scope(s: &str) -> BTreeSet<String> {
    s.split(' ')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}
