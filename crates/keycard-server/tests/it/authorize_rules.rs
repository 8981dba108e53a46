//! The authorization request's harder rules: consent is per audience and never remembered for
//! clients that cannot prove who they are, loopback port freedom is for native apps only,
//! `max_age=0`, repeated and oversized parameters, the cost of starting a sign-in, and replayed
//! form posts.

use keycard_protocol::policy::GrantType;
use keycard_testkit::{API, Browser, ClientSpec, PASSWORD, REDIRECT, TestServer, authorize_query};

const BANK: &str = "https://bank.example.com";
const BANK_Q: &str = "audience=https%3A%2F%2Fbank.example.com";
const API_Q: &str = "audience=https%3A%2F%2Fapi.example.com";

async fn setup() -> TestServer {
    let s = TestServer::start().await;
    s.add_api(API, "photos:read", 600).await;
    // Another API that happens to define a scope of the same name.
    s.add_api(BANK, "photos:read", 600).await;
    s.add_user("alice").await;
    s.add_client(ClientSpec::web("web")).await;
    s
}

/// A third-party confidential web app for both APIs.
fn third_party(id: &str) -> ClientSpec<'_> {
    ClientSpec {
        id,
        confidential: true,
        first_party: false,
        grants: &[GrantType::AuthorizationCode],
        scope: "openid photos:read",
        audiences: &[API, BANK],
        redirect_uris: &[REDIRECT],
        resource_servers: &[],
    }
}

fn with_uri(q: &str, uri: &str) -> String {
    let enc: String = url::form_urlencoded::byte_serialize(uri.as_bytes()).collect();
    q.replace("https%3A%2F%2Fapp.example.com%2Fcb", &enc)
}

#[tokio::test]
async fn oidc_core_s3_1_2_4_consent_covers_scopes_for_one_audience() {
    let s = setup().await;
    s.add_client(third_party("tp")).await;
    let mut b = Browser::new(&s);
    let (q, _) = authorize_query("tp", "openid photos:read", API_Q);
    let r = b.authorize(&q, "alice", PASSWORD).await;
    assert!(r.location_param("code").is_some(), "{r:?}");
    // Remembered for the API it was given for...
    let (q, _) = authorize_query("tp", "openid photos:read", &format!("{API_Q}&prompt=none"));
    let r = b.get(&format!("/authorize?{q}")).await;
    assert!(r.location_param("code").is_some(), "{r:?}");
    // ...and not for another API's scope of the same name.
    let (q, _) = authorize_query("tp", "openid photos:read", &format!("{BANK_Q}&prompt=none"));
    let r = b.get(&format!("/authorize?{q}")).await;
    assert_eq!(
        r.location_param("error").as_deref(),
        Some("consent_required"),
        "{r:?}"
    );
    let (q, _) = authorize_query("tp", "openid photos:read", BANK_Q);
    let r = b.get(&format!("/authorize?{q}")).await;
    assert!(
        r.location.as_deref().unwrap().starts_with("/consent"),
        "{r:?}"
    );
}

#[tokio::test]
async fn rfc8252_s8_6_public_clients_get_no_remembered_consent() {
    let s = setup().await;
    let mut spec = ClientSpec::web("native");
    spec.first_party = false;
    spec.redirect_uris = &["http://127.0.0.1/callback"];
    s.add_client(spec).await;
    let mut b = Browser::new(&s);
    let (q, _) = authorize_query("native", "openid photos:read", API_Q);
    let q = with_uri(&q, "http://127.0.0.1:50001/callback");
    let r = b.authorize(&q, "alice", PASSWORD).await;
    assert!(r.location_param("code").is_some(), "{r:?}");
    // Any local program can claim the client id on another port: it must ask again.
    let other = q.replace("50001", "50002");
    let r = b.get(&format!("/authorize?{other}&prompt=none")).await;
    assert_eq!(
        r.location_param("error").as_deref(),
        Some("consent_required"),
        "{r:?}"
    );
    assert!(
        r.location
            .as_deref()
            .unwrap()
            .starts_with("http://127.0.0.1:50002/callback")
    );
    let r = b.get(&format!("/authorize?{other}")).await;
    assert!(
        r.location.as_deref().unwrap().starts_with("/consent"),
        "{r:?}"
    );
}

#[tokio::test]
async fn rfc8252_s7_3_any_port_is_for_native_apps_only() {
    let s = setup().await;
    let mut spec = third_party("local-web");
    spec.redirect_uris = &["http://127.0.0.1:8788/callback"];
    s.add_client(spec).await;
    let mut b = Browser::new(&s);
    let (q, _) = authorize_query("local-web", "openid", "");
    let exact = with_uri(&q, "http://127.0.0.1:8788/callback");
    let r = b.get(&format!("/authorize?{exact}")).await;
    assert!(
        r.location.as_deref().unwrap().starts_with("/login"),
        "{r:?}"
    );
    let other = with_uri(&q, "http://127.0.0.1:8789/callback");
    let r = b.get(&format!("/authorize?{other}")).await;
    assert_eq!((r.status, r.location), (400, None));
}

