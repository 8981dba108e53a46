//! The BFF's integration tests: one binary, against a real Keycard (`keycard_testkit`), a
//! provider whose keys the test holds (back-channel logout table), node-oidc-provider (a second,
//! independent provider) and real Chromium.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backchannel;
mod browser;
mod keycard;
mod node_op;
mod refresh;
mod support;
