//! Two `keycard serve` nodes on one PostgreSQL database and a `keycard gateway` process on the
//! revocation feed of one of them (issue 11): an access token revoked at node A (RFC 7009) is
//! refused by the gateway's `local` route, subscribed to node B, within 2 s, and B's
//! `GET /revocations?since=N` lists the event (the feed spec's JSON snapshot).
//!
//! Both nodes name themselves with one issuer, B's address, as nodes behind one host name do:
//! tokens from either verify at the gateway, and the gateway finds discovery, the JWKS and the
//! feed at B. A revocation made at A reaches B's feed because every node reads the shared log
//! every `feed_poll` (250 ms); the gateway holds B's stream open.
//!
//! Needs `KEYCARD_TEST_PG_URL`, like `multinode`, whose harness it uses.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::multinode::{Node, TestDb, admin, master_key};
use crate::{API, BIN, MACHINE_CLIENT, client_credentials, free_port, http, jwt_part, spawn_http};

/// One `keycard --config gateway.toml gateway` process; killed when dropped.
struct GatewayProcess {
    base: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl GatewayProcess {
    /// Writes the configuration — one `local` route, `/photos`, for the API's tokens with
    /// `photos:read` — starts the gateway and waits until its feed is connected.
    async fn start(issuer: &str, upstream: &str, secret: &str) -> GatewayProcess {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = format!(
            r#"listen = "127.0.0.1:{port}"
issuer = "{issuer}"
audience = "{API}"
client_id = "gateway"
client_secret_env = "KEYCARD_GATEWAY_CLIENT_SECRET"

[[route]]
path = "/photos"
methods = ["GET"]
upstream = "{upstream}"
auth = "local"
scopes = ["photos:read"]
"#
        );
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, config).unwrap();
        let stderr = std::fs::File::create(dir.path().join("gateway.stderr")).unwrap();
        let child = Command::new(BIN)
            .arg("--config")
            .arg(&path)
            .arg("gateway")
            .env("KEYCARD_GATEWAY_CLIENT_SECRET", secret)
            .env("KEYCARD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn keycard gateway");
        let mut gw = GatewayProcess {
            base: format!("http://127.0.0.1:{port}"),
            dir,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = gw.child.try_wait().unwrap() {
                panic!("keycard gateway exited with {status}\n{}", gw.logs());
            }
            if let Ok(r) = http().get(format!("{}/healthz", gw.base)).send().await
                && let Ok(h) = r.json::<Value>().await
                && h["feed"]["connected"] == true
            {
                return gw;
            }
            assert!(
                Instant::now() < deadline,
                "the gateway's feed is not connected within 20 s\n{}",
                gw.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.stderr")).unwrap_or_default()
    }

    /// `GET /photos` with `token`: the status and the `WWW-Authenticate` challenge.
    async fn photos(&self, token: &str) -> (u16, String) {
        let r = http()
            .get(format!("{}/photos", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let challenge = r
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (r.status().as_u16(), challenge)
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /revocations?since=N` at `node` as the gateway's client.
async fn feed_page(node: &Node, secret: &str, since: u64) -> Value {
    let r = http()
        .get(format!("{}/revocations?since={since}", node.base))
        .basic_auth("gateway", Some(secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_spec_a_token_revoked_at_node_a_is_refused_by_a_gateway_on_node_b_within_two_seconds()
{
    let Some(db) = TestDb::create() else { return };
    let key = master_key();
    let cli = |args: &[&str]| admin(&db.url, &key, args, None);
    cli(&["migrate"]);
    cli(&["api", "add", API, "--scope", "photos:read"]);
    let secret = |v: Value| v["client_secret"].as_str().unwrap().to_owned();
    let m2m = secret(cli(&[&["client", "add", "m2m"], MACHINE_CLIENT].concat()));
    // The gateway introspects as the API's resource server and reads the feed.
    let gateway = secret(cli(&[
        &["client", "add", "gateway", "--feed"],
        crate::RESOURCE_SERVER,
    ]
    .concat()));
    let b_port = free_port();
    let issuer = format!("http://127.0.0.1:{b_port}");
    let a = Node::start_on(&db.url, &key, free_port(), &issuer).await;
    let b = Node::start_on(&db.url, &key, b_port, &issuer).await;
    let upstream =
        spawn_http(axum::Router::new().route("/photos", axum::routing::get(|| async { "photos" })))
            .await;
    let gw = GatewayProcess::start(&issuer, &upstream, &gateway).await;

    let t = client_credentials(&a.base, "m2m", &m2m, "photos:read").await;
    let kept = client_credentials(&b.base, "m2m", &m2m, "photos:read").await;
    assert_eq!(gw.photos(&t).await.0, 200, "{}", gw.logs());
    let before = feed_page(&b, &gateway, 0).await["last"].as_u64().unwrap();

    let r = http()
        .post(format!("{}/revoke", a.base))
        .basic_auth("m2m", Some(&m2m))
        .form(&[("token", t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let revoked = Instant::now();
    let took = loop {
        let (status, challenge) = gw.photos(&t).await;
        if status == 401 {
            assert!(challenge.contains("invalid_token"), "{challenge}");
            break revoked.elapsed();
        }
        assert_eq!(status, 200);
        assert!(
            revoked.elapsed() < Duration::from_secs(2),
            "the gateway on node B still accepts a token revoked at node A after 2 s\n{}",
            gw.logs()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    eprintln!("revocation at node A to refusal by the gateway on node B: {took:?}");

    // Node B's log has the event (the same log A wrote to), after the point read before.
    let page = feed_page(&b, &gateway, before).await;
    let jti = jwt_part(&t, 1)["jti"].as_str().unwrap().to_owned();
    let events = page["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "jti" && e["value"] == jti.as_str()),
        "{page}"
    );
    assert!(
        events.iter().all(|e| e["seq"].as_u64().unwrap() > before),
        "{page}"
    );
    // The refusal is that token's: another one from the same client still passes.
    assert_eq!(gw.photos(&kept).await.0, 200);
}
