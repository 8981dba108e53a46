//! The device authorization grant (RFC 8628): user codes, the request, the polling decision and
//! the device authorization response.
//!
//! [`UserCode`] is the code a person types on another device: eight characters from a base-20
//! alphabet of consonants, so no word and no look-alike pair can appear (§6.1), shown as
//! `XXXX-XXXX` and matched case-insensitively with spaces and punctuation ignored; only its hash
//! is stored. [`authorize`] decides a device authorization request (§3.1) for a client that
//! registered the grant; [`poll`] decides what one token request with a device code gets (§3.5):
//! the tokens, `authorization_pending`, `slow_down` (and an interval 5 s longer from then on),
//! `access_denied`, `expired_token`, or `invalid_grant` for a code that was redeemed, revoked or
//! issued to another client. [`DeviceAuthorizationResponse`] is the §3.2 document, written by
//! the server and read by the CLI.
//!
//! No I/O, no clock, no RNG: the store calls [`poll`] inside the transaction that records the
//! poll, with the `now` the server passed, so concurrent polls are judged one after the other;
//! fresh user codes are made from caller-supplied random bytes.
//!
//! Not here: the verification page, its throttle and the grant created on approval
//! (keycard-server), the stored authorization and its single-use redemption (keycard-store).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, OAuthError};
use crate::form::Params;
use crate::policy::{self, Api, Client, Flow, GrantType, Resolved};
use crate::secret::{DeviceCode, SecretHash, kind};
use crate::time::UnixTime;
use crate::values::{Audience, ClientId, ScopeSet};

/// The grant type a device polls with (RFC 8628 §3.4, §7.2).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The polling interval when the server names none (RFC 8628 §3.2), in seconds.
pub const DEFAULT_INTERVAL: i64 = 5;

/// What a `slow_down` adds to the interval, for that request and all later ones (§3.5).
pub const SLOW_DOWN_STEP: i64 = 5;

/// The user-code alphabet (RFC 8628 §6.1's example): twenty consonants, no vowels (so no
/// words), no digits (so no `0`/`O` or `1`/`I` confusion), and no `Y`.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Characters in a user code: 20^8 ≈ 2^34.6 codes (§5.1: the throttle on entry does the rest).
pub const USER_CODE_LEN: usize = 8;

/// The longest text accepted as a typed user code, before normalisation.
const MAX_TYPED_LEN: usize = 64;

/// A user code (RFC 8628 §3.2, §6.1), normalised to its eight upper-case letters. It is short
/// and meant to be typed, so `Debug` hides it like a secret; [`UserCode::hash`] is what the
/// store keys by.
#[derive(Clone, PartialEq, Eq)]
pub struct UserCode(String);

impl UserCode {
    /// A fresh code from caller-supplied random bytes: four bytes per character, reduced modulo
    /// 20 (a bias below 2^-28 per character, which the throttle makes irrelevant).
    pub fn from_random(bytes: &[u8; 32]) -> UserCode {
        let code = bytes
            .chunks_exact(4)
            .map(|c| {
                let n = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                // `n % 20` is always a valid index into the 20-letter alphabet.
                char::from(USER_CODE_ALPHABET[(n % 20) as usize])
            })
            .collect();
        UserCode(code)
    }

    /// A code as a person typed it: letters in either case, with spaces, hyphens or any other
    /// punctuation anywhere. `None` when it cannot be a code of ours (a wrong length, a letter
    /// outside the alphabet, a character that is neither), so it is never looked up.
    pub fn parse(typed: &str) -> Option<UserCode> {
        if typed.len() > MAX_TYPED_LEN {
            return None;
        }
        let mut code = String::with_capacity(USER_CODE_LEN);
        for c in typed.chars() {
            if c.is_ascii_alphanumeric() {
                code.push(c.to_ascii_uppercase());
            } else if !c.is_alphanumeric() {
                // Spaces, hyphens, dots, and the dashes phones substitute for hyphens.
                continue;
            } else {
                return None;
            }
        }
        (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
            .then_some(UserCode(code))
    }

    /// The form shown to people: `XXXX-XXXX`.
    pub fn display(&self) -> String {
        let (a, b) = self.0.split_at(USER_CODE_LEN / 2);
        format!("{a}-{b}")
    }

    /// The SHA-256 of the normalised code, the only form the store sees.
    pub fn hash(&self) -> SecretHash<kind::UserCode> {
        SecretHash::digest(self.0.as_bytes())
    }
}

impl fmt::Debug for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserCode(..)")
    }
}

