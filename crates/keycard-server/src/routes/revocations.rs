//! The revocation feed (a Keycard extension; the wire format is in ARCHITECTURE.md,
//! "Revocation feed"): `GET /revocations?since=N` answers a JSON page of the log, and
//! `GET /revocations` streams new events as Server-Sent Events, resuming after the
//! `Last-Event-ID` it is given.
//!
//! Only confidential clients registered with the feed permission may read it, authenticated
//! with HTTP Basic like at `/introspect`. A resume point inside a range the log has dropped
//! (older than the longest token lifetime) answers 410 `resync_required`: start again at
//! `since=0`, which holds everything still relevant.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use keycard_protocol::form::Params;
use keycard_protocol::revocation::{RevocationEvent, RevocationPage};
use keycard_protocol::{ErrorCode, OAuthError, wire};
use keycard_store::{RevocationLog, Store};
use keycard_validate::wire_response;
use serde_json::json;
use tokio::sync::broadcast;

use crate::access::authenticate_basic;
use crate::app::App;
use crate::error::ServerError;
use crate::http::no_store_json;

/// Events per page of the JSON form.
const PAGE: u32 = 1000;

pub(crate) async fn revocations_get<S: Store>(
    State(app): State<Arc<App<S>>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ServerError> {
    let client = authenticate_basic(&app, &headers).await?;
    if !client.feed {
        return Ok(wire_response(wire::permission_error(&OAuthError::new(
            ErrorCode::AccessDenied,
            "this client may not read the revocation feed",
        ))));
    }
    let params = Params::parse(q.unwrap_or_default().as_bytes()).map_err(ServerError::token)?;
    if let Some(since) = params.get("since") {
        let since = parse_seq(since)?;
        let log = app.store.revocations_since(since, PAGE).await?;
        if let Some(gone) = resync(since, &log) {
            return Ok(gone);
        }
        let more = log.events.len() == PAGE as usize
            && log.events.last().is_some_and(|e| e.seq < log.last);
        let page = RevocationPage {
            events: log.events,
            last: log.last,
            more,
        };
        return Ok(no_store_json(&page));
    }
    let resume = match headers.get("last-event-id") {
        Some(v) => Some(parse_seq(v.to_str().unwrap_or(""))?),
        None => None,
    };
    stream_from(app, resume).await
}

fn parse_seq(s: &str) -> Result<u64, ServerError> {
    s.trim().parse::<u64>().map_err(|_| {
        ServerError::token(OAuthError::invalid_request(
            "a sequence number is a non-negative integer",
        ))
    })
}

/// The 410 answer when events after `since` were dropped before the consumer saw them.
fn resync(since: u64, log: &RevocationLog) -> Option<Response> {
    if since == 0 || since.saturating_add(1) >= log.oldest {
        return None;
    }
    let body = json!({
        "error": "resync_required",
        "error_description": "events after this point were dropped; start again at since=0",
        "oldest": log.oldest,
    });
    let mut r = (StatusCode::GONE, no_store_json(&body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Some(r)
}

/// What a stream does next: catch up from the store, or wait for the hub.
struct StreamState<S: Store> {
    app: Arc<App<S>>,
    rx: broadcast::Receiver<Arc<RevocationEvent>>,
    /// The last sequence number sent.
    sent: u64,
    /// Events read from the store, still to send.
    backlog: std::vec::IntoIter<RevocationEvent>,
    /// The hub had reached this when the stream subscribed: the store holds everything up to
    /// it, the hub everything after.
    caught_up_to: u64,
    /// Set when the server shuts down; the stream then ends.
    closing: tokio::sync::watch::Receiver<bool>,
}

async fn stream_from<S: Store>(
    app: Arc<App<S>>,
    resume: Option<u64>,
) -> Result<Response, ServerError> {
    let (rx, hub_seen) = app.feed.subscribe();
    let start = resume.unwrap_or(hub_seen);
    let log = app.store.revocations_since(start, PAGE).await?;
    if let Some(gone) = resync(start, &log) {
        return Ok(gone);
    }
    let keep_alive = app.settings.feed_keep_alive;
    let closing = app.feed.closing();
    let state = StreamState {
        app,
        rx,
        sent: start,
        backlog: log.events.into_iter(),
        caught_up_to: hub_seen,
        closing,
    };
    let events = stream::unfold(state, next_event);
    let mut r = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(keep_alive).text("keep-alive"))
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

fn to_sse(e: &RevocationEvent) -> Event {
    Event::default()
        .id(e.seq.to_string())
        .event("revocation")
        .data(serde_json::to_string(e).unwrap_or_default())
}

/// The next event of a stream, in order and without repeats; `None` ends the stream (the
/// consumer reconnects with `Last-Event-ID`).
async fn next_event<S: Store>(
    mut st: StreamState<S>,
) -> Option<(Result<Event, Infallible>, StreamState<S>)> {
    loop {
        if let Some(e) = st.backlog.next() {
            if e.seq <= st.sent {
                continue;
            }
            st.sent = e.seq;
            let ev = to_sse(&e);
            return Some((Ok(ev), st));
        }
        // The store may hold more than one page before the hub's starting point.
        if st.sent < st.caught_up_to {
            let log = st.app.store.revocations_since(st.sent, PAGE).await.ok()?;
            if log.events.is_empty() {
                st.caught_up_to = st.sent;
            }
            st.backlog = log.events.into_iter();
            continue;
        }
        let next = tokio::select! {
            r = st.rx.recv() => r,
            _ = st.closing.wait_for(|c| *c) => return None,
        };
        match next {
            Ok(e) if e.seq <= st.sent => continue,
            Ok(e) => {
                st.sent = e.seq;
                let ev = to_sse(&e);
                return Some((Ok(ev), st));
            }
            // Fell behind the hub: read what was missed from the store.
            Err(broadcast::error::RecvError::Lagged(_)) => {
                st.caught_up_to = st.app.feed.seen();
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}
