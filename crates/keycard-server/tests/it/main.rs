//! Black-box HTTP tests over 127.0.0.1, one binary; files are named after the RFC they check
//! and tests after the section.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

mod authorize_rules;
mod lifecycle;
mod login_throttle;
mod oidc_core;
mod oidc_logout;
mod pages;
mod revocation_feed;
mod rfc6749_authorize;
mod rfc6749_token;
mod rfc7009_revoke;
mod rfc7662_introspect;
mod rfc8414_metadata;
mod rfc8628_device;
