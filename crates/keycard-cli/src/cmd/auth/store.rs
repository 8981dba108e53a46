//! Where `keycard auth` keeps tokens: one JSON file per account (issuer, client, subject) in
//! `KEYCARD_AUTH_DIR`, or else the user's configuration directory (the `directories` crate:
//! `~/.config/keycard/auth` on Linux), so several issuers and accounts sit side by side; a
//! `default` file names the account used when none is chosen (the last one logged in).
//!
//! [`TokenStore::open`] finds (and creates, 0700) the directory; [`TokenStore::read`] and
//! [`TokenStore::save`] read and write an account; [`TokenStore::lock`] takes an exclusive lock
//! on the account's lock file, so a refresh — which rotates the refresh token — is serialised
//! across processes: two shells asking for a token at once make one refresh.
//!
//! Invariants: every file is created 0600 (written to a temporary file, then renamed into
//! place) and a token file whose permissions are wider is refused, not read; every wait for the
//! lock is bounded. The OS keyring is not used. The file format is a private shape of this
//! module ([`Account`] holds plain strings for the tokens it stores).

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use keycard_protocol::{ClientId, Issuer, ScopeSet};
use serde::{Deserialize, Serialize};

/// How long a process waits for another one's refresh before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// One signed-in account, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Account {
    pub(crate) issuer: Issuer,
    pub(crate) client_id: ClientId,
    /// `sub` of the id token, when the provider sent one.
    pub(crate) subject: Option<String>,
    /// A name to show (`preferred_username`, `email` or `name`).
    pub(crate) name: Option<String>,
    pub(crate) scope: Option<ScopeSet>,
    /// The `resource` asked for at login (RFC 8707), if any.
    pub(crate) resource: Option<String>,
    pub(crate) token_endpoint: String,
    pub(crate) revocation_endpoint: Option<String>,
    /// Access tokens, one per resource asked for (`None`: the login's).
    pub(crate) access: Vec<AccessToken>,
    pub(crate) refresh_token: Option<String>,
    /// Unix seconds of the last login or refresh.
    pub(crate) updated_at: i64,
}

/// An access token and when it expires (unix seconds; `None` when the provider did not say).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct AccessToken {
    pub(crate) resource: Option<String>,
    pub(crate) token: String,
    pub(crate) expires_at: Option<i64>,
}

impl Account {
    /// The stored access token for `resource`.
    pub(crate) fn access_for(&self, resource: Option<&str>) -> Option<&AccessToken> {
        self.access
            .iter()
            .find(|a| a.resource.as_deref() == resource)
    }

    /// Replaces the access token for its resource.
    pub(crate) fn put_access(&mut self, t: AccessToken) {
        self.access.retain(|a| a.resource != t.resource);
        self.access.push(t);
    }
}

/// The directory of token files.
#[derive(Debug)]
pub(crate) struct TokenStore {
    dir: PathBuf,
}

/// An exclusive lock on one account, released on drop (when the file closes).
#[derive(Debug)]
pub(crate) struct Locked {
    _file: File,
}

impl TokenStore {
    pub(crate) fn open() -> anyhow::Result<TokenStore> {
        let dir = match std::env::var_os("KEYCARD_AUTH_DIR") {
            Some(d) => PathBuf::from(d),
            None => directories::ProjectDirs::from("", "", "keycard")
                .ok_or_else(|| {
                    anyhow!("no home directory to keep tokens in; set KEYCARD_AUTH_DIR")
                })?
                .config_dir()
                .join("auth"),
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        Ok(TokenStore { dir })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of the account (issuer, client, subject): a hash, so any issuer URL makes a
    /// plain file name.
    pub(crate) fn path_for(&self, a: &Account) -> PathBuf {
        let key = format!(
            "{}\n{}\n{}",
            a.issuer.as_str(),
            a.client_id.as_str(),
            a.subject.as_deref().unwrap_or("")
        );
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
        let hex: String = d.as_ref()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.dir.join(format!("account-{hex}.json"))
    }

    /// Every stored account, with its file.
    pub(crate) fn list(&self) -> anyhow::Result<Vec<(PathBuf, Account)>> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.dir)
            .with_context(|| format!("reading {}", self.dir.display()))?;
        for e in entries {
            let path = e?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("account-") && name.ends_with(".json") {
                let a = self.read(&path)?;
                out.push((path, a));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Reads an account, refusing a file that others may read.
    pub(crate) fn read(&self, path: &Path) -> anyhow::Result<Account> {
        check_private(path)?;
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a token file", path.display()))
    }

    /// Writes an account atomically (0600 temporary file, then rename); returns its file.
    pub(crate) fn save(&self, a: &Account) -> anyhow::Result<PathBuf> {
        let path = self.path_for(a);
        let text = serde_json::to_string_pretty(a)?;
        write_private(&path, text.as_bytes())?;
        Ok(path)
    }

    pub(crate) fn remove(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::remove_file(path).with_context(|| format!("deleting {}", path.display()))?;
        let _ = std::fs::remove_file(lock_path(path));
        if self.default_path().as_deref() == Some(path) {
            let _ = std::fs::remove_file(self.dir.join("default"));
        }
        Ok(())
    }

    /// Makes this account the one used when none is named.
    pub(crate) fn set_default(&self, path: &Path) -> anyhow::Result<()> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        write_private(&self.dir.join("default"), name.as_bytes())
    }

    pub(crate) fn default_path(&self) -> Option<PathBuf> {
        let name = std::fs::read_to_string(self.dir.join("default")).ok()?;
        let name = name.trim();
        (name.starts_with("account-") && !name.contains('/')).then(|| self.dir.join(name))
    }

    /// Takes the account's exclusive lock, waiting at most [`LOCK_WAIT`] for another process.
    pub(crate) async fn lock(&self, path: &Path) -> anyhow::Result<Locked> {
        let lock = lock_path(path);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock)
            .with_context(|| format!("opening {}", lock.display()))?;
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Locked { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(std::fs::TryLockError::WouldBlock) => bail!(
                    "another keycard process has held {} for {} s; try again",
                    lock.display(),
                    LOCK_WAIT.as_secs()
                ),
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("locking {}", lock.display()));
                }
            }
        }
    }
}

fn lock_path(path: &Path) -> PathBuf {
    path.with_extension("lock")
}

/// Refuses a token file that anyone but its owner may read or write.
fn check_private(path: &Path) -> anyhow::Result<()> {
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "refusing to use {}: its permissions are {:o}, wider than 600 (run chmod 600 on it, \
             or log in again)",
            path.display(),
            mode & 0o777
        );
    }
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    // The mode applies only to a new file: make sure a leftover one is private too.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account {
            issuer: Issuer::from_wire("https://id.example.com").unwrap(),
            client_id: ClientId::parse("cli").unwrap(),
            subject: Some("u1".into()),
            name: None,
            scope: None,
            resource: None,
            token_endpoint: "https://id.example.com/token".into(),
            revocation_endpoint: None,
            access: vec![],
            refresh_token: Some("rt".into()),
            updated_at: 0,
        }
    }

    #[test]
    fn token_files_are_0600_and_wider_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore {
            dir: dir.path().to_owned(),
        };
        let path = store.save(&account()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            store.read(&path).unwrap().refresh_token.as_deref(),
            Some("rt")
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = store.read(&path).unwrap_err().to_string();
        assert!(e.contains("wider than 600"), "{e}");
        // Another subject at the same issuer is another file.
        let mut other = account();
        other.subject = Some("u2".into());
        assert_ne!(store.path_for(&other), path);
    }
}
