//! Configuration: an optional TOML file, overridden by `KEYCARD_*` environment variables and
//! flags (clap reads both), parsed once into validated settings.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keycard_jose::Alg;
use keycard_protocol::Issuer;
use keycard_server::MasterKey;
use keycard_server::Settings;
use keycard_store_sql::AnyStoreUrl;
use serde::Deserialize;

use crate::cmd::serve::ServeArgs;

/// The TOML file's shape; unknown keys are an error so typos do not pass silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub(crate) database_url: Option<String>,
    pub(crate) addr: Option<String>,
    // Listener limits, trusted proxies and the metrics listener (`crate::listen`).
    pub(crate) header_read_timeout: Option<u64>,
    pub(crate) idle_timeout: Option<u64>,
    pub(crate) body_timeout: Option<u64>,
    pub(crate) request_timeout: Option<u64>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) max_connections_per_peer: Option<usize>,
    pub(crate) shutdown_grace: Option<u64>,
    pub(crate) trusted_proxies: Option<Vec<String>>,
    pub(crate) forwarded_header: Option<String>,
    pub(crate) metrics_addr: Option<String>,
    pub(crate) issuer: Option<String>,
    pub(crate) signing_alg: Option<String>,
    pub(crate) access_token_ttl: Option<i64>,
    pub(crate) refresh_token_ttl: Option<i64>,
    pub(crate) session_ttl: Option<i64>,
    pub(crate) grant_ttl: Option<i64>,
    pub(crate) device_code_ttl: Option<i64>,
    pub(crate) device_poll_interval: Option<i64>,
    pub(crate) key_rotation_days: Option<i64>,
    pub(crate) txn_per_minute: Option<u32>,
    pub(crate) log_format: Option<String>,
    /// Path of the file holding the key that encrypts signing keys at rest.
    pub(crate) master_key_file: Option<PathBuf>,
}

impl FileConfig {
    pub(crate) fn load(path: Option<&Path>) -> anyhow::Result<FileConfig> {
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))
            }
            None => Ok(FileConfig::default()),
        }
    }
}

pub(crate) fn addr(file: &FileConfig, args: &ServeArgs) -> String {
    args.addr
        .clone()
        .or(file.addr.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".into())
}

pub(crate) fn settings(file: &FileConfig, args: &ServeArgs) -> anyhow::Result<Settings> {
    let addr = addr(file, args);
    let issuer_s = args
        .issuer
        .clone()
        .or(file.issuer.clone())
        .unwrap_or_else(|| format!("http://{addr}"));
    let loopback = url::Url::parse(&issuer_s)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| matches!(h, "127.0.0.1" | "localhost" | "[::1]"))
        })
        .unwrap_or(false);
    let issuer =
        Issuer::parse(&issuer_s, loopback || args.allow_http_issuer).map_err(anyhow::Error::msg)?;
    let mut s = Settings::new(issuer);
    if let Some(a) = args.signing_alg.clone().or(file.signing_alg.clone()) {
        s.signing_alg = Alg::parse(&a)
            .ok_or_else(|| anyhow::anyhow!("unknown signing alg {a} (RS256, ES256, EdDSA)"))?;
    }
    let ttl =
        |flag: Option<i64>, file: Option<i64>, default: i64, name: &str| -> anyhow::Result<i64> {
            let v = flag.or(file).unwrap_or(default);
            if v < 60 {
                bail!("{name} must be at least 60 seconds");
            }
            Ok(v)
        };
    s.access_token_ttl_secs = ttl(
        args.access_token_ttl,
        file.access_token_ttl,
        s.access_token_ttl_secs,
        "access_token_ttl",
    )?;
    s.refresh_token_ttl_secs = ttl(
        args.refresh_token_ttl,
        file.refresh_token_ttl,
        s.refresh_token_ttl_secs,
        "refresh_token_ttl",
    )?;
    s.session_ttl_secs = ttl(
        args.session_ttl,
        file.session_ttl,
        s.session_ttl_secs,
        "session_ttl",
    )?;
    s.grant_ttl_secs = ttl(
        args.grant_ttl,
        file.grant_ttl,
        s.grant_ttl_secs,
        "grant_ttl",
    )?;
    s.device_code_ttl_secs = ttl(
        args.device_code_ttl,
        file.device_code_ttl,
        s.device_code_ttl_secs,
        "device_code_ttl",
    )?;
    match args.device_poll_interval.or(file.device_poll_interval) {
        Some(i) if (1..=60).contains(&i) => s.device_poll_interval_secs = i,
        Some(_) => bail!("device_poll_interval must be 1 to 60 seconds"),
        None => {}
    }
    if s.grant_ttl_secs < s.refresh_token_ttl_secs {
        anyhow::bail!("grant_ttl must be at least refresh_token_ttl");
    }
    match args.key_rotation_days.or(file.key_rotation_days) {
        Some(0) => s.key_rotation_secs = None,
        Some(d) if (1..=3650).contains(&d) => s.key_rotation_secs = Some(d * 24 * 3600),
        Some(_) => anyhow::bail!("key_rotation_days must be 0 (off) or 1 to 3650"),
        None => {}
    }
    match args.txn_per_minute.or(file.txn_per_minute) {
        Some(n) if (1..=100_000).contains(&n) => s.txn_per_minute = n,
        Some(_) => anyhow::bail!("txn_per_minute must be 1 to 100000"),
        None => {}
    }
    Ok(s)
}

