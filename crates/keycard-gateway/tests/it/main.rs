//! Black-box tests of the gateway over real sockets, one binary: a real upstream that echoes
//! what it received, the gateway in-process on 127.0.0.1:0, and as the authorization server
//! either a real Keycard (`keycard_testkit::TestServer`) or a fake one whose revocation feed
//! the test drives (`fake_as`).

#![allow(missing_debug_implementations)] // test fixtures
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

mod fake_as;
mod faults;
mod feed;
mod headers;
mod interop;
mod paths;
mod policies;
mod reload;
mod streaming;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use keycard_gateway::config::GatewayConfig;
use keycard_gateway::forward::Body;
use keycard_gateway::gateway::full;
use keycard_gateway::{Gateway, GatewayOptions, serve};
use keycard_protocol::policy::GrantType;
use keycard_testkit::{API, ClientSpec, TestServer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
pub type Handler = Arc<dyn Fn(Request<Incoming>) -> BoxFuture<Response<Body>> + Send + Sync>;

/// A server on a real socket whose every connection dies with it.
pub struct Server {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `addr` with `SO_REUSEADDR`, so a killed server can come back on its port.
pub fn bind(addr: &str) -> TcpListener {
    let addr: SocketAddr = addr.parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    socket.listen(128).unwrap()
}

/// Serves `handler` (HTTP/1.1 with upgrades, and h2c) until the returned server is dropped.
pub fn serve_with(listener: TcpListener, handler: Handler) -> Server {
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            conns.spawn(async move {
                let service = service_fn(move |req| {
                    let h = handler.clone();
                    async move { Ok::<_, Infallible>(h(req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Server { addr, task }
}

/// The upstream: answers what it received as JSON (method, request-target, version, headers,
/// body length and SHA-256, and the body when short). `…/slow` waits 1.5 s; `…/big` streams
/// 16 MiB; `…/ws` with `Upgrade` switches protocols and echoes bytes.
pub fn echo_upstream() -> Server {
    serve_with(bind("127.0.0.1:0"), Arc::new(|req| Box::pin(echo(req))))
}

async fn echo(mut req: Request<Incoming>) -> Response<Body> {
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    if target.ends_with("/ws") && req.headers().contains_key("upgrade") {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = on.await {
                let (mut r, mut w) = tokio::io::split(TokioIo::new(up));
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        return Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(full(Bytes::new()))
            .unwrap();
    }
    if target.ends_with("/big") {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        tokio::spawn(async move {
            for i in 0..256u32 {
                let chunk = Bytes::from(vec![(i % 251) as u8; 64 * 1024]);
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
        });
        return Response::new(ChannelBody(rx).boxed_unsync());
    }
    if target.ends_with("/slow") {
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let method = req.method().to_string();
    let version = format!("{:?}", req.version());
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body);
    let echo = json!({
        "method": method,
        "target": target,
        "version": version,
        "headers": headers,
        "body_len": body.len(),
        "body_sha256": hex(digest.as_ref()),
        "body": if body.len() <= 4096 { String::from_utf8_lossy(&body).into_owned() } else { String::new() },
    });
    Response::builder()
        .header("content-type", "application/json")
        .header("connection", "x-upstream-hop")
        .header("x-upstream-hop", "must not cross")
        .header("keep-alive", "timeout=5")
        .body(full(echo.to_string()))
        .unwrap()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// A response body fed by a channel.
pub struct ChannelBody(pub tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = keycard_gateway::forward::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|o| o.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

/// The upstream's echo of one request.
#[derive(Debug)]
pub struct Echo(pub Value);

impl Echo {
    pub fn target(&self) -> &str {
        self.0["target"].as_str().unwrap()
    }

    /// Every value of a header, by lower-case name.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.0["headers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p[0] == name)
            .map(|p| p[1].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let all = self.header_all(name);
        assert!(all.len() <= 1, "{name} sent {} times", all.len());
        all.into_iter().next()
    }

    pub fn header_names(&self) -> Vec<String> {
        self.0["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[0].as_str().unwrap().to_owned())
            .collect()
    }
}

/// A gateway serving `config` on 127.0.0.1:0.
pub struct Gw {
    pub base: String,
    pub addr: SocketAddr,
    pub gateway: Gateway,
    task: JoinHandle<()>,
}

impl Drop for Gw {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start_gateway(config: &str, secret: Option<&str>, options: GatewayOptions) -> Gw {
    let config = GatewayConfig::parse(config).unwrap_or_else(|e| panic!("{e}\n{config}"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let gateway = Gateway::new(config.clone(), secret, options).unwrap();
    let task = tokio::spawn(serve::serve(listener, gateway.clone(), *config.limits()));
    Gw {
        base: format!("http://{addr}"),
        addr,
        gateway,
        task,
    }
}

impl Gw {
    /// Waits until the gateway has reached the authorization server.
    pub async fn ready(&self) {
        eventually("the gateway to reach the authorization server", || {
            self.gateway.is_ready()
        })
        .await;
    }
}

/// The top of a gateway configuration; routes follow.
pub fn head(issuer: &str, extra: &str) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\nissuer = \"{issuer}\"\naudience = \"{API}\"\n\
         client_id = \"gateway\"\nclient_secret_env = \"GW_SECRET\"\n{extra}\n"
    )
}

pub fn route(path: &str, methods: &str, upstream: SocketAddr, auth: &str, extra: &str) -> String {
    format!(
        "[[route]]\npath = \"{path}\"\nmethods = {methods}\nupstream = \"http://{upstream}\"\n\
         auth = \"{auth}\"\n{extra}\n"
    )
}

/// Waits until `f` holds, for at most five seconds.
pub async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A response reduced to what the tests look at.
#[derive(Debug)]
pub struct Got {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Got {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub fn echo(&self) -> Echo {
        assert_eq!(self.status, 200, "{}", self.body);
        Echo(self.json())
    }

    pub fn challenge(&self) -> String {
        self.headers
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

pub async fn send(r: reqwest::RequestBuilder) -> Got {
    let r = r.send().await.unwrap();
    Got {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap_or_default(),
    }
}

pub async fn get(url: &str, token: Option<&str>) -> Got {
    let mut r = http().get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    send(r).await
}

/// A real Keycard with the API, the gateway's own client (the API's resource server, allowed to
/// read the revocation feed) and two machine clients.
pub struct RealAs {
    pub s: TestServer,
    pub gateway_secret: String,
    pub m2m_secret: String,
    pub reader_secret: String,
}

pub async fn real_as() -> RealAs {
    let s = TestServer::start().await;
    s.add_api(API, "photos:read orders:write", 600).await;
    let cc = |id, scope| ClientSpec {
        id,
        confidential: true,
        first_party: false,
        grants: &[GrantType::ClientCredentials],
        scope,
        audiences: &[API],
        redirect_uris: &[],
        resource_servers: &[],
    };
    let gateway = ClientSpec {
        resource_servers: &[API],
        ..cc("gateway", "photos:read")
    };
    let gateway_secret = s.add_client_with(gateway, |c| c.feed = true).await.unwrap();
    let m2m_secret = s
        .add_client(cc("m2m", "photos:read orders:write"))
        .await
        .unwrap();
    let reader_secret = s.add_client(cc("reader", "photos:read")).await.unwrap();
    RealAs {
        s,
        gateway_secret,
        m2m_secret,
        reader_secret,
    }
}

impl RealAs {
    /// A client-credentials access token for the API.
    pub async fn token(&self, client: &str, secret: &str, scope: &str) -> String {
        let r = self
            .s
            .http
            .post(self.s.url("/token"))
            .basic_auth(client, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
            .send()
            .await
            .unwrap();
        let j: Value = r.json().await.unwrap();
        j["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {j}"))
            .to_owned()
    }

    pub fn options(&self) -> GatewayOptions {
        GatewayOptions {
            clock: self.s.clock.clone(),
            ..GatewayOptions::default()
        }
    }
}