/// `verification_uri_complete` (§3.3.1): the verification page with the code filled in.
pub fn verification_uri_complete(verification_uri: &str, code: &UserCode) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("user_code", &code.display())
        .finish();
    format!("{verification_uri}?{q}")
}

/// A typed device authorization request (RFC 8628 §3.1): the scope and, as an extension shared
/// with the other grants, the API (`resource`, RFC 8707, or `audience`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAuthorizationRequest {
    pub scope: Option<ScopeSet>,
    pub target: Option<Audience>,
}

impl DeviceAuthorizationRequest {
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        Ok(DeviceAuthorizationRequest {
            scope: params.get("scope").map(ScopeSet::parse).transpose()?,
            target: policy::target(params.get("resource"), params.get("audience"))?,
        })
    }
}

/// Decides a device authorization request for an authenticated (or, if public, identified)
/// client: the client must have registered the grant (`unauthorized_client`, §3.1 and RFC 6749
/// §5.2), the scope and API are resolved as for a user's authorization request, and
/// `offline_access` needs a client that may refresh.
pub fn authorize(
    client: &Client,
    req: &DeviceAuthorizationRequest,
    api_lookup: &dyn Fn(&Audience) -> Option<Api>,
) -> Result<Resolved, OAuthError> {
    if !client.allows(GrantType::DeviceCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the device authorization grant",
        ));
    }
    let resolved = policy::resolve(
        Flow::User,
        client,
        req.scope.as_ref(),
        req.target.as_ref(),
        api_lookup,
    )?;
    if resolved.scope.contains("offline_access") && !client.allows(GrantType::RefreshToken) {
        return Err(OAuthError::invalid_scope(
            "this client may not receive refresh tokens",
        ));
    }
    Ok(resolved)
}

/// Where a device authorization stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceState {
    /// Waiting for the user.
    Pending,
    /// The user approved; the grant exists, the tokens are not yet issued.
    Approved,
    /// The user denied.
    Denied,
    /// The device received its tokens; the code is spent.
    Redeemed,
}

impl DeviceState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::Pending => "pending",
            DeviceState::Approved => "approved",
            DeviceState::Denied => "denied",
            DeviceState::Redeemed => "redeemed",
        }
    }

    pub fn parse(s: &str) -> Option<DeviceState> {
        match s {
            "pending" => Some(DeviceState::Pending),
            "approved" => Some(DeviceState::Approved),
            "denied" => Some(DeviceState::Denied),
            "redeemed" => Some(DeviceState::Redeemed),
            _ => None,
        }
    }
}

/// The stored facts about a device authorization that one poll is judged by.
#[derive(Clone, Copy, Debug)]
pub struct PollFacts<'a> {
    /// The client the device code was issued to.
    pub client_id: &'a ClientId,
    pub state: DeviceState,
    pub expires_at: UnixTime,
    /// The interval this device must keep, in seconds.
    pub interval: i64,
    pub last_poll_at: Option<UnixTime>,
    /// Whether the grant made on approval was revoked since (its user disabled, say).
    pub grant_revoked: bool,
}

/// What one poll gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// The user approved: issue the tokens (and redeem the code once).
    Approved,
    /// `authorization_pending`.
    Pending,
    /// `slow_down`: the device polled sooner than its interval allows.
    SlowDown,
    /// `access_denied`.
    Denied,
    /// `expired_token`.
    Expired,
    /// The code was redeemed already: a second redemption (RFC 6749 §4.1.2's rule for codes
    /// applies: the grant is revoked).
    AlreadyRedeemed,
    /// The grant made on approval was revoked before the device collected it.
    Revoked,
    /// The code was issued to another client.
    OtherClient,
}

impl Poll {
    /// The token endpoint's error for this outcome; `None` when tokens are due.
    pub fn error(self) -> Option<OAuthError> {
        let (code, description) = match self {
            Poll::Approved => return None,
            Poll::Pending => (ErrorCode::AuthorizationPending, None),
            Poll::SlowDown => (
                ErrorCode::SlowDown,
                Some("polling too fast; add 5 seconds to the interval"),
            ),
            Poll::Denied => (ErrorCode::AccessDenied, Some("the user denied the request")),
            Poll::Expired => (ErrorCode::ExpiredToken, Some("the device code has expired")),
            Poll::AlreadyRedeemed => (
                ErrorCode::InvalidGrant,
                Some("the device code was already used"),
            ),
            Poll::Revoked => (ErrorCode::InvalidGrant, Some("the grant was revoked")),
            Poll::OtherClient => (
                ErrorCode::InvalidGrant,
                Some("the device code was issued to another client"),
            ),
        };
        Some(match description {
            Some(d) => OAuthError::new(code, d),
            None => OAuthError::bare(code),
        })
    }
}

