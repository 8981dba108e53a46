//! The revocation feed (Keycard's extension; ARCHITECTURE.md, "Revocation feed"): who may read
//! it, the JSON page, the Server-Sent Events stream with `Last-Event-ID` resume, keep-alives,
//! and the 410 that tells a consumer behind a dropped range to start again.

use std::time::{Duration, Instant};

use keycard_protocol::policy::GrantType;
use keycard_store::Store;
use keycard_testkit::{API, ClientSpec, TestServer};
use serde_json::Value;

struct Fx {
    s: TestServer,
    feed: String,
    m2m: String,
}

async fn fixture_with(adjust: impl FnOnce(&mut keycard_server::Settings)) -> Fx {
    let s = TestServer::start_with(adjust).await;
    s.add_api(API, "photos:read", 600).await;
    let cc = |id| ClientSpec {
        id,
        confidential: true,
        first_party: false,
        grants: &[GrantType::ClientCredentials],
        scope: "photos:read",
        audiences: &[API],
        redirect_uris: &[],
        resource_servers: &[],
    };
    let feed = s
        .add_client_with(cc("gateway"), |c| c.feed = true)
        .await
        .unwrap();
    let m2m = s.add_client(cc("m2m")).await.unwrap();
    Fx { s, feed, m2m }
}

async fn fixture() -> Fx {
    fixture_with(|_| {}).await
}

impl Fx {
    async fn page(&self, since: u64) -> (u16, Value) {
        let r = self
            .s
            .http
            .get(self.s.url(&format!("/revocations?since={since}")))
            .basic_auth("gateway", Some(&self.feed))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert_eq!(r.headers()["cache-control"], "no-store");
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Issues a machine token and revokes it: one `jti` event. Returns the jti.
    async fn revoke_one(&self) -> String {
        let t: Value = self
            .s
            .http
            .post(self.s.url("/token"))
            .basic_auth("m2m", Some(&self.m2m))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let at = t["access_token"].as_str().unwrap();
        let r = self
            .s
            .http
            .post(self.s.url("/revoke"))
            .basic_auth("m2m", Some(&self.m2m))
            .form(&[("token", at)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        keycard_testkit::jwt_parts(at).1["jti"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn stream(&self, last_event_id: Option<u64>) -> Sse {
        let mut r = self
            .s
            .http
            .get(self.s.url("/revocations"))
            .basic_auth("gateway", Some(&self.feed))
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            r = r.header("last-event-id", id.to_string());
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        Sse {
            r,
            buf: String::new(),
        }
    }
}

/// A Server-Sent Events stream read one chunk at a time.
struct Sse {
    r: reqwest::Response,
    buf: String,
}

impl Sse {
    /// The next complete message (the lines before a blank line), within `wait`.
    async fn next(&mut self, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let msg: String = self.buf.drain(..end + 2).collect();
                return msg
                    .trim_end_matches('\n')
                    .lines()
                    .map(str::to_owned)
                    .collect();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.r.chunk())
                .await
                .expect("a message within the wait")
                .unwrap()
                .expect("the stream stays open");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next revocation event (skipping keep-alives): its `id:` and JSON.
    async fn event(&mut self) -> (u64, Value) {
        loop {
            let msg = self.next(Duration::from_secs(5)).await;
            if msg.iter().all(|l| l.starts_with(':')) {
                continue;
            }
            let field = |name: &str| {
                msg.iter()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap_or_else(|| panic!("no {name} in {msg:?}"))
                    .to_owned()
            };
            assert_eq!(field("event: "), "revocation");
            let data: Value = serde_json::from_str(&field("data: ")).unwrap();
            let id: u64 = field("id: ").parse().unwrap();
            assert_eq!(data["seq"], id);
            return (id, data);
        }
    }
}

#[tokio::test]
async fn feed_spec_only_clients_with_the_feed_permission_read_it() {
    let f = fixture().await;
    let url = f.s.url("/revocations?since=0");
    let r = f.s.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r =
        f.s.http
            .get(&url)
            .basic_auth("gateway", Some("wrong"))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 401);
    let r =
        f.s.http
            .get(&url)
            .basic_auth("m2m", Some(&f.m2m))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 403);
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["error"], "access_denied");
    let (status, j) = f.page(0).await;
    assert_eq!(status, 200, "{j}");
    // Discovery names the endpoint.
    let d: Value = f.s.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        d["keycard_revocation_feed_endpoint"],
        f.s.url("/revocations")
    );
}

#[tokio::test]
async fn feed_spec_the_page_lists_events_in_order_after_since() {
    let f = fixture().await;
    let (_, start) = f.page(0).await;
    let base = start["last"].as_u64().unwrap();
    let a = f.revoke_one().await;
    let b = f.revoke_one().await;
    let (_, j) = f.page(base).await;
    let events = j["events"].as_array().unwrap();
    let got: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["value"].as_str().unwrap()))
        .collect();
    assert_eq!(got, vec![("jti", a.as_str()), ("jti", b.as_str())]);
    assert_eq!(events[0]["seq"], base + 1);
    assert_eq!(events[1]["seq"], base + 2);
    assert_eq!(
        (j["last"].as_u64(), j["more"].as_bool()),
        (Some(base + 2), Some(false))
    );
    let e = &events[0];
    assert!(e["until"].as_i64().unwrap() > e["at"].as_i64().unwrap());
    let (_, j) = f.page(base + 1).await;
    assert_eq!(j["events"].as_array().unwrap().len(), 1);
    // Malformed resume points are the client's mistake.
    let r =
        f.s.http
            .get(f.s.url("/revocations?since=-1"))
            .basic_auth("gateway", Some(&f.feed))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn feed_spec_the_stream_pushes_new_events_and_resumes_after_last_event_id() {
    let f = fixture().await;
    let mut live = f.stream(None).await;
    let a = f.revoke_one().await;
    let (id_a, e) = live.event().await;
    assert_eq!(
        (e["kind"].as_str(), e["value"].as_str()),
        (Some("jti"), Some(a.as_str()))
    );
    let b = f.revoke_one().await;
    let (id_b, e) = live.event().await;
    assert_eq!(e["value"].as_str(), Some(b.as_str()));
    assert_eq!(id_b, id_a + 1);
    drop(live);
    // A consumer that saw `a` and then lost its connection gets `b` and what came after.
    let c = f.revoke_one().await;
    let mut resumed = f.stream(Some(id_a)).await;
    assert_eq!(resumed.event().await.1["value"].as_str(), Some(b.as_str()));
    assert_eq!(resumed.event().await.1["value"].as_str(), Some(c.as_str()));
    let d = f.revoke_one().await;
    assert_eq!(resumed.event().await.1["value"].as_str(), Some(d.as_str()));
}

