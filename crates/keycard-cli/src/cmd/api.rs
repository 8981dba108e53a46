//! `keycard api`: register, list and remove APIs, the resource servers that access tokens
//! are issued for (RFC 8707 audiences).
//!
//! [`run`] executes one [`ApiCmd`] against the store.
//!
//! The identifier must be a valid resource indicator (`keycard_protocol::policy::target`),
//! and an API's own access-token lifetime lies between 60 seconds and one day.
//!
//! Not here: which clients may ask for an API (`keycard client add --audience`).

use anyhow::bail;
use clap::Subcommand;
use keycard_os::SystemClock;
use keycard_protocol::policy::Api;
use keycard_protocol::{Audience, Clock as _, ScopeSet};
use keycard_store::Store;
use serde_json::json;

use crate::cmd::say;

#[derive(Subcommand, Debug)]
pub(crate) enum ApiCmd {
    /// Register an API, identified by its audience (e.g. https://api.example.com).
    Add {
        #[arg(value_parser = parse_api)]
        identifier: Audience,
        #[arg(long)]
        name: Option<String>,
        /// The API's scopes, space separated.
        #[arg(long, default_value = "")]
        scope: String,
        /// Access-token lifetime for this API, in seconds.
        #[arg(long, default_value_t = 3600)]
        token_ttl: i64,
    },
    List,
    Remove {
        #[arg(value_parser = parse_api)]
        identifier: Audience,
    },
}

/// An API identifier is a resource indicator (RFC 8707 §2: an absolute URI, no fragment).
fn parse_api(s: &str) -> Result<Audience, keycard_protocol::OAuthError> {
    keycard_protocol::policy::target(Some(s), None)?
        .ok_or_else(|| keycard_protocol::OAuthError::invalid_target("empty identifier"))
}

pub(crate) async fn run<S: Store>(store: &S, c: ApiCmd, json_out: bool) -> anyhow::Result<()> {
    let api_json = |a: &Api| json!({ "identifier": a.identifier, "name": a.name, "scope": a.scopes.to_wire(), "token_ttl": a.access_token_ttl_secs });
    match c {
        ApiCmd::Add {
            identifier,
            name,
            scope,
            token_ttl,
        } => {
            if !(60..=86_400).contains(&token_ttl) {
                bail!("--token-ttl must be between 60 and 86400 seconds");
            }
            let api = Api {
                name: name.unwrap_or_else(|| identifier.to_string()),
                identifier,
                scopes: ScopeSet::parse(&scope).map_err(|e| anyhow::anyhow!("{e}"))?,
                access_token_ttl_secs: token_ttl,
            };
            store
                .create_api(&api, SystemClock.now())
                .await
                .map_err(|e| anyhow::anyhow!("cannot add API: {e}"))?;
            say(
                json_out,
                api_json(&api),
                &format!("added API {}", api.identifier),
            );
        }
        ApiCmd::List => {
            let apis = store.list_apis().await?;
            if json_out {
                println!(
                    "{}",
                    serde_json::Value::Array(apis.iter().map(api_json).collect())
                );
            } else {
                for a in apis {
                    println!("{}\t{}", a.identifier, a.scopes.to_wire());
                }
            }
        }
        ApiCmd::Remove { identifier } => {
            store
                .remove_api(&identifier)
                .await
                .map_err(|e| anyhow::anyhow!("cannot remove {identifier}: {e}"))?;
            say(
                json_out,
                json!({ "removed": identifier.as_str() }),
                &format!("removed API {identifier}"),
            );
        }
    }
    Ok(())
}