/// The poll state to write back: when this poll happened and the interval from now on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollRecord {
    pub at: UnixTime,
    pub interval: i64,
}

/// A poll's outcome and what to record of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollDecision {
    pub outcome: Poll,
    /// `Some` for polls of a pending authorization, which the interval governs.
    pub record: Option<PollRecord>,
}

/// Decides one poll (RFC 8628 §3.4, §3.5).
///
/// Another client's code changes nothing. A spent code is reported before its expiry, so a
/// late replay still counts as a replay. While pending, a poll sooner than `interval` after the
/// previous one is `slow_down` and the interval grows by [`SLOW_DOWN_STEP`]; every pending poll
/// is recorded, so a device that keeps polling too fast keeps being slowed. The first poll is
/// never too soon. An approved code is answered at any pace: it is collected once.
pub fn poll(facts: &PollFacts<'_>, client_id: &ClientId, now: UnixTime) -> PollDecision {
    let done = |outcome| PollDecision {
        outcome,
        record: None,
    };
    if facts.client_id != client_id {
        return done(Poll::OtherClient);
    }
    if facts.state == DeviceState::Redeemed {
        return done(Poll::AlreadyRedeemed);
    }
    if now >= facts.expires_at {
        return done(Poll::Expired);
    }
    match facts.state {
        DeviceState::Approved if facts.grant_revoked => done(Poll::Revoked),
        DeviceState::Approved => done(Poll::Approved),
        DeviceState::Denied => done(Poll::Denied),
        DeviceState::Redeemed => done(Poll::AlreadyRedeemed),
        DeviceState::Pending => {
            let too_soon = facts
                .last_poll_at
                .is_some_and(|last| now.since(last) < facts.interval);
            let (outcome, interval) = if too_soon {
                (
                    Poll::SlowDown,
                    facts.interval.saturating_add(SLOW_DOWN_STEP),
                )
            } else {
                (Poll::Pending, facts.interval)
            };
            PollDecision {
                outcome,
                record: Some(PollRecord { at: now, interval }),
            }
        }
    }
}

fn default_interval() -> i64 {
    DEFAULT_INTERVAL
}

