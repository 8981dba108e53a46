//! An incremental Server-Sent Events parser (WHATWG HTML Living Standard §9.2.6, "Interpreting
//! an event stream"), the framing of the revocation feed.
//!
//! [`SseParser::push`] takes the body chunk by chunk, however the chunks split lines (a CR LF
//! pair may straddle two chunks), and appends every complete [`SseEvent`] to the caller's list.
//! Lines end with CR LF, LF or CR; a leading byte-order mark is skipped; comments (`:`) and
//! unknown fields are ignored; `data` lines are joined with LF; an `id` containing NUL is
//! ignored, as the standard says.
//!
//! Invariants: memory is bounded — one line, and one event's data, may each be at most the
//! limit given to [`SseParser::with_limit`] (64 KiB by default), beyond which `push` answers
//! [`SseError::TooLong`] and the caller drops the connection; invalid UTF-8 is replaced, never
//! an error; no input makes it panic (a proptest and the `sse_feed` fuzz target check that).
//!
//! Not here: what the events mean (`feed::set`), the connection and `retry` (the feed keeps
//! its own backoff and ignores the server's `retry` hint).

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `id` field of this event, if it had one.
    pub id: Option<String>,
    /// The `event` field, or `message` when absent.
    pub event: String,
    /// The `data` lines, joined with LF.
    pub data: String,
}

/// Why a stream was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SseError {
    /// A line or an event's data exceeded the limit.
    #[error("an event-stream line or event is too long")]
    TooLong,
}

/// The incremental parser. One per connection.
#[derive(Debug)]
pub struct SseParser {
    limit: usize,
    line: Vec<u8>,
    /// The previous chunk ended with CR: an LF starting this one belongs to that line end.
    after_cr: bool,
    /// Whether the first bytes (and a possible byte-order mark) have been seen.
    started: bool,
    id: Option<String>,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl Default for SseParser {
    fn default() -> SseParser {
        SseParser::new()
    }
}

/// The default limit on one line and on one event's data.
pub const DEFAULT_LIMIT: usize = 64 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl SseParser {
    /// A parser with the default 64 KiB limit.
    pub fn new() -> SseParser {
        SseParser::with_limit(DEFAULT_LIMIT)
    }

    /// A parser whose lines and event data may each be at most `limit` bytes.
    pub fn with_limit(limit: usize) -> SseParser {
        SseParser {
            limit,
            line: Vec::new(),
            after_cr: false,
            started: false,
            id: None,
            event: None,
            data: String::new(),
            has_data: false,
        }
    }

    /// Parses the next chunk of the body, appending each complete event to `out`.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if chunk.is_empty() {
            return Ok(());
        }
        if !self.started {
            // The byte-order mark may itself be split over chunks: wait for three bytes.
            self.line.extend_from_slice(chunk);
            if self.line.len() < BOM.len() && BOM.starts_with(&self.line) {
                return Ok(());
            }
            self.started = true;
            let pending = std::mem::take(&mut self.line);
            let rest = pending.strip_prefix(BOM).unwrap_or(&pending);
            return self.push_bytes(rest, out);
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        self.push_bytes(chunk, out)
    }

