//! `keycard_serve::serve` over real sockets: shutdown drains in-flight requests within its
//! grace, slow handlers are answered 503, kept-alive connections are timed as idle (not as a
//! slow request head), and the client address reaches handlers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use keycard_serve::{ClientAddr, ForwardedHeader, ServeOptions, TrustedProxies, TrustedProxy};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(600)).await;
                "slow"
            }),
        )
        .route(
            "/forever",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "never"
            }),
        )
        .route("/big", get(|| async { vec![b'x'; BIG] }))
        .route("/medium", get(|| async { vec![b'x'; MEDIUM] }))
        .route(
            "/client",
            get(|c: ClientAddr| async move { format!("{} {}", c.ip(), c.is_from_trusted_proxy()) }),
        )
}

/// A response larger than any socket buffers between the two ends.
const BIG: usize = 64 << 20;
/// A response that takes a client reading 1 MiB every 100 ms well over a second.
const MEDIUM: usize = 16 << 20;

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: JoinHandle<()>,
}

async fn start(options: ServeOptions) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let done = tokio::spawn(keycard_serve::serve(listener, app(), options, async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        done,
    }
}

/// Sends `GET path` on `conn` and reads one response (these answers are small).
async fn get_on(conn: &mut TcpStream, path: &str, extra: &str) -> String {
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0; 4096];
    let n = conn.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Waits for the peer to close `conn`, returning how long that took.
async fn closed_after(conn: &mut TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(limit, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the connection was still open after {limit:?}"),
        }
    }
}

#[tokio::test]
async fn graceful_shutdown_waits_for_in_flight_requests() {
    let mut s = start(ServeOptions::default()).await;
    let url = format!("http://{}/slow", s.addr);
    let request = tokio::spawn(async move { reqwest::get(url).await.unwrap().text().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.stop.take().unwrap().send(()).unwrap();
    assert_eq!(request.await.unwrap().unwrap(), "slow");
    tokio::time::timeout(Duration::from_secs(2), s.done)
        .await
        .expect("serve returns once drained")
        .unwrap();
    assert!(
        TcpStream::connect(s.addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn shutdown_grace_bounds_the_wait_for_in_flight_requests() {
    let mut s = start(ServeOptions {
        shutdown_grace: Duration::from_millis(300),
        ..ServeOptions::default()
    })
    .await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(b"GET /forever HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    s.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(2), s.done)
        .await
        .expect("serve returns after its grace")
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn a_handler_over_the_request_timeout_is_answered_503_and_closed() {
    let s = start(ServeOptions {
        request_timeout: Duration::from_millis(200),
        ..ServeOptions::default()
    })
    .await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    let resp = get_on(&mut conn, "/slow", "").await;
    assert!(resp.starts_with("HTTP/1.1 503"), "{resp}");
    assert!(
        resp.to_ascii_lowercase().contains("connection: close"),
        "{resp}"
    );
    closed_after(&mut conn, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_kept_alive_connection_is_timed_as_idle_not_as_a_slow_request_head() {
    let s = start(ServeOptions {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(1200),
        ..ServeOptions::default()
    })
    .await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    assert!(get_on(&mut conn, "/", "").await.starts_with("HTTP/1.1 200"));
    // Idle for longer than the header timeout: still open, and the next request is served.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(get_on(&mut conn, "/", "").await.starts_with("HTTP/1.1 200"));
    // Then idle again: closed at the idle timeout.
    let idle = closed_after(&mut conn, Duration::from_secs(3)).await;
    assert!(idle >= Duration::from_millis(1000), "closed after {idle:?}");

    // A request head begun after an idle spell falls under the header timeout again.
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    assert!(get_on(&mut conn, "/", "").await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    conn.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let head = closed_after(&mut conn, Duration::from_secs(3)).await;
    assert!(head < Duration::from_millis(900), "closed after {head:?}");
}

#[tokio::test]
async fn handlers_see_the_forwarded_client_only_from_a_trusted_proxy() {
    let trusted = start(ServeOptions {
        trusted_proxies: TrustedProxies::new(
            vec![TrustedProxy::parse("127.0.0.1").unwrap()],
            ForwardedHeader::XForwardedFor,
        ),
        ..ServeOptions::default()
    })
    .await;
    let mut conn = TcpStream::connect(trusted.addr).await.unwrap();
    let resp = get_on(
        &mut conn,
        "/client",
        "X-Forwarded-For: 6.6.6.6, 198.51.100.1\r\n",
    )
    .await;
    assert!(resp.ends_with("198.51.100.1 true"), "{resp}");

    let untrusted = start(ServeOptions::default()).await;
    let mut conn = TcpStream::connect(untrusted.addr).await.unwrap();
    let resp = get_on(&mut conn, "/client", "X-Forwarded-For: 198.51.100.1\r\n").await;
    assert!(resp.ends_with("127.0.0.1 false"), "{resp}");
}

#[tokio::test]
async fn a_client_that_stops_reading_its_response_is_disconnected() {
    let s = start(ServeOptions {
        idle_timeout: Duration::from_millis(500),
        ..ServeOptions::default()
    })
    .await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    // Read nothing for a while: the server's writes stall and time out.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got += n,
            Err(_) => panic!("still open after reading {got} bytes"),
        }
    }
    assert!(
        got < BIG,
        "the whole response was kept for a client that did not read"
    );
}

#[tokio::test]
async fn a_slow_but_steady_download_outlives_the_idle_timeout() {
    let s = start(ServeOptions {
        idle_timeout: Duration::from_millis(500),
        ..ServeOptions::default()
    })
    .await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(b"GET /medium HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    while got < MEDIUM {
        tokio::time::sleep(Duration::from_millis(100)).await;
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => panic!("cut after {got} bytes and {:?}", start.elapsed()),
            Ok(n) => got += n,
        }
    }
    assert!(start.elapsed() > Duration::from_millis(500));
}
