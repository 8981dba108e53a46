//! The demo: the data `keycard demo` seeds, and `keycard demo-api`, the photos/orders resource
//! server that the demo's tokens are for.
//!
//! [`seed`] creates or refreshes the demo user `alice`, the browser app, the `demo-m2m`
//! machine client and the Photos API, then prints how to use them. [`run_api`] serves
//! `crate::demo_api` with the flags in [`DemoApiArgs`].
//!
//! Seeding runs on every start and can run again on the same database: the API and the user
//! are kept (the user's password is reset) and the two clients are removed and created again,
//! so the printed password and client secret are new each time.
//!
//! Not here: serving the authorization server (`super::serve`), the demo page itself
//! (`keycard_server::routes::demo`), and the demo API's routes (`crate::demo_api`).

use std::io::Write as _;

use clap::Args;
use keycard_os::{new_id, new_secret};
use keycard_protocol::policy::{Api, Client, GrantType};
use keycard_protocol::redirect::RedirectUri;
use keycard_protocol::{Audience, ClientId, ClientSecret, ScopeSet, UserId, Username};
use keycard_server::{DEMO_API, DEMO_CLIENT, Settings, demo_redirect_uri};
use keycard_store::{PasswordHash, Store, User};

use crate::cmd::serve::init_logging;
use crate::demo_api;

#[derive(Args, Debug)]
pub(crate) struct DemoApiArgs {
    #[arg(long, default_value = "127.0.0.1:9090")]
    addr: String,
    /// The Keycard issuer URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    issuer: String,
    /// This API's audience identifier.
    #[arg(long, default_value = "https://api.example.com")]
    audience: String,
}

/// `keycard demo-api`.
pub(crate) async fn run_api(args: DemoApiArgs) -> anyhow::Result<()> {
    init_logging("text");
    demo_api::run(&args.addr, &args.issuer, &args.audience).await
}

/// A revocation the demo's re-seeding makes at start-up.
fn revocation(s: &Settings, now: keycard_protocol::UnixTime) -> keycard_store::Revocation {
    keycard_store::Revocation {
        at: now,
        until: now.plus(s.max_jwt_ttl()),
    }
}

/// Creates (or refreshes) the demo user, app, machine client and API, and prints how to use them.
pub(crate) async fn seed<S: Store>(
    store: &S,
    s: &Settings,
    now: keycard_protocol::UnixTime,
) -> anyhow::Result<()> {
    let iss = s.issuer.as_str();
    let api = Audience::parse(DEMO_API)?;
    let alice = Username::parse("alice")?;
    if store.api(&api).await?.is_none() {
        store
            .create_api(
                &Api {
                    identifier: api.clone(),
                    name: "Photos API".into(),
                    scopes: ScopeSet::parse("photos:read orders:write")?,
                    access_token_ttl_secs: 3600,
                },
                now,
            )
            .await?;
    }
    let password: String = new_secret::<keycard_protocol::kind::CsrfToken>()
        .secret()
        .chars()
        .take(16)
        .collect();
    let hash = PasswordHash::from_phc(
        keycard_server::hash_password(&password).map_err(anyhow::Error::msg)?,
    );
    if store.user_by_username(&alice).await?.is_some() {
        store
            .set_password(&alice, &hash, revocation(s, now))
            .await?;
    } else {
        store
            .create_user(&User {
                id: new_id::<UserId>(),
                username: alice,
                password_hash: hash,
                name: Some("Alice Example".into()),
                given_name: Some("Alice".into()),
                family_name: Some("Example".into()),
                picture: None,
                email: Some("alice@example.com".into()),
                email_verified: true,
                disabled: false,
                created_at: now,
            })
            .await?;
    }
    for id in [DEMO_CLIENT, "demo-m2m"] {
        let id = ClientId::parse(id)?;
        if store.client(&id).await?.is_some() {
            store.remove_client(&id, revocation(s, now)).await?;
        }
    }
    store
        .create_client(
            &Client {
                id: ClientId::parse(DEMO_CLIENT)?,
                name: "Demo Photo App".into(),
                secret_hash: None,
                redirect_uris: vec![
                    RedirectUri::register(&demo_redirect_uri(iss)).map_err(anyhow::Error::msg)?,
                    RedirectUri::register("https://example-app.com/redirect")
                        .map_err(anyhow::Error::msg)?,
                ],
                grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
                scopes: ScopeSet::parse("openid profile email offline_access photos:read")?,
                audiences: vec![api.clone()],
                first_party: false,
                resource_servers: vec![],
                feed: false,
                post_logout_redirect_uris: vec![],
                backchannel_logout: None,
            },
            now,
        )
        .await?;
    let m2m_secret: ClientSecret = new_secret();
    store
        .create_client(
            &Client {
                id: ClientId::parse("demo-m2m")?,
                name: "Demo back-end job".into(),
                secret_hash: Some(m2m_secret.hash()),
                redirect_uris: vec![],
                grant_types: vec![GrantType::ClientCredentials],
                scopes: ScopeSet::parse("photos:read orders:write")?,
                audiences: vec![api.clone()],
                first_party: false,
                resource_servers: vec![],
                feed: false,
                post_logout_redirect_uris: vec![],
                backchannel_logout: None,
            },
            now,
        )
        .await?;
    println!(
        "\nKeycard demo is starting at {iss}\n\n  Browser:  open {iss}/demo and sign in as  alice / {password}\n  Machine:  curl -s -X POST {iss}/token -d grant_type=client_credentials \\\n              -d client_id=demo-m2m -d client_secret={}\n\n  (The password and secret are new on every `keycard demo` start.)\n",
        m2m_secret.secret()
    );
    let _ = std::io::stdout().flush();
    Ok(())
}
