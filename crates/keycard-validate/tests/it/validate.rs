//! RFC 9068 §4 and RFC 8725 §3: a valid token, then one hostile token per pitfall. Every
//! hostile token must be refused by `validate` and answered 401 `invalid_token` by the layer.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keycard_jose::{Alg, TokenTyp};
use keycard_validate::{Bearer, BearerLayer, UnixTime, ValidationError};
use serde_json::json;
use tower::ServiceExt;

use crate::*;

/// Asserts the layer answers 401 `invalid_token` for this token.
async fn assert_layer_says_invalid_token(s: &Setup, token: &str) {
    let app = Router::new()
        .route("/", get(|Bearer(_): Bearer| async { "ok" }))
        .route_layer(BearerLayer::new(s.validator.clone()).realm("api"));
    let resp = app
        .oneshot(
            Request::get("/")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.headers()[header::WWW_AUTHENTICATE],
        r#"Bearer realm="api", error="invalid_token""#
    );
}

async fn refused(s: &Setup, token: &str) -> ValidationError {
    let err = s.validator.validate(token).await.unwrap_err();
    // Strings that are not even RFC 6750 b64token syntax get 400 `invalid_request` instead.
    let body = token.trim_end_matches('=');
    let b64token = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if b64token {
        assert_layer_says_invalid_token(s, token).await;
    }
    err
}

#[tokio::test]
async fn rfc9068_s4_valid_tokens_of_each_alg_are_accepted_with_typed_claims() {
    let keys = [
        key(Alg::EdDSA, "ed"),
        key(Alg::ES256, "ec"),
        key(Alg::RS256, "rsa"),
    ];
    let s = setup(&[&keys[0].key, &keys[1].key, &keys[2].key]);
    for k in &keys {
        let at = s
            .validator
            .validate(&access_token(&k.key, &claims(T0)))
            .await
            .unwrap();
        assert_eq!(at.iss(), ISSUER);
        assert_eq!(at.sub(), "user-1");
        assert_eq!(at.client_id(), "app");
        assert_eq!(at.jti(), "jti-1");
        assert_eq!(at.exp(), UnixTime(T0 + 300));
        assert_eq!(at.iat(), UnixTime(T0));
        assert_eq!(at.auth_time(), Some(UnixTime(T0 - 10)));
        assert_eq!(at.aud(), [AUDIENCE, "https://other.example.com"]);
        assert!(at.has_scope("photos:read") && at.has_scope("openid"));
        assert!(!at.has_scope("photos"));
        assert_eq!(at.scope().len(), 2);
    }
    // One discovery and one JWKS fetch served all three.
    assert_eq!(s.issuer.jwks_gets(), 1);
}

#[tokio::test]
async fn rfc9068_s4_aud_as_a_string_and_media_type_typ_are_accepted() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    let mut c = claims(T0);
    c["aud"] = json!(AUDIENCE);
    let header = json!({"alg": "EdDSA", "kid": "k1", "typ": "application/AT+JWT"});
    let at = s
        .validator
        .validate(&sign_ed25519(&k, &header, &c))
        .await
        .unwrap();
    assert_eq!(at.aud(), [AUDIENCE]);
}

#[tokio::test]
async fn rfc8725_s3_1_flipped_signature_byte_is_refused() {
    let k = key(Alg::ES256, "k1");
    let s = setup(&[&k.key]);
    let token = access_token(&k.key, &claims(T0));
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    raw[10] ^= 0x01;
    let forged = format!("{input}.{}", b64(&raw));
    assert!(matches!(
        refused(&s, &forged).await,
        ValidationError::BadSignature
    ));
}

