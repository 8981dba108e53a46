//! The revocation feed's events (a Keycard extension; the wire format is in ARCHITECTURE.md,
//! "Revocation feed"): what was revoked, when, and until when it matters.
//!
//! [`RevocationEvent`] is written by the authorization server and read by every consumer (the
//! validation library's subscriber, the gateway, the BFF). [`RevocationEvent::revokes`] is the
//! one matching rule: a token is revoked by an event that names it (its grant, `jti`, subject,
//! client or signing key) and happened at or after the token was issued, so a user re-enabled
//! later, or a client re-created under the same id, gets working new tokens.
//!
//! No I/O here; consumers keep their own sets.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::claims::jti_grant;
use crate::time::UnixTime;
use crate::values::{ClientId, Jti, Subject};

/// What an event names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RevocationKind {
    /// A grant: every token whose `jti` names it (see [`crate::claims::grant_jti`]).
    Grant,
    /// One access token by `jti`.
    Jti,
    /// A user (disabled, removed, or password changed): their tokens.
    Sub,
    /// A client (removed): the tokens issued to it.
    Client,
    /// A browser session ended (OIDC `sid`); tokens do not carry it, BFFs do.
    Sid,
    /// A signing key revoked in an emergency: the tokens it signed.
    Kid,
    /// A key newly published: consumers refetch the JWKS; matches no token.
    Jwks,
    /// A kind this version does not know; consumers skip it.
    Other(String),
}

impl RevocationKind {
    pub fn as_str(&self) -> &str {
        match self {
            RevocationKind::Grant => "grant",
            RevocationKind::Jti => "jti",
            RevocationKind::Sub => "sub",
            RevocationKind::Client => "client",
            RevocationKind::Sid => "sid",
            RevocationKind::Kid => "kid",
            RevocationKind::Jwks => "jwks",
            RevocationKind::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> RevocationKind {
        match s {
            "grant" => RevocationKind::Grant,
            "jti" => RevocationKind::Jti,
            "sub" => RevocationKind::Sub,
            "client" => RevocationKind::Client,
            "sid" => RevocationKind::Sid,
            "kid" => RevocationKind::Kid,
            "jwks" => RevocationKind::Jwks,
            other => RevocationKind::Other(other.to_owned()),
        }
    }
}

impl Serialize for RevocationKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RevocationKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(RevocationKind::parse(&String::deserialize(d)?))
    }
}

/// One revocation, in the order of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationEvent {
    /// Strictly increasing and gap-free in one store.
    pub seq: u64,
    /// When it was revoked.
    pub at: UnixTime,
    /// After this, no token it could match is still valid: it may be forgotten.
    pub until: UnixTime,
    pub kind: RevocationKind,
    pub value: String,
}

/// The token facts an event is matched against.
#[derive(Clone, Copy, Debug)]
pub struct TokenFacts<'a> {
    pub jti: &'a Jti,
    pub sub: &'a Subject,
    pub client_id: &'a ClientId,
    pub iat: UnixTime,
    /// The `kid` of the token's JWS header, when the consumer knows it.
    pub kid: Option<&'a str>,
}

/// The largest `value` a consumer accepts; an event with a longer one is refused.
pub const MAX_VALUE: usize = 1024;

impl RevocationEvent {
    /// Reads one event object as a consumer receives it, `None` when it is not one (missing or
    /// mistyped members, a negative time, an oversized value).
    pub fn from_json(data: &[u8]) -> Option<RevocationEvent> {
        Self::checked(serde_json::from_slice(data).ok()?)
    }

    /// [`RevocationEvent::from_json`] for an already-parsed JSON value (a snapshot page's).
    pub fn from_value(v: &serde_json::Value) -> Option<RevocationEvent> {
        Self::checked(RevocationEvent::deserialize(v).ok()?)
    }

    fn checked(e: RevocationEvent) -> Option<RevocationEvent> {
        (e.at.0 >= 0 && e.until.0 >= 0 && e.value.len() <= MAX_VALUE).then_some(e)
    }

