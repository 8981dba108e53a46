//! The BFF's own routes, one file each: `login`, `callback`, `session`, `logout`,
//! `backchannel`. Each handler is the thin shell: parse, load, check, persist, answer; the
//! rules live in `return_to`, `web`, `session` and keycard-validate's id-token checks.
//!
//! Every answer carries `Cache-Control: no-store`: all of them are about one user's session.

pub(crate) mod backchannel;
pub(crate) mod callback;
pub(crate) mod login;
pub(crate) mod logout;
pub(crate) mod session;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// A 303 redirect to `location`, not cached.
pub(crate) fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::try_from(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    no_store(resp)
}

/// Adds `Cache-Control: no-store`.
pub(crate) fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
