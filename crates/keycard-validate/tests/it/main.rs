//! Black-box tests for keycard-validate, against a fake issuer (`FakeIssuer`, an `HttpClient`)
//! and tokens minted with keycard-jose or signed by hand for hostile headers.

#![allow(missing_debug_implementations)] // test fixtures
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

mod bearer;
mod feed;
mod introspect;
mod jwks_cache;
mod validate;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keycard_jose::{Alg, Pkcs8, SigningKey, TokenTyp};
use keycard_validate::{
    Audience, BasicAuth, BoxFuture, HttpClient, HttpError, HttpResponse, Issuer, UnixTime,
    Validator, ValidatorOptions,
};
use serde_json::{Value, json};

pub const ISSUER: &str = "http://127.0.0.1:8080";
pub const AUDIENCE: &str = "https://api.example.com";
pub const T0: i64 = 1_700_000_000;

pub fn iss() -> Issuer {
    Issuer::from_wire(ISSUER).unwrap()
}

pub fn aud() -> Audience {
    Audience::parse(AUDIENCE).unwrap()
}

/// A clock the test moves by hand.
#[derive(Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn start() -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(T0)))
    }
    pub fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    pub fn as_fn(&self) -> impl Fn() -> UnixTime + Send + Sync + 'static {
        let t = self.0.clone();
        move || UnixTime(t.load(Ordering::SeqCst))
    }
}

/// One recorded form POST: url, Authorization header value, form pairs.
pub type Post = (String, String, Vec<(String, String)>);

/// The issuer's HTTP side: discovery, JWKS (swappable, failable, slow) and introspection.
pub struct FakeIssuer {
    pub jwks: Mutex<Value>,
    pub cache_control: Mutex<Option<String>>,
    pub fail_jwks: AtomicBool,
    pub jwks_delay: Mutex<Duration>,
    pub jwks_gets: AtomicUsize,
    pub discovery_gets: AtomicUsize,
    pub other_gets: Mutex<Vec<String>>,
    pub posts: Mutex<Vec<Post>>,
    pub introspection: Mutex<(u16, String)>,
}

impl FakeIssuer {
    pub fn new(keys: &[&SigningKey]) -> Arc<FakeIssuer> {
        Arc::new(FakeIssuer {
            jwks: Mutex::new(jwks_of(keys)),
            cache_control: Mutex::new(Some("public, max-age=60".into())),
            fail_jwks: AtomicBool::new(false),
            jwks_delay: Mutex::new(Duration::ZERO),
            jwks_gets: AtomicUsize::new(0),
            discovery_gets: AtomicUsize::new(0),
            other_gets: Mutex::new(Vec::new()),
            posts: Mutex::new(Vec::new()),
            introspection: Mutex::new((200, r#"{"active":false}"#.into())),
        })
    }

    pub fn jwks_gets(&self) -> usize {
        self.jwks_gets.load(Ordering::SeqCst)
    }

    pub fn set_keys(&self, keys: &[&SigningKey]) {
        *self.jwks.lock().unwrap() = jwks_of(keys);
    }
}

pub fn jwks_of(keys: &[&SigningKey]) -> Value {
    let jwks: Vec<Value> = keys.iter().map(|k| k.public_jwk()).collect();
    keycard_jose::jwks_json(&jwks)
}

impl HttpClient for FakeIssuer {
    fn get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
        Box::pin(async move {
            if url == format!("{ISSUER}/.well-known/openid-configuration") {
                self.discovery_gets.fetch_add(1, Ordering::SeqCst);
                let doc = json!({
                    "issuer": ISSUER,
                    "jwks_uri": format!("{ISSUER}/jwks.json"),
                    "introspection_endpoint": format!("{ISSUER}/introspect"),
                });
                return Ok(HttpResponse::new(200, doc.to_string()));
            }
            if url == format!("{ISSUER}/jwks.json") {
                self.jwks_gets.fetch_add(1, Ordering::SeqCst);
                let delay = *self.jwks_delay.lock().unwrap();
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                if self.fail_jwks.load(Ordering::SeqCst) {
                    return Err(HttpError::new("connection refused"));
                }
                let body = self.jwks.lock().unwrap().to_string();
                let mut resp = HttpResponse::new(200, body);
                if let Some(cc) = self.cache_control.lock().unwrap().clone() {
                    resp = resp.with_cache_control(cc);
                }
                return Ok(resp);
            }
            self.other_gets.lock().unwrap().push(url.to_owned());
            Ok(HttpResponse::new(404, ""))
        })
    }

    fn post_form<'a>(
        &'a self,
        url: &'a str,
        auth: &'a BasicAuth,
        form: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
        Box::pin(async move {
            self.posts.lock().unwrap().push((
                url.to_owned(),
                auth.header_value().to_owned(),
                form.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ));
            let (status, body) = self.introspection.lock().unwrap().clone();
            Ok(HttpResponse::new(status, body))
        })
    }
}

/// A key and its PKCS#8, for signing by hand.
pub struct TestKey {
    pub key: SigningKey,
    pub der: Pkcs8,
}

pub fn key(alg: Alg, kid: &str) -> TestKey {
    let (key, der) = SigningKey::generate(alg, keycard_validate::Kid::parse(kid).unwrap()).unwrap();
    TestKey { key, der }
}

pub fn claims(now: i64) -> Value {
    json!({
        "iss": ISSUER,
        "sub": "user-1",
        "aud": [AUDIENCE, "https://other.example.com"],
        "exp": now + 300,
        "iat": now,
        "jti": "jti-1",
        "client_id": "app",
        "scope": "openid photos:read",
        "auth_time": now - 10,
    })
}

pub fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// Signs any header and payload with an Ed25519 key: for hostile but well-signed tokens.
pub fn sign_ed25519(key: &TestKey, header: &Value, payload: &Value) -> String {
    let kp = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(&key.der.0).unwrap();
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    );
    let sig = kp.sign(input.as_bytes());
    format!("{input}.{}", b64(sig.as_ref()))
}

/// Replaces a token's header, keeping its payload and signature.
pub fn with_header(token: &str, header: &Value) -> String {
    let mut parts = token.splitn(3, '.');
    let (_, payload, sig) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    format!("{}.{payload}.{sig}", b64(header.to_string().as_bytes()))
}

pub struct Setup {
    pub issuer: Arc<FakeIssuer>,
    pub clock: ManualClock,
    pub validator: Validator,
}

pub fn setup(keys: &[&SigningKey]) -> Setup {
    setup_with(keys, |o| o)
}

pub fn setup_with(
    keys: &[&SigningKey],
    f: impl FnOnce(ValidatorOptions) -> ValidatorOptions,
) -> Setup {
    let issuer = FakeIssuer::new(keys);
    let clock = ManualClock::start();
    let options = f(ValidatorOptions::default().clock(clock.as_fn()));
    let validator = Validator::new(iss(), aud(), issuer.clone(), options);
    Setup {
        issuer,
        clock,
        validator,
    }
}

pub fn access_token(key: &SigningKey, claims: &Value) -> String {
    key.sign(TokenTyp::AccessToken, claims).unwrap()
}
