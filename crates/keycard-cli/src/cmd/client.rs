//! `keycard client`: register, list and remove OAuth clients (RFC 6749 §2).
//!
//! [`run`] executes one [`ClientCmd`] against the store. A confidential client gets a fresh
//! secret, printed once; only its hash is stored.
//!
//! Registration refuses what the server would refuse later: a client that is neither or both
//! confidential and public, implicit and password grants, `client_credentials` on a public
//! client, `authorization_code` without a redirect URI, audiences of unregistered APIs, and an
//! id that is taken (by a client, or as a user's id). Redirect URIs are checked by
//! `RedirectUri::register`.
//!
//! Not here: what removing a client takes with it (`Store::remove_client`), and the rules the
//! server applies to a client's requests (`keycard_protocol::policy`).

use anyhow::bail;
use clap::Subcommand;
use keycard_os::{SystemClock, new_secret};
use keycard_protocol::policy::{BackchannelLogout, Client, GrantType};
use keycard_protocol::redirect::RedirectUri;
use keycard_protocol::{Audience, ClientId, ClientSecret, Clock as _, ScopeSet};
use keycard_store::{Revocation, Store, StoreError};
use serde_json::json;

use crate::cmd::say;

#[derive(Subcommand, Debug)]
pub(crate) enum ClientCmd {
    /// Register a client. Confidential clients get a secret, shown once.
    Add {
        #[arg(value_parser = ClientId::parse_strict)]
        client_id: ClientId,
        #[arg(long)]
        name: Option<String>,
        /// A confidential client (has a secret).
        #[arg(long, conflicts_with = "public")]
        confidential: bool,
        /// A public client (native app or SPA: no secret, PKCE only).
        #[arg(long)]
        public: bool,
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// authorization_code, refresh_token, client_credentials or device_code (repeatable).
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// Allowed scopes, space separated.
        #[arg(long, default_value = "")]
        scope: String,
        /// Allowed API audiences (repeatable).
        #[arg(long = "audience", value_parser = Audience::parse)]
        audiences: Vec<Audience>,
        /// Skip the consent page for this client (confidential clients only: a public
        /// client's identity is not proven).
        #[arg(long)]
        first_party: bool,
        /// An API this client serves as a resource server: it may introspect tokens for it
        /// (repeatable).
        #[arg(long = "resource-server", value_parser = Audience::parse)]
        resource_servers: Vec<Audience>,
        /// May read the revocation feed (gateways, APIs that validate locally).
        #[arg(long)]
        feed: bool,
        /// Where RP-initiated logout may return to (repeatable; matched exactly).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Where back-channel logout tokens are sent (OIDC Back-Channel Logout).
        #[arg(long)]
        backchannel_logout_uri: Option<String>,
        /// Logout tokens for this client must carry `sid`.
        #[arg(long, requires = "backchannel_logout_uri")]
        backchannel_logout_session_required: bool,
    },
    List,
    Remove {
        #[arg(value_parser = ClientId::parse_strict)]
        client_id: ClientId,
    },
}

