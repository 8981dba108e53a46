//! Where the browser goes after sign-in: `return_to`, same-origin paths only (RFC 9700
//! §4.11.1 open redirectors; SECURITY.md §5; the WHATWG URL Standard's parser, which browsers
//! use on `Location`).
//!
//! [`ReturnTo::parse`] keeps a value only when it is a path on this origin under every reading
//! a browser or a server might give it, and otherwise answers `/`. It must start with one `/`;
//! it may hold only visible ASCII (a tab or newline is stripped by WHATWG parsers, so `/\t/evil`
//! would become `//evil`); no `\` anywhere (WHATWG reads it as `/` in http URLs: `/\evil` is
//! `//evil`); its percent-decoded form must have no control character, no `\` and no leading
//! `//` (`/%09/evil`, `/%2F/evil`, `/%5Cevil`, for an application that decodes and redirects
//! again); and once resolved against a fixed base with the WHATWG parser it must keep that
//! base's origin and serialise to a path that does not start with `//` (dot segments such as
//! `/..//evil` collapse to `//evil`). The value used is that serialisation, never the raw
//! input.
//!
//! Pure: no I/O. Not here: the login route that stores it (`routes::login`).

use url::{Position, Url};

/// The longest `return_to` kept.
pub const MAX_RETURN_TO: usize = 2048;

/// The base `return_to` is resolved against: any fixed origin works, since only its sameness
/// is checked.
const BASE: &str = "https://bff.invalid/";

/// A same-origin path (with query and fragment) to send the browser to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnTo(String);

impl ReturnTo {
    /// The application's root, where anything refused lands.
    pub fn root() -> ReturnTo {
        ReturnTo("/".to_owned())
    }

    /// The value if it is a safe same-origin path, else `/`.
    pub fn parse(raw: Option<&str>) -> ReturnTo {
        raw.and_then(ReturnTo::parse_strict)
            .unwrap_or_else(ReturnTo::root)
    }

    /// The value if it is a safe same-origin path.
    pub fn parse_strict(raw: &str) -> Option<ReturnTo> {
        if raw.is_empty() || raw.len() > MAX_RETURN_TO {
            return None;
        }
        let bytes = raw.as_bytes();
        if bytes.first() != Some(&b'/') || matches!(bytes.get(1), Some(b'/' | b'\\')) {
            return None;
        }
        if !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) || bytes.contains(&b'\\') {
            return None;
        }
        let decoded = percent_decode(bytes)?;
        if decoded
            .iter()
            .any(|b| *b < 0x20 || *b == 0x7f || *b == b'\\')
            || decoded.starts_with(b"//")
        {
            return None;
        }
        let base = Url::parse(BASE).ok()?;
        let url = base.join(raw).ok()?;
        if url.origin() != base.origin() {
            return None;
        }
        let out = &url[Position::BeforePath..];
        if !out.starts_with('/') || out.starts_with("//") {
            return None;
        }
        Some(ReturnTo(out.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Percent-decodes bytes; `None` when a `%` is not followed by two hex digits.
fn percent_decode(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = hex(*bytes.get(i + 1)?)?;
            let lo = hex(*bytes.get(i + 2)?)?;
            out.push((hi << 4) | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9700_s4_11_1_open_redirect_table() {
        let kept = [
            ("/", "/"),
            ("/x", "/x"),
            ("/photos/1?tab=all#top", "/photos/1?tab=all#top"),
            ("/x?next=//evil.example", "/x?next=//evil.example"),
            ("/a/../b", "/b"),
            ("/%C3%A9t%C3%A9", "/%C3%A9t%C3%A9"),
            ("/@evil.example", "/@evil.example"),
        ];
        for (raw, want) in kept {
            assert_eq!(
                ReturnTo::parse_strict(raw).map(|r| r.0),
                Some(want.to_owned()),
                "{raw:?}"
            );
        }
        let refused = [
            "",
            "x",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "/%09/evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "\t//evil.example",
            " /x",
            "/ x",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "/%5Cevil.example",
            "/..//evil.example",
            "/.//evil.example",
            "/x/..//..//evil.example",
            "https://evil.example",
            "http:/evil.example",
            "https:evil.example",
            "javascript:alert(1)",
            "data:text/html,x",
            "%2F%2Fevil.example",
            "/%zz",
            "/%0d%0aSet-Cookie:x",
            "/é",
        ];
        for raw in refused {
            assert_eq!(ReturnTo::parse_strict(raw), None, "{raw:?} was kept");
            assert_eq!(ReturnTo::parse(Some(raw)), ReturnTo::root());
        }
        assert_eq!(ReturnTo::parse(None), ReturnTo::root());
        assert_eq!(
            ReturnTo::parse_strict(&format!("/{}", "a".repeat(MAX_RETURN_TO))),
            None
        );
    }
}
