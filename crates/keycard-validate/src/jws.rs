//! The compact JWS core (RFC 7515 §7.1; RFC 8725 §3): split and decode a token, apply the header
//! rules for an expected `typ`, and verify the signature against a key the caller looked up.
//!
//! [`Jws::parse`] splits and decodes a token; [`Header::check`] applies the header rules for an
//! expected [`Typ`] and yields the [`CheckedHeader`] whose `kid` the caller looks up;
//! [`Signed::verify_signature`] checks the signature with that key. So a caller goes parse →
//! check the header → look up the key by `kid` → verify, reading [`Jws::claims`] where it needs.
//!
//! No I/O, no cache, no clock. The size cap ([`MAX_TOKEN_BYTES`]) comes before any decoding;
//! header and payload are JSON objects without duplicate members; `alg` `none` and HMAC, and any
//! `crit`, are refused; `jku`, `x5u`, `jwk` and `x5c` are never read; the algorithm is the key's
//! own and the header's `alg` must merely agree with it. Claims are not judged here: until the
//! signature verifies they may only be used to refuse a token.
//!
//! Not here: the claim rules of a token kind (RFC 9068 §4 in `access_token`), where keys come
//! from (the JWKS cache in `validator`, parsing in `jwks`).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{Deserializer, Error as _, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::MAX_TOKEN_BYTES;
use crate::jwks::Key;
use crate::validator::ValidationError;

/// Longer kids are refused without a lookup.
const MAX_KID_BYTES: usize = 256;

/// A compact JWS split into its parts, with header and payload decoded but nothing verified.
///
/// The parts are separate fields so that a caller can take the claims while the checked header
/// still borrows the header, and verify the signature afterwards.
pub(crate) struct Jws<'a> {
    /// The JOSE header, not yet checked.
    pub(crate) header: Header,
    /// The payload, unverified until [`Signed::verify_signature`] succeeds.
    pub(crate) claims: Map<String, Value>,
    /// What the signature covers, and the signature.
    pub(crate) signed: Signed<'a>,
}

impl<'a> Jws<'a> {
    /// RFC 7515 §7.1: exactly three base64url segments; header and payload are JSON objects
    /// without duplicate members (RFC 8725 §3.7 hygiene). The size cap comes first.
    pub(crate) fn parse(token: &'a str) -> Result<Jws<'a>, ValidationError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ValidationError::TooLarge);
        }
        let (signing_input, signature) =
            token.rsplit_once('.').ok_or(ValidationError::Malformed)?;
        let (header, payload) = signing_input
            .split_once('.')
            .ok_or(ValidationError::Malformed)?;
        if payload.contains('.') || header.is_empty() || payload.is_empty() {
            return Err(ValidationError::Malformed);
        }
        Ok(Jws {
            header: Header(decode_object(header)?),
            claims: decode_object(payload)?,
            signed: Signed {
                signing_input,
                signature,
            },
        })
    }
}

/// The `typ` header value a caller requires (RFC 7515 §4.1.9; RFC 8725 §3.11).
///
/// The comparison is case-insensitive and accepts the value with or without its `application/`
/// prefix, as media types are compared.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Typ {
    media_type: &'static str,
    /// Whether a header without `typ` passes: true only for id tokens, which OpenID Connect
    /// Core §2 never required to be typed. Explicitly typed tokens (RFC 9068 §2.1 access
    /// tokens, Back-Channel Logout §2.4 logout tokens) must say what they are.
    absent_ok: bool,
}

impl Typ {
    /// A `typ` equal to `media_type` (without its `application/` prefix), e.g. `at+jwt` for an
    /// access token or `logout+jwt` for a logout token; a missing `typ` is refused.
    pub(crate) const fn new(media_type: &'static str) -> Typ {
        Typ {
            media_type,
            absent_ok: false,
        }
    }

    /// As [`Typ::new`], but a header without `typ` passes too (id tokens: `JWT` or nothing).
    pub(crate) const fn or_absent(media_type: &'static str) -> Typ {
        Typ {
            media_type,
            absent_ok: true,
        }
    }

    fn accepts(self, typ: Option<&Value>) -> bool {
        match typ {
            None => self.absent_ok,
            Some(Value::String(t)) => self.matches(t),
            Some(_) => false,
        }
    }

    fn matches(self, typ: &str) -> bool {
        let bare = typ
            .get(..12)
            .filter(|prefix| prefix.eq_ignore_ascii_case("application/"))
            .and_then(|_| typ.get(12..))
            .unwrap_or(typ);
        bare.eq_ignore_ascii_case(self.media_type)
    }
}

/// A decoded JOSE header whose rules have not been applied yet.
pub(crate) struct Header(Map<String, Value>);

