#![no_main]
// The path canonicaliser never panics, and what it accepts is forwarded byte for byte and
// parses again to the same path.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = keycard_gateway::path::CanonicalPath::parse(s) {
            assert_eq!(p.as_str(), s);
            assert_eq!(keycard_gateway::path::CanonicalPath::parse(p.as_str()), Ok(p));
        }
    }
});
