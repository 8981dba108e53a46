//! The store conformance suite: checks every backend must pass, generic over [`Store`].
#![allow(clippy::unwrap_used, clippy::panic)]
//!
//! Each backend's test module calls [`store_conformance_tests!`] with an async constructor, which
//! expands to one named `#[tokio::test]` per check (the rustls per-provider pattern).

use keycard_protocol::authorize::AuthorizeRequest;
use keycard_protocol::pkce::CodeChallenge;
use keycard_protocol::policy::{Api, Client, GrantType};
use keycard_protocol::redirect::RedirectUri;
use keycard_protocol::{
    Audience, AuthorizationCode, ClientId, ClientSecret, CsrfToken, GrantId, Jti, Kid, Prompt,
    RefreshToken, ScopeSet, SecretHash, SessionId, SessionToken, State, TransactionId, UnixTime,
    UserId, Username, kind,
};

use crate::*;

mod accounts;
mod device;
mod revocations;
mod tokens;

pub use accounts::*;
pub use device::*;
pub use revocations::*;
pub use tokens::*;

/// Expands to one test per check for a backend constructor `async fn() -> Option<S>`.
#[macro_export]
macro_rules! store_conformance_tests {
    ($ctor:path) => {
        $crate::store_conformance_tests!(@each $ctor,
            users_round_trip_with_unicode,
            clients_and_apis_round_trip,
            code_is_redeemed_once_under_16_concurrent_redemptions,
            refresh_rotation_has_one_winner_under_20_concurrent_uses,
            mixed_concurrent_redemptions_each_have_one_winner,
            revoked_grant_reaches_refresh_and_access_tokens,
            sessions_and_txns_expire_by_the_given_time,
            key_rotation_states,
            login_failures_count_atomically_and_lock,
            purge_removes_only_expired_rows,
            revocation_log_is_ordered_and_gap_free_under_concurrency,
            revocations_reach_tokens_by_sub_client_and_time,
            user_changes_end_sessions_revoke_grants_and_queue_logouts,
            end_session_revokes_its_short_grants_and_queues_logouts,
            expired_sessions_end_like_a_logout,
            expired_revocations_are_purged_and_leave_a_visible_gap,
            usernames_are_unique_and_found_without_regard_to_case,
            client_ids_never_equal_user_ids,
            consent_is_remembered_per_api,
            scheduled_rotation_has_one_winner_and_revoked_keys_go_at_once,
            grants_keep_their_absolute_end,
            device_polls_are_judged_and_recorded_one_at_a_time,
            device_code_is_redeemed_once_under_16_concurrent_polls,
            device_answers_count_once_and_only_while_pending,
            refunded_login_attempts_no_longer_count
        );
    };
    (@each $ctor:path, $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                // A constructor returns `None` when its backend is not configured here (the
                // PostgreSQL URL is unset); the skip is printed, never silent.
                let Some(store) = $ctor().await else {
                    eprintln!("SKIPPED {}: backend not configured", stringify!($name));
                    return;
                };
                $crate::conformance::$name(std::sync::Arc::new(store)).await;
            }
        )*
    };
}

// Typed values for the checks below; every literal is valid, so parsing cannot fail.
pub(crate) fn uid(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}
pub(crate) fn uname(s: &str) -> Username {
    Username::parse(s).unwrap()
}
pub(crate) fn cid(s: &str) -> ClientId {
    ClientId::parse(s).unwrap()
}
pub(crate) fn gid(s: &str) -> GrantId {
    GrantId::parse(s).unwrap()
}
pub(crate) fn jti(s: &str) -> Jti {
    Jti::parse(s).unwrap()
}
pub(crate) fn aud(s: &str) -> Audience {
    Audience::parse(s).unwrap()
}
pub(crate) fn code_hash(s: &str) -> SecretHash<kind::AuthorizationCode> {
    AuthorizationCode::parse(s).unwrap().hash()
}
pub(crate) fn rt_hash(s: &str) -> SecretHash<kind::RefreshToken> {
    RefreshToken::parse(s).unwrap().hash()
}
pub(crate) fn session_hash(s: &str) -> SecretHash<kind::SessionToken> {
    SessionToken::parse(s).unwrap().hash()
}
pub(crate) fn phc(s: &str) -> PasswordHash {
    PasswordHash::from_phc(s.to_owned())
}
pub(crate) fn account(s: &str) -> ThrottleKey {
    ThrottleKey::account(s)
}

