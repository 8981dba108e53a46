//! RFC 6750 §2–3 through `BearerLayer` and the `Bearer` extractor on a small Router.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, Response, StatusCode, header};
use axum::routing::get;
use keycard_jose::Alg;
use keycard_validate::{Bearer, BearerLayer};
use tower::ServiceExt;

use crate::*;

fn app(s: &Setup) -> Router {
    Router::new()
        .route(
            "/photos",
            get(|Bearer(at): Bearer| async move { format!("photos of {}", at.sub()) }),
        )
        .route_layer(
            BearerLayer::new(s.validator.clone())
                .require(["photos:read"])
                .realm("photos"),
        )
        .route(
            "/admin",
            get(|Bearer(at): Bearer| async move { at.sub().to_string() }).route_layer(
                BearerLayer::new(s.validator.clone())
                    .require(["photos:read", "admin"])
                    .realm("photos"),
            ),
        )
        .route(
            "/unprotected",
            get(|Bearer(at): Bearer| async move { at.sub().to_string() }),
        )
}

async fn send(s: &Setup, uri: &str, authorization: Option<&str>) -> Response<Body> {
    let mut req = Request::get(uri);
    if let Some(a) = authorization {
        req = req.header(header::AUTHORIZATION, a);
    }
    app(s)
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

fn challenge(resp: &Response<Body>) -> &str {
    resp.headers()[header::WWW_AUTHENTICATE].to_str().unwrap()
}

#[tokio::test]
async fn rfc6750_s3_1_no_token_is_401_without_an_error_code() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    let resp = send(&s, "/photos", None).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&resp), r#"Bearer realm="photos""#);
    // Another scheme is not bearer credentials either.
    let resp = send(&s, "/photos", Some("Basic YXBwOnNlY3JldA==")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&resp), r#"Bearer realm="photos""#);
    assert_eq!(s.issuer.jwks_gets(), 0);
}

#[tokio::test]
async fn rfc9110_s11_1_bearer_scheme_is_case_insensitive() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    let token = access_token(&k.key, &claims(T0));
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let resp = send(&s, "/photos", Some(&format!("{scheme} {token}"))).await;
        assert_eq!(resp.status(), StatusCode::OK, "{scheme}");
        let body = to_bytes(resp.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"photos of user-1");
    }
}

#[tokio::test]
async fn rfc6750_s2_3_query_token_is_ignored() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    let token = access_token(&k.key, &claims(T0));
    let resp = send(&s, &format!("/photos?access_token={token}"), None).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&resp), r#"Bearer realm="photos""#);
}

#[tokio::test]
async fn rfc6750_s3_1_insufficient_scope_is_403_with_the_needed_scope() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    let token = access_token(&k.key, &claims(T0)); // scope "openid photos:read"
    let resp = send(&s, "/admin", Some(&format!("Bearer {token}"))).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&resp),
        r#"Bearer realm="photos", error="insufficient_scope", scope="admin photos:read""#
    );
    let mut c = claims(T0);
    c["scope"] = "openid".into();
    let resp = send(
        &s,
        "/photos",
        Some(&format!("Bearer {}", access_token(&k.key, &c))),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&resp),
        r#"Bearer realm="photos", error="insufficient_scope", scope="photos:read""#
    );
}

#[tokio::test]
async fn rfc6750_s3_1_invalid_token_and_invalid_request() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    let mut c = claims(T0);
    c["exp"] = (T0 - 100).into();
    let resp = send(
        &s,
        "/photos",
        Some(&format!("Bearer {}", access_token(&k.key, &c))),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&resp),
        r#"Bearer realm="photos", error="invalid_token""#
    );
    for bad in ["Bearer", "Bearer a b", "Bearer \"quoted\""] {
        let resp = send(&s, "/photos", Some(bad)).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            challenge(&resp),
            r#"Bearer realm="photos", error="invalid_request""#
        );
    }
}

#[tokio::test]
async fn rfc6750_issuer_down_is_503_not_invalid_token() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    s.issuer
        .fail_jwks
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let token = access_token(&k.key, &claims(T0));
    let resp = send(&s, "/photos", Some(&format!("Bearer {token}"))).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().get(header::WWW_AUTHENTICATE).is_none());
}

#[tokio::test]
async fn bearer_extractor_without_the_layer_is_a_500() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    let token = access_token(&k.key, &claims(T0));
    let resp = send(&s, "/unprotected", Some(&format!("Bearer {token}"))).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
