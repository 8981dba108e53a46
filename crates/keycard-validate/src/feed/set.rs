//! The revocation feed's events and the in-memory set they build (Keycard's revocation feed,
//! `notes/feed-spec.md`: event JSON, matching rules, `until`).
//!
//! [`RevocationEvent::parse`] reads one event object; [`RevocationSet::apply`] records it;
//! [`RevocationSet::is_revoked`] says whether an RFC 9068 access token matches a recorded
//! event: `grant` through the grant id inside its `jti` (`keycard_protocol::claims::jti_grant`),
//! `jti`, `sub` (never a machine token, whose subject is its client), `client` by `client_id`,
//! each only when the token's `iat <= at`, and `kid` by the JWS header's key id whatever the
//! token's `iat` (a leaked key can sign any `iat`). `sid`, `jwks` and unknown kinds never match
//! a token.
//!
//! Invariants: entries are forgotten after their `until` ([`RevocationSet::prune`]); the set
//! holds at most its capacity, and once it had to drop a live entry to stay there it says so
//! ([`RevocationSet::overflowed`]) until the next prune finds room, so a caller that must not
//! miss a revocation can stop trusting it. No I/O, no clock (`now` is a parameter).
//!
//! Not here: the connection (`feed`), the event-stream framing (`feed::sse`).

use std::collections::HashMap;

use keycard_protocol::UnixTime;
use keycard_protocol::claims::jti_grant;
use serde_json::Value;

use crate::access_token::AccessToken;

/// What an event revokes (the feed's `kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// A grant: every token whose `jti` carries this grant id.
    Grant,
    /// One access token by `jti`.
    Jti,
    /// A user (`sub`): disabled, removed, or whose password changed.
    Sub,
    /// A client (`client_id`), removed.
    Client,
    /// A browser session (`sid`), ended by logout; tokens do not carry it.
    Sid,
    /// A signing key revoked in an emergency: tokens whose header `kid` is this key.
    Kid,
    /// A newly published key: matches nothing, the JWKS should be fetched now.
    Jwks,
    /// A kind this version does not know: ignored, but it still advances the sequence.
    Unknown,
}

impl EventKind {
    fn parse(s: &str) -> EventKind {
        match s {
            "grant" => EventKind::Grant,
            "jti" => EventKind::Jti,
            "sub" => EventKind::Sub,
            "client" => EventKind::Client,
            "sid" => EventKind::Sid,
            "kid" => EventKind::Kid,
            "jwks" => EventKind::Jwks,
            _ => EventKind::Unknown,
        }
    }

    /// Whether an event of this kind is kept in the set (it can match a token or a session).
    fn is_kept(self) -> bool {
        match self {
            EventKind::Grant
            | EventKind::Jti
            | EventKind::Sub
            | EventKind::Client
            | EventKind::Sid
            | EventKind::Kid => true,
            EventKind::Jwks | EventKind::Unknown => false,
        }
    }
}

/// One revocation event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationEvent {
    /// The event's place in the log: strictly increasing, gap-free.
    pub seq: u64,
    /// When the revocation happened.
    pub at: UnixTime,
    /// After this the event no longer matters.
    pub until: UnixTime,
    /// What it revokes.
    pub kind: EventKind,
    /// The grant id, jti, subject, client id, session id or key id.
    pub value: String,
}

/// The largest `value` accepted; longer values are refused with the event.
const MAX_VALUE: usize = 1024;

impl RevocationEvent {
    /// Reads one event object, `None` when it is not one (missing or mistyped members).
    pub fn parse(data: &[u8]) -> Option<RevocationEvent> {
        let v: Value = serde_json::from_slice(data).ok()?;
        RevocationEvent::from_value(&v)
    }

    pub(crate) fn from_value(v: &Value) -> Option<RevocationEvent> {
        let time = |name: &str| v.get(name)?.as_i64().filter(|t| *t >= 0).map(UnixTime);
        let value = v.get("value")?.as_str()?;
        if value.len() > MAX_VALUE {
            return None;
        }
        Some(RevocationEvent {
            seq: v.get("seq")?.as_u64()?,
            at: time("at")?,
            until: time("until")?,
            kind: EventKind::parse(v.get("kind")?.as_str()?),
            value: value.to_owned(),
        })
    }
}

