//! What `keycard demo` puts in its database: the demo user `alice` with a fresh random
//! password, the Photos API, and the clients of every part of the demo — the web app's
//! confidential client (`demo-web`, the BFF), the gateway's (`demo-gateway`: introspection and
//! the revocation feed), the demo API's (`demo-api`: introspection), a machine client
//! (`demo-m2m`) and the public `demo` app of the README's walk-through by hand.
//!
//! Seeding runs on every start and again on the same database: the API and the user are kept
//! (the password is reset, which also revokes the user's old tokens) and the clients are
//! removed and created again, so every printed secret is new each time and tokens from an
//! earlier run stop working.

use keycard_os::{new_id, new_secret};
use keycard_protocol::policy::{Api, BackchannelLogout, Client, GrantType};
use keycard_protocol::redirect::RedirectUri;
use keycard_protocol::{
    Audience, ClientId, ClientSecret, ScopeSet, UnixTime, UserId, Username, kind,
};
use keycard_server::{DEMO_API, DEMO_CLIENT, Settings, demo_redirect_uri};
use keycard_store::{PasswordHash, Revocation, Store, User};

/// The demo's machine client.
pub(crate) const M2M: &str = "demo-m2m";
/// The web app's client (the BFF).
pub(crate) const WEB: &str = "demo-web";
/// The gateway's client.
pub(crate) const GATEWAY: &str = "demo-gateway";
/// The demo API's own client, for its introspection.
pub(crate) const API_CLIENT: &str = "demo-api";

/// The secrets of one start, printed once.
#[derive(Debug)]
pub(crate) struct Seeded {
    pub(crate) password: String,
    pub(crate) m2m: ClientSecret,
    pub(crate) web: ClientSecret,
    pub(crate) gateway: ClientSecret,
    pub(crate) api: ClientSecret,
}

fn revocation(s: &Settings, now: UnixTime) -> Revocation {
    Revocation {
        at: now,
        until: now.plus(s.max_jwt_ttl()),
    }
}

fn uri(u: &str) -> anyhow::Result<RedirectUri> {
    RedirectUri::register(u).map_err(anyhow::Error::msg)
}

/// A client with no grants, scopes or URIs yet; the callers fill in what theirs needs.
fn client(id: &str, name: &str, secret: Option<&ClientSecret>) -> anyhow::Result<Client> {
    Ok(Client {
        id: ClientId::parse(id)?,
        name: name.into(),
        secret_hash: secret.map(|s| s.hash()),
        redirect_uris: vec![],
        grant_types: vec![],
        scopes: ScopeSet::parse("")?,
        audiences: vec![Audience::parse(DEMO_API)?],
        first_party: false,
        resource_servers: vec![],
        feed: false,
        post_logout_redirect_uris: vec![],
        backchannel_logout: None,
    })
}

/// Creates (or refreshes) everything the demo needs; `app` is the web app's origin.
pub(crate) async fn seed<S: Store>(
    store: &S,
    s: &Settings,
    app: &str,
    now: UnixTime,
) -> anyhow::Result<Seeded> {
    let api = Audience::parse(DEMO_API)?;
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
    let password = seed_alice(store, s, now).await?;
    for id in [DEMO_CLIENT, M2M, WEB, GATEWAY, API_CLIENT] {
        let id = ClientId::parse(id)?;
        if store.client(&id).await?.is_some() {
            store.remove_client(&id, revocation(s, now)).await?;
        }
    }
    let seeded = Seeded {
        password,
        m2m: new_secret(),
        web: new_secret(),
        gateway: new_secret(),
        api: new_secret(),
    };
    let iss = s.issuer.as_str();
    let clients = [
        Client {
            redirect_uris: vec![
                uri(&demo_redirect_uri(iss))?,
                uri("https://example-app.com/redirect")?,
            ],
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: ScopeSet::parse("openid profile email offline_access photos:read")?,
            ..client(DEMO_CLIENT, "Demo Photo App (by hand)", None)?
        },
        Client {
            grant_types: vec![GrantType::ClientCredentials],
            scopes: ScopeSet::parse("photos:read orders:write")?,
            ..client(M2M, "Demo back-end job", Some(&seeded.m2m))?
        },
        Client {
            redirect_uris: vec![uri(&format!("{app}/bff/callback"))?],
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: ScopeSet::parse(
                "openid profile email offline_access photos:read orders:write",
            )?,
            post_logout_redirect_uris: vec![uri(&format!("{app}/"))?],
            backchannel_logout: Some(
                BackchannelLogout::register(&format!("{app}/bff/backchannel-logout"), true)
                    .map_err(anyhow::Error::msg)?,
            ),
            ..client(WEB, "Photo App", Some(&seeded.web))?
        },
        Client {
            grant_types: vec![GrantType::ClientCredentials],
            resource_servers: vec![api.clone()],
            feed: true,
            ..client(GATEWAY, "Demo API gateway", Some(&seeded.gateway))?
        },
        Client {
            grant_types: vec![GrantType::ClientCredentials],
            resource_servers: vec![api.clone()],
            ..client(API_CLIENT, "Demo photos API", Some(&seeded.api))?
        },
    ];
    for c in &clients {
        store.create_client(c, now).await?;
    }
    Ok(seeded)
}

/// Creates alice, or gives her a new password; returns the password.
async fn seed_alice<S: Store>(store: &S, s: &Settings, now: UnixTime) -> anyhow::Result<String> {
    let alice = Username::parse("alice")?;
    let password: String = new_secret::<kind::CsrfToken>()
        .secret()
        .chars()
        .take(16)
        .collect();
    let hashed = password.clone();
    // Hashing a password takes tens of milliseconds: off the async runtime.
    let phc = tokio::task::spawn_blocking(move || keycard_server::hash_password(&hashed))
        .await?
        .map_err(anyhow::Error::msg)?;
    let hash = PasswordHash::from_phc(phc);
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
    Ok(password)
}
