//! Login throttling (ASVS 6.3.1; OWASP Authentication cheat sheet; NIST 800-63B §5.2.2): the
//! attempt is reserved before the hash, locks are per account *and* address with a softer
//! account-wide bound that a clean address still passes, and an account's counters do not
//! depend on how its name is cased (RFC 8265 §3.3). Other addresses are real peers: the tests
//! connect from 127.0.0.x, which Linux routes to the server's 127.0.0.1.

use keycard_testkit::{Browser, ClientSpec, PASSWORD, TestServer, authorize_query};

async fn setup() -> TestServer {
    let s = TestServer::start().await;
    s.add_user("alice").await;
    s.add_client(ClientSpec::web("web")).await;
    s
}

/// Opens a login form; returns its (txn, csrf).
async fn open_login(b: &mut Browser) -> (String, String) {
    let (q, _) = authorize_query("web", "openid", "");
    let r = b.get(&format!("/authorize?{q}")).await;
    let page = b.get(r.location.as_deref().expect("login redirect")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    (page.input("txn").unwrap(), page.input("csrf").unwrap())
}

/// One login POST on an open form; returns its status (and `Retry-After` when locked).
async fn attempt(b: &Browser, form: &(String, String), user: &str, pw: &str) -> (u16, bool) {
    let r = b
        .http()
        .post(format!("{}/login", b.base()))
        .header(reqwest::header::COOKIE, b.cookie_header())
        .header(reqwest::header::ORIGIN, b.base())
        .form(&[
            ("txn", form.0.as_str()),
            ("csrf", form.1.as_str()),
            ("username", user),
            ("password", pw),
        ])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.headers().contains_key("retry-after"))
}

/// A browser at 127.0.0.`n` with an open login form.
async fn from(s: &TestServer, n: u8) -> (Browser, (String, String)) {
    let mut b = Browser::from_address(s, [127, 0, 0, n]);
    let form = open_login(&mut b).await;
    (b, form)
}

#[tokio::test]
async fn asvs_6_3_1_parallel_wrong_passwords_cannot_walk_past_the_limit() {
    let s = setup().await;
    let (b, form) = from(&s, 1).await;
    let tries = (0..50).map(|_| attempt(&b, &form, "alice", "wrong password"));
    let got = futures_util::future::join_all(tries).await;
    let unauthorized = got.iter().filter(|(st, _)| *st == 401).count();
    let locked = got.iter().filter(|(st, ra)| *st == 429 && *ra).count();
    assert_eq!((unauthorized, locked), (5, 45), "{got:?}");
    // The lock holds for the right password too, from this address.
    assert_eq!(attempt(&b, &form, "alice", PASSWORD).await.0, 429);
}

#[tokio::test]
async fn asvs_6_3_1_a_lock_is_per_account_and_address() {
    let s = setup().await;
    let (attacker, form) = from(&s, 2).await;
    for _ in 0..5 {
        assert_eq!(attempt(&attacker, &form, "alice", "guess").await.0, 401);
    }
    assert_eq!(attempt(&attacker, &form, "alice", "guess").await.0, 429);
    // The owner, elsewhere, is not locked out by the attacker's failures.
    let (owner, form) = from(&s, 3).await;
    assert_eq!(attempt(&owner, &form, "alice", PASSWORD).await.0, 303);
}

#[tokio::test]
async fn asvs_6_3_1_the_account_wide_bound_spares_an_address_with_no_failures() {
    let s = setup().await;
    // Fifty failures spread over ten addresses, five each: no single pair locks first.
    for n in 10..20 {
        let (b, form) = from(&s, n).await;
        for _ in 0..5 {
            assert_eq!(attempt(&b, &form, "alice", "guess").await.0, 401);
        }
    }
    // Now the account is under attack: an address that has failed for it is locked...
    let (b, form) = from(&s, 30).await;
    assert_eq!(attempt(&b, &form, "alice", "guess").await.0, 401);
    assert_eq!(attempt(&b, &form, "alice", PASSWORD).await.0, 429);
    // ...but the owner's clean address still signs in.
    let (owner, form) = from(&s, 31).await;
    assert_eq!(attempt(&owner, &form, "alice", PASSWORD).await.0, 303);
}

#[tokio::test]
async fn rfc8265_s3_3_one_account_whatever_its_case_and_one_set_of_counters() {
    let s = setup().await;
    let dup = keycard_store::Store::create_user(
        s.store(),
        &keycard_store::User {
            id: keycard_os::new_id(),
            username: keycard_protocol::Username::parse("ALICE").unwrap(),
            ..s.add_user("bob").await
        },
    )
    .await;
    assert!(dup.is_err(), "ALICE next to alice must be refused");
    let (b, form) = from(&s, 4).await;
    for typed in ["Alice", "ALICE", "alice", "aLiCe", "Alice"] {
        assert_eq!(attempt(&b, &form, typed, "guess").await.0, 401, "{typed}");
    }
    // The sixth guess in any case is locked, as is the right password in another case.
    assert_eq!(attempt(&b, &form, "alice", "guess").await.0, 429);
    assert_eq!(attempt(&b, &form, "aLICE", PASSWORD).await.0, 429);
    // Signing in is case-insensitive too: from a clean address, "ALICE" is alice.
    let (owner, form) = from(&s, 5).await;
    assert_eq!(attempt(&owner, &form, "ALICE", PASSWORD).await.0, 303);
}

/// Only failures count: one address may sign in any number of times (people behind one NAT
/// address), and its bound still has all its free failures left afterwards. Without taking
/// each success's reservation back, the address's counter would be at 25 here, past its 20.
#[tokio::test]
async fn asvs_6_3_1_successful_sign_ins_from_one_address_never_lock_it() {
    let s = setup().await;
    for _ in 0..25 {
        let (b, form) = from(&s, 7).await;
        assert_eq!(attempt(&b, &form, "alice", PASSWORD).await, (303, false));
    }
    let (b, form) = from(&s, 7).await;
    assert_eq!(
        attempt(&b, &form, "bob", "wrong password").await,
        (401, false)
    );
}
