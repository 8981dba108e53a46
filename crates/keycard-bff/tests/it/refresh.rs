//! Refresh against a real Keycard, whose refresh-token rotation is strict (a second use of a
//! rotated token revokes the whole family), so a double refresh would also show up as failed
//! calls: ahead of expiry, after an upstream 401, single-flight in one process and across two
//! BFF instances on one database, and which failures end a session.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use keycard_bff::store::BffStore;
use keycard_testkit::TestServer;

use crate::keycard::{bff_on_keycard, bff_on_keycard_with, keycard, sign_in};
use crate::support::{self, Agent, BffApp};

/// `n` parallel proxied GETs with the session cookie, spread over the BFF bases given.
async fn parallel_calls(bases: &[&str], cookie: &str, n: usize) -> Vec<(u16, serde_json::Value)> {
    let http = reqwest::Client::new();
    let calls: Vec<_> = (0..n)
        .map(|i| {
            let url = format!("{}/api/echo/{i}", bases[i % bases.len()]);
            let req = http
                .get(url)
                .header("cookie", format!("__Host-bff-session={cookie}"))
                .header("x-csrf", "1");
            tokio::spawn(async move {
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                (status, r.json().await.unwrap_or(serde_json::Value::Null))
            })
        })
        .collect();
    let mut out = Vec::new();
    for c in calls {
        out.push(c.await.unwrap());
    }
    out
}

