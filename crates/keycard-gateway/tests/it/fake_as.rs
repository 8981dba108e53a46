//! A fake authorization server the test drives: discovery, a JWKS, RFC 7662 introspection that
//! answers from what the test revoked, and the revocation feed per the wire spec (snapshot,
//! Server-Sent Events resumed with `Last-Event-ID`). It can cut the feed alone, or die and come
//! back on the same port.

use std::collections::HashSet;
use std::sync::Mutex;

use base64::Engine as _;
use keycard_jose::{Alg, SigningKey, TokenTyp};
use keycard_protocol::{Clock, Kid, ManualClock};
use tokio::sync::mpsc;

use crate::*;

pub(crate) const T0: i64 = 1_800_000_000;

#[derive(Default)]
struct FeedState {
    events: Vec<Value>,
    streams: Vec<mpsc::Sender<Bytes>>,
    /// The `Last-Event-ID` of every stream request, in order.
    resumes: Vec<Option<String>>,
    down: bool,
}

pub(crate) struct FakeAs {
    pub(crate) addr: SocketAddr,
    pub(crate) issuer: String,
    pub(crate) clock: Arc<ManualClock>,
    key: SigningKey,
    revoked_jtis: Mutex<HashSet<String>>,
    feed: Mutex<FeedState>,
    pub(crate) introspections: std::sync::atomic::AtomicUsize,
    /// How long introspection takes to answer.
    pub(crate) introspect_delay: Mutex<Duration>,
    server: Mutex<Option<Server>>,
    next: std::sync::atomic::AtomicU64,
}

impl FakeAs {
    pub(crate) async fn start() -> Arc<FakeAs> {
        let listener = bind("127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let (key, _) = SigningKey::generate(Alg::ES256, Kid::parse("fake-k1").unwrap()).unwrap();
        let fake = Arc::new(FakeAs {
            addr,
            issuer: format!("http://{addr}"),
            clock: Arc::new(ManualClock::new(T0)),
            key,
            revoked_jtis: Mutex::new(HashSet::new()),
            feed: Mutex::new(FeedState::default()),
            introspections: Default::default(),
            introspect_delay: Mutex::new(Duration::ZERO),
            server: Mutex::new(None),
            next: Default::default(),
        });
        fake.serve(listener);
        fake
    }

    fn serve(self: &Arc<Self>, listener: TcpListener) {
        let weak = Arc::downgrade(self);
        let server = serve_with(
            listener,
            Arc::new(move |req| {
                let weak = weak.clone();
                Box::pin(async move {
                    match weak.upgrade() {
                        Some(fake) => fake.handle(req).await,
                        None => Response::builder().status(503).body(full("")).unwrap(),
                    }
                })
            }),
        );
        *self.server.lock().unwrap() = Some(server);
    }

    /// Stops answering altogether: the listener and every connection go.
    pub(crate) fn kill(&self) {
        self.server.lock().unwrap().take();
        self.feed.lock().unwrap().streams.clear();
    }

    /// Comes back on the same port.
    pub(crate) fn restart(self: &Arc<Self>) {
        self.serve(bind(&self.addr.to_string()));
    }

    /// Ends the open streams and answers the feed with 503 while `down`; the rest still works.
    pub(crate) fn set_feed_down(&self, down: bool) {
        let mut f = self.feed.lock().unwrap();
        f.down = down;
        if down {
            f.streams.clear();
        }
    }

    pub(crate) fn resumes(&self) -> Vec<Option<String>> {
        self.feed.lock().unwrap().resumes.clone()
    }

    /// A signed access token for the API; its `jti` is `<grant>.<n>`.
    pub(crate) fn token(&self, sub: &str, grant: &str, scope: &str) -> String {
        let now = self.clock.now().secs();
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let claims = json!({
            "iss": self.issuer, "sub": sub, "aud": API, "client_id": "app", "scope": scope,
            "iat": now, "exp": now + 600, "jti": format!("{grant}.{n:08}"),
        });
        self.key.sign(TokenTyp::AccessToken, &claims).unwrap()
    }

    /// Appends an event to the log and sends it to the open streams; introspection then
    /// reports matching `jti`s inactive too.
    pub(crate) fn revoke(&self, kind: &str, value: &str) -> u64 {
        let now = self.clock.now().secs();
        let mut f = self.feed.lock().unwrap();
        let seq = f.events.len() as u64 + 1;
        let e = json!({"seq": seq, "at": now, "until": now + 3600, "kind": kind, "value": value});
        f.events.push(e.clone());
        let frame = sse(&e);
        f.streams.retain(|s| s.try_send(frame.clone()).is_ok());
        drop(f);
        self.revoked_jtis.lock().unwrap().insert(value.to_owned());
        seq
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        match (req.method().as_str(), path.as_str()) {
            ("GET", "/.well-known/openid-configuration") => json_ok(json!({
                "issuer": self.issuer,
                "jwks_uri": format!("{}/jwks.json", self.issuer),
                "introspection_endpoint": format!("{}/introspect", self.issuer),
                "keycard_revocation_feed_endpoint": format!("{}/revocations", self.issuer),
            })),
            ("GET", "/jwks.json") => json_ok(keycard_jose::jwks_json(&[self.key.public_jwk()])),
            ("POST", "/introspect") => {
                self.introspections
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let token = url_form(&body, "token").unwrap_or_default();
                let delay = *self.introspect_delay.lock().unwrap();
                tokio::time::sleep(delay).await;
                json_ok(self.introspect(&token))
            }
            ("GET", "/revocations") => self.feed(req.headers(), &query),
            _ => Response::builder().status(404).body(full("")).unwrap(),
        }
    }

    fn introspect(&self, token: &str) -> Value {
        let Some(claims) = token
            .split('.')
            .nth(1)
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            return json!({"active": false});
        };
        let jti = claims["jti"].as_str().unwrap_or_default();
        let grant = jti.split('.').next().unwrap_or_default();
        let revoked = self.revoked_jtis.lock().unwrap();
        if revoked.contains(jti) || revoked.contains(grant) {
            return json!({"active": false});
        }
        let mut answer = claims.clone();
        answer["active"] = true.into();
        answer
    }

