//! Reloading: a good file swaps the routes atomically, a bad one is refused with its line while
//! the old configuration keeps serving, and a request in flight finishes under the old rules.

use keycard_gateway::config::GatewayConfig;

use crate::*;

#[tokio::test]
async fn reload_swaps_routes_refuses_a_bad_file_and_keeps_requests_in_flight() {
    let up = echo_upstream();
    let first =
        "listen = \"127.0.0.1:0\"\n".to_owned() + &route("/old", "[\"GET\"]", up.addr, "none", "");
    let gw = start_gateway(&first, None, GatewayOptions::default()).await;
    assert_eq!(
        get(&format!("{}/old/slow", gw.base), None).await.status,
        200
    );
    // A slow request starts under the first configuration ...
    let base = gw.base.clone();
    let in_flight = tokio::spawn(async move { get(&format!("{base}/old/slow"), None).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ... a bad file is refused with its line, and nothing changes ...
    let bad = first.clone()
        + "[[route]]\npath = \"/new\"\nmethods = [\"GET\"]\nupstream = \"ftp://x\"\nauth = \"none\"\n";
    let err = GatewayConfig::parse(&bad).unwrap_err();
    assert_eq!(err.line, 11, "{err}");
    assert!(
        err.to_string()
            .starts_with("line 11, column 12: upstream scheme ftp"),
        "{err}"
    );
    assert_eq!(get(&format!("{}/old", gw.base), None).await.status, 200);
    // ... then a good one replaces the routes.
    let second =
        "listen = \"127.0.0.1:0\"\n".to_owned() + &route("/new", "[\"GET\"]", up.addr, "none", "");
    gw.gateway
        .reload(GatewayConfig::parse(&second).unwrap(), None)
        .unwrap();
    assert_eq!(get(&format!("{}/new", gw.base), None).await.status, 200);
    assert_eq!(get(&format!("{}/old", gw.base), None).await.status, 404);
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 200, "the request in flight was not dropped");
    assert_eq!(r.echo().target(), "/old/slow");
    // A reload that moves the listener is refused; the configuration stays.
    let moved = second.replace("127.0.0.1:0", "127.0.0.1:1");
    let e = gw
        .gateway
        .reload(GatewayConfig::parse(&moved).unwrap(), None)
        .unwrap_err();
    assert!(e.to_string().contains("restart"), "{e}");
    assert_eq!(get(&format!("{}/new", gw.base), None).await.status, 200);
    // A reload missing the client secret is refused too.
    let needs_secret =
        "listen = \"127.0.0.1:0\"\nclient_id = \"gw\"\nclient_secret_env = \"NOPE\"\n".to_owned()
            + &route("/x", "[\"GET\"]", up.addr, "none", "");
    let e = gw
        .gateway
        .reload(GatewayConfig::parse(&needs_secret).unwrap(), None)
        .unwrap_err();
    assert!(e.to_string().contains("NOPE"), "{e}");
    assert_eq!(get(&format!("{}/new", gw.base), None).await.status, 200);
}