pub(crate) async fn run<S: Store>(
    store: &S,
    c: ClientCmd,
    r: Revocation,
    json_out: bool,
) -> anyhow::Result<()> {
    match c {
        ClientCmd::Add {
            client_id,
            name,
            confidential,
            public,
            redirect_uris,
            grants,
            scope,
            audiences,
            first_party,
            resource_servers,
            feed,
            post_logout_redirect_uris,
            backchannel_logout_uri,
            backchannel_logout_session_required,
        } => {
            if confidential == public {
                bail!("say --confidential or --public");
            }
            if first_party && public {
                bail!(
                    "--first-party needs a confidential client: a public client's identity is not proven (OAuth 2.1 §7.3.1)"
                );
            }
            if (feed || !resource_servers.is_empty()) && public {
                bail!(
                    "--feed and --resource-server need a confidential client (they authenticate)"
                );
            }
            let post_logout_redirect_uris = post_logout_redirect_uris
                .iter()
                .map(|r| RedirectUri::register(r).map_err(|e| anyhow::anyhow!("{r}: {e}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let backchannel_logout = backchannel_logout_uri
                .map(|u| {
                    BackchannelLogout::register(&u, backchannel_logout_session_required)
                        .map_err(|e| anyhow::anyhow!("{u}: {e}"))
                })
                .transpose()?;
            let redirect_uris = redirect_uris
                .iter()
                .map(|r| RedirectUri::register(r).map_err(|e| anyhow::anyhow!("{r}: {e}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut grant_types = Vec::new();
            for g in if grants.is_empty() {
                vec!["authorization_code".to_owned()]
            } else {
                grants
            } {
                grant_types.push(GrantType::parse(&g).ok_or_else(|| {
                    anyhow::anyhow!("unknown grant {g:?} (implicit and password are not offered)")
                })?);
            }
            if grant_types.contains(&GrantType::ClientCredentials) && public {
                bail!("client_credentials needs a confidential client");
            }
            if grant_types == [GrantType::RefreshToken] {
                bail!("refresh_token alone grants nothing: add authorization_code or device_code");
            }
            if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
                bail!("the authorization_code grant needs at least one --redirect-uri");
            }
            for a in audiences.iter().chain(&resource_servers) {
                if store.api(a).await?.is_none() {
                    bail!("unknown API {a}; add it first with `keycard api add {a}`");
                }
            }
            let secret: Option<ClientSecret> = confidential.then(new_secret);
            let client = Client {
                id: client_id.clone(),
                name: name.unwrap_or_else(|| client_id.to_string()),
                secret_hash: secret.as_ref().map(ClientSecret::hash),
                redirect_uris,
                grant_types,
                scopes: ScopeSet::parse(&scope).map_err(|e| anyhow::anyhow!("{e}"))?,
                audiences,
                first_party,
                resource_servers,
                feed,
                post_logout_redirect_uris,
                backchannel_logout,
            };
            store
                .create_client(&client, SystemClock.now())
                .await
                .map_err(|e| match e {
                    // The store refuses an id that a client has, or that a user has as its id:
                    // a machine token's `sub` is its client id and must never name a user.
                    StoreError::Conflict => anyhow::anyhow!(
                        "cannot add client {client_id}: the id is taken, by another client or \
                         as a user's id (a machine token's sub must never look like a user's, \
                         RFC 9700 §4.15)"
                    ),
                    other => anyhow::anyhow!("cannot add client: {other}"),
                })?;
            let mut v = client_json(&client);
            if let Some(s) = &secret {
                v["client_secret"] = s.secret().into();
            }
            let text = match &secret {
                Some(s) => format!(
                    "added client {client_id}\nclient_secret: {}\n(shown once; only its hash is stored)",
                    s.secret()
                ),
                None => format!("added public client {client_id}"),
            };
            say(json_out, v, &text);
        }
        ClientCmd::List => {
            let cs = store.list_clients().await?;
            if json_out {
                println!(
                    "{}",
                    serde_json::Value::Array(cs.iter().map(client_json).collect())
                );
            } else {
                for c in cs {
                    println!(
                        "{}\t{}\t{}",
                        c.id,
                        if c.is_confidential() {
                            "confidential"
                        } else {
                            "public"
                        },
                        c.name
                    );
                }
            }
        }
        ClientCmd::Remove { client_id } => {
            store
                .remove_client(&client_id, r)
                .await
                .map_err(|e| anyhow::anyhow!("cannot remove {client_id}: {e}"))?;
            say(
                json_out,
                json!({ "removed": client_id.as_str() }),
                &format!("removed client {client_id}; its grants are revoked"),
            );
        }
    }
    Ok(())
}

fn client_json(c: &Client) -> serde_json::Value {
    json!({
        "client_id": c.id.as_str(), "name": c.name, "type": if c.is_confidential() { "confidential" } else { "public" },
        "redirect_uris": c.redirect_uris.iter().map(RedirectUri::as_str).collect::<Vec<_>>(),
        "grant_types": c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "scope": c.scopes.to_wire(), "audiences": c.audiences, "first_party": c.first_party,
        "resource_servers": c.resource_servers, "feed": c.feed,
        "post_logout_redirect_uris": c.post_logout_redirect_uris.iter().map(RedirectUri::as_str).collect::<Vec<_>>(),
        "backchannel_logout_uri": c.backchannel_logout.as_ref().map(|b| b.uri.as_str()),
        "backchannel_logout_session_required": c.backchannel_logout.as_ref().is_some_and(|b| b.session_required),
    })
}
