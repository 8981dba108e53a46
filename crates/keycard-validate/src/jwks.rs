//! JWKS parsing (RFC 7517 §5) into verification keys, and `Cache-Control` lifetimes.
//!
//! A key is usable only when it names its own `alg` (RS256, ES256 or EdDSA), its `kty` and curve
//! agree with that algorithm, its `use` is `sig` (or absent) and it has a `kid`. Anything else in
//! the set is skipped, so one odd key does not take the others down.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use serde_json::Value;

/// One verification key and the only algorithm it may be used with (RFC 8725 §3.1).
pub(crate) struct Key {
    pub(crate) alg_name: &'static str,
    /// The public key, parsed once per JWKS fetch (parsing an RSA key per verification costs
    /// about a fifth of the verification itself).
    pub(crate) key: ParsedPublicKey,
}

/// The keys of one JWKS fetch, by `kid`.
pub(crate) struct KeySet {
    pub(crate) keys: HashMap<String, Arc<Key>>,
    /// When these keys should be refreshed (Unix seconds).
    pub(crate) expires_at: u64,
}

impl KeySet {
    pub(crate) fn empty() -> KeySet {
        KeySet {
            keys: HashMap::new(),
            expires_at: 0,
        }
    }
}

/// The smallest RSA modulus accepted, in bytes (2048 bits; RFC 7518 §3.3).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// Parses a JWKS document into usable keys. Errors only when the document itself is malformed.
pub(crate) fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Arc<Key>>, &'static str> {
    let doc: Value = serde_json::from_slice(body).map_err(|_| "JWKS is not JSON")?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("JWKS has no keys array")?;
    let mut out = HashMap::new();
    for raw in keys {
        if let Some((kid, key)) = parse_key(raw) {
            // The first key with a kid wins; a duplicate kid cannot replace it.
            out.entry(kid).or_insert_with(|| Arc::new(key));
        }
    }
    Ok(out)
}

fn parse_key(raw: &Value) -> Option<(String, Key)> {
    let kid = raw.get("kid")?.as_str()?.to_owned();
    if let Some(u) = raw.get("use")
        && u.as_str() != Some("sig")
    {
        return None;
    }
    if let Some(ops) = raw.get("key_ops")
        && !ops.as_array()?.iter().any(|o| o.as_str() == Some("verify"))
    {
        return None;
    }
    let (alg, alg_name) = match raw.get("alg")?.as_str()? {
        "RS256" => (Algorithm::RS256, "RS256"),
        "ES256" => (Algorithm::ES256, "ES256"),
        "EdDSA" => (Algorithm::EdDSA, "EdDSA"),
        _ => return None,
    };
    let jwk: Jwk = serde_json::from_value(raw.clone()).ok()?;
    let kty_ok = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(p), Algorithm::RS256) => URL_SAFE_NO_PAD
            .decode(&p.n)
            .ok()
            .map(|n| {
                let n = n.iter().skip_while(|b| **b == 0).count();
                n >= MIN_RSA_MODULUS_BYTES
            })
            .unwrap_or(false),
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519
        }
        _ => false,
    };
    if !kty_ok {
        return None;
    }
    let key = parsed_key(&jwk.algorithm)?;
    Some((kid, Key { alg_name, key }))
}

/// The aws-lc-rs key for a JWK whose type and curve were checked against its `alg`.
fn parsed_key(params: &AlgorithmParameters) -> Option<ParsedPublicKey> {
    use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
    match params {
        AlgorithmParameters::RSA(p) => {
            let components = aws_lc_rs::rsa::PublicKeyComponents {
                n: URL_SAFE_NO_PAD.decode(&p.n).ok()?,
                e: URL_SAFE_NO_PAD.decode(&p.e).ok()?,
            };
            let der: PublicKeyX509Der<'static> = components.as_der().ok()?;
            ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der.as_ref()).ok()
        }
        AlgorithmParameters::EllipticCurve(p) => {
            let mut point = vec![0x04];
            point.extend(URL_SAFE_NO_PAD.decode(&p.x).ok()?);
            point.extend(URL_SAFE_NO_PAD.decode(&p.y).ok()?);
            ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point).ok()
        }
        AlgorithmParameters::OctetKeyPair(p) => {
            ParsedPublicKey::new(&ED25519, &URL_SAFE_NO_PAD.decode(&p.x).ok()?).ok()
        }
        // Symmetric keys never verify access tokens; the enum is non-exhaustive upstream.
        _ => None,
    }
}

/// What `Cache-Control` says about freshness: `Some(max_age)`, `Some(0)` for `no-store` or
/// `no-cache`, `None` when it says nothing.
pub(crate) fn max_age(cache_control: Option<&str>) -> Option<u64> {
    let cc = cache_control?;
    let mut found = None;
    for directive in cc.split(',') {
        let d = directive.trim();
        let (name, value) = d.split_once('=').unwrap_or((d, ""));
        let name = name.trim();
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(0);
        }
        if name.eq_ignore_ascii_case("max-age") {
            found = value.trim().trim_matches('"').parse::<u64>().ok();
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9111_s5_2_2_1_max_age() {
        assert_eq!(max_age(Some("public, max-age=60")), Some(60));
        assert_eq!(max_age(Some("Max-Age=\"30\"")), Some(30));
        assert_eq!(max_age(Some("no-store")), Some(0));
        assert_eq!(max_age(Some("public")), None);
        assert_eq!(max_age(Some("max-age=-1")), None);
        assert_eq!(max_age(None), None);
    }

    #[test]
    fn rfc7517_s5_unusable_keys_are_skipped() {
        let body = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "h", "alg": "HS256", "k": "c2VjcmV0"},
            {"kty": "OKP", "kid": "noalg", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "kid": "enc", "use": "enc", "alg": "EdDSA", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "kid": "mismatch", "alg": "ES256", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "RSA", "kid": "small", "alg": "RS256", "n": "AQAB", "e": "AQAB"},
            {"kty": "OKP", "kid": "ok", "alg": "EdDSA", "use": "sig", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            "garbage"
        ]});
        let keys = parse_jwks(body.to_string().as_bytes()).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["ok"]);
        assert!(parse_jwks(b"{}").is_err());
        assert!(parse_jwks(b"not json").is_err());
    }
}