/// The revoked values by kind, each with its `(at, until)`.
#[derive(Debug)]
pub struct RevocationSet {
    entries: HashMap<(EventKind, String), (UnixTime, UnixTime)>,
    capacity: usize,
    overflowed: bool,
}

impl RevocationSet {
    /// An empty set that holds at most `capacity` entries.
    pub fn new(capacity: usize) -> RevocationSet {
        RevocationSet {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            overflowed: false,
        }
    }

    /// Records an event; answers whether it changed what the set matches. Expired events and
    /// kinds that match nothing are not kept.
    pub fn apply(&mut self, e: &RevocationEvent, now: UnixTime) -> bool {
        if !e.kind.is_kept() || e.until <= now {
            return false;
        }
        let key = (e.kind, e.value.clone());
        if let Some((at, until)) = self.entries.get_mut(&key) {
            // The latest revocation time covers every earlier one.
            *at = (*at).max(e.at);
            *until = (*until).max(e.until);
            return true;
        }
        if self.entries.len() >= self.capacity {
            self.prune(now);
        }
        if self.entries.len() >= self.capacity {
            // Drop the entry that would expire first: it matters for the shortest time. The
            // set is no longer complete, and says so.
            let first = self
                .entries
                .iter()
                .min_by_key(|(_, (_, until))| *until)
                .map(|(k, _)| k.clone());
            if let Some(k) = first {
                self.entries.remove(&k);
            }
            self.overflowed = true;
        }
        self.entries.insert(key, (e.at, e.until));
        true
    }