#[tokio::test]
async fn rfc8725_s3_1_alg_none_in_any_case_is_refused() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    let token = access_token(&k.key, &claims(T0));
    let (input, _) = token.rsplit_once('.').unwrap();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "kid": "k1", "typ": "at+jwt"});
        let unsigned = with_header(&format!("{input}."), &header);
        assert!(unsigned.ends_with('.'));
        let e = refused(&s, &unsigned).await;
        assert!(
            matches!(e, ValidationError::DisallowedAlgorithm),
            "{alg}: {e:?}"
        );
    }
    // Nothing was fetched for them: `none` is refused before any key lookup.
    assert_eq!(s.issuer.jwks_gets(), 0);
}

#[tokio::test]
async fn rfc8725_s3_1_hs256_keyed_with_the_rsa_public_key_is_refused() {
    let k = key(Alg::RS256, "rsa");
    let s = setup(&[&k.key]);
    let jwk = k.key.public_jwk();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let der = {
        use aws_lc_rs::signature::KeyPair;
        let kp = aws_lc_rs::rsa::KeyPair::from_pkcs8(&k.der.0).unwrap();
        kp.public_key().as_ref().to_vec()
    };
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("n", n),
        ("der", der),
        ("jwk json", jwk.to_string().into_bytes()),
    ];
    for (name, secret) in secrets {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa".into());
        header.typ = Some("at+jwt".into());
        let forged =
            jsonwebtoken::encode(&header, &claims(T0), &EncodingKey::from_secret(&secret)).unwrap();
        let e = refused(&s, &forged).await;
        assert!(
            matches!(e, ValidationError::DisallowedAlgorithm),
            "{name}: {e:?}"
        );
        // The same MAC under a header claiming RS256 fails the RSA signature check.
        let relabelled = with_header(
            &forged,
            &json!({"alg": "RS256", "kid": "rsa", "typ": "at+jwt"}),
        );
        let e = refused(&s, &relabelled).await;
        assert!(matches!(e, ValidationError::BadSignature), "{name}: {e:?}");
    }
}

#[tokio::test]
async fn rfc8725_s3_1_header_alg_must_equal_the_keys_alg() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    let token = access_token(&k.key, &claims(T0));
    for alg in ["ES256", "RS256", "eddsa", "PS256"] {
        let e = refused(
            &s,
            &with_header(&token, &json!({"alg": alg, "kid": "k1", "typ": "at+jwt"})),
        )
        .await;
        assert!(
            matches!(e, ValidationError::AlgorithmMismatch),
            "{alg}: {e:?}"
        );
    }
}

#[tokio::test]
async fn rfc8725_s3_10_unknown_and_injected_kids_are_refused() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    let token = access_token(&k.key, &claims(T0));
    for kid in ["k2", "../../dev/null", "' OR 1=1--", ""] {
        let e = refused(
            &s,
            &with_header(
                &token,
                &json!({"alg": "EdDSA", "kid": kid, "typ": "at+jwt"}),
            ),
        )
        .await;
        assert!(matches!(e, ValidationError::UnknownKey), "{kid}: {e:?}");
    }
    let e = refused(
        &s,
        &with_header(&token, &json!({"alg": "EdDSA", "typ": "at+jwt"})),
    )
    .await;
    assert!(matches!(e, ValidationError::UnknownKey), "{e:?}");
}

#[tokio::test]
async fn rfc8725_s3_10_jku_x5u_and_embedded_jwk_are_never_used() {
    let ours = key(Alg::EdDSA, "k1");
    let attacker = key(Alg::EdDSA, "evil");
    let s = setup(&[&ours.key]);
    let evil_jwk = attacker.key.public_jwk();
    for kid in ["evil", "k1"] {
        let header = json!({
            "alg": "EdDSA", "kid": kid, "typ": "at+jwt",
            "jku": "https://evil.example/jwks.json",
            "x5u": "https://evil.example/cert.pem",
            "jwk": evil_jwk,
        });
        let forged = sign_ed25519(&attacker, &header, &claims(T0));
        let e = refused(&s, &forged).await;
        match kid {
            "evil" => assert!(matches!(e, ValidationError::UnknownKey), "{e:?}"),
            _ => assert!(matches!(e, ValidationError::BadSignature), "{e:?}"),
        }
    }
    assert!(
        s.issuer.other_gets.lock().unwrap().is_empty(),
        "fetched an attacker URL"
    );
}

