//! The demo API (`keycard demo-api`) end to end against a running `keycard serve`: local
//! validation for `GET /photos`, introspection for `POST /orders`, so a revoked token is
//! refused by `/orders` at once while `/photos` accepts it until it expires.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{BIN, Keycard, free_port, http};

struct DemoApi {
    base: String,
    child: Child,
}

impl Drop for DemoApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_demo_api(kc: &Keycard, secret: &str) -> DemoApi {
    let port = free_port();
    let child = Command::new(BIN)
        .args([
            "demo-api",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--issuer",
            &kc.base,
        ])
        .args(["--audience", "https://api.example.com"])
        .env("KEYCARD_DEMO_API_CLIENT_ID", "photos-api")
        .env("KEYCARD_DEMO_API_CLIENT_SECRET", secret)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn demo-api");
    let api = DemoApi {
        base: format!("http://127.0.0.1:{port}"),
        child,
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while http()
        .get(format!("{}/healthz", api.base))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "demo-api did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api
}

async fn token(kc: &Keycard, id: &str, secret: &str, scope: &str) -> String {
    crate::client_credentials(&kc.base, id, secret, scope).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_api_local_validation_and_introspection_with_revocation() {
    let kc = Keycard::serve().await;
    kc.admin(
        &[
            "api",
            "add",
            "https://api.example.com",
            "--scope",
            "photos:read orders:write",
        ],
        None,
    );
    let cc = [
        "--confidential",
        "--grant",
        "client_credentials",
        "--audience",
        "https://api.example.com",
    ];
    // The API introspects as the registered resource server of its audience (RFC 7662 §4).
    let rs = kc.add_client(
        "photos-api",
        &[
            &cc[..],
            &["--scope", "photos:read orders:write"],
            &["--resource-server", "https://api.example.com"],
        ]
        .concat(),
    );
    let rs_secret = rs["client_secret"].as_str().unwrap().to_owned();
    let app = kc.add_client(
        "shop",
        &[&cc[..], &["--scope", "photos:read orders:write"]].concat(),
    );
    let app_secret = app["client_secret"].as_str().unwrap().to_owned();
    let api = start_demo_api(&kc, &rs_secret).await;
    let h = http();

    // RFC 6750 §3.1: no token → 401 with a bare challenge; a query token is ignored.
    let r = h
        .get(format!("{}/photos?access_token=x", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"photos\"");
    assert_eq!(
        h.get(format!("{}/public/photos", api.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let read_only = token(&kc, "shop", &app_secret, "photos:read").await;
    let r = h
        .get(format!("{}/photos", api.base))
        .header("authorization", format!("bearer {read_only}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["for"], "shop");
    let r = h
        .post(format!("{}/orders", api.base))
        .bearer_auth(&read_only)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );

    let full = token(&kc, "shop", &app_secret, "photos:read orders:write").await;
    let r = h
        .post(format!("{}/orders", api.base))
        .bearer_auth(&full)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let order: serde_json::Value = r.json().await.unwrap();
    assert_eq!(order["order"], "accepted");

    // The app revokes its token (RFC 7009): introspection refuses it at once.
    let r = h
        .post(format!("{}/revoke", kc.base))
        .basic_auth("shop", Some(&app_secret))
        .form(&[("token", full.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = h
        .post(format!("{}/orders", api.base))
        .bearer_auth(&full)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // Local validation cannot know: the low-risk route still accepts it until it expires.
    let r = h
        .get(format!("{}/photos", api.base))
        .bearer_auth(&full)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A tampered token is refused locally.
    let mut bad = full.clone();
    bad.pop();
    let r = h
        .get(format!("{}/photos", api.base))
        .bearer_auth(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}
