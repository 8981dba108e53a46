//! The Keycard authorization server: axum routes around the pure rules of keycard-protocol.
//!
//! Entry points: [`App::new`] builds the shared state from a [`Store`](keycard_store::Store) and
//! [`Settings`]; [`router`] returns the axum `Router` and [`metrics_router`] the `/metrics`
//! one, for a listener of its own; [`spawn_background`] starts the key-reload and janitor
//! tasks. Each handler follows parse → load → decide → persist → respond: parsing and deciding
//! are keycard-protocol functions, loading and persisting are `Store` calls. The routers are
//! served by `keycard_serve::serve`, whose `ClientAddr` names the client of each request.
//!
//! Layers, top down (imports only go down): `routes` (one file per endpoint or page) → `flow`
//! (the authorization flow shared by the authorize, login and consent pages) and `pages` (page
//! errors, the transaction form) → `access` (client authentication and access-token checks
//! shared by the token, introspection, revocation and userinfo endpoints) → `http`, `error`,
//! `keys`, `password`, `throttle`, `templates`, `cache`, `metrics` → `verified` → `app`,
//! `settings`.
//!
//! Invariants: only this crate sees axum, templates and the store together; errors reach the
//! wire only through `error::ServerError` (RFC 6749/6750 JSON) and `pages::PageError` (HTML),
//! both delegating to `keycard_protocol::wire`; handlers read time from the [`Clock`] and never
//! log secrets (tokens, codes, passwords, keys).

mod access;
mod app;
mod backchannel;
mod cache;
mod crypto;
mod edge;
mod error;
mod feed;
mod flow;
mod http;
mod keys;
mod metrics;
mod pages;
mod password;
mod routes;
mod settings;
mod templates;
mod throttle;
mod verified;

pub use app::{App, StartError, spawn_background};
pub use crypto::MasterKey;
pub use keycard_os::SystemClock;
pub use keycard_protocol::{Clock, ManualClock};
pub use keys::{revoke as revoke_key, rotate as rotate_keys};
pub use metrics::handle as metrics_handle;
pub use password::{hash_blocking as hash_password, verify_with_memory};
pub use routes::demo::{DEMO_API, DEMO_CLIENT, demo_redirect_uri};
pub use routes::{metrics_router, router};
pub use settings::Settings;