    /// Forgets every entry whose `until` has passed.
    pub fn prune(&mut self, now: UnixTime) {
        self.entries.retain(|_, (_, until)| now < *until);
        if self.entries.len() < self.capacity {
            self.overflowed = false;
        }
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a live entry had to be dropped to stay within the capacity.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    fn matches(&self, kind: EventKind, value: &str, iat: Option<UnixTime>, now: UnixTime) -> bool {
        // The lookup allocates one key; the set is small next to a signature check.
        match self.entries.get(&(kind, value.to_owned())) {
            Some((at, until)) => now < *until && iat.is_none_or(|iat| iat <= *at),
            None => false,
        }
    }

    /// Whether the key `kid` was revoked.
    pub fn is_kid_revoked(&self, kid: &str, now: UnixTime) -> bool {
        !self.entries.is_empty() && self.matches(EventKind::Kid, kid, None, now)
    }

    /// Whether the session `sid` was ended.
    pub fn is_session_ended(&self, sid: &str, now: UnixTime) -> bool {
        !self.entries.is_empty() && self.matches(EventKind::Sid, sid, None, now)
    }

    /// Whether a recorded event revokes this token (see the module documentation).
    pub fn is_revoked(&self, token: &AccessToken, header_kid: Option<&str>, now: UnixTime) -> bool {
        if self.entries.is_empty() {
            return false;
        }
        let iat = Some(token.iat());
        if header_kid.is_some_and(|kid| self.is_kid_revoked(kid, now)) {
            return true;
        }
        if self.matches(EventKind::Jti, token.jti().as_str(), iat, now)
            || self.matches(EventKind::Client, token.client_id().as_str(), iat, now)
        {
            return true;
        }
        if !token.is_machine() && self.matches(EventKind::Sub, token.sub().as_str(), iat, now) {
            return true;
        }
        jti_grant(token.jti())
            .is_some_and(|grant| self.matches(EventKind::Grant, grant.as_str(), iat, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_token::tests::{NOW, good};
    use keycard_protocol::Issuer;

    fn token(claims: serde_json::Value) -> AccessToken {
        let map = claims.as_object().unwrap().clone();
        let iss = Issuer::from_wire(map["iss"].as_str().unwrap()).unwrap();
        crate::access_token::check_claims(map, &iss, None, UnixTime(NOW), 0).unwrap()
    }

    fn event(seq: u64, kind: &str, value: &str, at: i64) -> RevocationEvent {
        let v = serde_json::json!({"seq": seq, "at": at, "until": NOW + 3600, "kind": kind,
            "value": value});
        RevocationEvent::parse(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn feed_spec_each_kind_matches_per_its_rule() {
        let mut claims = good();
        claims["jti"] = "0123456789abcdef0123456789abcdef.r4nd0m".into();
        let t = token(claims.clone());
        let now = UnixTime(NOW);
        let cases = [
            ("grant", "0123456789abcdef0123456789abcdef", true),
            ("grant", "ffffffffffffffffffffffffffffffff", false),
            ("jti", "0123456789abcdef0123456789abcdef.r4nd0m", true),
            ("sub", t.sub().as_str(), true),
            ("client", t.client_id().as_str(), true),
            ("sid", "anything", false),
            ("jwks", "k1", false),
            ("mystery", t.sub().as_str(), false),
        ];
        for (kind, value, revoked) in cases {
            let mut set = RevocationSet::new(16);
            set.apply(&event(1, kind, value, NOW), now);
            assert_eq!(
                set.is_revoked(&t, Some("k9"), now),
                revoked,
                "{kind} {value}"
            );
            // A token issued after the revocation is not revoked by it.
            let mut later = RevocationSet::new(16);
            later.apply(&event(1, kind, value, NOW - 1), now);
            assert!(!later.is_revoked(&t, Some("k9"), now), "{kind} after at");
        }
        let mut set = RevocationSet::new(16);
        set.apply(&event(1, "kid", "k9", NOW - 100), now);
        assert!(set.is_revoked(&t, Some("k9"), now), "kid ignores iat");
        assert!(!set.is_revoked(&t, Some("k1"), now));
        assert!(!set.is_revoked(&t, None, now));
    }

    #[test]
    fn feed_spec_sub_never_matches_a_machine_token() {
        let mut claims = good();
        claims["sub"] = claims["client_id"].clone();
        let t = token(claims);
        let mut set = RevocationSet::new(16);
        set.apply(&event(1, "sub", t.sub().as_str(), NOW), UnixTime(NOW));
        assert!(!set.is_revoked(&t, None, UnixTime(NOW)));
    }

    #[test]
    fn entries_are_forgotten_after_until_and_bounded() {
        let mut set = RevocationSet::new(2);
        let now = UnixTime(NOW);
        let mut e = event(1, "jti", "a", NOW);
        e.until = UnixTime(NOW + 10);
        assert!(set.apply(&e, now));
        set.apply(&event(2, "jti", "b", NOW), now);
        assert!(!set.overflowed());
        set.apply(&event(3, "jti", "c", NOW), now);
        assert!(set.overflowed(), "a live entry was dropped");
        assert_eq!(set.len(), 2);
        assert!(
            !set.matches(EventKind::Jti, "a", None, now),
            "the soonest to expire went"
        );
        set.prune(UnixTime(NOW + 7200));
        assert!(set.is_empty() && !set.overflowed());
        let mut expired = event(4, "jti", "d", NOW);
        expired.until = now;
        assert!(!set.apply(&expired, now));
    }

    #[test]
    fn malformed_events_are_refused() {
        for bad in [
            "{}",
            r#"{"seq":-1,"at":1,"until":2,"kind":"jti","value":"x"}"#,
            r#"{"seq":1,"at":"1","until":2,"kind":"jti","value":"x"}"#,
            r#"{"seq":1,"at":1,"until":2,"kind":7,"value":"x"}"#,
            r#"{"seq":1,"at":1,"until":2,"kind":"jti"}"#,
            "[1]",
            "nope",
        ] {
            assert!(RevocationEvent::parse(bad.as_bytes()).is_none(), "{bad}");
        }
        let e = RevocationEvent::parse(br#"{"seq":9,"at":1,"until":2,"kind":"new","value":"x"}"#)
            .unwrap();
        assert_eq!((e.seq, e.kind), (9, EventKind::Unknown));
    }
}
