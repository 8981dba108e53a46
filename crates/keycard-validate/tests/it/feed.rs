//! `Validator` with a `RevocationFeed`: revoked tokens and keys are refused as `invalid_token`.

use keycard_jose::Alg;
use keycard_validate::feed::RevocationFeed;
use keycard_validate::{
    BearerError, BodyStream, Chunks, ClientId, ClientSecret, FeedOptions, StreamingResponse,
    ValidationError,
};

use crate::*;

/// The fake issuer plus a feed whose snapshot the test sets; its stream ends at once.
struct WithFeed {
    issuer: Arc<FakeIssuer>,
    snapshot: Mutex<Value>,
}

impl HttpClient for WithFeed {
    fn get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
        self.issuer.get(url)
    }

    fn post_form<'a>(
        &'a self,
        url: &'a str,
        auth: &'a BasicAuth,
        form: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
        self.issuer.post_form(url, auth, form)
    }

    fn get_streaming<'a>(
        &'a self,
        url: &'a str,
        _auth: &'a BasicAuth,
        _headers: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<StreamingResponse, HttpError>> {
        let body = if url.contains("since=") {
            Chunks::new([self.snapshot.lock().unwrap().to_string()])
        } else {
            Chunks::default()
        };
        Box::pin(async move { Ok(StreamingResponse::new(200, body)) })
    }
}

fn _assert_object_safe(_: &dyn BodyStream, _: &dyn HttpClient) {}

#[tokio::test]
async fn feed_spec_revoked_grant_and_key_are_refused_as_invalid_token() {
    let k1 = key(Alg::ES256, "k1");
    let k2 = key(Alg::EdDSA, "k2");
    let issuer = FakeIssuer::new(&[&k1.key, &k2.key]);
    let grant = "0123456789abcdef0123456789abcdef";
    let http = Arc::new(WithFeed {
        issuer: issuer.clone(),
        snapshot: Mutex::new(json!({"events": [
            {"seq": 1, "at": T0, "until": T0 + 600, "kind": "grant", "value": grant},
        ], "last": 1, "more": false})),
    });
    let clock = ManualClock::start();
    let feed = RevocationFeed::new(
        format!("{ISSUER}/revocations"),
        &ClientId::parse("gateway").unwrap(),
        &ClientSecret::parse("s").unwrap(),
        http.clone(),
        FeedOptions::default()
            .clock(clock.as_fn())
            .backoff(Duration::from_millis(20), Duration::from_millis(20)),
    );
    let task = feed.spawn();
    let options = ValidatorOptions::default()
        .clock(clock.as_fn())
        .revocation_feed(feed.clone());
    let v = Validator::new(iss(), aud(), http.clone(), options);
    for _ in 0..100 {
        if feed.last_seq() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut revoked = claims(T0);
    revoked["jti"] = format!("{grant}.abc").into();
    let t = access_token(&k1.key, &revoked);
    let e = v.validate(&t).await.unwrap_err();
    assert!(matches!(e, ValidationError::Revoked), "{e:?}");
    let bearer = BearerError::InvalidToken(e).to_response(Some("api"));
    assert_eq!(bearer.status(), 401);
    assert!(
        bearer.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // A token issued after the revocation is fine.
    clock.advance(1);
    let mut later = claims(clock.now());
    later["jti"] = format!("{grant}.def").into();
    v.validate(&access_token(&k1.key, &later)).await.unwrap();
    // A `kid` event drops k2: its tokens are refused, k1's still pass.
    let by_k2 = access_token(&k2.key, &claims(clock.now()));
    v.validate(&by_k2).await.unwrap();
    *http.snapshot.lock().unwrap() = json!({"events": [
        {"seq": 2, "at": T0, "until": T0 + 600, "kind": "kid", "value": "k2"},
    ], "last": 2, "more": false});
    // The stream ends at once and the feed resumes; make it take a snapshot by a gap.
    feed_resync(&feed).await;
    let e = v.validate(&by_k2).await.unwrap_err();
    assert!(matches!(e, ValidationError::Revoked), "{e:?}");
    v.validate(&access_token(&k1.key, &claims(clock.now())))
        .await
        .unwrap();
    task.abort();
}

/// Waits for the feed to pick up the new snapshot. The fake's stream carries nothing, so this
/// restarts the subscriber, which begins with a snapshot from `since=0`.
async fn feed_resync(feed: &RevocationFeed) {
    let again = feed.clone();
    let task = tokio::spawn(async move { again.run().await });
    for _ in 0..100 {
        if feed.last_seq() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    assert_eq!(feed.last_seq(), 2);
}
