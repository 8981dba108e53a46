//! `keycard auth`: people at a terminal sign in to any OpenID provider and get access tokens,
//! the way `gh auth login` / `gh auth token` work.
//!
//! `login` discovers the provider, picks the flow ([`choose::choose`]: the loopback redirect
//! of RFC 8252 with PKCE S256 and `state` when a local browser is plausible, the device flow of
//! RFC 8628 over SSH or without a display; `--web` / `--device` force one), and stores the
//! tokens; `token` prints a valid access token, refreshing first under the account's exclusive
//! lock when it expires within `--min-ttl`; `status` shows the accounts without their tokens;
//! `logout` revokes the refresh token at the provider (RFC 7009) and deletes the local copy.
//!
//! Every failure — an unreachable issuer, a provider without the device endpoint, a denied or
//! expired code, a refused refresh — is one line and a non-zero exit; every wait is bounded.
//! The client is public (no secret): native apps cannot keep one (RFC 8252 §8.4).
//!
//! Not here: HTTP (`provider`), the flows (`loopback`, `device`), the token files (`store`).

mod choose;
mod device;
mod loopback;
mod provider;
mod store;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use keycard_os::SystemClock;
use keycard_protocol::{ClientId, Clock as _, ScopeSet};
use serde_json::json;

use self::choose::{Flow, Terminal, Wanted};
use self::provider::{Provider, TokenAnswer, error_line, is_safe_url};
use self::store::{AccessToken, Account, TokenStore};

#[derive(Subcommand, Debug)]
pub(crate) enum AuthCmd {
    /// Sign in to an OpenID provider and keep the tokens.
    Login(LoginArgs),
    /// Print a valid access token, refreshing it first when needed.
    Token(TokenArgs),
    /// Show the signed-in accounts (never their tokens) and where they are kept.
    Status(Select),
    /// Revoke the refresh token at the provider and delete the local tokens.
    Logout(Select),
}

#[derive(Args, Debug)]
pub(crate) struct LoginArgs {
    /// The provider's issuer URL (its discovery document is read from there).
    #[arg(long)]
    issuer: String,
    /// This CLI's client id at the provider (a public client).
    #[arg(long, value_parser = ClientId::parse_strict)]
    client_id: ClientId,
    /// Scopes to ask for, space separated.
    #[arg(long, default_value = "openid offline_access")]
    scope: String,
    /// The API the access token is for (RFC 8707).
    #[arg(long)]
    resource: Option<String>,
    /// Use the browser redirect to a loopback port (RFC 8252).
    #[arg(long, conflicts_with = "device")]
    web: bool,
    /// Use the device flow: a code to enter on any device (RFC 8628).
    #[arg(long)]
    device: bool,
    /// Print the sign-in URL instead of opening a browser.
    #[arg(long)]
    no_browser: bool,
    /// Seconds to wait for the browser's redirect.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

/// Which stored account a command is about; the default one when nothing is said.
#[derive(Args, Debug, Default)]
pub(crate) struct Select {
    #[arg(long)]
    issuer: Option<String>,
    #[arg(long)]
    client_id: Option<String>,
    /// The account's subject or name, when several are signed in at one provider.
    #[arg(long)]
    account: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    select: Select,
    /// Refresh first when the token expires within this many seconds.
    #[arg(long, default_value_t = 60)]
    min_ttl: i64,
    /// A token for another API (RFC 8707), obtained with the refresh token.
    #[arg(long)]
    resource: Option<String>,
}

/// Runs one `keycard auth` command; failures are one line (the causes joined by `: `).
pub(crate) async fn run(c: AuthCmd, json: bool) -> anyhow::Result<()> {
    let r = match c {
        AuthCmd::Login(a) => login(a, json).await,
        AuthCmd::Token(a) => token(a, json).await,
        AuthCmd::Status(s) => status(&s, json),
        AuthCmd::Logout(s) => logout(&s, json).await,
    };
    r.map_err(|e| anyhow!("{e:#}"))
}

fn now() -> i64 {
    SystemClock.now().secs()
}

async fn login(a: LoginArgs, json: bool) -> anyhow::Result<()> {
    let scope = ScopeSet::parse(&a.scope).map_err(|e| anyhow!("--scope: {e}"))?;
    if let Some(r) = &a.resource {
        url::Url::parse(r).map_err(|e| anyhow!("--resource {r}: {e}"))?;
    }
    let p = Provider::discover(&a.issuer).await?;
    let wanted = Wanted {
        web: a.web,
        device: a.device,
        no_browser: a.no_browser,
    };
    let has_device = p.meta.device_authorization_endpoint.is_some();
    let flow = choose::choose(wanted, Terminal::detect(), has_device)?;
    let token_endpoint = p
        .endpoint("token endpoint", &p.meta.token_endpoint)?
        .to_owned();
    let scope_s = scope.to_wire();
    let resource = a.resource.as_deref();
    let (t, nonce) = match flow {
        Flow::Device => {
            let t = device::run(&p, &a.client_id, &scope_s, resource, json).await?;
            (t, None)
        }
        Flow::Web { open_browser } => {
            let timeout = Duration::from_secs(a.timeout);
            let (code, pending) = loopback::authorization_code(
                &p,
                a.client_id.as_str(),
                &scope_s,
                resource,
                open_browser,
                json,
                timeout,
            )
            .await?;
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", pending.redirect_uri.as_str()),
                ("code_verifier", pending.verifier.secret()),
            ];
            match p.token(&token_endpoint, &a.client_id, &form).await? {
                TokenAnswer::Tokens(t) => (*t, Some(pending.nonce)),
                TokenAnswer::Error(e) => bail!("the provider refused the code: {}", error_line(&e)),
            }
        }
    };
    let nonce = nonce.as_ref().map(|n| n.as_str());
    let id_token = t.id_token.as_ref().map(|t| t.secret());
    let who = choose::who(id_token, &p.issuer, &a.client_id, nonce)?;
    let at = now();
    let account = Account {
        issuer: p.issuer.clone(),
        client_id: a.client_id,
        subject: who.subject,
        name: who.name,
        scope: t.scope.clone().or(Some(scope)),
        resource: a.resource,
        token_endpoint,
        revocation_endpoint: p
            .meta
            .revocation_endpoint
            .clone()
            .filter(|u| is_safe_url(u)),
        access: vec![AccessToken {
            resource: None,
            token: t.access_token.secret().to_owned(),
            expires_at: t.expires_in.map(|e| at.saturating_add(e)),
        }],
        refresh_token: t.refresh_token.as_ref().map(|r| r.secret().to_owned()),
        updated_at: at,
    };
    let store = TokenStore::open()?;
    let path = store.path_for(&account);
    let _lock = store.lock(&path).await?;
    store.save(&account)?;
    store.set_default(&path)?;
    let shown = account
        .name
        .clone()
        .or(account.subject.clone())
        .unwrap_or_else(|| "(no id token)".into());
    if json {
        println!("{}", describe(&path, &account, true));
    } else {
        println!(
            "Logged in to {} as {shown}; tokens in {}",
            account.issuer,
            path.display()
        );
    }
    Ok(())
}