    /// Whether an event of this kind can ever match a token or a session (consumers keep only
    /// those).
    pub fn is_kept(&self) -> bool {
        !matches!(self.kind, RevocationKind::Jwks | RevocationKind::Other(_))
    }

    /// Whether this event revokes a token with these facts. A revoked key revokes every token
    /// it signed whatever its `iat` (a leaked key can sign any `iat`); every other kind only
    /// tokens issued at or before the revocation.
    pub fn revokes(&self, t: &TokenFacts<'_>) -> bool {
        let v = self.value.as_str();
        if self.kind == RevocationKind::Kid {
            return t.kid == Some(v);
        }
        if t.iat > self.at {
            return false;
        }
        match self.kind {
            RevocationKind::Grant => jti_grant(t.jti).is_some_and(|g| g.as_str() == v),
            RevocationKind::Jti => t.jti.as_str() == v,
            // A machine token's subject is its client; a user event never reaches it.
            RevocationKind::Sub => t.sub.as_str() == v && !t.sub.is_client(t.client_id),
            RevocationKind::Client => t.client_id.as_str() == v,
            RevocationKind::Kid => t.kid == Some(v),
            RevocationKind::Sid | RevocationKind::Jwks | RevocationKind::Other(_) => false,
        }
    }
}

/// A page of the log (`GET /revocations?since=N`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationPage {
    pub events: Vec<RevocationEvent>,
    /// The highest sequence number in the log when answered; resume after it.
    pub last: u64,
    /// More events follow: ask again with `since` = the last event's `seq`.
    pub more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, value: &str, at: i64) -> RevocationEvent {
        RevocationEvent {
            seq: 1,
            at: UnixTime(at),
            until: UnixTime(at + 3600),
            kind: RevocationKind::parse(kind),
            value: value.into(),
        }
    }

    #[test]
    fn revocation_events_match_by_kind_and_only_older_tokens() {
        let jti = Jti::parse("g1.r1").unwrap();
        let sub = Subject::parse("u1").unwrap();
        let client = ClientId::parse("web").unwrap();
        let t = TokenFacts {
            jti: &jti,
            sub: &sub,
            client_id: &client,
            iat: UnixTime(100),
            kid: Some("k1"),
        };
        let cases = [
            ("grant", "g1", 100, true),
            ("grant", "g2", 200, false),
            ("jti", "g1.r1", 200, true),
            ("sub", "u1", 150, true),
            ("sub", "u1", 99, false),
            ("client", "web", 100, true),
            ("kid", "k1", 101, true),
            ("kid", "k1", 50, true),
            ("kid", "k2", 101, false),
            ("sid", "s1", 200, false),
            ("jwks", "k1", 200, false),
            ("future-kind", "g1", 200, false),
        ];
        for (kind, value, at, want) in cases {
            assert_eq!(
                event(kind, value, at).revokes(&t),
                want,
                "{kind} {value} {at}"
            );
        }
        // A machine token (sub = client) is not reached by a user event of the same name.
        let machine_sub = Subject::parse("web").unwrap();
        let m = TokenFacts {
            sub: &machine_sub,
            ..t
        };
        assert!(!event("sub", "web", 200).revokes(&m));
        assert!(event("client", "web", 200).revokes(&m));
    }

    #[test]
    fn revocation_event_wire_form_keeps_unknown_kinds() {
        let e: RevocationEvent = serde_json::from_str(
            r#"{"seq":7,"at":1,"until":2,"kind":"something-new","value":"x"}"#,
        )
        .unwrap();
        assert_eq!(e.kind, RevocationKind::Other("something-new".into()));
        assert_eq!(
            serde_json::to_string(&event("grant", "g", 5)).unwrap(),
            r#"{"seq":1,"at":5,"until":3605,"kind":"grant","value":"g"}"#
        );
    }
}
