//! The revocation feed's event-stream parser and event reader: any bytes, split anywhere,
//! never panic and never hold more than the limit.
#![no_main]

use keycard_validate::feed::{RevocationEvent, SseParser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (a, b) = data.split_at(split);
    let mut parser = SseParser::with_limit(4096);
    let mut events = Vec::new();
    for chunk in [a, b] {
        if parser.push(chunk, &mut events).is_err() {
            break;
        }
    }
    for e in &events {
        let _ = RevocationEvent::from_json(e.data.as_bytes());
    }
});
