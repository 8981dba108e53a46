//! Faults: the authorization server down (local keeps working on cached keys, introspect 503
//! JSON), the upstream down (502 JSON), a slow upstream (504 by the route's timeout).

use std::sync::atomic::{AtomicBool, Ordering};

use keycard_validate::{
    BasicAuth, HttpClient, HttpError, HttpResponse, ReqwestClient, StreamingResponse,
};

use crate::*;

/// The gateway's HTTP to the authorization server, with a switch that cuts it.
struct Cut {
    inner: ReqwestClient,
    down: Arc<AtomicBool>,
}

impl HttpClient for Cut {
    fn get<'a>(
        &'a self,
        url: &'a str,
    ) -> keycard_validate::BoxFuture<'a, Result<HttpResponse, HttpError>> {
        if self.down.load(Ordering::SeqCst) {
            return Box::pin(async { Err(HttpError::new("connection refused")) });
        }
        self.inner.get(url)
    }

    fn post_form<'a>(
        &'a self,
        url: &'a str,
        auth: &'a BasicAuth,
        form: &'a [(&'a str, &'a str)],
    ) -> keycard_validate::BoxFuture<'a, Result<HttpResponse, HttpError>> {
        if self.down.load(Ordering::SeqCst) {
            return Box::pin(async { Err(HttpError::new("connection refused")) });
        }
        self.inner.post_form(url, auth, form)
    }

    fn get_streaming<'a>(
        &'a self,
        url: &'a str,
        auth: &'a BasicAuth,
        headers: &'a [(&'a str, &'a str)],
    ) -> keycard_validate::BoxFuture<'a, Result<StreamingResponse, HttpError>> {
        self.inner.get_streaming(url, auth, headers)
    }
}

#[tokio::test]
async fn authorization_server_down_local_keeps_working_introspect_answers_503() {
    let a = real_as().await;
    let up = echo_upstream();
    let down = Arc::new(AtomicBool::new(false));
    let options = GatewayOptions {
        http: Some(Arc::new(Cut {
            inner: ReqwestClient::new().unwrap(),
            down: down.clone(),
        })),
        ..a.options()
    };
    let config = head(&a.s.base, "")
        + &route("/photos", "[\"GET\"]", up.addr, "local", "")
        + &route("/orders", "[\"POST\"]", up.addr, "introspect", "");
    let gw = start_gateway(&config, Some(&a.gateway_secret), options).await;
    gw.ready().await;
    let t = a
        .token("m2m", &a.m2m_secret, "photos:read orders:write")
        .await;
    assert_eq!(
        get(&format!("{}/photos", gw.base), Some(&t)).await.status,
        200
    );
    down.store(true, Ordering::SeqCst);
    assert_eq!(
        get(&format!("{}/photos", gw.base), Some(&t)).await.status,
        200
    );
    let r = send(http().post(format!("{}/orders", gw.base)).bearer_auth(&t)).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"], "temporarily_unavailable");
    assert!(
        r.challenge().is_empty(),
        "nothing is wrong with the credentials"
    );
    down.store(false, Ordering::SeqCst);
    let r = send(http().post(format!("{}/orders", gw.base)).bearer_auth(&t)).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn checked_routes_answer_503_until_the_provider_is_reached() {
    let up = echo_upstream();
    // Nothing listens on the issuer's port.
    let dead = bind("127.0.0.1:0");
    let issuer = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let config = head(&issuer, "")
        + &route("/photos", "[\"GET\"]", up.addr, "local", "")
        + &route("/public", "[\"GET\"]", up.addr, "none", "");
    let gw = start_gateway(&config, Some("s"), GatewayOptions::default()).await;
    let r = get(&format!("{}/photos", gw.base), Some("a.b.c")).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (503, "temporarily_unavailable".into())
    );
    assert_eq!(get(&format!("{}/public", gw.base), None).await.status, 200);
    let h = get(&format!("{}/healthz", gw.base), None).await.json();
    assert_eq!(h["authorization_server"], "not reached yet");
}

#[tokio::test]
async fn upstream_down_is_502_and_slow_is_504() {
    let dead = bind("127.0.0.1:0");
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let up = echo_upstream();
    let config = "listen = \"127.0.0.1:0\"\n".to_owned()
        + &route("/gone", "[\"GET\"]", dead_addr, "none", "")
        + &route("/slow", "[\"GET\"]", up.addr, "none", "timeout_secs = 1");
    let gw = start_gateway(&config, None, GatewayOptions::default()).await;
    let r = get(&format!("{}/gone", gw.base), None).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (502, "bad_gateway".into())
    );
    assert_eq!(r.headers["content-type"], "application/json");
    let t0 = std::time::Instant::now();
    let r = get(&format!("{}/slow", gw.base), None).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (504, "upstream_timeout".into())
    );
    assert!(t0.elapsed() < Duration::from_millis(1400));
}
