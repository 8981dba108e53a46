//! `keycard user`: add, list, remove, enable and disable users, and set their passwords.
//!
//! [`run`] executes one [`UserCmd`] against the store. Passwords come from a prompt (asked
//! twice) or one line of stdin, and are hashed with the server's own argon2id settings
//! (`keycard_server::password`) on a blocking thread.
//!
//! A password has 8 to 1024 characters; the username is checked with
//! `keycard_protocol::Username::parse` before the password is read, so a bad name fails
//! without a prompt.
//!
//! Not here: ending the user's sessions on a password change, which `Store::set_password`
//! does in the same operation, and the login page's own checks (`keycard_server`).

use std::io::{BufRead as _, IsTerminal as _};

use anyhow::bail;
use clap::Subcommand;
use keycard_os::{SystemClock, new_id};
use keycard_protocol::{Clock as _, UserId, Username};
use keycard_store::{PasswordHash, Revocation, Store, User};
use serde_json::json;

use crate::cmd::say;

#[derive(Subcommand, Debug)]
pub(crate) enum UserCmd {
    /// Add a user; the password comes from a prompt or, with --password-stdin, one line of stdin.
    Add {
        #[arg(value_parser = Username::parse)]
        username: Username,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        given_name: Option<String>,
        #[arg(long)]
        family_name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        email_verified: bool,
        #[arg(long)]
        picture: Option<String>,
    },
    List,
    Remove {
        #[arg(value_parser = Username::parse)]
        username: Username,
    },
    SetPassword {
        #[arg(value_parser = Username::parse)]
        username: Username,
        #[arg(long)]
        password_stdin: bool,
    },
    Disable {
        #[arg(value_parser = Username::parse)]
        username: Username,
    },
    Enable {
        #[arg(value_parser = Username::parse)]
        username: Username,
    },
}

/// Hashes a new password off the runtime (argon2id costs tens of milliseconds).
async fn hash(password: String) -> anyhow::Result<PasswordHash> {
    let phc = tokio::task::spawn_blocking(move || keycard_server::hash_password(&password))
        .await?
        .map_err(anyhow::Error::msg)?;
    Ok(PasswordHash::from_phc(phc))
}

pub(crate) async fn run<S: Store>(
    store: &S,
    c: UserCmd,
    r: Revocation,
    json_out: bool,
) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match c {
        UserCmd::Add {
            username,
            password_stdin,
            name,
            given_name,
            family_name,
            email,
            email_verified,
            picture,
        } => {
            let pw = read_password(password_stdin)?;
            let u = User {
                id: new_id::<UserId>(),
                username,
                password_hash: hash(pw).await?,
                name,
                given_name,
                family_name,
                picture,
                email,
                email_verified,
                disabled: false,
                created_at: now,
            };
            store
                .create_user(&u)
                .await
                .map_err(|e| anyhow::anyhow!("cannot add user: {e}"))?;
            say(
                json_out,
                user_json(&u),
                &format!("added user {} (id {})", u.username, u.id),
            );
        }
        UserCmd::List => {
            let users = store.list_users().await?;
            if json_out {
                println!(
                    "{}",
                    serde_json::Value::Array(users.iter().map(user_json).collect())
                );
            } else {
                for u in users {
                    println!(
                        "{}\t{}\t{}{}",
                        u.username,
                        u.id,
                        u.email.unwrap_or_default(),
                        if u.disabled { "\tdisabled" } else { "" }
                    );
                }
            }
        }
        UserCmd::Remove { username } => {
            store
                .remove_user(&username, r)
                .await
                .map_err(|e| anyhow::anyhow!("cannot remove {username}: {e}"))?;
            say(
                json_out,
                json!({ "removed": username.as_str() }),
                &format!("removed user {username}"),
            );
        }
        UserCmd::SetPassword {
            username,
            password_stdin,
        } => {
            let pw = read_password(password_stdin)?;
            store
                .set_password(&username, &hash(pw).await?, r)
                .await
                .map_err(|e| anyhow::anyhow!("cannot set password: {e}"))?;
            say(
                json_out,
                json!({ "username": username.as_str(), "password_changed": true }),
                "password changed; sessions ended",
            );
        }
        UserCmd::Disable { username } => {
            store
                .set_user_disabled(&username, true, r)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            say(
                json_out,
                json!({ "username": username.as_str(), "disabled": true }),
                "disabled",
            );
        }
        UserCmd::Enable { username } => {
            store
                .set_user_disabled(&username, false, r)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            say(
                json_out,
                json!({ "username": username.as_str(), "disabled": false }),
                "enabled",
            );
        }
    }
    Ok(())
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    let pw = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        let a = rpassword::prompt_password("Password: ")?;
        let b = rpassword::prompt_password("Repeat: ")?;
        if a != b {
            bail!("the passwords differ");
        }
        a
    };
    if pw.chars().count() < 8 {
        bail!("the password must have at least 8 characters");
    }
    if pw.len() > 1024 {
        bail!("the password is too long");
    }
    Ok(pw)
}

fn user_json(u: &User) -> serde_json::Value {
    json!({ "id": u.id, "username": u.username, "name": u.name, "email": u.email,
            "email_verified": u.email_verified, "disabled": u.disabled, "created_at": u.created_at.secs() })
}