#[tokio::test]
async fn oidc_core_s3_1_2_1_max_age_zero_is_prompt_login() {
    let s = setup().await;
    let mut b = Browser::new(&s);
    let (q, _) = authorize_query("web", "openid", "");
    assert!(
        b.authorize(&q, "alice", PASSWORD)
            .await
            .location_param("code")
            .is_some()
    );
    // The same second as the sign-in (the test clock does not move).
    let r = b.get(&format!("/authorize?{q}")).await;
    assert!(r.location_param("code").is_some(), "SSO: {r:?}");
    let r = b.get(&format!("/authorize?{q}&max_age=0")).await;
    assert!(
        r.location.as_deref().unwrap().starts_with("/login"),
        "{r:?}"
    );
    let r = b
        .get(&format!("/authorize?{q}&max_age=0&prompt=none"))
        .await;
    assert_eq!(r.location_param("error").as_deref(), Some("login_required"));
}

#[tokio::test]
async fn rfc6749_s4_1_2_1_repeated_parameters_redirect_unless_the_redirect_uri_repeats() {
    let s = setup().await;
    let mut b = Browser::new(&s);
    let (q, _) = authorize_query("web", "openid", "");
    for extra in [
        "scope=openid",
        "state=again",
        "code_challenge_method=S256",
        "nonce=x",
    ] {
        let r = b.get(&format!("/authorize?{q}&{extra}")).await;
        assert_eq!(r.status, 303, "{extra}");
        assert!(
            r.location.as_deref().unwrap().starts_with(REDIRECT),
            "{extra}"
        );
        assert_eq!(
            r.location_param("error").as_deref(),
            Some("invalid_request"),
            "{extra}"
        );
    }
    let r = b
        .get(&format!(
            "/authorize?{q}&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb"
        ))
        .await;
    assert_eq!((r.status, r.location), (400, None));
}

#[tokio::test]
async fn rfc9700_s4_16_oversized_state_and_nonce_are_refused_before_storing() {
    let s = setup().await;
    let mut b = Browser::new(&s);
    let (q, _) = authorize_query("web", "openid", "");
    let long = "x".repeat(513);
    let fits = "x".repeat(512);
    for (what, value) in [("state", &long), ("nonce", &long)] {
        let bad = q.replace(&format!("{what}="), &format!("{what}={value}&dropped="));
        let r = b.get(&format!("/authorize?{bad}")).await;
        assert_eq!(r.status, 303, "{what}");
        assert_eq!(
            r.location_param("error").as_deref(),
            Some("invalid_request")
        );
        // An oversized state is not echoed back.
        assert_ne!(r.location_param("state").as_deref(), Some(value.as_str()));
    }
    let ok = q.replace("state=st-123", &format!("state={fits}"));
    let r = b.get(&format!("/authorize?{ok}")).await;
    assert!(
        r.location.as_deref().unwrap().starts_with("/login"),
        "{r:?}"
    );
}

#[tokio::test]
async fn rfc6819_s4_4_1_11_new_sign_ins_are_rate_limited_per_address() {
    let s = TestServer::start_with(|st| st.txn_per_minute = 10).await;
    s.add_client(ClientSpec::web("web")).await;
    let (q, _) = authorize_query("web", "openid", "");
    let mut flood = Browser::from_address(&s, [127, 0, 0, 7]);
    for i in 0..10 {
        let r = flood.get(&format!("/authorize?{q}")).await;
        assert!(
            r.location.as_deref().unwrap().starts_with("/login"),
            "{i}: {r:?}"
        );
    }
    let r = flood.get(&format!("/authorize?{q}")).await;
    assert_eq!((r.status, r.location.is_none()), (429, true), "{}", r.body);
    // Another address is not affected.
    let mut other = Browser::from_address(&s, [127, 0, 0, 8]);
    let r = other.get(&format!("/authorize?{q}")).await;
    assert!(
        r.location.as_deref().unwrap().starts_with("/login"),
        "{r:?}"
    );
}

#[tokio::test]
async fn rfc9700_s4_11_a_replayed_consent_post_is_forbidden() {
    let s = setup().await;
    s.add_client(third_party("tp")).await;
    let mut b = Browser::new(&s);
    let (q, _) = authorize_query("tp", "openid photos:read", API_Q);
    let r = b.get(&format!("/authorize?{q}")).await;
    let page = b.get(r.location.as_deref().unwrap()).await;
    let (txn, csrf) = (page.input("txn").unwrap(), page.input("csrf").unwrap());
    let r = b
        .post_form(
            "/login",
            &[
                ("txn", &txn),
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let consent = b.get(r.location.as_deref().unwrap()).await;
    let form = [
        ("txn", consent.input("txn").unwrap()),
        ("csrf", consent.input("csrf").unwrap()),
        ("decision", "approve".to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = b.post_form("/consent", &form).await;
    assert!(first.location_param("code").is_some(), "{first:?}");
    let replay = b.post_form("/consent", &form).await;
    assert_eq!(
        (replay.status, replay.location),
        (403, None),
        "{}",
        replay.body
    );
}