#[tokio::test]
async fn feed_spec_an_idle_stream_carries_keep_alive_comments() {
    let f = fixture_with(|st| st.feed_keep_alive = Duration::from_millis(200)).await;
    let mut live = f.stream(None).await;
    let msg = live.next(Duration::from_secs(2)).await;
    assert_eq!(msg, vec![": keep-alive".to_owned()]);
}

#[tokio::test]
async fn feed_spec_a_resume_point_in_a_dropped_range_gets_410_resync_required() {
    let f = fixture().await;
    f.revoke_one().await;
    let (_, start) = f.page(0).await;
    let base = start["last"].as_u64().unwrap();
    assert!(base > 0);
    f.revoke_one().await;
    f.revoke_one().await;
    // Past every event's `until`, the janitor drops them.
    f.s.clock.advance(7200);
    f.s.store()
        .purge_expired(f.s.revocation().at)
        .await
        .unwrap();
    f.revoke_one().await;
    let (status, j) = f.page(base).await;
    assert_eq!(
        (status, j["error"].as_str()),
        (410, Some("resync_required")),
        "{j}"
    );
    assert_eq!(j["oldest"], base + 3);
    let r =
        f.s.http
            .get(f.s.url("/revocations"))
            .basic_auth("gateway", Some(&f.feed))
            .header("last-event-id", base.to_string())
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 410);
    // Starting again holds what still matters.
    let (status, j) = f.page(0).await;
    assert_eq!(status, 200);
    assert_eq!(j["events"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn feed_spec_streams_end_when_the_server_shuts_down() {
    let f = fixture().await;
    let mut live = f.stream(None).await;
    f.s.app.begin_shutdown();
    // The stream ends (the consumer reconnects elsewhere with Last-Event-ID), so a graceful
    // shutdown need not wait for it.
    let end = tokio::time::timeout(Duration::from_secs(5), live.r.chunk())
        .await
        .expect("the stream ends within 5 s")
        .unwrap();
    assert_eq!(end, None);
    // New streams end at once too.
    let mut late = f.stream(None).await;
    let end = tokio::time::timeout(Duration::from_secs(5), late.r.chunk())
        .await
        .expect("a new stream ends too")
        .unwrap();
    assert_eq!(end, None);
}
