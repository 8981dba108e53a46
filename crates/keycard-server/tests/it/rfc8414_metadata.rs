use keycard_testkit::TestServer;

#[tokio::test]
async fn s3_metadata_issuer_matches_and_advertises_only_s256() {
    let s = TestServer::start().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let r = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let d: serde_json::Value = r.json().await.unwrap();
        assert_eq!(d["issuer"], s.base.as_str());
        assert_eq!(
            d["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(d["authorization_response_iss_parameter_supported"], true);
        assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
        assert!(
            !d["grant_types_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g == "password" || g == "implicit")
        );
        assert_eq!(d["token_endpoint"], format!("{}/token", s.base));
    }
}

#[tokio::test]
async fn rfc7517_s5_jwks_has_public_keys_with_unique_kids() {
    let s = TestServer::start().await;
    let d: serde_json::Value = s.get_json("/jwks.json").await;
    let keys = d["keys"].as_array().unwrap();
    // The active key and the published next key.
    assert_eq!(keys.len(), 2);
    let mut kids: Vec<_> = keys
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.dedup();
    assert_eq!(kids.len(), 2);
    for k in keys {
        assert_eq!(k["use"], "sig");
        assert_eq!(k["alg"], "ES256");
        assert!(k.get("d").is_none(), "private part leaked");
    }
}

#[tokio::test]
async fn key_rotation_publishes_next_before_use_and_keeps_retired() {
    let s = TestServer::start().await;
    let before: serde_json::Value = s.get_json("/jwks.json").await;
    let keys = s.store_keys().await;
    let next = keys.iter().find(|k| k.1 == "next").unwrap().0.clone();
    let active = keys.iter().find(|k| k.1 == "active").unwrap().0.clone();
    assert!(before.to_string().contains(&next));
    keycard_server::rotate_keys(
        s.store(),
        &s.master_key(),
        keycard_jose::Alg::ES256,
        s.clock_now(),
        3600,
        None,
    )
    .await
    .unwrap();
    assert!(s.app.reload_keys().await.unwrap());
    let after: serde_json::Value = s.get_json("/jwks.json").await;
    let ids: Vec<String> = after["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.contains(&active), "retired key must stay published");
    assert_eq!(s.app.active_kid(), next.as_str());
}

trait Helpers {
    async fn store_keys(&self) -> Vec<(String, &'static str)>;
    fn clock_now(&self) -> keycard_protocol::UnixTime;
}

impl Helpers for TestServer {
    async fn store_keys(&self) -> Vec<(String, &'static str)> {
        use keycard_store::Store;
        self.store()
            .signing_keys()
            .await
            .unwrap()
            .into_iter()
            .map(|k| (k.kid.to_string(), k.state.as_str()))
            .collect()
    }

    fn clock_now(&self) -> keycard_protocol::UnixTime {
        keycard_protocol::Clock::now(self.clock.as_ref())
    }
}
