//! Access tokens this node has verified, so a repeated introspection (RFC 7662) costs neither a
//! signature check nor a store round trip.
//!
//! Resource servers introspect the same token over and over, and we signed it ourselves. Once a
//! token's signature verified against the current key set and the store said it was not
//! revoked, that answer holds until the token expires or anything is revoked anywhere. So an
//! entry keeps the [`Stamp`] read *before* its store query — the revocation log's sequence
//! number as this node's poller (`FeedHub`) last saw it, and the count of revocations this node
//! wrote itself — and answers only while the hub still gives the same stamp. Any event in the
//! log, written by this node, another node on the same database or an admin command, changes
//! the stamp, and every entry then asks the store again: a revocation made elsewhere reaches
//! this node's introspection answers within one poll of the log, the bound the revocation feed
//! already has; one made here, at once. When the poller has not read the log for a while (a
//! failing store), the hub gives no stamp and nothing is served from here.
//!
//! The cache belongs to one key set (`keys::KeySet`): a key reload starts a new one. It holds at
//! most [`MAX_ENTRIES`] tokens and is emptied when full, so a flood of distinct tokens costs
//! what it would without it, and repeated ones come back after one miss.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use keycard_protocol::UnixTime;
use keycard_validate::AccessToken;

/// At most this many verified tokens per node (a few hundred bytes each).
pub(crate) const MAX_ENTRIES: usize = 8192;

/// What the log and this node had revoked when an answer was read from the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// The highest log sequence number the node's poller has read.
    pub(crate) seen: u64,
    /// How many revocations this node has written.
    pub(crate) local: u64,
}

/// The SHA-256 of a token string (`keycard_validate::token_digest`): the cache never holds the
/// token itself.
pub(crate) type TokenKey = [u8; 32];

/// One remembered token: its claims (to decide who may see it) and the active answer as sent.
#[derive(Debug)]
pub(crate) struct Verified {
    pub(crate) token: AccessToken,
    pub(crate) answer: Bytes,
}

/// Verified, unrevoked access tokens by the SHA-256 of their string.
#[derive(Debug, Default)]
pub(crate) struct VerifiedTokens {
    map: RwLock<HashMap<TokenKey, (Stamp, Arc<Verified>)>>,
}

impl VerifiedTokens {
    /// The token, if it was verified and found unrevoked under this same stamp and has not
    /// expired by `now`.
    pub(crate) fn get(&self, key: &TokenKey, stamp: Stamp, now: UnixTime) -> Option<Arc<Verified>> {
        let map = self.map.read().ok()?;
        let (at, v) = map.get(key)?;
        (*at == stamp && now < v.token.exp()).then(|| v.clone())
    }

    /// Remembers a token that verified and was not revoked under `stamp`.
    pub(crate) fn insert(&self, key: TokenKey, stamp: Stamp, token: Arc<Verified>) {
        if let Ok(mut map) = self.map.write() {
            if map.len() >= MAX_ENTRIES && !map.contains_key(&key) {
                map.clear();
            }
            map.insert(key, (stamp, token));
        }
    }
}