    fn feed(&self, headers: &http::HeaderMap, query: &str) -> Response<Body> {
        let mut f = self.feed.lock().unwrap();
        if f.down {
            return Response::builder().status(503).body(full("")).unwrap();
        }
        if let Some(since) = query.strip_prefix("since=") {
            let since: u64 = since.parse().unwrap_or(0);
            let events: Vec<Value> = f
                .events
                .iter()
                .filter(|e| e["seq"].as_u64().unwrap() > since)
                .cloned()
                .collect();
            let last = f.events.len() as u64;
            return json_ok(json!({"events": events, "last": last, "more": false}));
        }
        let resume = headers
            .get("last-event-id")
            .map(|v| v.to_str().unwrap().to_owned());
        f.resumes.push(resume.clone());
        let from: u64 = resume
            .as_deref()
            .map_or(f.events.len() as u64, |r| r.parse().unwrap_or(0));
        let (tx, rx) = mpsc::channel(64);
        let _ = tx.try_send(Bytes::from_static(b": keep-alive\n\n"));
        for e in f
            .events
            .iter()
            .filter(|e| e["seq"].as_u64().unwrap() > from)
        {
            let _ = tx.try_send(sse(e));
        }
        f.streams.push(tx);
        Response::builder()
            .header("content-type", "text/event-stream")
            .header("cache-control", "no-store")
            .body(ChannelBody(rx).boxed_unsync())
            .unwrap()
    }
}

fn sse(e: &Value) -> Bytes {
    Bytes::from(format!(
        "id: {}\nevent: revocation\ndata: {e}\n\n",
        e["seq"]
    ))
}

fn json_ok(v: Value) -> Response<Body> {
    Response::builder()
        .header("content-type", "application/json")
        .body(full(v.to_string()))
        .unwrap()
}

fn url_form(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
