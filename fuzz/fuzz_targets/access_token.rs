#![no_main]
// Access-token parsing and validation (keycard-validate) against a fixed JWKS: never a panic,
// and garbage is never accepted.
use std::sync::Arc;

use keycard_validate::{BasicAuth, BoxFuture, HttpClient, HttpError, HttpResponse, Validator, ValidatorOptions};

struct Fixed;

const JWKS: &str = r#"{"keys":[{"kty":"EC","kid":"k1","alg":"ES256","use":"sig","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

impl HttpClient for Fixed {
    fn get<'a>(&'a self, _url: &'a str) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
        Box::pin(async { Ok(HttpResponse::new(200, JWKS).with_cache_control("max-age=3600")) })
    }
    fn post_form<'a>(&'a self, _: &'a str, _: &'a BasicAuth, _: &'a [(&'a str, &'a str)]) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
        Box::pin(async { Err(HttpError::new("unused")) })
    }
}

static STATE: std::sync::OnceLock<(tokio::runtime::Runtime, Validator)> = std::sync::OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &str| {
    let (rt, v) = STATE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let v = Validator::new(
            keycard_protocol::Issuer::from_wire("https://id.example.com").unwrap(),
            keycard_protocol::Audience::parse("https://api.example.com").unwrap(),
            Arc::new(Fixed),
            ValidatorOptions::default().jwks_uri("https://id.example.com/jwks.json"),
        );
        (rt, v)
    });
    // No private key for this JWKS is known here, so nothing the fuzzer makes can be valid.
    assert!(rt.block_on(v.validate(data)).is_err());
});
