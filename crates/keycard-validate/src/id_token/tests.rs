use std::time::Duration;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::*;
use crate::http::{BasicAuth, BoxFuture, HttpError, HttpResponse};

const NOW: i64 = 1_700_000_000;
const ISS: &str = "https://op.example.com";
const CLIENT: &str = "bff";

/// A provider whose JWKS holds one Ed25519 key, and a signer for any header and claims.
struct Op {
    key: Ed25519KeyPair,
}

impl Op {
    fn new() -> Arc<Op> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        Arc::new(Op {
            key: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(),
        })
    }

    fn sign(&self, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

impl HttpClient for Op {
    fn get<'a>(&'a self, _url: &'a str) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
        let x = URL_SAFE_NO_PAD.encode(self.key.public_key().as_ref());
        let body = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "alg": "EdDSA",
            "use": "sig", "x": x}]});
        Box::pin(async move { Ok(HttpResponse::new(200, body.to_string())) })
    }
    fn post_form<'a>(
        &'a self,
        _url: &'a str,
        _auth: &'a BasicAuth,
        _form: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
        Box::pin(async { Err(HttpError::new("unused")) })
    }
}

fn verifier(op: &Arc<Op>) -> IdTokenVerifier {
    IdTokenVerifier::new(
        Issuer::from_wire(ISS).unwrap(),
        ClientId::parse(CLIENT).unwrap(),
        op.clone(),
        ValidatorOptions::default()
            .jwks_uri("https://op.example.com/jwks")
            .clock(|| UnixTime(NOW))
            .leeway(Duration::from_secs(30)),
    )
}

fn id_header() -> Value {
    json!({"alg": "EdDSA", "kid": "k1", "typ": "JWT"})
}

const ACCESS_TOKEN: &str = "jHkWEdUXMU1BwAsC4vtUsZwnNEhbuo6T7fVqEHHL1R0";

fn id_claims() -> Value {
    json!({"iss": ISS, "sub": "alice", "aud": CLIENT, "azp": CLIENT, "exp": NOW + 300,
        "iat": NOW - 5, "auth_time": NOW - 5, "nonce": "n-1", "sid": "s-1", "name": "Alice",
        "at_hash": at_hash(ACCESS_TOKEN, HalfHash::Sha512)})
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

fn check_id(
    op: &Arc<Op>,
    header: Value,
    claims: Value,
) -> Result<VerifiedIdToken, ValidationError> {
    let nonce = Nonce::parse("n-1").unwrap();
    let token = op.sign(header, claims);
    let check = IdTokenCheck::new().nonce(&nonce).access_token(ACCESS_TOKEN);
    rt().block_on(verifier(op).verify(&token, &check))
}

#[test]
fn oidc_core_s3_1_3_7_a_good_id_token_is_accepted() {
    let op = Op::new();
    let t = check_id(&op, id_header(), id_claims()).unwrap();
    assert_eq!(t.sub().as_str(), "alice");
    assert_eq!(t.sid().map(SessionId::as_str), Some("s-1"));
    assert_eq!(t.claim_str("name"), Some("Alice"));
    // Untyped id tokens are fine (Core §2 never required `typ`).
    let mut h = id_header();
    h.as_object_mut().unwrap().remove("typ");
    assert!(check_id(&op, h, id_claims()).is_ok());
}

#[test]
fn oidc_core_s3_1_3_7_each_broken_check_is_refused() {
    let op = Op::new();
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "iss trailing slash",
            "iss",
            json!("https://op.example.com/"),
        ),
        ("iss other", "iss", json!("https://evil.example.com")),
        ("aud other", "aud", json!("other")),
        ("aud many without azp", "azp", Value::Null),
        ("azp other", "azp", json!("other")),
        ("exp passed", "exp", json!(NOW - 31)),
        ("exp string", "exp", json!("9999999999")),
        ("iat future", "iat", json!(NOW + 31)),
        ("iat stale", "iat", json!(NOW - 3600)),
        ("nonce other", "nonce", json!("n-2")),
        ("nonce missing", "nonce", Value::Null),
        ("at_hash other", "at_hash", json!("AAAAAAAAAAAAAAAAAAAAAA")),
        ("sub missing", "sub", Value::Null),
    ];
    for (name, claim, value) in cases {
        let mut c = id_claims();
        if name == "aud many without azp" {
            c["aud"] = json!([CLIENT, "other"]);
        }
        if value.is_null() {
            c.as_object_mut().unwrap().remove(claim);
        } else {
            c[claim] = value;
        }
        assert!(
            check_id(&op, id_header(), c).is_err(),
            "{name} was accepted"
        );
    }
    // Several audiences are fine with azp naming the client.
    let mut c = id_claims();
    c["aud"] = json!([CLIENT, "other"]);
    assert!(check_id(&op, id_header(), c).is_ok());
    // Signed by another key.
    let other = Op::new();
    let token = other.sign(id_header(), id_claims());
    let r = rt().block_on(verifier(&op).verify(&token, &IdTokenCheck::new()));
    assert!(matches!(r, Err(ValidationError::BadSignature)), "{r:?}");
}

