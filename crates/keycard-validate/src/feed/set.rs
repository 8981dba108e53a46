//! The revocation feed's events and the in-memory set they build (Keycard's revocation feed,
//! ARCHITECTURE.md "Revocation feed": event JSON, matching rules, `until`).
//!
//! The events and their one matching rule are `keycard_protocol::revocation`'s (the server
//! writes them); [`RevocationEvent::from_json`] reads one; [`RevocationSet::apply`] records it;
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
pub use keycard_protocol::revocation::{RevocationEvent, RevocationKind, TokenFacts};

use crate::access_token::AccessToken;

/// The kinds the set keeps, as indexes of its maps.
const KEPT: [RevocationKind; 6] = [
    RevocationKind::Grant,
    RevocationKind::Jti,
    RevocationKind::Sub,
    RevocationKind::Client,
    RevocationKind::Sid,
    RevocationKind::Kid,
];

fn slot(kind: &RevocationKind) -> Option<usize> {
    KEPT.iter().position(|k| k == kind)
}

/// The revoked values by kind, each with its `(at, until)`: one map per kind, so a lookup
/// borrows the token's string instead of building a key.
#[derive(Debug)]
pub struct RevocationSet {
    entries: [HashMap<String, (UnixTime, UnixTime)>; 6],
    capacity: usize,
    overflowed: bool,
}

impl RevocationSet {
    /// An empty set that holds at most `capacity` entries.
    pub fn new(capacity: usize) -> RevocationSet {
        RevocationSet {
            entries: Default::default(),
            capacity: capacity.max(1),
            overflowed: false,
        }
    }

    /// Records an event; answers whether it changed what the set matches. Expired events and
    /// kinds that match nothing are not kept.
    pub fn apply(&mut self, e: &RevocationEvent, now: UnixTime) -> bool {
        let Some(i) = slot(&e.kind) else {
            return false;
        };
        if e.until <= now {
            return false;
        }
        if let Some((at, until)) = self.entries[i].get_mut(&e.value) {
            // The latest revocation time covers every earlier one.
            *at = (*at).max(e.at);
            *until = (*until).max(e.until);
            return true;
        }
        if self.len() >= self.capacity {
            self.prune(now);
        }
        if self.len() >= self.capacity {
            // Drop the entry that would expire first: it matters for the shortest time. The
            // set is no longer complete, and says so.
            let first = self
                .entries
                .iter()
                .enumerate()
                .flat_map(|(k, m)| m.iter().map(move |(v, (_, until))| (*until, k, v)))
                .min()
                .map(|(_, k, v)| (k, v.clone()));
            if let Some((k, v)) = first {
                self.entries[k].remove(&v);
            }
            self.overflowed = true;
        }
        self.entries[i].insert(e.value.clone(), (e.at, e.until));
        true
    }

    /// Forgets every entry whose `until` has passed.
    pub fn prune(&mut self, now: UnixTime) {
        for m in &mut self.entries {
            m.retain(|_, (_, until)| now < *until);
        }
        if self.len() < self.capacity {
            self.overflowed = false;
        }
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.entries.iter().map(HashMap::len).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.iter().all(HashMap::is_empty)
    }

    /// Whether a live entry had to be dropped to stay within the capacity.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// The entry for `value` of `kind` that is still live at `now`, as `at`.
    fn live(&self, kind: &RevocationKind, value: &str, now: UnixTime) -> Option<UnixTime> {
        let (at, until) = self.entries[slot(kind)?].get(value)?;
        (now < *until).then_some(*at)
    }

    /// Whether the key `kid` was revoked.
    pub fn is_kid_revoked(&self, kid: &str, now: UnixTime) -> bool {
        self.live(&RevocationKind::Kid, kid, now).is_some()
    }

    /// Whether the session `sid` was ended.
    pub fn is_session_ended(&self, sid: &str, now: UnixTime) -> bool {
        self.live(&RevocationKind::Sid, sid, now).is_some()
    }

    /// Whether a recorded event revokes a token with these facts: the same answer as
    /// [`RevocationEvent::revokes`] over every recorded event, by lookups.
    pub fn revokes(&self, t: &TokenFacts<'_>, now: UnixTime) -> bool {
        if self.is_empty() {
            return false;
        }
        if t.kid.is_some_and(|kid| self.is_kid_revoked(kid, now)) {
            return true;
        }
        let before = |kind: &RevocationKind, value: &str| {
            self.live(kind, value, now).is_some_and(|at| t.iat <= at)
        };
        before(&RevocationKind::Jti, t.jti.as_str())
            || before(&RevocationKind::Client, t.client_id.as_str())
            || (!t.sub.is_client(t.client_id) && before(&RevocationKind::Sub, t.sub.as_str()))
            || jti_grant(t.jti).is_some_and(|g| before(&RevocationKind::Grant, g.as_str()))
    }

    /// Whether a recorded event revokes this verified token (see the module documentation).
    pub fn is_revoked(&self, token: &AccessToken, header_kid: Option<&str>, now: UnixTime) -> bool {
        self.revokes(
            &TokenFacts {
                jti: token.jti(),
                sub: token.sub(),
                client_id: token.client_id(),
                iat: token.iat(),
                kid: header_kid,
            },
            now,
        )
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
        RevocationEvent::from_json(v.to_string().as_bytes()).unwrap()
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
            set.live(&RevocationKind::Jti, "a", now).is_none(),
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
            assert!(
                RevocationEvent::from_json(bad.as_bytes()).is_none(),
                "{bad}"
            );
        }
        let long = format!(
            r#"{{"seq":1,"at":1,"until":2,"kind":"jti","value":"{}"}}"#,
            "x".repeat(1025)
        );
        assert!(RevocationEvent::from_json(long.as_bytes()).is_none());
        let e =
            RevocationEvent::from_json(br#"{"seq":9,"at":1,"until":2,"kind":"new","value":"x"}"#)
                .unwrap();
        assert_eq!((e.seq, e.kind), (9, RevocationKind::Other("new".into())));
    }
}
