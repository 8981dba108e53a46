//! JWS signing and verification for Keycard (RFC 7515, RFC 7517, RFC 7518, RFC 8037).
//!
//! [`SigningKey`] holds a parsed aws-lc-rs key pair, so issuing a token never re-parses a
//! private key (jsonwebtoken's `encode` re-parses the RSA key on every call, which halves the
//! RS256 rate). [`KeySet`] is the published JWKS plus the active signer. [`verify`] checks a
//! compact JWS against a JWKS with jsonwebtoken, an independent implementation, so signer and
//! verifier cross-check each other in tests.
//!
//! Invariants: no I/O and no clock (time is a parameter of [`verify`]); private keys never
//! appear in `Debug` output; the algorithm comes from the key, never from a token header.
//! ECDSA signing draws its nonce inside aws-lc, the one place randomness enters this crate.

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keycard_protocol::Kid;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A parsed JWKS, as the verifier uses it.
pub use jsonwebtoken::jwk::JwkSet;

/// Signing algorithms Keycard issues with. `none` and HMAC are deliberately absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    EdDSA,
    ES256,
    RS256,
}

impl Alg {
    pub fn parse(s: &str) -> Option<Alg> {
        match s {
            "RS256" => Some(Alg::RS256),
            "ES256" => Some(Alg::ES256),
            "EdDSA" => Some(Alg::EdDSA),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::EdDSA => "EdDSA",
            Alg::ES256 => "ES256",
            Alg::RS256 => "RS256",
        }
    }

    /// The hash for `at_hash` (OIDC Core §3.1.3.6).
    pub fn half_hash(self) -> keycard_protocol::claims::HalfHash {
        match self {
            Alg::EdDSA => keycard_protocol::claims::HalfHash::Sha512,
            Alg::ES256 | Alg::RS256 => keycard_protocol::claims::HalfHash::Sha256,
        }
    }

    /// RSA signing costs about a millisecond, so callers move it off the async runtime.
    pub fn is_slow(self) -> bool {
        matches!(self, Alg::RS256)
    }
}

/// Errors from key handling and verification. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum JoseError {
    #[error("key generation failed")]
    Generate,
    #[error("stored private key is invalid: {0}")]
    BadKey(String),
    #[error("signing failed")]
    Sign,
    #[error("token is invalid: {0}")]
    Invalid(&'static str),
}

enum Inner {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A parsed private key with its key id.
pub struct SigningKey {
    kid: Kid,
    alg: Alg,
    inner: Inner,
    rng: SystemRandom,
    /// Precomputed `b64url({"alg":..,"kid":..,"typ":..})` prefixes for each token type.
    header_at: String,
    header_id: String,
    header_logout: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// PKCS#8 DER bytes of a private key; redacted in `Debug`.
pub struct Pkcs8(pub Vec<u8>);

impl fmt::Debug for Pkcs8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pkcs8(..)")
    }
}