#[test]
fn rfc8725_s3_11_token_kinds_do_not_pass_for_each_other() {
    let op = Op::new();
    for typ in ["at+jwt", "logout+jwt", "dpop+jwt"] {
        let h = json!({"alg": "EdDSA", "kid": "k1", "typ": typ});
        assert!(
            matches!(
                check_id(&op, h, id_claims()),
                Err(ValidationError::WrongType)
            ),
            "{typ} passed as an id token"
        );
    }
    // A valid id token is no logout token.
    let token = op.sign(id_header(), id_claims());
    let r = rt().block_on(verifier(&op).verify_logout_token(&token));
    assert!(matches!(r, Err(ValidationError::WrongType)), "{r:?}");
}

#[test]
fn oidc_core_s12_2_refreshed_id_token_keeps_subject_and_nonce() {
    let op = Op::new();
    let nonce = Nonce::parse("n-1").unwrap();
    let alice = Subject::parse("alice").unwrap();
    let bob = Subject::parse("bob").unwrap();
    let v = verifier(&op);
    let mut no_nonce = id_claims();
    no_nonce.as_object_mut().unwrap().remove("nonce");
    let refreshed = IdTokenCheck::new().nonce_if_present(&nonce).subject(&alice);
    let ok = op.sign(id_header(), no_nonce.clone());
    assert!(rt().block_on(v.verify(&ok, &refreshed)).is_ok());
    let same = op.sign(id_header(), id_claims());
    assert!(rt().block_on(v.verify(&same, &refreshed)).is_ok());
    let mut other_nonce = id_claims();
    other_nonce["nonce"] = json!("n-9");
    let t = op.sign(id_header(), other_nonce);
    assert!(matches!(
        rt().block_on(v.verify(&t, &refreshed)),
        Err(ValidationError::WrongNonce)
    ));
    let other_sub = IdTokenCheck::new().subject(&bob);
    assert!(matches!(
        rt().block_on(v.verify(&ok, &other_sub)),
        Err(ValidationError::WrongSubject)
    ));
}

fn logout_header() -> Value {
    json!({"alg": "EdDSA", "kid": "k1", "typ": "logout+jwt"})
}

fn logout_claims() -> Value {
    json!({"iss": ISS, "aud": CLIENT, "iat": NOW - 2, "exp": NOW + 118, "jti": "j-1",
        "sub": "alice", "sid": "s-1", "events": {BACKCHANNEL_LOGOUT_EVENT: {}}})
}

fn check_logout(
    op: &Arc<Op>,
    header: Value,
    claims: Value,
) -> Result<LogoutToken, ValidationError> {
    let token = op.sign(header, claims);
    rt().block_on(verifier(op).verify_logout_token(&token))
}

#[test]
fn backchannel_s2_6_a_good_logout_token_is_accepted() {
    let op = Op::new();
    let t = check_logout(&op, logout_header(), logout_claims()).unwrap();
    assert_eq!(t.sid().map(SessionId::as_str), Some("s-1"));
    assert_eq!(t.sub().map(Subject::as_str), Some("alice"));
    assert_eq!(t.jti().as_str(), "j-1");
    for only in ["sub", "sid"] {
        let mut c = logout_claims();
        c.as_object_mut().unwrap().remove(only);
        assert!(
            check_logout(&op, logout_header(), c).is_ok(),
            "without {only}"
        );
    }
}

#[test]
fn backchannel_s2_6_each_broken_check_is_refused() {
    let op = Op::new();
    let without = |names: &[&str]| {
        let mut c = logout_claims();
        for n in names {
            c.as_object_mut().unwrap().remove(*n);
        }
        c
    };
    let with = |name: &str, v: Value| {
        let mut c = logout_claims();
        c[name] = v;
        c
    };
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "typ missing",
            json!({"alg": "EdDSA", "kid": "k1"}),
            logout_claims(),
        ),
        ("typ JWT", id_header(), logout_claims()),
        (
            "alg none",
            json!({"alg": "none", "kid": "k1", "typ": "logout+jwt"}),
            logout_claims(),
        ),
        (
            "iss other",
            logout_header(),
            with("iss", json!("https://evil.example.com")),
        ),
        ("aud other", logout_header(), with("aud", json!("other"))),
        ("iat missing", logout_header(), without(&["iat"])),
        ("iat future", logout_header(), with("iat", json!(NOW + 60))),
        ("iat stale", logout_header(), with("iat", json!(NOW - 3600))),
        ("exp missing", logout_header(), without(&["exp"])),
        ("exp passed", logout_header(), with("exp", json!(NOW - 60))),
        ("jti missing", logout_header(), without(&["jti"])),
        ("events missing", logout_header(), without(&["events"])),
        (
            "events wrong member",
            logout_header(),
            with("events", json!({"x": {}})),
        ),
        (
            "event not an object",
            logout_header(),
            with("events", json!({BACKCHANNEL_LOGOUT_EVENT: 1})),
        ),
        ("nonce present", logout_header(), with("nonce", json!("n"))),
        (
            "neither sub nor sid",
            logout_header(),
            without(&["sub", "sid"]),
        ),
    ];
    for (name, header, claims) in cases {
        assert!(
            check_logout(&op, header, claims).is_err(),
            "{name} was accepted"
        );
    }
}