async fn token(a: TokenArgs, json: bool) -> anyhow::Result<()> {
    let store = TokenStore::open()?;
    let (path, account) = select(&store, &a.select)?;
    // The login's own resource is the login's token.
    let key = a.resource.filter(|r| Some(r) != account.resource.as_ref());
    let min_ttl = a.min_ttl.max(0);
    if let Some(t) = fresh(&account, key.as_deref(), min_ttl) {
        return print_token(&t, json);
    }
    // Refreshing rotates the refresh token: one process at a time, and the one that waited
    // reads what the other wrote before deciding again.
    let _lock = store.lock(&path).await?;
    let mut account = store.read(&path)?;
    if let Some(t) = fresh(&account, key.as_deref(), min_ttl) {
        return print_token(&t, json);
    }
    let Some(refresh) = account.refresh_token.clone() else {
        bail!(
            "the access token has expired and there is no refresh token; run `keycard auth login` again"
        );
    };
    if !is_safe_url(&account.token_endpoint) {
        bail!(
            "the stored token endpoint {} is not https",
            account.token_endpoint
        );
    }
    let p = Provider::for_stored(&account.issuer)?;
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    if let Some(r) = &key {
        form.push(("resource", r.as_str()));
    }
    let t = match p
        .token(&account.token_endpoint, &account.client_id, &form)
        .await?
    {
        TokenAnswer::Tokens(t) => t,
        TokenAnswer::Error(e) => bail!(
            "{} refused the refresh ({}); run `keycard auth login` again",
            account.issuer,
            error_line(&e)
        ),
    };
    let at = now();
    let fresh_token = AccessToken {
        resource: key,
        token: t.access_token.secret().to_owned(),
        expires_at: t.expires_in.map(|e| at.saturating_add(e)),
    };
    account.put_access(fresh_token.clone());
    // RFC 6749 §6: a new refresh token replaces the old one; none means the old one stays.
    if let Some(r) = &t.refresh_token {
        account.refresh_token = Some(r.secret().to_owned());
    }
    account.updated_at = at;
    store.save(&account)?;
    print_token(&fresh_token, json)
}

fn fresh(account: &Account, resource: Option<&str>, min_ttl: i64) -> Option<AccessToken> {
    account
        .access_for(resource)
        .filter(|t| choose::fresh(t.expires_at, now(), min_ttl))
        .cloned()
}

fn print_token(t: &AccessToken, json: bool) -> anyhow::Result<()> {
    if json {
        let expires_in = t.expires_at.map(|e| e.saturating_sub(now()));
        println!(
            "{}",
            json!({ "access_token": t.token, "expires_in": expires_in })
        );
    } else {
        println!("{}", t.token);
    }
    Ok(())
}