#[tokio::test]
async fn rfc7515_s4_1_11_crit_is_refused_even_when_well_signed() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    for crit in [json!(["exp"]), json!([]), json!(["b64"])] {
        let header = json!({"alg": "EdDSA", "kid": "k1", "typ": "at+jwt", "crit": crit});
        let e = refused(&s, &sign_ed25519(&k, &header, &claims(T0))).await;
        assert!(matches!(e, ValidationError::CriticalHeader), "{e:?}");
    }
}

#[tokio::test]
async fn rfc8725_s2_cve_2026_25537_string_exp_is_refused() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    let header = json!({"alg": "EdDSA", "kid": "k1", "typ": "at+jwt"});
    for claim in ["exp", "iat", "nbf"] {
        let mut c = claims(T0);
        c[claim] = json!("9999999999");
        let e = refused(&s, &sign_ed25519(&k, &header, &c)).await;
        assert!(
            matches!(e, ValidationError::InvalidClaim(n) if n == claim),
            "{claim}: {e:?}"
        );
    }
    let mut c = claims(T0);
    c.as_object_mut().unwrap().remove("exp");
    let e = refused(&s, &sign_ed25519(&k, &header, &c)).await;
    assert!(matches!(e, ValidationError::InvalidClaim("exp")), "{e:?}");
}

#[tokio::test]
async fn rfc9068_s4_expired_beyond_leeway_is_refused() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    let token = access_token(&k.key, &claims(T0)); // exp = T0 + 300
    s.validator.validate(&token).await.unwrap();
    s.clock.advance(300 + 29);
    s.validator.validate(&token).await.unwrap(); // within the 30 s leeway
    s.clock.advance(2);
    assert!(matches!(
        refused(&s, &token).await,
        ValidationError::Expired
    ));
}

#[tokio::test]
async fn rfc8725_s3_iat_and_nbf_in_the_future_are_refused() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    let mut c = claims(T0);
    c["iat"] = json!(T0 + 31);
    let e = refused(&s, &access_token(&k.key, &c)).await;
    assert!(matches!(e, ValidationError::IssuedInFuture), "{e:?}");
    let mut c = claims(T0);
    c["nbf"] = json!(T0 + 61);
    let e = refused(&s, &access_token(&k.key, &c)).await;
    assert!(matches!(e, ValidationError::NotYetValid), "{e:?}");
}

#[tokio::test]
async fn rfc9068_s4_issuer_must_match_exactly() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    for iss in [
        format!("{ISSUER}/"),
        "HTTP://127.0.0.1:8080".into(),
        "http://127.0.0.1".into(),
    ] {
        let mut c = claims(T0);
        c["iss"] = json!(iss);
        let e = refused(&s, &access_token(&k.key, &c)).await;
        assert!(matches!(e, ValidationError::WrongIssuer), "{iss}: {e:?}");
    }
}

#[tokio::test]
async fn rfc9068_s4_foreign_audience_is_refused() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    for aud in [
        json!("https://other.example.com"),
        json!(["https://api.example.com/"]),
        json!([]),
    ] {
        let mut c = claims(T0);
        c["aud"] = aud.clone();
        let e = refused(&s, &access_token(&k.key, &c)).await;
        assert!(matches!(e, ValidationError::WrongAudience), "{aud}: {e:?}");
    }
}

