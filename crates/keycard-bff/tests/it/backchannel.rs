//! `POST /bff/backchannel-logout` against a provider whose keys the test holds, so every
//! required check of OpenID Connect Back-Channel Logout 1.0 §2.6 can be broken on its own.

use std::sync::Arc;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keycard_bff::store::{Profile, SessionRecord};
use keycard_protocol::{Clock as _, Issuer, ManualClock, SecretHash, SessionId, Subject, UnixTime};
use serde_json::{Value, json};

use crate::support::{self, Agent};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A provider that serves discovery and one Ed25519 key, and signs whatever it is asked to.
struct FakeOp {
    issuer: String,
    key: Arc<Ed25519KeyPair>,
}

fn new_key() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

fn sign(key: &Ed25519KeyPair, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).as_ref())
    )
}

impl FakeOp {
    async fn start() -> FakeOp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let key = Arc::new(new_key());
        let x = URL_SAFE_NO_PAD.encode(key.public_key().as_ref());
        let discovery = json!({"issuer": issuer, "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"), "jwks_uri": format!("{issuer}/jwks"),
            "backchannel_logout_supported": true, "backchannel_logout_session_supported": true});
        let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": "k1", "x": x}]});
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { axum::Json(discovery) }),
            )
            .route("/jwks", get(move || async move { axum::Json(jwks) }));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeOp { issuer, key }
    }
}

#[tokio::test]
async fn backchannel_s2_6_logout_tokens_with_each_check_broken_are_refused() {
    let op = FakeOp::start().await;
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let now = clock.now().secs();
    let pending = support::reserve().await;
    let (echo_base, echo) = support::echo_upstream().await;
    let settings = support::settings(
        &op.issuer,
        "bff",
        "secret",
        &pending.base,
        &echo_base,
        support::session_key(),
    );
    let (store, _) = support::sqlite_store().await;
    let app = pending
        .start(settings, store.clone(), clock.clone(), echo)
        .await;
    let url = format!("{}/bff/backchannel-logout", app.base);

    let session = |n: u8, sub: &str, sid: &str| SessionRecord {
        id: SecretHash::from_bytes([n; 32]),
        issuer: Issuer::from_wire(&op.issuer).unwrap(),
        sub: Subject::parse(sub).unwrap(),
        sid: Some(SessionId::parse(sid).unwrap()),
        profile: Profile::default(),
        tokens: vec![],
        generation: 0,
        access_expires_at: UnixTime(now + 300),
        created_at: UnixTime(now),
        idle_expires_at: UnixTime(now + 600),
        expires_at: UnixTime(now + 3600),
    };
    for (n, sub, sid) in [(1, "alice", "s-1"), (2, "alice", "s-2"), (3, "bob", "s-3")] {
        store.create_session(&session(n, sub, sid)).await.unwrap();
    }
    let live = |n: u8| {
        let store = store.clone();
        async move {
            store
                .session(&SecretHash::from_bytes([n; 32]), UnixTime(now))
                .await
                .unwrap()
                .is_some()
        }
    };
    let header = json!({"alg": "EdDSA", "kid": "k1", "typ": "logout+jwt"});
    let claims = |jti: &str| {
        json!({"iss": op.issuer, "aud": "bff", "iat": now, "exp": now + 120, "jti": jti,
            "sub": "alice", "sid": "s-1", "events": {EVENT: {}}})
    };
    let mut agent = Agent::new();
    let post = |token: String| {
        let url = url.clone();
        async move {
            Agent::new()
                .post_form(&url, &[("logout_token", token.as_str())], &[])
                .await
        }
    };

    type Edit = Box<dyn Fn(&mut Value, &mut Value)>;
    let drop_claim = |name: &'static str| -> Edit {
        Box::new(move |_, c| {
            c.as_object_mut().unwrap().remove(name);
        })
    };
    let set_claim =
        |name: &'static str, v: Value| -> Edit { Box::new(move |_, c| c[name] = v.clone()) };
    let set_header =
        |name: &'static str, v: Value| -> Edit { Box::new(move |h, _| h[name] = v.clone()) };
    let cases: Vec<(&str, Edit)> = vec![
        (
            "typ missing",
            Box::new(|h, _| {
                h.as_object_mut().unwrap().remove("typ");
            }),
        ),
        ("typ JWT", set_header("typ", json!("JWT"))),
        ("typ at+jwt", set_header("typ", json!("at+jwt"))),
        ("alg none", set_header("alg", json!("none"))),
        ("alg HS256", set_header("alg", json!("HS256"))),
        ("unknown kid", set_header("kid", json!("k2"))),
        ("crit", set_header("crit", json!(["exp"]))),
        ("iss other", set_claim("iss", json!("http://evil.example"))),
        (
            "iss trailing slash",
            set_claim("iss", json!(format!("{}/", op.issuer))),
        ),
        ("aud other", set_claim("aud", json!("other-client"))),
        ("iat missing", drop_claim("iat")),
        ("iat in the future", set_claim("iat", json!(now + 600))),
        ("iat long ago", set_claim("iat", json!(now - 3600))),
        ("exp missing", drop_claim("exp")),
        ("exp passed", set_claim("exp", json!(now - 120))),
        ("exp a string", set_claim("exp", json!("9999999999"))),
        ("jti missing", drop_claim("jti")),
        ("events missing", drop_claim("events")),
        (
            "events without the logout event",
            set_claim("events", json!({"x": {}})),
        ),
        ("nonce present", set_claim("nonce", json!("n"))),
        (
            "neither sub nor sid",
            Box::new(|_, c| {
                c.as_object_mut().unwrap().remove("sub");
                c.as_object_mut().unwrap().remove("sid");
            }),
        ),
    ];
    for (i, (name, edit)) in cases.iter().enumerate() {
        let (mut h, mut c) = (header.clone(), claims(&format!("bad-{i}")));
        edit(&mut h, &mut c);
        let r = post(sign(&op.key, &h, &c)).await;
        assert_eq!(r.status, 400, "{name}: {}", r.body);
        assert_eq!(r.json()["error"], "invalid_request", "{name}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    // Signed by a key the provider does not publish.
    let r = post(sign(&new_key(), &header, &claims("other-key"))).await;
    assert_eq!(r.status, 400);
    // Not a token, no token.
    assert_eq!(post("x.y.z".into()).await.status, 400);
    assert_eq!(agent.post_form(&url, &[], &[]).await.status, 400);
    assert!(
        live(1).await && live(2).await && live(3).await,
        "no refused token ended a session"
    );

    // A good token with sub and sid ends that session only; 200 and no-store.
    let good = sign(&op.key, &header, &claims("good-1"));
    let r = post(good.clone()).await;
    assert_eq!(
        (r.status, r.header("cache-control")),
        (200, Some("no-store")),
        "{}",
        r.body
    );
    assert!(!live(1).await && live(2).await && live(3).await);
    // The same jti again is a replay (§2.6 item 7).
    assert_eq!(post(good).await.status, 400);
    // sub alone ends all of that user's sessions.
    let mut c = claims("good-2");
    c.as_object_mut().unwrap().remove("sid");
    assert_eq!(post(sign(&op.key, &header, &c)).await.status, 200);
    assert!(!live(2).await && live(3).await);
    // sid alone ends the session with that sid.
    let mut c = claims("good-3");
    c.as_object_mut().unwrap().remove("sub");
    c["sid"] = json!("s-3");
    assert_eq!(post(sign(&op.key, &header, &c)).await.status, 200);
    assert!(!live(3).await);
}
