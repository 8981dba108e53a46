//! What Keycard leaves on disk and prints: the database, its WAL and shared-memory files and
//! backups are owner-only, and `keycard config-check` never prints a database password.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use crate::{BIN, Keycard};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_wal_shm_and_backups_are_created_owner_only() {
    let kc = Keycard::serve().await;
    let dir = kc.dir.path();
    for name in [
        "keycard.db",
        "keycard.db-wal",
        "keycard.db-shm",
        "keycard.db.key",
    ] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    let copy = dir.join("copy.db");
    kc.admin(&["backup", copy.to_str().expect("UTF-8 path")], None);
    assert_eq!(mode(&copy), 0o600, "the backup");
}

#[test]
fn config_check_redacts_database_credentials_and_derives_no_key_path_from_them() {
    let out = Command::new(BIN)
        .args([
            "--database-url",
            "postgres://keycard:s3cret-pw@db.example:5432/keycard?sslmode=require",
            "config-check",
            "--trusted-proxy",
            "10.0.0.0/8",
            "--trusted-proxy",
            "fd00::/8",
            "--max-connections",
            "500",
        ])
        .env_remove("KEYCARD_MASTER_KEY_FILE")
        .env_remove("KEYCARD_MASTER_KEY")
        .env_remove("KEYCARD_CONFIG")
        .output()
        .expect("run keycard config-check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("s3cret-pw"), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(
        v["database_url"],
        "postgres://keycard:***@db.example:5432/keycard?sslmode=require"
    );
    assert_eq!(v["master_key_file"], serde_json::Value::Null, "{v}");
    let listen = &v["listen"];
    assert_eq!(listen["max_connections"], 500);
    assert_eq!(listen["max_connections_per_peer"], 256);
    assert_eq!(listen["header_read_timeout"], 10);
    assert_eq!(listen["idle_timeout"], 60);
    assert_eq!(listen["body_timeout"], 30);
    assert_eq!(listen["request_timeout"], 60);
    assert_eq!(listen["shutdown_grace"], 20);
    assert_eq!(
        listen["trusted_proxies"],
        serde_json::json!(["10.0.0.0/8", "fd00::/8"])
    );
    assert_eq!(listen["forwarded_header"], "x-forwarded-for");
    assert_eq!(listen["metrics_addr"], serde_json::Value::Null);
}