/// Where the master key lives: `KEYCARD_MASTER_KEY_FILE`, the config file, or `<database>.key`
/// next to a SQLite database. A PostgreSQL URL names no file to put it next to (and deriving a
/// path from it would copy its password into the path), so there it must be configured.
pub(crate) fn master_key_path(file: &FileConfig, db_url: &str) -> Option<PathBuf> {
    if let Ok(p) = std::env::var("KEYCARD_MASTER_KEY_FILE") {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = &file.master_key_file {
        return Some(p.clone());
    }
    let AnyStoreUrl::Sqlite(url) = AnyStoreUrl::parse(db_url).ok()? else {
        return None;
    };
    let mut key = keycard_store_sql::sqlite::path_of_url(&url)
        .as_os_str()
        .to_owned();
    key.push(".key");
    Some(PathBuf::from(key))
}

/// Where the master key comes from, for messages: the environment variable's name or the file's
/// path (never the key).
pub(crate) fn master_key_source(file: &FileConfig, db_url: &str) -> String {
    if std::env::var_os("KEYCARD_MASTER_KEY").is_some() {
        return "KEYCARD_MASTER_KEY".into();
    }
    match master_key_path(file, db_url) {
        Some(p) => p.display().to_string(),
        None => "(not configured: set KEYCARD_MASTER_KEY or KEYCARD_MASTER_KEY_FILE)".into(),
    }
}

/// `url` with the password of its userinfo and any `password` query parameter replaced by
/// `***`, for printing: `postgres://user:***@host/db`. Text that is not a URL is printed as is.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The last `@` ends the userinfo even when a password holds a raw `/`, `?` or `@`; an `@`
    // later in the URL only makes more of it hidden.
    let (user, tail) = match rest.rsplit_once('@') {
        Some((userinfo, tail)) => match userinfo.split_once(':') {
            Some((user, _password)) => (format!("{user}:***@"), tail),
            None => (format!("{userinfo}@"), tail),
        },
        None => (String::new(), rest),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{user}{tail}")
}

/// Loads the master key from `KEYCARD_MASTER_KEY` (base64url, 32 bytes) or its file, creating
/// the file with mode 0600 on first use.
pub(crate) fn master_key(file: &FileConfig, db_url: &str) -> anyhow::Result<MasterKey> {
    if let Ok(v) = std::env::var("KEYCARD_MASTER_KEY") {
        return parse_key(v.trim()).context("KEYCARD_MASTER_KEY");
    }
    if db_url.contains("://")
        && !db_url.starts_with("sqlite:")
        && std::env::var("KEYCARD_MASTER_KEY_FILE").is_err()
        && file.master_key_file.is_none()
    {
        // Every node must decrypt the same signing keys, so a generated per-machine file is
        // not a sensible default for a shared database.
        bail!(
            "with PostgreSQL, set KEYCARD_MASTER_KEY or KEYCARD_MASTER_KEY_FILE (the same on every node)"
        );
    }
    let Some(path) = master_key_path(file, db_url) else {
        bail!("set KEYCARD_MASTER_KEY or KEYCARD_MASTER_KEY_FILE");
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            parse_key(text.trim()).with_context(|| format!("reading master key {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = MasterKey::generate();
            write_private(&path, &URL_SAFE_NO_PAD.encode(key.bytes()))?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading master key {}", path.display())),
    }
}

fn parse_key(s: &str) -> anyhow::Result<MasterKey> {
    let b = URL_SAFE_NO_PAD
        .decode(s)
        .context("the master key must be base64url")?;
    let arr: [u8; 32] = b
        .try_into()
        .map_err(|_| anyhow::anyhow!("the master key must be 32 bytes"))?;
    Ok(MasterKey::from_bytes(arr))
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating master key {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_passwords_only() {
        let rows = [
            (
                "postgres://keycard:s3cret@db.internal:5432/keycard",
                "postgres://keycard:***@db.internal:5432/keycard",
            ),
            (
                "postgres://keycard:p@ss:w@rd@db/keycard?sslmode=require",
                "postgres://keycard:***@db/keycard?sslmode=require",
            ),
            (
                "postgres://keycard@db/keycard?password=s3cret&sslmode=require",
                "postgres://keycard@db/keycard?password=***&sslmode=require",
            ),
            ("postgres://u:pa/ss?x@db/k", "postgres://u:***@db/k"),
            ("postgres://db/keycard", "postgres://db/keycard"),
            (
                "sqlite:///var/lib/keycard.db",
                "sqlite:///var/lib/keycard.db",
            ),
            ("keycard.db", "keycard.db"),
        ];
        for (url, want) in rows {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    #[test]
    fn no_key_file_is_derived_from_a_postgres_url() {
        let file = FileConfig::default();
        if std::env::var_os("KEYCARD_MASTER_KEY_FILE").is_some() {
            return;
        }
        assert_eq!(
            master_key_path(&file, "postgres://u:s3cret@db/keycard"),
            None
        );
        assert_eq!(
            master_key_path(&file, "sqlite://data/keycard.db"),
            Some(PathBuf::from("data/keycard.db.key"))
        );
    }
}
