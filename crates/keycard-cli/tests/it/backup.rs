//! `keycard backup`: a consistent copy of a running server's SQLite database that another
//! server restores from, given the master key, which the backup deliberately leaves out.

use std::process::Command;

use crate::{API, BIN, Keycard, http};

/// The server's published keys, ordered by `kid` (a JWKS's order carries no meaning).
async fn jwks(kc: &Keycard) -> Vec<serde_json::Value> {
    let doc: serde_json::Value = http()
        .get(format!("{}/jwks.json", kc.base))
        .send()
        .await
        .expect("GET /jwks.json")
        .json()
        .await
        .expect("JWKS JSON");
    let mut keys = doc["keys"].as_array().expect("keys").clone();
    keys.sort_by(|a, b| a["kid"].as_str().cmp(&b["kid"].as_str()));
    keys
}

async fn client_credentials(kc: &Keycard, id: &str, secret: &str) -> reqwest::StatusCode {
    http()
        .post(format!("{}/token", kc.base))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "photos:read"),
        ])
        .send()
        .await
        .expect("token request")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_of_a_running_server_restores_users_clients_and_keys() {
    let kc = Keycard::serve().await;
    kc.add_api();
    kc.add_user("alice", "Alice", "alice@example.com");
    let m2m = kc.add_client(
        "m2m",
        &[
            "--confidential",
            "--grant",
            "client_credentials",
            "--audience",
            API,
            "--scope",
            "photos:read",
        ],
    );
    let secret = m2m["client_secret"].as_str().expect("client_secret");
    assert_eq!(client_credentials(&kc, "m2m", secret).await, 200);

    // The copy is taken while the server runs, and names where the key it needs lives.
    let copy = kc.dir.path().join("copy.db");
    let out = kc.admin(&["backup", copy.to_str().expect("UTF-8 path")], None);
    assert_eq!(out["backup"], copy.display().to_string());
    assert!(out["bytes"].as_u64().expect("bytes") > 0, "{out}");
    let key_file = kc.dir.path().join("keycard.db.key");
    assert_eq!(out["master_key"], key_file.display().to_string());
    assert!(
        !kc.dir.path().join("copy.db.key").exists(),
        "the master key is never copied next to the backup"
    );

    // A second backup to the same path is refused and leaves the first intact.
    let before = std::fs::read(&copy).expect("read the backup");
    let again = Command::new(BIN)
        .args(["--database-url", &kc.db_url, "backup"])
        .arg(&copy)
        .output()
        .expect("run keycard backup");
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(std::fs::read(&copy).expect("read the backup"), before);

    // Restore: the operator puts the key back beside the copy and serves it.
    std::fs::copy(&key_file, kc.dir.path().join("copy.db.key")).expect("copy the key");
    let mut restored = Keycard::new();
    restored.db_url = format!("sqlite://{}", copy.display());
    restored.start("serve").await;
    let keys = jwks(&kc).await;
    assert_eq!(keys.len(), 2, "the active and the next key");
    assert_eq!(jwks(&restored).await, keys, "the same signing keys");
    assert_eq!(client_credentials(&restored, "m2m", secret).await, 200);
    let users = restored.admin(&["user", "list"], None);
    assert!(
        users
            .as_array()
            .expect("user list")
            .iter()
            .any(|u| u["username"] == "alice"),
        "{users}"
    );
}

#[test]
fn backup_of_a_missing_database_is_refused_and_creates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.db");
    let copy = dir.path().join("copy.db");
    let out = Command::new(BIN)
        .arg("--database-url")
        .arg(format!("sqlite://{}", missing.display()))
        .arg("backup")
        .arg(&copy)
        .output()
        .expect("run keycard backup");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no SQLite database at"), "{stderr}");
    assert!(!missing.exists(), "the source was not created");
    assert!(!copy.exists(), "no copy was written");
}