fn status(s: &Select, json: bool) -> anyhow::Result<()> {
    let store = TokenStore::open()?;
    let named = s.issuer.is_some() || s.client_id.is_some() || s.account.is_some();
    let accounts = if named {
        vec![select(&store, s)?]
    } else {
        store.list()?
    };
    let default = store.default_path();
    if json {
        let list: Vec<_> = accounts
            .iter()
            .map(|(p, a)| describe(p, a, default.as_deref() == Some(p.as_path())))
            .collect();
        println!("{}", json!({ "directory": store.dir(), "accounts": list }));
        return Ok(());
    }
    if accounts.is_empty() {
        println!(
            "Not logged in (tokens would be kept in {}).",
            store.dir().display()
        );
    }
    for (p, a) in &accounts {
        let mark = if default.as_deref() == Some(p.as_path()) {
            " (default)"
        } else {
            ""
        };
        println!("{}{mark}", a.issuer);
        println!("  client:   {}", a.client_id);
        println!(
            "  account:  {}",
            a.name.as_deref().or(a.subject.as_deref()).unwrap_or("-")
        );
        if let Some(sub) = &a.subject {
            println!("  subject:  {sub}");
        }
        println!(
            "  scopes:   {}",
            a.scope.as_ref().map(ScopeSet::to_wire).unwrap_or_default()
        );
        let exp = a.access_for(None).and_then(|t| t.expires_at);
        println!(
            "  expires:  {}",
            exp.map(|e| format!("in {} s (unix {e})", e - now()))
                .unwrap_or_else(|| "unknown".into())
        );
        println!(
            "  refresh:  {}",
            if a.refresh_token.is_some() {
                "yes"
            } else {
                "no"
            }
        );
        println!("  stored:   {}", p.display());
    }
    Ok(())
}

/// An account as `status` and `login --json` show it: never a token.
fn describe(path: &std::path::Path, a: &Account, default: bool) -> serde_json::Value {
    json!({
        "issuer": a.issuer, "client_id": a.client_id, "subject": a.subject, "name": a.name,
        "scope": a.scope, "resource": a.resource,
        "expires_at": a.access_for(None).and_then(|t| t.expires_at),
        "refresh_token": a.refresh_token.is_some(), "stored_in": path, "default": default,
    })
}

async fn logout(s: &Select, json: bool) -> anyhow::Result<()> {
    let store = TokenStore::open()?;
    let (path, _) = select(&store, s)?;
    let _lock = store.lock(&path).await?;
    let account = store.read(&path)?;
    let mut failure = None;
    match (&account.revocation_endpoint, &account.refresh_token) {
        (Some(endpoint), Some(rt)) => {
            let p = Provider::for_stored(&account.issuer)?;
            // Revoking the refresh token ends the grant at Keycard; other providers may keep
            // access tokens alive, so those are revoked too (best effort).
            if let Err(e) = p
                .revoke(endpoint, &account.client_id, rt, "refresh_token")
                .await
            {
                failure = Some(e);
            }
            for t in &account.access {
                let _ = p
                    .revoke(endpoint, &account.client_id, &t.token, "access_token")
                    .await;
            }
        }
        (None, Some(_)) => eprintln!(
            "{} has no revocation endpoint: its refresh token stays valid until it expires",
            account.issuer
        ),
        (_, None) => {}
    }
    store.remove(&path)?;
    if let Some(e) = failure {
        bail!("deleted the local tokens, but revoking them at the provider failed: {e:#}");
    }
    if json {
        println!(
            "{}",
            json!({ "logged_out": account.issuer, "deleted": path })
        );
    } else {
        println!(
            "Logged out of {}; deleted {}",
            account.issuer,
            path.display()
        );
    }
    Ok(())
}

/// The account a command names, or the only or default one.
fn select(store: &TokenStore, s: &Select) -> anyhow::Result<(PathBuf, Account)> {
    let same_issuer =
        |a: &Account, i: &str| a.issuer.trim_end_matches('/') == i.trim_end_matches('/');
    let matching: Vec<_> = store
        .list()?
        .into_iter()
        .filter(|(_, a)| {
            s.issuer.as_deref().is_none_or(|i| same_issuer(a, i))
                && s.client_id
                    .as_deref()
                    .is_none_or(|c| a.client_id.as_str() == c)
                && s.account
                    .as_deref()
                    .is_none_or(|n| a.subject.as_deref() == Some(n) || a.name.as_deref() == Some(n))
        })
        .collect();
    let default = store.default_path();
    match matching.len() {
        0 => bail!("not logged in; run `keycard auth login --issuer URL --client-id ID`"),
        1 => matching
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("not logged in")),
        _ => {
            let names: Vec<String> = matching
                .iter()
                .map(|(_, a)| {
                    format!(
                        "{} {} {}",
                        a.issuer,
                        a.client_id,
                        a.subject.as_deref().unwrap_or("-")
                    )
                })
                .collect();
            matching
                .into_iter()
                .find(|(p, _)| default.as_deref() == Some(p.as_path()))
                .ok_or_else(|| {
                    anyhow!(
                        "several accounts match; choose with --issuer, --client-id or --account: {}",
                        names.join("; ")
                    )
                })
        }
    }
}
