//! Any standards-compliant provider works for `local` and `introspect` routes: the gateway in
//! front of node-oidc-provider (`bench/node`, discovery + JWKS + RFC 9068 JWT access tokens, and
//! RFC 7662 for its opaque tokens). Skipped, loudly, without node or `npm ci` in `bench/node`.

use std::path::PathBuf;
use std::process::Stdio;

use crate::*;

const CLIENT: &str = "bench-cc";
const SECRET: &str = "bench-cc-secret-0123456789abcdef0123456789abcdef";

fn node_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/node");
    let has_node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (has_node && dir.join("node_modules/oidc-provider").is_dir()).then_some(dir)
}

/// node-oidc-provider on a free port, with `jwt` or `opaque` access tokens.
async fn provider(dir: &PathBuf, format: &str) -> (tokio::process::Child, String) {
    let port = bind("127.0.0.1:0").local_addr().unwrap().port();
    let child = tokio::process::Command::new("node")
        .arg("server.mjs")
        .current_dir(dir)
        .env("PORT", port.to_string())
        .env("TOKEN_FORMAT", format)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let issuer = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        let url = format!("{issuer}/.well-known/openid-configuration");
        if http()
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return (child, issuer);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("node-oidc-provider did not start");
}

async fn token(issuer: &str) -> String {
    let r = http()
        .post(format!("{issuer}/token"))
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "read"),
            ("resource", API),
        ])
        .send()
        .await
        .unwrap();
    let j: Value = r.json().await.unwrap();
    j["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn node_oidc_provider_local_and_introspect_routes() {
    // A missing peer fails the test with the command that installs it (./test.sh does).
    let dir = node_dir().expect(
        "node-oidc-provider interop needs node and the npm peers: run ./test.sh, or \
         `apt-get install -y nodejs npm && (cd bench/node && npm ci)`",
    );
    let up = echo_upstream();
    for format in ["jwt", "opaque"] {
        let (_child, issuer) = provider(&dir, format).await;
        let config = format!(
            "listen = \"127.0.0.1:0\"\nissuer = \"{issuer}\"\naudience = \"{API}\"\n\
             client_id = \"{CLIENT}\"\nclient_secret_env = \"X\"\n"
        ) + &route(
            "/photos",
            "[\"GET\"]",
            up.addr,
            "local",
            "scopes = [\"read\"]",
        ) + &route(
            "/orders",
            "[\"POST\"]",
            up.addr,
            "introspect",
            "scopes = [\"read\"]",
        );
        let gw = start_gateway(&config, Some(SECRET), GatewayOptions::default()).await;
        gw.ready().await;
        assert!(gw.gateway.feed().is_none(), "no feed is advertised");
        let t = token(&issuer).await;
        let orders = |t: String| send(http().post(format!("{}/orders", gw.base)).bearer_auth(t));
        if format == "jwt" {
            let e = get(&format!("{}/photos", gw.base), Some(&t)).await.echo();
            assert_eq!(e.header("x-keycard-sub").as_deref(), Some(CLIENT));
            assert_eq!(e.header("x-keycard-scope").as_deref(), Some("read"));
            let mut forged = t.clone();
            forged.pop();
            forged.push(if t.ends_with('A') { 'B' } else { 'A' });
            assert_eq!(
                get(&format!("{}/photos", gw.base), Some(&forged))
                    .await
                    .status,
                401
            );
        } else {
            let e = orders(t.clone()).await.echo();
            assert_eq!(e.header("x-keycard-client-id").as_deref(), Some(CLIENT));
            assert_eq!(orders("unknown-token".into()).await.status, 401);
            // An opaque token is not a JWT: a local route refuses it.
            assert_eq!(
                get(&format!("{}/photos", gw.base), Some(&t)).await.status,
                401
            );
        }
    }
}
