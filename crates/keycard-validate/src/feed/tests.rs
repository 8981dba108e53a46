//! The subscriber against a fake feed: snapshot then stream, resume, resync, gaps, silence and
//! hostile streams.

use std::collections::VecDeque;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use super::*;
use crate::access_token::tests::{NOW, good};
use crate::http::{BodyStream, BoxFuture, Chunks, HttpError, HttpResponse, StreamingResponse};
use keycard_protocol::Issuer;

const FEED: &str = "http://as.example/revocations";

/// What the fake answers to the next stream request.
enum Script {
    Status(u16),
    Stream(mpsc::UnboundedReceiver<Bytes>),
}

struct ChannelBody(mpsc::UnboundedReceiver<Bytes>);

impl BodyStream for ChannelBody {
    fn next_chunk(&mut self) -> BoxFuture<'_, Result<Option<Bytes>, HttpError>> {
        Box::pin(async move { Ok(self.0.recv().await) })
    }
}

#[derive(Default)]
struct FakeFeed {
    /// Snapshot answers by request order: (status, body).
    snapshots: Mutex<VecDeque<(u16, String)>>,
    streams: Mutex<VecDeque<Script>>,
    /// Every request: url and Last-Event-ID.
    requests: Mutex<Vec<(String, Option<String>, String)>>,
}

impl HttpClient for FakeFeed {
    fn get<'a>(&'a self, _url: &'a str) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
        Box::pin(async { Err(HttpError::new("unused")) })
    }

    fn post_form<'a>(
        &'a self,
        _url: &'a str,
        _auth: &'a BasicAuth,
        _form: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
        Box::pin(async { Err(HttpError::new("unused")) })
    }

    fn get_streaming<'a>(
        &'a self,
        url: &'a str,
        auth: &'a BasicAuth,
        headers: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<StreamingResponse, HttpError>> {
        Box::pin(async move {
            let last_id = headers
                .iter()
                .find(|(n, _)| *n == "last-event-id")
                .map(|(_, v)| (*v).to_owned());
            lock(&self.requests).push((url.to_owned(), last_id, auth.header_value().to_owned()));
            if url.contains("since=") {
                let next = lock(&self.snapshots).pop_front();
                let (status, body) = next.unwrap_or((503, String::new()));
                return Ok(StreamingResponse::new(status, Chunks::new([body])));
            }
            let next = lock(&self.streams).pop_front();
            match next {
                Some(Script::Status(s)) => Ok(StreamingResponse::new(s, Chunks::default())),
                Some(Script::Stream(rx)) => Ok(StreamingResponse::new(200, ChannelBody(rx))),
                None => Err(HttpError::new("connection refused")),
            }
        })
    }
}

impl FakeFeed {
    fn snapshot(&self, events: &[Value], last: u64, more: bool) {
        let body = json!({"events": events, "last": last, "more": more}).to_string();
        lock(&self.snapshots).push_back((200, body));
    }

    fn stream(&self) -> mpsc::UnboundedSender<Bytes> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.streams).push_back(Script::Stream(rx));
        tx
    }

    fn requests(&self) -> Vec<(String, Option<String>, String)> {
        lock(&self.requests).clone()
    }
}

fn event(seq: u64, kind: &str, value: &str) -> Value {
    json!({"seq": seq, "at": NOW, "until": NOW + 3600, "kind": kind, "value": value})
}

fn sse(e: &Value) -> Bytes {
    Bytes::from(format!(
        "id: {}\nevent: revocation\ndata: {e}\n\n",
        e["seq"]
    ))
}

fn feed(fake: &Arc<FakeFeed>) -> RevocationFeed {
    RevocationFeed::new(
        FEED,
        &ClientId::parse("gateway").unwrap(),
        &ClientSecret::parse("s3cret").unwrap(),
        fake.clone(),
        FeedOptions::default()
            .clock(|| UnixTime(NOW))
            .backoff(Duration::from_millis(10), Duration::from_millis(40))
            .idle_timeout(Duration::from_millis(300)),
    )
}

fn token(jti: &str) -> AccessToken {
    let mut claims = good();
    claims["jti"] = jti.into();
    let map = claims.as_object().unwrap().clone();
    let iss = Issuer::from_wire("http://127.0.0.1:8080").unwrap();
    crate::access_token::check_claims(map, &iss, None, UnixTime(NOW), 0).unwrap()
}

/// Waits until `f` holds, for at most two seconds.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn feed_spec_snapshot_then_stream_from_last() {
    let fake = Arc::new(FakeFeed::default());
    fake.snapshot(&[event(1, "jti", "a"), event(2, "jti", "b")], 3, true);
    fake.snapshot(&[event(3, "jti", "c")], 5, false);
    let tx = fake.stream();
    let f = feed(&fake);
    assert_eq!(f.staleness(), Duration::MAX, "never reached");
    let task = f.spawn();
    eventually("the stream", || f.is_connected()).await;
    assert_eq!(f.last_seq(), 5, "the snapshot's `last`, not its last event");
    assert!(f.is_revoked(&token("a"), None) && f.is_revoked(&token("c"), None));
    assert!(!f.is_revoked(&token("z"), None));
    tx.send(sse(&event(6, "jti", "z"))).unwrap();
    eventually("event 6", || f.last_seq() == 6).await;
    assert!(f.is_revoked(&token("z"), None));
    assert!(f.staleness() < Duration::from_secs(1));
    let reqs = fake.requests();
    assert_eq!(reqs[0].0, format!("{FEED}?since=0"));
    assert_eq!(reqs[1].0, format!("{FEED}?since=2"));
    assert_eq!(
        (reqs[2].0.as_str(), reqs[2].1.as_deref()),
        (FEED, Some("5"))
    );
    assert!(reqs[0].2.starts_with("Basic "), "client_secret_basic");
    task.abort();
}