impl SigningKey {
    /// Generates a key (RSA-2048, P-256 or Ed25519) and returns it with its PKCS#8 encoding.
    pub fn generate(alg: Alg, kid: Kid) -> Result<(SigningKey, Pkcs8), JoseError> {
        let der = match alg {
            Alg::RS256 => {
                use aws_lc_rs::encoding::AsDer;
                let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| JoseError::Generate)?;
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> =
                    kp.as_der().map_err(|_| JoseError::Generate)?;
                der.as_ref().to_vec()
            }
            Alg::ES256 => {
                let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| JoseError::Generate)?;
                kp.to_pkcs8v1()
                    .map_err(|_| JoseError::Generate)?
                    .as_ref()
                    .to_vec()
            }
            Alg::EdDSA => {
                let kp = Ed25519KeyPair::generate().map_err(|_| JoseError::Generate)?;
                kp.to_pkcs8()
                    .map_err(|_| JoseError::Generate)?
                    .as_ref()
                    .to_vec()
            }
        };
        let key = SigningKey::from_pkcs8(alg, kid, &der)?;
        Ok((key, Pkcs8(der)))
    }

    /// Parses a stored PKCS#8 key once; the result signs any number of tokens.
    pub fn from_pkcs8(alg: Alg, kid: Kid, der: &[u8]) -> Result<SigningKey, JoseError> {
        let inner = match alg {
            Alg::RS256 => Inner::Rsa(
                RsaKeyPair::from_pkcs8(der).map_err(|e| JoseError::BadKey(e.to_string()))?,
            ),
            Alg::ES256 => Inner::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|e| JoseError::BadKey(e.to_string()))?,
            ),
            Alg::EdDSA => Inner::Ed(
                Ed25519KeyPair::from_pkcs8(der).map_err(|e| JoseError::BadKey(e.to_string()))?,
            ),
        };
        let header = |typ: &str| {
            let h = serde_json::json!({ "alg": alg.as_str(), "kid": kid, "typ": typ });
            URL_SAFE_NO_PAD.encode(h.to_string())
        };
        Ok(SigningKey {
            header_at: header("at+jwt"),
            header_id: header("JWT"),
            header_logout: header("logout+jwt"),
            kid,
            alg,
            inner,
            rng: SystemRandom::new(),
        })
    }

    pub fn kid(&self) -> &Kid {
        &self.kid
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The public JWK (RFC 7517 §4; RFC 7518 §6; RFC 8037 §2), with `kid`, `alg` and `use`.
    pub fn public_jwk(&self) -> serde_json::Value {
        let b = |x: &[u8]| URL_SAFE_NO_PAD.encode(x);
        match &self.inner {
            Inner::Rsa(kp) => {
                let pk = kp.public_key();
                serde_json::json!({
                    "kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig",
                    "n": b(pk.modulus().big_endian_without_leading_zero()),
                    "e": b(pk.exponent().big_endian_without_leading_zero()),
                })
            }
            Inner::Ec(kp) => {
                // Uncompressed SEC1 point: 0x04 || X (32 bytes) || Y (32 bytes).
                let p = kp.public_key().as_ref();
                let (x, y) = (
                    p.get(1..33).unwrap_or_default(),
                    p.get(33..65).unwrap_or_default(),
                );
                serde_json::json!({
                    "kty": "EC", "kid": self.kid, "alg": "ES256", "use": "sig", "crv": "P-256",
                    "x": b(x), "y": b(y),
                })
            }
            Inner::Ed(kp) => serde_json::json!({
                "kty": "OKP", "kid": self.kid, "alg": "EdDSA", "use": "sig", "crv": "Ed25519",
                "x": b(kp.public_key().as_ref()),
            }),
        }
    }

    /// Signs claims as a compact JWS with `typ` `at+jwt` (RFC 9068 §2.1), `JWT` (id tokens) or
    /// `logout+jwt` (OIDC Back-Channel Logout §2.4).
    pub fn sign<T: Serialize>(&self, typ: TokenTyp, claims: &T) -> Result<String, JoseError> {
        let payload = serde_json::to_vec(claims).map_err(|_| JoseError::Sign)?;
        let header = match typ {
            TokenTyp::AccessToken => &self.header_at,
            TokenTyp::IdToken => &self.header_id,
            TokenTyp::LogoutToken => &self.header_logout,
        };
        let mut out = String::with_capacity(header.len() + payload.len() * 4 / 3 + 400);
        out.push_str(header);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
        let sig = self.sign_bytes(out.as_bytes())?;
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&sig, &mut out);
        Ok(out)
    }

    fn sign_bytes(&self, msg: &[u8]) -> Result<Vec<u8>, JoseError> {
        match &self.inner {
            Inner::Rsa(kp) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(&signature::RSA_PKCS1_SHA256, &self.rng, msg, &mut sig)
                    .map_err(|_| JoseError::Sign)?;
                Ok(sig)
            }
            Inner::Ec(kp) => Ok(kp
                .sign(&self.rng, msg)
                .map_err(|_| JoseError::Sign)?
                .as_ref()
                .to_vec()),
            Inner::Ed(kp) => Ok(kp.sign(msg).as_ref().to_vec()),
        }
    }
}

/// Which kind of JWT is being signed; it sets the `typ` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenTyp {
    AccessToken,
    IdToken,
    LogoutToken,
}

