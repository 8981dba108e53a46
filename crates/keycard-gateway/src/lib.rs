//! The Keycard gateway: a reverse proxy in front of APIs that checks each request's bearer
//! token by the policy of its route.
//!
//! It is the compromise between local validation, which scales but cannot see revocation, and
//! introspection, which sees everything but sends every call to the authorization server: low-
//! risk routes validate RFC 9068 access tokens locally (`local`, honouring the authorization
//! server's revocation feed; `local_strict`, refusing or introspecting when that feed is stale),
//! high-risk routes introspect every call (`introspect`, RFC 7662), and public routes pass
//! (`none`).
//!
//! The pure core: [`path`] canonicalises the request-target once, so the path that is matched
//! is the path that is forwarded; [`route`] holds the routes and the longest-prefix lookup
//! (404 / 405); [`config`] reads and validates the TOML file with line and column in every
//! error. None of them does I/O or reads the clock or the environment.
//!
//! The proxy: [`gateway::Gateway`] serves one request at a time against the configuration in
//! force and swaps it on reload; [`policy`] judges tokens; [`authority`] holds discovery, the
//! validator, introspection and the revocation feed ([`introspection`] is its cache);
//! [`forward`] rewrites headers and talks to upstreams; [`assertion`] signs identity
//! assertions; [`metrics`] counts; [`serve`] accepts connections.
//!
//! Not here: reading the configuration file and the client secret, and watching for reloads
//! (`keycard gateway` in `keycard-cli`).

pub mod assertion;
pub mod authority;
pub mod config;
pub mod forward;
pub mod gateway;
pub mod introspection;
pub mod metrics;
pub mod path;
pub mod policy;
pub mod route;
pub mod serve;

pub use gateway::{Gateway, GatewayError, GatewayOptions};
