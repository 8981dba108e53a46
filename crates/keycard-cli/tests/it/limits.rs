//! The listener's limits, over real sockets against the real binary: slow request heads and
//! bodies are cut, idle kept-alive connections are closed, floods of idle sockets are capped
//! per peer and in total without stopping `/healthz` for others, forwarded headers and request
//! ids are believed only from a trusted proxy, and `/metrics` is only on its own listener.
//!
//! Timeouts are configured at 1–2 s so the file stays fast. Other loopback addresses
//! (127.0.0.2, ...) stand for other clients: all of 127/8 is loopback on Linux.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::{Keycard, free_port, http};

async fn serve_with(extra: &[&str]) -> Keycard {
    let mut kc = Keycard::new();
    kc.start_with("serve", extra).await;
    kc
}

/// A connection to the server from the loopback address `local`.
async fn connect_from(local: &str, kc: &Keycard) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind(format!("{local}:0").parse().expect("local addr"))
        .expect("bind the client address");
    let server: SocketAddr = format!("127.0.0.1:{}", kc.port).parse().expect("addr");
    sock.connect(server).await.expect("connect")
}

/// A reqwest client whose connections come from `local`.
fn http_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<std::net::IpAddr>().expect("ip"))
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

/// Reads until the server closes `conn` (or `limit` passes, which fails the test); returns
/// what it sent and how long that took.
async fn read_to_close(conn: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), conn.read(&mut buf)).await
        {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "still open after {limit:?}; received {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

/// Sends one `GET` on `conn` and reads its (small) response.
async fn get_on(conn: &mut TcpStream, path: &str) -> String {
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: keycard\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
        .await
        .expect("a response in time")
        .expect("read");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

async fn healthz_from(local: &str, kc: &Keycard) -> reqwest::StatusCode {
    http_from(local)
        .get(format!("{}/healthz", kc.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("/healthz from {local}: {e}\n{}", kc.logs()))
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_request_heads_are_cut_at_the_header_read_timeout() {
    let kc = serve_with(&["--header-read-timeout", "1"]).await;
    let conn = connect_from("127.0.0.1", &kc).await;
    let (mut rd, mut wr) = conn.into_split();
    let reader = tokio::spawn(async move {
        let start = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        (got, start.elapsed())
    });
    // One header line every 300 ms, never finishing the head.
    wr.write_all(b"GET /healthz HTTP/1.1\r\nHost: keycard\r\n")
        .await
        .expect("write");
    let start = Instant::now();
    while !reader.is_finished() && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if wr.write_all(b"X-Slow: 1\r\n").await.is_err() {
            break;
        }
    }
    let (got, after) = tokio::time::timeout(Duration::from_secs(2), reader)
        .await
        .expect("the server closed the connection")
        .expect("reader");
    assert!(
        !String::from_utf8_lossy(&got).contains("200 OK"),
        "a slow head was served"
    );
    assert!(after < Duration::from_secs(3), "cut only after {after:?}");
    assert_eq!(healthz_from("127.0.0.1", &kc).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_at_the_idle_timeout() {
    let kc = serve_with(&["--header-read-timeout", "1", "--idle-timeout", "3"]).await;
    let mut conn = connect_from("127.0.0.1", &kc).await;
    assert!(
        get_on(&mut conn, "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
    );
    // Idle past the header timeout: the connection is kept, and serves the next request.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        get_on(&mut conn, "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let (got, idle) = read_to_close(&mut conn, Duration::from_secs(6)).await;
    assert_eq!(got, "");
    assert!(
        idle >= Duration::from_secs(2) && idle < Duration::from_secs(5),
        "closed after {idle:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_never_finishes_is_cut_at_the_body_timeout() {
    let kc = serve_with(&["--body-timeout", "1"]).await;
    let mut conn = connect_from("127.0.0.1", &kc).await;
    // 10 MB announced, 10 bytes sent.
    conn.write_all(
        b"POST /token HTTP/1.1\r\nHost: keycard\r\n\
          Content-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 10000000\r\n\r\ngrant_type",
    )
    .await
    .expect("write");
    let (got, after) = read_to_close(&mut conn, Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(after < Duration::from_secs(3), "cut only after {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_sockets_from_one_peer_does_not_stop_healthz_for_others() {
    let kc = serve_with(&["--max-connections-per-peer", "16"]).await;
    let mut flood = Vec::new();
    for _ in 0..64 {
        flood.push(connect_from("127.0.0.1", &kc).await);
    }
    // The flood holds its 16 connections; a 17th from the same peer is closed at once.
    let mut more = connect_from("127.0.0.1", &kc).await;
    let _ = more
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: keycard\r\n\r\n")
        .await;
    let (got, after) = read_to_close(&mut more, Duration::from_secs(2)).await;
    assert_eq!(got, "", "refused without an answer");
    assert!(after < Duration::from_secs(1), "refused after {after:?}");
    // Another client is served meanwhile.
    assert_eq!(healthz_from("127.0.0.2", &kc).await, 200);
    // Once the flood is gone, its peer is served again.
    drop(flood);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(healthz_from("127.0.0.1", &kc).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_total_cap_are_refused_at_once_and_accepting_goes_on() {
    let kc = serve_with(&["--max-connections", "8"]).await;
    // Fill the cap with connections the server has answered on (so it counts them, however
    // loaded the machine is). A connection it closes instead was over the cap because one it
    // still counts is on its way out (the harness's readiness probe): try again shortly.
    let mut held = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while held.len() < 8 {
        assert!(
            Instant::now() < deadline,
            "could not hold 8 connections in 10 s"
        );
        let mut c = connect_from("127.0.0.1", &kc).await;
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
            .await
            .expect("an answer or a close within 10 s")
            .unwrap_or(0);
        if buf[..n].starts_with(b"HTTP/1.1 200") {
            held.push(c);
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut surplus = connect_from("127.0.0.2", &kc).await;
    let (got, after) = read_to_close(&mut surplus, Duration::from_secs(2)).await;
    assert_eq!(got, "", "refused without an answer");
    assert!(after < Duration::from_secs(1), "refused after {after:?}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(healthz_from("127.0.0.2", &kc).await, 200);
}

/// The log line the server wrote for the request with id `id`.
async fn log_line(kc: &Keycard, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let logs = std::fs::read_to_string(kc.stderr_path()).unwrap_or_default();
        if let Some(line) = logs
            .lines()
            .find(|l| l.contains(&format!("\"id\":\"{id}\"")))
        {
            return line.to_owned();
        }
        assert!(Instant::now() < deadline, "no log line for {id}\n{logs}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn healthz_as(local: &str, kc: &Keycard, xff: &str, request_id: &str) -> String {
    let r = http_from(local)
        .get(format!("{}/healthz", kc.base))
        .header("x-forwarded-for", xff)
        .header("x-request-id", request_id)
        .send()
        .await
        .expect("/healthz");
    assert_eq!(r.status(), 200);
    r.headers()["x-request-id"]
        .to_str()
        .expect("request id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_address_and_request_id_are_believed_only_from_a_trusted_proxy() {
    let kc = serve_with(&["--trusted-proxy", "127.0.0.1", "--log-format", "json"]).await;

    // The trusted proxy: its request id is kept, and the client is the rightmost hop that is
    // not a trusted proxy (the leftmost entry is whatever the client claimed).
    let id = healthz_as("127.0.0.1", &kc, "6.6.6.6, 198.51.100.7", "proxy-id-1").await;
    assert_eq!(id, "proxy-id-1");
    let line = log_line(&kc, &id).await;
    assert!(line.contains("\"client\":\"198.51.100.7\""), "{line}");

    // A malformed id from the trusted proxy is replaced.
    let id = healthz_as("127.0.0.1", &kc, "198.51.100.7", "bad id <script>").await;
    assert_ne!(id, "bad id <script>");

    // Anyone else: both headers are ignored.
    let id = healthz_as("127.0.0.2", &kc, "198.51.100.7", "spoofed-id-2").await;
    assert_ne!(id, "spoofed-id-2");
    let line = log_line(&kc, &id).await;
    assert!(line.contains("\"client\":\"127.0.0.2\""), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_only_on_the_metrics_listener() {
    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let kc = serve_with(&["--metrics-addr", &metrics_addr]).await;
    let public = http()
        .get(format!("{}/metrics", kc.base))
        .send()
        .await
        .expect("/metrics");
    assert_eq!(public.status(), 404);
    let m = http()
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .expect("metrics listener");
    assert_eq!(m.status(), 200);
    let text = m.text().await.expect("metrics");
    assert!(text.contains("keycard_http_requests_total"), "{text}");
}