/// Verifies a compact JWS against a JWKS and returns its claims (RFC 7515 §5.2; RFC 8725 §3).
///
/// The key is chosen by `kid`; the algorithm is the key's own `alg`, never the header's; `typ`
/// must equal `expected_typ`; `exp` must be a number later than `now` (string-typed `exp` is
/// refused: jsonwebtoken CVE-2026-25537). Issuer and audience checks belong to the caller.
pub fn verify<T: DeserializeOwned>(
    token: &str,
    jwks: &jsonwebtoken::jwk::JwkSet,
    expected_typ: &str,
    now: i64,
) -> Result<T, JoseError> {
    if token.len() > 8192 {
        return Err(JoseError::Invalid("token is too large"));
    }
    let header =
        jsonwebtoken::decode_header(token).map_err(|_| JoseError::Invalid("malformed header"))?;
    if header.typ.as_deref() != Some(expected_typ) {
        return Err(JoseError::Invalid("wrong typ"));
    }
    let kid = header.kid.as_deref().ok_or(JoseError::Invalid("no kid"))?;
    let jwk = jwks.find(kid).ok_or(JoseError::Invalid("unknown kid"))?;
    let alg = jwk
        .common
        .key_algorithm
        .ok_or(JoseError::Invalid("key has no alg"))?;
    // Only the algorithms Keycard signs with; anything else (HMAC above all) is refused.
    let alg = match alg {
        jsonwebtoken::jwk::KeyAlgorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        jsonwebtoken::jwk::KeyAlgorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        jsonwebtoken::jwk::KeyAlgorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        _ => return Err(JoseError::Invalid("unsupported alg")),
    };
    if header.alg != alg {
        return Err(JoseError::Invalid("alg does not match the key"));
    }
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|_| JoseError::Invalid("bad key"))?;
    let mut v = jsonwebtoken::Validation::new(alg);
    // Time is checked below against the caller's clock, not the system clock.
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
        .map_err(|_| JoseError::Invalid("signature or claims are invalid"))?;
    let exp = data
        .claims
        .get("exp")
        .and_then(serde_json::Value::as_i64)
        .ok_or(JoseError::Invalid("exp is missing or not a number"))?;
    if now >= exp {
        return Err(JoseError::Invalid("token has expired"));
    }
    serde_json::from_value(data.claims)
        .map_err(|_| JoseError::Invalid("claims have the wrong shape"))
}

/// Builds a JWKS (RFC 7517 §5) from public JWKs.
pub fn jwks_json(keys: &[serde_json::Value]) -> serde_json::Value {
    serde_json::json!({ "keys": keys })
}

/// Parses a JWKS document.
pub fn parse_jwks(v: &serde_json::Value) -> Result<jsonwebtoken::jwk::JwkSet, JoseError> {
    serde_json::from_value(v.clone()).map_err(|_| JoseError::Invalid("malformed JWKS"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kid(s: &str) -> Kid {
        Kid::parse(s).unwrap()
    }

    fn roundtrip(alg: Alg) {
        let (key, der) = SigningKey::generate(alg, kid(&format!("k-{}", alg.as_str()))).unwrap();
        let again = SigningKey::from_pkcs8(alg, kid("k2"), &der.0).unwrap();
        assert_eq!(again.public_jwk()["x"], key.public_jwk()["x"]);
        let jwks = parse_jwks(&jwks_json(&[key.public_jwk()])).unwrap();
        let claims = serde_json::json!({ "sub": "alice", "exp": 2_000 });
        let t = key.sign(TokenTyp::AccessToken, &claims).unwrap();
        let got: serde_json::Value = verify(&t, &jwks, "at+jwt", 1_000).unwrap();
        assert_eq!(got["sub"], "alice");
        // Expired, wrong typ, and a flipped signature byte are all refused.
        assert!(verify::<serde_json::Value>(&t, &jwks, "at+jwt", 2_000).is_err());
        assert!(verify::<serde_json::Value>(&t, &jwks, "JWT", 1_000).is_err());
        let mut bytes = t.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        assert!(verify::<serde_json::Value>(&flipped, &jwks, "at+jwt", 1_000).is_err());
        assert!(!format!("{key:?}").contains("inner"));
    }

    #[test]
    fn rfc7518_s3_3_rs256_round_trip_with_independent_verifier() {
        roundtrip(Alg::RS256);
    }

    #[test]
    fn rfc7518_s3_4_es256_round_trip_with_independent_verifier() {
        roundtrip(Alg::ES256);
    }

    #[test]
    fn rfc8037_s3_1_eddsa_round_trip_with_independent_verifier() {
        roundtrip(Alg::EdDSA);
    }

    #[test]
    fn rfc8725_s3_1_alg_none_and_string_exp_are_refused() {
        let (key, _) = SigningKey::generate(Alg::ES256, kid("k")).unwrap();
        let jwks = parse_jwks(&jwks_json(&[key.public_jwk()])).unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k","typ":"at+jwt"}"#);
        let body = URL_SAFE_NO_PAD.encode(r#"{"sub":"x","exp":9999999999}"#);
        assert!(
            verify::<serde_json::Value>(&format!("{none_header}.{body}."), &jwks, "at+jwt", 1)
                .is_err()
        );
        let t = key
            .sign(
                TokenTyp::AccessToken,
                &serde_json::json!({ "exp": "9999999999" }),
            )
            .unwrap();
        assert!(verify::<serde_json::Value>(&t, &jwks, "at+jwt", 1).is_err());
    }
}
