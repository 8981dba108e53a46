#![no_main]
// Form and query decoding must never panic, whatever the bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(p) = keycard_protocol::form::Params::parse(data) {
        let _ = keycard_protocol::authorize::parse_client(&p);
    }
});