/// The device authorization response (RFC 8628 §3.2). `Debug` hides the device code.
/// `user_code` is kept as the provider sent it: other providers use other formats.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceAuthorizationResponse {
    #[serde(with = "crate::secret::wire")]
    pub device_code: DeviceCode,
    pub user_code: String,
    pub verification_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri_complete: Option<String>,
    pub expires_in: i64,
    /// OPTIONAL on the wire; absent means [`DEFAULT_INTERVAL`].
    #[serde(default = "default_interval")]
    pub interval: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc8628_s6_1_user_codes_are_eight_consonants_shown_in_two_halves() {
        let c = UserCode::from_random(&[0u8; 32]);
        assert_eq!(c.display(), "BBBB-BBBB");
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i * 37 % 256) as u8;
        }
        let d = UserCode::from_random(&bytes).display();
        assert_eq!(d.len(), 9);
        assert_eq!(&d[4..5], "-");
        assert!(
            d.bytes()
                .filter(|b| *b != b'-')
                .all(|b| USER_CODE_ALPHABET.contains(&b)),
            "{d}"
        );
        assert_eq!(format!("{c:?}"), "UserCode(..)");
        // No vowels, digits or Y: nothing spells a word or looks like another character.
        for banned in b"AEIOUY0123456789" {
            assert!(!USER_CODE_ALPHABET.contains(banned));
        }
    }

    #[test]
    fn rfc8628_s6_1_user_codes_match_ignoring_case_spaces_and_punctuation() {
        let want = UserCode::parse("WDJB-MJHT").unwrap();
        for typed in [
            "WDJBMJHT",
            "wdjb-mjht",
            " wdjb mjht ",
            "W.D.J.B-M.J.H.T",
            "wdjb\u{2013}mjht",
            "Wd Jb Mj Ht",
        ] {
            assert_eq!(UserCode::parse(typed).as_ref(), Some(&want), "{typed:?}");
            assert!(UserCode::parse(typed).unwrap().hash().ct_eq(&want.hash()));
        }
        for bad in [
            "",
            "WDJB-MJH",
            "WDJB-MJHTB",
            "WDJA-MJHT",
            "WDJB-MJH0",
            "WDJB-MJHÉ",
            "ＷDJB-MJHT",
            &"-".repeat(65),
        ] {
            assert_eq!(UserCode::parse(bad), None, "{bad:?}");
        }
        assert_ne!(
            UserCode::parse("WDJBMJHT").unwrap().hash(),
            UserCode::parse("WDJBMJHV").unwrap().hash()
        );
        assert_eq!(
            verification_uri_complete("https://id.example.com/device", &want),
            "https://id.example.com/device?user_code=WDJB-MJHT"
        );
    }

    /// One row: the stored state, the client polling, the time, the last poll; then the
    /// outcome and what is recorded.
    struct Case {
        name: &'static str,
        state: DeviceState,
        client: &'static str,
        now: i64,
        last: Option<i64>,
        revoked: bool,
        outcome: Poll,
        record: Option<(i64, i64)>,
    }

    #[test]
    fn rfc8628_s3_5_poll_table() {
        let row = |name, state, now, last, outcome, record| Case {
            name,
            state,
            client: "cli",
            now,
            last,
            revoked: false,
            outcome,
            record,
        };
        use DeviceState::*;
        let cases = [
            row(
                "first poll",
                Pending,
                100,
                None,
                Poll::Pending,
                Some((100, 5)),
            ),
            row(
                "on time",
                Pending,
                105,
                Some(100),
                Poll::Pending,
                Some((105, 5)),
            ),
            row(
                "late",
                Pending,
                160,
                Some(100),
                Poll::Pending,
                Some((160, 5)),
            ),
            row(
                "too soon",
                Pending,
                104,
                Some(100),
                Poll::SlowDown,
                Some((104, 10)),
            ),
            row(
                "same second",
                Pending,
                100,
                Some(100),
                Poll::SlowDown,
                Some((100, 10)),
            ),
            row(
                "clock went back",
                Pending,
                90,
                Some(100),
                Poll::SlowDown,
                Some((90, 10)),
            ),
            row("approved", Approved, 101, Some(100), Poll::Approved, None),
            row("denied", Denied, 110, Some(100), Poll::Denied, None),
            row(
                "expired pending",
                Pending,
                700,
                Some(100),
                Poll::Expired,
                None,
            ),
            row("expired approved", Approved, 600, None, Poll::Expired, None),
            row("expired denied", Denied, 600, None, Poll::Expired, None),
            row("spent", Redeemed, 110, None, Poll::AlreadyRedeemed, None),
            row(
                "spent and expired",
                Redeemed,
                900,
                None,
                Poll::AlreadyRedeemed,
                None,
            ),
            Case {
                revoked: true,
                ..row("revoked", Approved, 110, None, Poll::Revoked, None)
            },
            Case {
                client: "other",
                ..row(
                    "other client",
                    Pending,
                    104,
                    Some(100),
                    Poll::OtherClient,
                    None,
                )
            },
        ];
        let owner = ClientId::parse("cli").unwrap();
        for c in cases {
            let facts = PollFacts {
                client_id: &owner,
                state: c.state,
                expires_at: UnixTime(600),
                interval: 5,
                last_poll_at: c.last.map(UnixTime),
                grant_revoked: c.revoked,
            };
            let d = poll(&facts, &ClientId::parse(c.client).unwrap(), UnixTime(c.now));
            assert_eq!(d.outcome, c.outcome, "{}", c.name);
            assert_eq!(
                d.record.map(|r| (r.at.secs(), r.interval)),
                c.record,
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn rfc8628_s3_5_slow_down_adds_five_seconds_for_all_later_polls() {
        let owner = ClientId::parse("cli").unwrap();
        let mut facts = PollFacts {
            client_id: &owner,
            state: DeviceState::Pending,
            expires_at: UnixTime(1000),
            interval: 5,
            last_poll_at: Some(UnixTime(100)),
            grant_revoked: false,
        };
        let mut step = |now: i64| {
            let d = poll(&facts, &owner, UnixTime(now));
            let r = d.record.unwrap();
            facts.last_poll_at = Some(r.at);
            facts.interval = r.interval;
            (d.outcome, r.interval)
        };
        assert_eq!(step(102), (Poll::SlowDown, 10));
        // Five seconds is no longer enough: the new interval holds.
        assert_eq!(step(107), (Poll::SlowDown, 15));
        assert_eq!(step(122), (Poll::Pending, 15));
    }

    #[test]
    fn rfc8628_s3_5_outcomes_carry_the_registered_codes() {
        let code = |p: Poll| p.error().map(|e| e.code);
        assert_eq!(code(Poll::Approved), None);
        assert_eq!(code(Poll::Pending), Some(ErrorCode::AuthorizationPending));
        assert_eq!(code(Poll::SlowDown), Some(ErrorCode::SlowDown));
        assert_eq!(code(Poll::Denied), Some(ErrorCode::AccessDenied));
        assert_eq!(code(Poll::Expired), Some(ErrorCode::ExpiredToken));
        for p in [Poll::AlreadyRedeemed, Poll::Revoked, Poll::OtherClient] {
            assert_eq!(code(p), Some(ErrorCode::InvalidGrant));
        }
    }

    #[test]
    fn rfc8628_s3_1_only_clients_registered_for_the_grant() {
        let mut c = Client {
            id: ClientId::parse("cli").unwrap(),
            name: "CLI".into(),
            secret_hash: None,
            redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: ScopeSet::parse("openid offline_access").unwrap(),
            audiences: vec![],
            first_party: false,
            resource_servers: vec![],
            feed: false,
            post_logout_redirect_uris: vec![],
            backchannel_logout: None,
        };
        let none = |_: &Audience| None;
        let req = |s: &str| DeviceAuthorizationRequest {
            scope: Some(ScopeSet::parse(s).unwrap()),
            target: None,
        };
        assert_eq!(
            authorize(&c, &req("openid"), &none).unwrap_err().code,
            ErrorCode::UnauthorizedClient
        );
        c.grant_types.push(GrantType::DeviceCode);
        let ok = authorize(&c, &req("openid offline_access"), &none).unwrap();
        assert_eq!(ok.scope.to_wire(), "offline_access openid");
        assert_eq!(
            authorize(&c, &req("openid admin"), &none).unwrap_err().code,
            ErrorCode::InvalidScope
        );
        c.grant_types.retain(|g| *g != GrantType::RefreshToken);
        assert_eq!(
            authorize(&c, &req("openid offline_access"), &none)
                .unwrap_err()
                .code,
            ErrorCode::InvalidScope
        );
        let p = Params::parse(b"scope=openid&resource=https%3A%2F%2Fapi.example.com").unwrap();
        let r = DeviceAuthorizationRequest::parse(&p).unwrap();
        assert_eq!(
            r.target.as_ref().map(Audience::as_str),
            Some("https://api.example.com")
        );
        let p = Params::parse(b"resource=not%20a%20uri").unwrap();
        assert_eq!(
            DeviceAuthorizationRequest::parse(&p).unwrap_err().code,
            ErrorCode::InvalidTarget
        );
    }

    #[test]
    fn rfc8628_s3_2_response_round_trips_and_defaults_the_interval() {
        let json = r#"{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"https://id/device","expires_in":600}"#;
        let r: DeviceAuthorizationResponse = serde_json::from_str(json).unwrap();
        assert_eq!(r.interval, DEFAULT_INTERVAL);
        assert_eq!(r.device_code.secret(), "dc");
        assert!(r.verification_uri_complete.is_none());
        assert!(!format!("{r:?}").contains("\"dc\""));
        let out = serde_json::to_value(&r).unwrap();
        assert_eq!(out["device_code"], "dc");
        assert_eq!(out["interval"], 5);
        assert!(out.get("verification_uri_complete").is_none());
    }

    proptest! {
        #[test]
        fn user_code_parse_never_panics_and_round_trips(s in "\\PC{0,80}") {
            if let Some(c) = UserCode::parse(&s) {
                prop_assert_eq!(UserCode::parse(&c.display()), Some(c));
            }
        }

        #[test]
        fn user_codes_from_any_bytes_parse_back(bytes in proptest::array::uniform32(any::<u8>())) {
            let c = UserCode::from_random(&bytes);
            prop_assert_eq!(UserCode::parse(&c.display().to_lowercase()), Some(c));
        }
    }
}
