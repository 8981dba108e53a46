use serde_json::json;

use crate::rfc7662_introspect::{fixture, machine_token, post, user_tokens};

#[tokio::test]
async fn s2_1_revoking_an_access_token_makes_introspection_inactive() {
    let f = fixture().await;
    let at = machine_token(&f).await;
    let at = at.as_str();
    // Another client's revocation leaves it alone (and still answers 200).
    let (status, _) = post(
        &f.s,
        "/revoke",
        ("other", &f.other_secret),
        &[("token", at)],
    )
    .await;
    assert_eq!(status, 200);
    let (_, j) = post(
        &f.s,
        "/introspect",
        ("photos-api", &f.rs_secret),
        &[("token", at)],
    )
    .await;
    assert_eq!(j["active"], true);
    let (status, _) = post(
        &f.s,
        "/revoke",
        ("m2m", &f.m2m_secret),
        &[("token", at), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(status, 200);
    let (_, j) = post(
        &f.s,
        "/introspect",
        ("photos-api", &f.rs_secret),
        &[("token", at)],
    )
    .await;
    assert_eq!(j, json!({ "active": false }));
}

#[tokio::test]
async fn s2_1_revoking_a_refresh_token_revokes_the_grant_and_its_access_tokens() {
    let f = fixture().await;
    let t = user_tokens(&f.s).await;
    let (at, rt) = (
        t["access_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
    );
    let r =
        f.s.http
            .post(f.s.url("/revoke"))
            .form(&[("token", rt), ("client_id", "web")])
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    let (_, j) = post(
        &f.s,
        "/introspect",
        ("photos-api", &f.rs_secret),
        &[("token", at)],
    )
    .await;
    assert_eq!(j, json!({ "active": false }));
    let r =
        f.s.http
            .post(f.s.url("/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", "web"),
            ])
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn s2_2_unknown_tokens_get_200_and_errors_are_rfc_shaped() {
    let f = fixture().await;
    let (status, _) = post(
        &f.s,
        "/revoke",
        ("m2m", &f.m2m_secret),
        &[("token", "never-issued")],
    )
    .await;
    assert_eq!(status, 200);
    let (status, j) = post(&f.s, "/revoke", ("m2m", &f.m2m_secret), &[]).await;
    assert_eq!(
        (status, j["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, j) = post(&f.s, "/revoke", ("m2m", "wrong"), &[("token", "x")]).await;
    assert_eq!((status, j["error"].as_str()), (401, Some("invalid_client")));
}

#[tokio::test]
async fn rfc8414_metadata_advertises_introspection_and_revocation() {
    let f = fixture().await;
    let d: serde_json::Value =
        f.s.get_json("/.well-known/oauth-authorization-server")
            .await;
    assert_eq!(
        d["introspection_endpoint"],
        format!("{}/introspect", f.s.base)
    );
    assert_eq!(d["revocation_endpoint"], format!("{}/revoke", f.s.base));
}