#[tokio::test]
async fn feed_spec_reconnects_with_last_event_id_after_close_and_failure() {
    let fake = Arc::new(FakeFeed::default());
    fake.snapshot(&[], 0, false);
    let tx = fake.stream();
    let f = feed(&fake);
    let task = f.spawn();
    eventually("the stream", || f.is_connected()).await;
    tx.send(Bytes::from(": keep-alive\n\n")).unwrap();
    tx.send(sse(&event(1, "grant", "0123456789abcdef0123456789abcdef")))
        .unwrap();
    eventually("event 1", || f.last_seq() == 1).await;
    // The server ends the stream, the next attempt fails, then one succeeds.
    lock(&fake.streams).push_back(Script::Status(503));
    let tx2 = fake.stream();
    drop(tx);
    eventually("the second stream", || {
        fake.requests().iter().filter(|r| r.0 == FEED).count() == 3 && f.is_connected()
    })
    .await;
    tx2.send(sse(&event(2, "sub", "u"))).unwrap();
    eventually("event 2", || f.last_seq() == 2).await;
    let ids: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.0 == FEED)
        .map(|r| r.1)
        .collect();
    assert_eq!(
        ids,
        vec![Some("0".into()), Some("1".into()), Some("1".into())]
    );
    assert_eq!(f.last_error().as_deref(), Some("stream: HTTP 503"));
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|r| r.0.contains("since"))
            .count(),
        1
    );
    task.abort();
}

#[tokio::test]
async fn feed_spec_410_resyncs_from_zero_and_gaps_take_a_snapshot() {
    let fake = Arc::new(FakeFeed::default());
    fake.snapshot(&[event(1, "jti", "a")], 1, false);
    lock(&fake.streams).push_back(Script::Status(410));
    fake.snapshot(&[event(7, "jti", "g")], 7, false);
    let tx = fake.stream();
    fake.snapshot(&[event(8, "jti", "h"), event(9, "jti", "i")], 9, false);
    let tx2 = fake.stream();
    let f = feed(&fake);
    let task = f.spawn();
    eventually("the stream after the resync", || f.is_connected()).await;
    assert_eq!(f.last_seq(), 7);
    assert!(f.is_revoked(&token("a"), None), "entries survive a resync");
    // Event 8 never arrives: 9 is a gap, which a snapshot from 7 fills.
    tx.send(sse(&event(9, "jti", "i"))).unwrap();
    eventually("the snapshot after the gap", || f.last_seq() == 9).await;
    eventually("the stream after the gap", || f.is_connected()).await;
    assert!(f.is_revoked(&token("h"), None));
    let urls: Vec<_> = fake.requests().into_iter().map(|r| r.0).collect();
    assert_eq!(
        urls,
        vec![
            format!("{FEED}?since=0"),
            FEED.to_owned(),
            format!("{FEED}?since=0"),
            FEED.to_owned(),
            format!("{FEED}?since=7"),
            FEED.to_owned(),
        ]
    );
    drop(tx2);
    task.abort();
}

#[tokio::test]
async fn feed_spec_silence_and_hostile_streams_reconnect_without_panic() {
    let fake = Arc::new(FakeFeed::default());
    fake.snapshot(&[], 0, false);
    let silent = fake.stream();
    let hostile = fake.stream();
    let _last = fake.stream();
    let f = feed(&fake);
    let task = f.spawn();
    eventually("the first stream", || f.is_connected()).await;
    // Silence beyond the idle timeout drops the first stream.
    eventually("a reconnect after silence", || {
        f.last_error().as_deref() == Some("stream: silent for too long")
    })
    .await;
    // A line longer than the parser's limit, then garbage, on the second.
    hostile.send(Bytes::from(vec![b'x'; 70 * 1024])).unwrap();
    eventually("a reconnect after a hostile line", || {
        f.last_error()
            .is_some_and(|e| e.contains("too long") && !e.contains("silent"))
    })
    .await;
    eventually("the third stream", || {
        fake.requests().iter().filter(|r| r.0 == FEED).count() == 3
    })
    .await;
    drop(silent);
    task.abort();
}

#[tokio::test]
async fn feed_spec_events_reach_subscribers_and_key_generation() {
    let fake = Arc::new(FakeFeed::default());
    fake.snapshot(&[], 0, false);
    let tx = fake.stream();
    let f = feed(&fake);
    let mut rx = f.subscribe();
    let task = f.spawn();
    eventually("the stream", || f.is_connected()).await;
    tx.send(sse(&event(1, "kid", "k1"))).unwrap();
    tx.send(sse(
        &json!({"seq": 2, "at": NOW, "until": NOW + 1, "kind": "future", "value": "x"}),
    ))
    .unwrap();
    eventually("event 2", || f.last_seq() == 2).await;
    assert_eq!(rx.recv().await.unwrap().kind, RevocationKind::Kid);
    assert!(matches!(
        rx.recv().await.unwrap().kind,
        RevocationKind::Other(_)
    ));
    assert_eq!(f.keys_generation(), 1);
    assert!(f.is_kid_revoked("k1") && f.is_revoked(&token("j"), Some("k1")));
    assert_eq!(f.events_applied(), 2);
    task.abort();
}
