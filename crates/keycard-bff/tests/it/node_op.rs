//! node-oidc-provider (npm `oidc-provider`, `tests/node/op.mjs`) as a second, independent
//! OpenID provider, started per test on a free port. Its packages are installed on first use
//! with `npm ci` from the committed lock file (the npm registry is the only network needed).
//! Without node and npm, or when the install fails, the test fails with the command that
//! installs them (`./test.sh` installs node and npm).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running node-oidc-provider, killed on drop.
pub(crate) struct NodeOp {
    child: Child,
    pub(crate) issuer: String,
    log: PathBuf,
}

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

/// Installs the provider's packages once per test binary; `Err` says why it cannot run.
fn install() -> Result<(), String> {
    static ONCE: std::sync::Mutex<Option<Result<(), String>>> = std::sync::Mutex::new(None);
    let mut done = ONCE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(r) = done.as_ref() {
        return r.clone();
    }
    let r = if node_dir().join("node_modules/oidc-provider").exists() {
        Ok(())
    } else {
        match Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(node_dir())
            .output()
        {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(format!(
                "npm ci in {} failed: {}",
                node_dir().display(),
                String::from_utf8_lossy(&out.stderr)
            )),
            Err(e) => Err(format!("npm is not available: {e}")),
        }
    };
    *done = Some(r.clone());
    r
}

impl NodeOp {
    /// A provider with one confidential client for a BFF at `bff_base`; access tokens live
    /// `at_ttl` seconds.
    pub(crate) async fn start(
        bff_base: &str,
        client_id: &str,
        secret: &str,
        at_ttl: u32,
    ) -> NodeOp {
        let node = Command::new("node")
            .arg("--version")
            .output()
            .map(|_| ())
            .map_err(|e| format!("node is not available: {e}"));
        if let Err(why) = node.and_then(|()| install()) {
            panic!(
                "the node-oidc-provider tests need node and npm ({why}): apt-get install -y nodejs \
                 npm, then `npm ci` in crates/keycard-bff/tests/node (the test runs it itself)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::env::temp_dir().join(format!("bff-node-op-{port}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new("node")
            .arg("op.mjs")
            .current_dir(node_dir())
            .env("PORT", port.to_string())
            .env("CLIENT_ID", client_id)
            .env("CLIENT_SECRET", secret)
            .env("REDIRECT_URI", format!("{bff_base}/bff/callback"))
            .env("POST_LOGOUT_REDIRECT_URI", format!("{bff_base}/"))
            .env(
                "BACKCHANNEL_LOGOUT_URI",
                format!("{bff_base}/bff/backchannel-logout"),
            )
            .env("AT_TTL", at_ttl.to_string())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("spawn node");
        let mut op = NodeOp {
            child,
            issuer: format!("http://127.0.0.1:{port}"),
            log,
        };
        let discovery = format!("{}/.well-known/openid-configuration", op.issuer);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = op.child.try_wait().unwrap() {
                panic!("node-oidc-provider exited with {status}: {}", op.logs());
            }
            if let Ok(r) = reqwest::get(&discovery).await
                && r.status().is_success()
            {
                return op;
            }
            assert!(
                Instant::now() < deadline,
                "node-oidc-provider not ready: {}",
                op.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeOp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