/// A revocation now (the checks' clock) that matters until the tokens below expire.
pub(crate) fn rv() -> Revocation {
    Revocation {
        at: UnixTime(100),
        until: UnixTime(10_000),
    }
}

/// Whether a token of client `app` issued at time 0 is revoked.
pub(crate) async fn revoked<S: Store>(
    s: &S,
    j: &str,
    grant: Option<&str>,
    user: Option<&str>,
) -> Result<bool> {
    let (j, grant, user) = (jti(j), grant.map(gid), user.map(uid));
    s.access_token_revoked(&RevocationQuery {
        jti: &j,
        grant: grant.as_ref(),
        user: user.as_ref(),
        client: &cid("app"),
        iat: UnixTime(0),
    })
    .await
}

pub(crate) fn user(name: &str) -> User {
    User {
        id: uid(&format!("u-{name}")),
        username: uname(name),
        password_hash: phc("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
        name: Some("Zoë 🦀 <b>".into()),
        given_name: None,
        family_name: None,
        picture: None,
        email: Some(format!("{name}@example.com")),
        email_verified: true,
        disabled: false,
        created_at: UnixTime(1),
    }
}

pub(crate) fn client(id: &str) -> Client {
    Client {
        id: cid(id),
        name: format!("App {id}"),
        secret_hash: Some(ClientSecret::parse("secret").unwrap().hash()),
        redirect_uris: vec![RedirectUri::from_stored(
            "https://app.example.com/cb".into(),
        )],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: ScopeSet::parse("openid offline_access read").unwrap_or_default(),
        audiences: vec![aud("https://api.example.com")],
        first_party: true,
        resource_servers: vec![],
        feed: false,
        post_logout_redirect_uris: vec![],
        backchannel_logout: None,
    }
}

pub(crate) fn grant(id: &str, user_id: &str) -> Grant {
    Grant {
        id: gid(id),
        client_id: cid("app"),
        user_id: uid(user_id),
        scope: ScopeSet::parse("openid offline_access").unwrap_or_default(),
        audience: None,
        auth_time: UnixTime(100),
        sid: Some(SessionId::parse("sid-1").unwrap()),
        nonce: Some(keycard_protocol::Nonce::parse("n").unwrap()),
        created_at: UnixTime(100),
        expires_at: None,
    }
}

pub(crate) fn code(secret: &str, grant_id: &str) -> Code {
    Code {
        hash: code_hash(secret),
        grant: grant(grant_id, "u-alice"),
        redirect_uri: RedirectUri::parse("https://app.example.com/cb").unwrap(),
        redirect_uri_sent: true,
        code_challenge: CodeChallenge::from_stored(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        ),
        expires_at: UnixTime(160),
        used: false,
    }
}

pub(crate) fn at(grant_id: &str) -> AccessTokenRecord {
    AccessTokenRecord {
        grant_id: gid(grant_id),
        expires_at: UnixTime(1000),
    }
}

pub(crate) fn rt(secret: &str, grant_id: &str) -> NewRefreshToken {
    NewRefreshToken {
        hash: rt_hash(secret),
        grant_id: gid(grant_id),
        scope: ScopeSet::parse("openid offline_access").unwrap_or_default(),
        expires_at: UnixTime(10_000),
    }
}

pub(crate) async fn setup<S: Store>(s: &S) {
    s.create_user(&user("alice"))
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
    s.create_client(&client("app"), UnixTime(1))
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
}
