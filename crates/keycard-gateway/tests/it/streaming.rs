//! Bodies stream both ways, and WebSocket upgrades pass through.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::*;

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let up = echo_upstream();
    let config = "listen = \"127.0.0.1:0\"\n".to_owned()
        + &route("/files", "[\"GET\", \"PUT\"]", up.addr, "none", "");
    let gw = start_gateway(&config, None, GatewayOptions::default()).await;
    let upload: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let digest = hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &upload).as_ref());
    let e = send(
        http()
            .put(format!("{}/files/up", gw.base))
            .body(upload.clone()),
    )
    .await
    .echo();
    assert_eq!(e.0["body_len"], upload.len());
    assert_eq!(e.0["body_sha256"], digest);
    let r = http()
        .get(format!("{}/files/big", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut r = r;
    let (mut total, mut chunks) = (0usize, 0usize);
    while let Some(c) = r.chunk().await.unwrap() {
        total += c.len();
        chunks += 1;
    }
    assert_eq!(total, 16 * 1024 * 1024);
    assert!(chunks > 1, "streamed, not buffered into one chunk");
}

#[tokio::test]
async fn rfc6455_websocket_upgrade_passes_through() {
    let up = echo_upstream();
    let config = "listen = \"127.0.0.1:0\"\n".to_owned()
        + &route(
            "/live",
            "[\"GET\"]",
            up.addr,
            "none",
            "upstream_http2 = true",
        );
    let gw = start_gateway(&config, None, GatewayOptions::default()).await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(
        b"GET /live/ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    for msg in [&b"hello"[..], &[0x81, 0x02, b'h', b'i'][..]] {
        s.write_all(msg).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut back))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back, msg);
    }
}