fn token_of(r: &(u16, serde_json::Value)) -> String {
    r.1["token"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rfc6749_s6_fifty_parallel_calls_at_expiry_make_one_refresh_and_none_fails() {
    let (kc, app) = bff_on_keycard(|s| s.access_token_ttl_secs = 120).await;
    let mut agent = Agent::new();
    sign_in(&mut agent, &kc, &app, "/").await;
    let cookie = agent.cookie(&app.base, "__Host-bff-session").unwrap();
    let before = token_of(&parallel_calls(&[&app.base], &cookie, 1).await[0]);
    // Within the refresh-ahead window (60 s) of the access token's expiry (120 s).
    kc.clock.advance(90);
    let results = parallel_calls(&[&app.base], &cookie, 50).await;
    assert!(results.iter().all(|r| r.0 == 200), "{results:?}");
    let after = token_of(&results[0]);
    assert!(
        results.iter().all(|r| token_of(r) == after),
        "every call used the one new token"
    );
    assert_ne!(after, before);
    assert_eq!(app.counter.refreshes(), 1);

    // An upstream 401 for the current token: one refresh, and the call is repeated with the
    // new token (the caller sees 200).
    app.echo.reject.lock().unwrap().insert(after.clone());
    let results = parallel_calls(&[&app.base], &cookie, 10).await;
    assert!(results.iter().all(|r| r.0 == 200), "{results:?}");
    assert!(results.iter().all(|r| token_of(r) != after));
    assert_eq!(app.counter.refreshes(), 2);
}

/// Two BFF instances (two processes' worth: separate pools, locks and counters) on one
/// database, both serving one session at its expiry.
async fn two_instances(url: Option<&str>) {
    let a = support::reserve().await;
    let b = support::reserve().await;
    let (kc, secret) = keycard(&a.base, |s| s.access_token_ttl_secs = 120).await;
    let (echo_base, echo) = support::echo_upstream().await;
    let key = support::session_key();
    let (store_a, store_b) = stores(url).await;
    let settings =
        |base: &str| support::settings(&kc.base, "bff", &secret, base, &echo_base, key.clone());
    let (sa, sb) = (settings(&a.base), settings(&b.base));
    let app_a = a.start(sa, store_a, kc.clock.clone(), echo.clone()).await;
    let app_b = b.start(sb, store_b, kc.clock.clone(), echo).await;
    let mut agent = Agent::new();
    sign_in(&mut agent, &kc, &app_a, "/").await;
    let cookie = agent.cookie(&app_a.base, "__Host-bff-session").unwrap();
    kc.clock.advance(90);
    let results = parallel_calls(&[&app_a.base, &app_b.base], &cookie, 50).await;
    assert!(results.iter().all(|r| r.0 == 200), "{results:?}");
    let t = token_of(&results[0]);
    assert!(results.iter().all(|r| token_of(r) == t));
    assert_eq!(app_a.counter.refreshes() + app_b.counter.refreshes(), 1);
    drop(kc);
}

async fn stores(url: Option<&str>) -> (Arc<dyn BffStore>, Arc<dyn BffStore>) {
    match url {
        None => {
            let (a, url) = support::sqlite_store().await;
            (a, keycard_bff::store::sql::connect(&url).await.unwrap())
        }
        Some(pg) => {
            let schema = format!(
                "kc_test_bff_{}",
                keycard_os::new_id::<keycard_protocol::GrantId>()
            );
            let admin = sqlx::PgPool::connect(pg).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&admin)
                .await
                .unwrap();
            let opts: sqlx::postgres::PgConnectOptions = pg.parse().unwrap();
            let opts = opts.options([("search_path", schema.as_str())]);
            let a = keycard_bff::store::sql::PgBffStore::connect_with(opts.clone())
                .await
                .unwrap();
            let b = keycard_bff::store::sql::PgBffStore::connect_with(opts)
                .await
                .unwrap();
            (Arc::new(a), Arc::new(b))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_bff_instances_on_one_sqlite_database_make_one_refresh() {
    two_instances(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_bff_instances_on_one_postgres_database_make_one_refresh() {
    let Ok(url) = std::env::var("KEYCARD_TEST_PG_URL") else {
        eprintln!("SKIPPED on PostgreSQL: KEYCARD_TEST_PG_URL is not set");
        return;
    };
    two_instances(Some(&url)).await;
}

async fn signed_in(kc: &TestServer, app: &BffApp) -> (Agent, String) {
    let mut agent = Agent::new();
    sign_in(&mut agent, kc, app, "/").await;
    let cookie = agent.cookie(&app.base, "__Host-bff-session").unwrap();
    (agent, cookie)
}

#[tokio::test]
async fn only_invalid_grant_ends_a_session() {
    let (kc, app) = bff_on_keycard(|s| s.access_token_ttl_secs = 120).await;
    let (mut agent, _) = signed_in(&kc, &app).await;
    let echo = format!("{}/api/echo", app.base);

    // Ahead of expiry with the provider unreachable: the old token still works.
    app.counter.fail_refresh.store(true, Ordering::SeqCst);
    kc.clock.advance(90);
    assert_eq!(call(&mut agent, &echo).await.0, 200);
    // Past expiry, still unreachable: 503, and the session stays.
    kc.clock.advance(60);
    assert_eq!(
        call(&mut agent, &echo).await,
        (503, "temporarily_unavailable".into())
    );
    assert!(authenticated(&mut agent, &app).await);
    // Reachable again: refreshed, 200.
    app.counter.fail_refresh.store(false, Ordering::SeqCst);
    assert_eq!(call(&mut agent, &echo).await.0, 200);
    assert_eq!(app.counter.refreshes(), 1);

    // The provider refuses the refresh token (invalid_grant): the session ends, 401.
    app.counter.bogus_refresh.store(true, Ordering::SeqCst);
    kc.clock.advance(150);
    assert_eq!(
        call(&mut agent, &echo).await,
        (401, "login_required".into())
    );
    assert!(!authenticated(&mut agent, &app).await);
}

/// Whether `/bff/session` says signed in.
async fn authenticated(agent: &mut Agent, app: &BffApp) -> bool {
    let s = agent.api("GET", &format!("{}/bff/session", app.base)).await;
    s.json()["authenticated"] == true
}

/// Status and error code of a proxied GET.
async fn call(agent: &mut Agent, url: &str) -> (u16, serde_json::Value) {
    let r = agent.api("GET", url).await;
    (r.status, r.json()["error"].clone())
}

#[tokio::test]
async fn sessions_end_after_idle_and_absolute_timeouts() {
    let (kc, app) = bff_on_keycard_with(
        |s| s.access_token_ttl_secs = 3600,
        |s| {
            s.idle_timeout = std::time::Duration::from_secs(600);
            s.absolute_timeout = std::time::Duration::from_secs(1500);
        },
    )
    .await;
    let (mut agent, _) = signed_in(&kc, &app).await;
    let session = format!("{}/bff/session", app.base);
    // Used every 500 s, the session outlives its idle timeout, up to the absolute one.
    for _ in 0..2 {
        kc.clock.advance(500);
        assert_eq!(
            agent.api("GET", &session).await.json()["authenticated"],
            true
        );
    }
    kc.clock.advance(500);
    assert_eq!(
        agent.api("GET", &session).await.json()["authenticated"],
        false,
        "absolute timeout"
    );
    // Idle: 601 s without a request.
    let (mut agent, _) = signed_in(&kc, &app).await;
    kc.clock.advance(601);
    assert_eq!(
        agent.api("GET", &session).await.json()["authenticated"],
        false,
        "idle timeout"
    );
}