#[tokio::test]
async fn rfc8725_s3_11_id_token_is_refused_as_an_access_token() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    let id_token = k.key.sign(TokenTyp::IdToken, &claims(T0)).unwrap();
    assert!(matches!(
        refused(&s, &id_token).await,
        ValidationError::WrongType
    ));
    let token = access_token(&k.key, &claims(T0));
    for typ in [json!("JWT"), json!("dpop+jwt"), json!(null), json!(1)] {
        let e = refused(
            &s,
            &with_header(&token, &json!({"alg": "EdDSA", "kid": "k1", "typ": typ})),
        )
        .await;
        assert!(matches!(e, ValidationError::WrongType), "{typ}: {e:?}");
    }
}

#[tokio::test]
async fn rfc8725_s3_7_one_megabyte_token_is_refused_before_decoding() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    let huge = format!(
        "{}.{}.{}",
        "a".repeat(512 * 1024),
        "b".repeat(512 * 1024),
        "c"
    );
    assert!(matches!(
        refused(&s, &huge).await,
        ValidationError::TooLarge
    ));
    assert_eq!(s.issuer.jwks_gets(), 0);
}

#[tokio::test]
async fn rfc7515_s7_1_malformed_compact_serialisations_are_refused() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    let token = access_token(&k.key, &claims(T0));
    let padded = {
        let (h, rest) = token.split_once('.').unwrap();
        format!("{h}==.{rest}")
    };
    for bad in [
        String::new(),
        "a.b".into(),
        format!("{token}.extra"),
        format!(".{token}"),
        padded,
        token.replacen('.', "..", 1),
    ] {
        let e = refused(&s, &bad).await;
        assert!(matches!(e, ValidationError::Malformed), "{e:?}");
    }
}

/// The issuer's own verifier: the same refusals as the validator, any audience accepted, and
/// no leeway on `exp`.
#[test]
fn rfc7662_s2_2_local_verifier_accepts_any_audience_and_no_expired_token() {
    let k = key(Alg::ES256, "k1");
    let other = key(Alg::ES256, "k2");
    let jwks = jwks_of(&[&k.key]).to_string();
    let v = keycard_validate::LocalVerifier::from_jwks(iss(), jwks.as_bytes()).unwrap();
    let mut c = claims(T0);
    c["aud"] = json!("https://somebody-else.example.com");
    let at = v.verify(&access_token(&k.key, &c), UnixTime(T0)).unwrap();
    assert_eq!(at.aud(), ["https://somebody-else.example.com"]);
    assert_eq!(at.jti(), "jti-1");
    // Expiry: live one second before `exp`, refused at `exp` (the validator's leeway is not
    // applied by the issuer to its own clock).
    let token = access_token(&k.key, &claims(T0));
    assert!(v.verify(&token, UnixTime(T0 + 299)).is_ok());
    assert!(matches!(
        v.verify(&token, UnixTime(T0 + 300)),
        Err(ValidationError::Expired)
    ));
    // What the validator refuses, this refuses too.
    assert!(matches!(
        v.verify(&access_token(&other.key, &claims(T0)), UnixTime(T0)),
        Err(ValidationError::UnknownKey)
    ));
    let mut foreign = claims(T0);
    foreign["iss"] = json!(format!("{ISSUER}/"));
    assert!(matches!(
        v.verify(&access_token(&k.key, &foreign), UnixTime(T0)),
        Err(ValidationError::WrongIssuer)
    ));
    let id_token = k.key.sign(TokenTyp::IdToken, &claims(T0)).unwrap();
    assert!(matches!(
        v.verify(&id_token, UnixTime(T0)),
        Err(ValidationError::WrongType)
    ));
    let none = with_header(
        &token,
        &json!({"alg": "none", "kid": "k1", "typ": "at+jwt"}),
    );
    assert!(matches!(
        v.verify(&none, UnixTime(T0)),
        Err(ValidationError::DisallowedAlgorithm)
    ));
    // A document without a usable key is refused up front.
    assert!(keycard_validate::LocalVerifier::from_jwks(iss(), br#"{"keys":[]}"#).is_err());
    assert!(keycard_validate::LocalVerifier::from_jwks(iss(), b"not json").is_err());
}
