//! A backend-for-frontend for browser apps, mounted in any axum application (IETF draft
//! "OAuth 2.0 for Browser-Based Applications" §6.1; OpenID Connect Core 1.0, RP-Initiated
//! Logout 1.0 and Back-Channel Logout 1.0; RFC 6749, 7009, 7636, 8707, 9207, 9700).
//!
//! The browser never sees a token. It holds one `HttpOnly` session cookie; the BFF holds the
//! tokens, encrypted, in the application's database, signs the user in against any OpenID
//! provider as a confidential client, refreshes the access token when it is about to expire,
//! and forwards the page's API calls to an allowlist of upstreams with the access token
//! attached.
//!
//! # Mounting it
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use keycard_bff::{Bff, BffConfig, BffOptions, BffSession};
//!
//! // One of the application's own API handlers, protected like the proxied ones.
//! async fn me(user: BffSession) -> String {
//!     format!("hello {}", user.name().unwrap_or("you"))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The application reads its configuration; this crate reads no file and no environment.
//! let text = std::fs::read_to_string("bff.toml")?;
//! let settings = BffConfig::from_toml_str(&text)?
//!     .with_env(std::env::vars()) // KEYCARD_BFF_CLIENT_SECRET, KEYCARD_BFF_SESSION_KEY, ...
//!     .build()?;
//! let store = keycard_bff::store::sql::connect(
//!     settings.database_url.as_deref().unwrap_or("sqlite://bff.db"),
//! )
//! .await?;
//! let bff = Bff::new(settings, store, BffOptions::default()).await?;
//! bff.spawn_janitor(std::time::Duration::from_secs(300));
//!
//! let app = Router::new()
//!     .route("/me", get(me))
//!     .layer(bff.layer())
//!     .merge(bff.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! With the default prefixes the application then answers:
//! - `GET /bff/login?return_to=/photos` — to the provider and back; `return_to` must be a
//!   same-origin path ([`ReturnTo`]), anything else lands on `/`.
//! - `GET /bff/callback` — the redirect URI to register at the provider.
//! - `GET /bff/session` — `{"authenticated": true, "sub", "name", "email", "expires_at",
//!   "logout_url", "csrf_token"}` or `{"authenticated": false}`.
//! - `POST /bff/logout` — with the `X-CSRF: 1` header (answered with `{"redirect_to": url}`)
//!   or from a plain form carrying `csrf_token` (answered with a 303).
//! - `POST /bff/backchannel-logout` — the back-channel logout URI to register.
//! - `/api/...` — the allowlisted routes of `[[proxy.routes]]`; the BFF answers everything under
//!   the proxy prefix (403 off the allowlist), so the application keeps its own routes elsewhere.
//!
//! The page calls them with `fetch(url, {headers: {"X-CSRF": "1"}})`: every API call and
//! `/bff/session` must carry that header (a cross-origin page cannot send it without a CORS
//! preflight, which the BFF never grants) and must not be `Sec-Fetch-Site: cross-site`.
//! A 401 answer means "sign in again": send the browser to `/bff/login`.
//!
//! # Invariants
//!
//! - Cookies: the session cookie is `__Host-`, `Secure`, `HttpOnly`, `SameSite=Strict`,
//!   `Path=/`, no `Domain`; its value is 256 random bits, and only its SHA-256 is stored.
//!   Browsers keep `Secure` cookies on `http://127.0.0.1` and `http://localhost`, so local
//!   development needs no TLS.
//! - Tokens are sealed with AES-256-GCM under the configured session key, the session's hash
//!   as associated data; they leave the BFF only towards the provider and the upstreams.
//! - The callback checks `state` and `iss` before the code is redeemed, and the id token
//!   completely before a session exists.
//! - Refreshes are single-flight per session across processes on one database; only
//!   `invalid_grant` ends a session.
//! - Every answer is JSON or a redirect the route documents, with `Cache-Control: no-store`.
//!
//! # Not here
//!
//! Streaming request and response bodies through the proxy (both are buffered up to
//! `max_body_bytes`); WebSockets; front-channel logout; and the Keycard revocation feed, which
//! a subscriber can connect to [`Bff::end_sessions`] for `sid` and `sub` events.

mod app;
pub mod config;
mod error;
mod layer;
mod provider;
mod proxy;
pub mod return_to;
mod routes;
mod seal;
mod session;
pub mod store;
mod web;

pub use app::{Bff, BffOptions};
pub use config::{BffConfig, ConfigError, ProxyRoute, Settings};
pub use error::BffError;
pub use layer::{BffLayer, BffService, BffSession};
pub use return_to::ReturnTo;
pub use seal::SessionKey;