    fn push_bytes(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        while let Some(end) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, rest) = chunk.split_at(end);
            if self.line.len() + head.len() > self.limit {
                return Err(SseError::TooLong);
            }
            self.line.extend_from_slice(head);
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, out)?;
            // `rest` starts with the line end: CR LF counts once.
            chunk = match rest {
                [b'\r', b'\n', tail @ ..] => tail,
                [b'\r'] => {
                    self.after_cr = true;
                    &[]
                }
                [_, tail @ ..] => tail,
                [] => &[],
            };
        }
        if self.line.len() + chunk.len() > self.limit {
            return Err(SseError::TooLong);
        }
        self.line.extend_from_slice(chunk);
        Ok(())
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line.first() == Some(&b':') {
            return Ok(());
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let (name, value) = line.split_at(i);
                let value = value.get(1..).unwrap_or_default();
                (name, value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        let value = String::from_utf8_lossy(value);
        match name {
            b"event" => self.event = Some(value.into_owned()),
            b"data" => {
                if self.data.len() + value.len() + 1 > self.limit {
                    return Err(SseError::TooLong);
                }
                self.data.push_str(&value);
                self.data.push('\n');
                self.has_data = true;
            }
            b"id" if !value.contains('\0') => self.id = Some(value.into_owned()),
            // `retry`, an `id` with NUL and unknown fields are ignored.
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let id = self.id.take();
        let event = self.event.take();
        if !std::mem::take(&mut self.has_data) {
            self.data.clear();
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        out.push(SseEvent {
            id,
            event: event.unwrap_or_else(|| "message".to_owned()),
            data,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c, &mut out).unwrap();
        }
        out
    }

    fn ev(id: Option<&str>, event: &str, data: &str) -> SseEvent {
        SseEvent {
            id: id.map(str::to_owned),
            event: event.to_owned(),
            data: data.to_owned(),
        }
    }

    #[test]
    fn whatwg_s9_2_6_fields_comments_and_line_ends() {
        let body = b"\xEF\xBB\xBF: keep-alive\n\nid: 42\r\nevent: revocation\rdata: {\"a\":1}\n\
                     data:x\n\ndata\n\nid: 7\n\nretry: 10\nfoo: bar\ndata: y\n\n";
        assert_eq!(
            parse_all(&[body]),
            vec![
                ev(Some("42"), "revocation", "{\"a\":1}\nx"),
                ev(None, "message", ""),
                ev(None, "message", "y"),
            ]
        );
    }

    #[test]
    fn whatwg_s9_2_6_any_split_gives_the_same_events() {
        let body: &[u8] =
            b"id: 1\r\nevent: revocation\r\ndata: one\r\n\r\n: c\r\rid: 2\rdata: two\r\r";
        let whole = parse_all(&[body]);
        assert_eq!(whole.len(), 2);
        for i in 0..=body.len() {
            for j in i..=body.len() {
                let parts = [&body[..i], &body[i..j], &body[j..]];
                assert_eq!(parse_all(&parts), whole, "split at {i}, {j}");
            }
        }
    }

    #[test]
    fn incomplete_event_is_not_dispatched() {
        assert!(parse_all(&[b"id: 1\ndata: x\n"]).is_empty());
        assert!(parse_all(&[b"id: 1\ndata: x"]).is_empty());
    }

    #[test]
    fn oversized_line_or_event_is_refused() {
        let mut p = SseParser::with_limit(16);
        let mut out = Vec::new();
        assert_eq!(p.push(&[b'a'; 17], &mut out), Err(SseError::TooLong));
        let mut p = SseParser::with_limit(16);
        let r = p.push(b"data: 01234567\ndata: 01234567\n", &mut out);
        assert_eq!(r, Err(SseError::TooLong));
        let mut p = SseParser::with_limit(16);
        assert_eq!(p.push(b"data: 0123\n\n", &mut out), Ok(()));
        assert_eq!(out.len(), 1);
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_bounded(chunks in prop::collection::vec(
            prop::collection::vec(prop::sample::select(
                b"\r\n: idatevn\xEF\xBB\xBF\x00x".to_vec()), 0..64), 0..16)) {
            let mut p = SseParser::with_limit(256);
            let mut out = Vec::new();
            for c in &chunks {
                if p.push(c, &mut out).is_err() {
                    break;
                }
                prop_assert!(p.line.len() <= 256 && p.data.len() <= 256);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(chunks in prop::collection::vec(
            prop::collection::vec(any::<u8>(), 0..128), 0..8)) {
            let mut p = SseParser::with_limit(512);
            let mut out = Vec::new();
            for c in &chunks {
                let _ = p.push(c, &mut out);
            }
        }
    }
}