impl Header {
    /// Header rules, in this order: `alg`, `crit`, `typ`, `kid`. `jku`, `x5u`, `jwk` and `x5c`
    /// are never read.
    pub(crate) fn check(&self, typ: Typ) -> Result<CheckedHeader<'_>, ValidationError> {
        let header = &self.0;
        // RFC 8725 §3.1: `none` in any case and HMAC are refused before anything else.
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(ValidationError::DisallowedAlgorithm)?;
        if alg.eq_ignore_ascii_case("none")
            || alg.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("HS"))
        {
            return Err(ValidationError::DisallowedAlgorithm);
        }
        // RFC 7515 §4.1.11: we understand no extension, so any `crit` is refused.
        if header.contains_key("crit") {
            return Err(ValidationError::CriticalHeader);
        }
        // A missing `typ` is the expected one only where the token kind was never typed.
        if !typ.accepts(header.get("typ")) {
            return Err(ValidationError::WrongType);
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .ok_or(ValidationError::UnknownKey)?;
        if kid.is_empty() || kid.len() > MAX_KID_BYTES {
            return Err(ValidationError::UnknownKey);
        }
        Ok(CheckedHeader { kid, alg })
    }
}

/// A header that passed [`Header::check`]: the `kid` to look up and the `alg` it names.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CheckedHeader<'h> {
    kid: &'h str,
    alg: &'h str,
}

impl<'h> CheckedHeader<'h> {
    /// The key id, non-empty and at most 256 bytes.
    pub(crate) fn kid(&self) -> &'h str {
        self.kid
    }

    /// The header's `alg`; it decides nothing until the key agrees with it, but names the hash
    /// of an id token's `at_hash` (OpenID Connect Core §3.1.3.6).
    pub(crate) fn alg(&self) -> &'h str {
        self.alg
    }
}

/// The signing input (`header.payload`) and the signature segment of a compact JWS.
pub(crate) struct Signed<'a> {
    signing_input: &'a str,
    signature: &'a str,
}

impl Signed<'_> {
    /// Verifies the signature with `key`. The algorithm is the key's own; the header's `alg` must
    /// merely agree with it (RFC 8725 §3.1), it never chooses it.
    pub(crate) fn verify_signature(
        &self,
        header: &CheckedHeader<'_>,
        key: &Key,
    ) -> Result<(), ValidationError> {
        if header.alg != key.alg_name {
            return Err(ValidationError::AlgorithmMismatch);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(self.signature)
            .map_err(|_| ValidationError::BadSignature)?;
        key.key
            .verify_sig(self.signing_input.as_bytes(), &signature)
            .map_err(|_| ValidationError::BadSignature)
    }
}

fn decode_object(segment: &str) -> Result<Map<String, Value>, ValidationError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| ValidationError::Malformed)?;
    serde_json::from_slice::<StrictObject>(&bytes)
        .map(|o| o.0)
        .map_err(|_| ValidationError::Malformed)
}

/// A JSON object that refuses duplicate member names.
struct StrictObject(Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StrictObject, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = StrictObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictObject, A::Error> {
                let mut map = Map::new();
                while let Some((k, v)) = access.next_entry::<String, Value>()? {
                    if map.contains_key(&k) {
                        return Err(A::Error::custom("duplicate member"));
                    }
                    map.insert(k, v);
                }
                Ok(StrictObject(map))
            }
        }
        d.deserialize_map(ObjectVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8725_s3_7_duplicate_members_are_refused() {
        let dup = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","alg":"none"}"#);
        assert!(matches!(
            decode_object(&dup),
            Err(ValidationError::Malformed)
        ));
    }

    #[test]
    fn rfc7515_s4_1_9_typ_compares_as_a_media_type() {
        let at_jwt = Typ::new("at+jwt");
        for typ in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/At+Jwt",
        ] {
            assert!(at_jwt.matches(typ), "{typ} was refused");
        }
        for typ in [
            "",
            "JWT",
            "application/",
            "application/jwt",
            "xapplication/at+jwt",
        ] {
            assert!(!at_jwt.matches(typ), "{typ} was accepted");
        }
        // An id token's `typ` (OpenID Connect Core §2 leaves it to RFC 7519 §5.1).
        let jwt = Typ::new("JWT");
        assert!(jwt.matches("JWT") && jwt.matches("application/jwt"));
        assert!(!jwt.matches("at+jwt"));
    }

    #[test]
    fn rfc8725_s3_11_only_id_tokens_may_be_untyped() {
        let json = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        assert!(!Typ::new("at+jwt").accepts(None));
        assert!(!Typ::new("logout+jwt").accepts(None));
        let id = Typ::or_absent("JWT");
        assert!(id.accepts(None));
        assert!(id.accepts(Some(&json(r#""JWT""#))));
        assert!(!id.accepts(Some(&json(r#""at+jwt""#))));
        assert!(!id.accepts(Some(&json(r#""logout+jwt""#))));
        assert!(!id.accepts(Some(&json("1"))));
        assert!(!id.accepts(Some(&json("null"))));
    }
}
