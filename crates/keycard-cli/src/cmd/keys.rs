//! `keycard keys`: list the signing keys, rotate them, revoke one in an emergency.
//!
//! [`run`] executes one [`KeysCmd`]. Rotation is `keycard_server::keys::rotate`: the published
//! next key becomes active, the active one is retired for the longest token lifetime (so the
//! tokens it signed keep verifying), and a new next key is published.
//!
//! Rotation needs the keys a first `keycard serve` creates, and the master key that encrypts
//! them at rest; a running server picks up the change on its next key reload.
//!
//! Not here: key generation and encryption (`keycard_server::keys`, `keycard_server::crypto`).

use anyhow::bail;
use clap::Subcommand;
use keycard_jose::Alg;
use keycard_os::SystemClock;
use keycard_protocol::{Clock as _, Kid};
use keycard_server::MasterKey;
use keycard_store::Store;
use serde_json::json;

use crate::cmd::say;
use crate::cmd::serve::ServeArgs;
use crate::config;

#[derive(Subcommand, Debug)]
pub(crate) enum KeysCmd {
    List,
    /// Activate the published next key, retire the active one, publish a new next key.
    Rotate {
        #[arg(long)]
        signing_alg: Option<String>,
    },
    /// Remove a key at once (it was compromised): it leaves the JWKS on every server within
    /// seconds, the tokens it signed stop working, and a fresh next key replaces it.
    Revoke {
        kid: String,
        #[arg(long)]
        signing_alg: Option<String>,
    },
}

pub(crate) async fn run<S: Store>(
    store: &S,
    master: &MasterKey,
    file: &config::FileConfig,
    c: KeysCmd,
    json_out: bool,
) -> anyhow::Result<()> {
    match c {
        KeysCmd::List => {
            let keys = store.signing_keys().await?;
            let v: Vec<_> = keys
                .iter()
                .map(|k| json!({ "kid": k.kid, "alg": k.alg, "state": k.state.as_str(), "created_at": k.created_at.secs(), "retire_until": k.retire_until.map(|t| t.secs()) }))
                .collect();
            if json_out {
                println!("{}", serde_json::Value::Array(v));
            } else {
                for k in keys {
                    println!("{}\t{}\t{}", k.kid, k.alg, k.state.as_str());
                }
            }
        }
        KeysCmd::Rotate { signing_alg } => {
            let alg = alg_of(signing_alg, file)?;
            if !store
                .signing_keys()
                .await?
                .iter()
                .any(|k| k.state == keycard_store::KeyState::Next)
            {
                bail!("no keys yet: start `keycard serve` once first");
            }
            let s = config::settings(file, &ServeArgs::default())?;
            let now = SystemClock.now();
            keycard_server::rotate_keys(store, master, alg, now, s.max_jwt_ttl(), None)
                .await
                .map_err(anyhow::Error::msg)?;
            say(
                json_out,
                json!({ "rotated": true }),
                "rotated: the next key is active, the old one is retired, a new next key is published",
            );
        }
        KeysCmd::Revoke { kid, signing_alg } => {
            let alg = alg_of(signing_alg, file)?;
            let kid = Kid::parse(&kid)?;
            let s = config::settings(file, &ServeArgs::default())?;
            keycard_server::revoke_key(
                store,
                master,
                &kid,
                alg,
                SystemClock.now(),
                s.max_jwt_ttl(),
            )
            .await
            .map_err(|e| match e {
                keycard_store::StoreError::NotFound => anyhow::anyhow!("no key {kid}"),
                other => anyhow::anyhow!("cannot revoke {kid}: {other}"),
            })?;
            say(
                json_out,
                json!({ "revoked": kid.as_str() }),
                &format!(
                    "revoked {kid}: it leaves the JWKS and its tokens stop working within seconds; \
                     a new next key is published"
                ),
            );
        }
    }
    Ok(())
}

/// The algorithm for new keys: the flag, the configuration file, or RS256.
fn alg_of(flag: Option<String>, file: &config::FileConfig) -> anyhow::Result<Alg> {
    let name = flag
        .or(file.signing_alg.clone())
        .unwrap_or_else(|| "RS256".into());
    Alg::parse(&name).ok_or_else(|| anyhow::anyhow!("unknown signing alg {name}"))
}
