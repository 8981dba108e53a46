//! `keycard keys`: list the signing keys and rotate them.
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
use keycard_protocol::Clock as _;
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
            let alg_name = signing_alg
                .or(file.signing_alg.clone())
                .unwrap_or_else(|| "RS256".into());
            let alg = Alg::parse(&alg_name)
                .ok_or_else(|| anyhow::anyhow!("unknown signing alg {alg_name}"))?;
            if !store
                .signing_keys()
                .await?
                .iter()
                .any(|k| k.state == keycard_store::KeyState::Next)
            {
                bail!("no keys yet: start `keycard serve` once first");
            }
            let s = config::settings(file, &ServeArgs::default())?;
            keycard_server::rotate_keys(store, master, alg, SystemClock.now(), s.max_jwt_ttl())
                .await
                .map_err(anyhow::Error::msg)?;
            say(
                json_out,
                json!({ "rotated": true }),
                "rotated: the next key is active, the old one is retired, a new next key is published",
            );
        }
    }
    Ok(())
}
