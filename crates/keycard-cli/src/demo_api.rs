//! `keycard demo-api`: the "doors that check the key card", as a small photos/orders API.
//!
//! `GET /photos` needs `photos:read` and is validated locally (signature and claims against the
//! cached JWKS: fast, but a revoked token keeps working until it expires). `POST /orders`
//! ("charge a credit card") needs `orders:write` and asks the authorization server on every
//! call (RFC 7662 introspection), so a revoked token is refused at once. `GET /public/photos`
//! is the same handler with no check at all, for comparison.

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use keycard_protocol::{Audience, ClientId, ClientSecret, Issuer, Kid};
use keycard_validate::{
    Bearer, BearerLayer, Clock as _, Introspector, RequireScopes, ReqwestClient, Validator,
    ValidatorOptions, introspect_request,
};
use serde_json::json;

#[derive(Debug)]
struct DemoApi {
    introspector: Introspector,
}

fn photos_json() -> serde_json::Value {
    json!({ "photos": [
        { "id": 1, "title": "Front desk at night", "url": "https://img.example.com/1.jpg" },
        { "id": 2, "title": "Key cards", "url": "https://img.example.com/2.jpg" },
    ]})
}

async fn public_photos() -> Response {
    axum::Json(photos_json()).into_response()
}

async fn photos(Bearer(token): Bearer) -> Response {
    let mut body = photos_json();
    body["for"] = token.sub().as_str().into();
    axum::Json(body).into_response()
}

async fn orders(State(api): State<Arc<DemoApi>>, headers: HeaderMap) -> Response {
    let required = RequireScopes::all(["orders:write"]);
    match introspect_request(&api.introspector, &headers, &required).await {
        Ok(token) => axum::Json(json!({
            "order": "accepted",
            "charged_to": token.sub,
            "client_id": token.client_id,
        }))
        .into_response(),
        Err(e) => e.to_response(Some("orders")),
    }
}

/// Builds the demo API router for `issuer`, accepting tokens for `audience`.
pub(crate) fn router(
    issuer: &Issuer,
    audience: &Audience,
    client_id: &ClientId,
    client_secret: &ClientSecret,
) -> anyhow::Result<Router> {
    let http = Arc::new(ReqwestClient::new().map_err(|e| anyhow::anyhow!("{e}"))?);
    let validator = Validator::new(
        issuer.clone(),
        audience.clone(),
        http.clone(),
        ValidatorOptions::default(),
    );
    let introspector = Introspector::new(
        issuer.endpoint("/introspect"),
        client_id,
        client_secret,
        http,
    );
    let api = Arc::new(DemoApi { introspector });
    let local = Router::new().route("/photos", get(photos)).route_layer(
        BearerLayer::new(validator)
            .require(["photos:read"])
            .realm("photos"),
    );
    Ok(Router::new()
        .merge(local)
        .route("/public/photos", get(public_photos))
        .route("/orders", post(orders))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(api))
}

pub(crate) async fn run(addr: &str, issuer: &str, audience: &str) -> anyhow::Result<()> {
    let client_id =
        std::env::var("KEYCARD_DEMO_API_CLIENT_ID").unwrap_or_else(|_| "photos-api".into());
    let secret = std::env::var("KEYCARD_DEMO_API_CLIENT_SECRET")
        .context("set KEYCARD_DEMO_API_CLIENT_SECRET to the photos-api client's secret (introspection needs it)")?;
    let app = router(
        &Issuer::from_wire(issuer).map_err(anyhow::Error::msg)?,
        &Audience::parse(audience)?,
        &ClientId::parse(&client_id)?,
        &ClientSecret::parse(&secret)?,
    )?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(addr = %addr, issuer = %issuer, audience = %audience, "demo API listening");
    println!(
        "demo API on http://{addr}: GET /photos (photos:read, local), POST /orders (orders:write, introspection)"
    );
    keycard_serve::serve(
        listener,
        app,
        keycard_serve::ServeOptions::default(),
        crate::cmd::serve::shutdown_signal(),
    )
    .await;
    Ok(())
}

/// Single-core rate of full access-token validation (`keycard bench validate`).
pub(crate) async fn bench_validate(seconds: u64, alg: keycard_jose::Alg) -> anyhow::Result<f64> {
    use keycard_jose::{SigningKey, TokenTyp};
    use keycard_validate::{BasicAuth, BoxFuture, HttpClient, HttpError, HttpResponse};

    #[derive(Debug)]
    struct Static(String);
    impl HttpClient for Static {
        fn get<'a>(&'a self, _url: &'a str) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
            let body = self.0.clone();
            Box::pin(
                async move { Ok(HttpResponse::new(200, body).with_cache_control("max-age=3600")) },
            )
        }
        fn post_form<'a>(
            &'a self,
            _: &'a str,
            _: &'a BasicAuth,
            _: &'a [(&'a str, &'a str)],
        ) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
            Box::pin(async { Err(HttpError::new("not used")) })
        }
    }

    let (key, _) = SigningKey::generate(alg, Kid::parse("bench")?)?;
    let jwks = keycard_jose::jwks_json(&[key.public_jwk()]).to_string();
    let iss = "https://id.example.com";
    let now = keycard_validate::SystemClock.now().secs();
    let token = key.sign(
        TokenTyp::AccessToken,
        &json!({ "iss": iss, "sub": "u1", "aud": "https://api.example.com", "exp": now + 3600, "iat": now,
                 "jti": "j1", "client_id": "c1", "scope": "photos:read" }),
    )?;
    let validator = Validator::new(
        Issuer::from_wire(iss).map_err(anyhow::Error::msg)?,
        Audience::parse("https://api.example.com")?,
        Arc::new(Static(jwks)),
        // The same token again and again: without the signature memo, so the rate is that of
        // full validation (a resource server sees each token's first use at this rate).
        ValidatorOptions::default()
            .jwks_uri(format!("{iss}/jwks.json"))
            .signature_memo(0),
    );
    // One task validating in a loop: the rate of one core.
    validator
        .validate(&token)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let start = std::time::Instant::now();
    let deadline = start + std::time::Duration::from_secs(seconds);
    let mut n = 0u64;
    while std::time::Instant::now() < deadline {
        for _ in 0..100 {
            validator
                .validate(&token)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        n += 100;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}
