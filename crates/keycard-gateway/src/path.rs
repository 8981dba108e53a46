//! The canonical request path: one parse, one string for matching and for forwarding
//! (RFC 9112 §3.2.1 origin-form; RFC 3986 §2.1–2.4, §3.3, §5.2.4, §6.2.2).
//!
//! [`CanonicalPath::parse`] takes the request-target as received (`absolute-path [ "?" query ]`)
//! and either accepts it unchanged or refuses it with a [`PathError`], which the gateway answers
//! with 400. An accepted target is never rewritten: [`CanonicalPath::as_str`] is exactly what was
//! received and exactly what the upstream receives, and routes match [`CanonicalPath::path`]
//! as sent. That is safe because everything on which two decoders could disagree is refused:
//! encoded `/`, `\`, `.`, `%` (double encoding), `;` and control characters; any `%` not
//! followed by two hex digits; percent-encoded letters, digits, `-`, `_` and `~`, which
//! RFC 3986 §2.3 says producers should never encode (so `/%70hotos` cannot slip past a `/photos`
//! route to an upstream that decodes it); escapes that do not decode to UTF-8 (the overlong
//! `%C0%AE` for `.`); raw `.` and `..` segments; empty segments (`//`; one trailing `/` is
//! fine); raw `\`, `;` path parameters (the Tomcat `;jsessionid` confusion), control characters,
//! non-ASCII bytes and a fragment. The set is a superset of Spring Security's
//! `StrictHttpFirewall` defaults. Paths are case-sensitive: `/PHOTOS` is not `/photos`.
//!
//! Invariants: no allocation except for the accepted string (and a scratch buffer when the path
//! has escapes), no I/O, never a panic. For every accepted path, percent-decoding yields valid
//! UTF-8 with the same segments and no dot segment. The query is kept verbatim and checked only
//! for bytes that cannot appear in a request-target; it never takes part in matching
//! (oauth2-proxy CVE-2025-54576 matched `?/public` as part of the path).
//!
//! Not here: which route a path selects (`route`), and the absolute-form and asterisk-form of
//! proxies and `OPTIONS *`, which are refused here as not origin-form; the HTTP layer passes
//! only the path-and-query of a request to this parser.

use std::fmt;

/// The longest request-target accepted, in bytes (the default request-line buffer of common
/// proxies); longer targets are refused rather than truncated.
pub const MAX_TARGET_LEN: usize = 8192;

/// A request-target in origin-form that every decoder reads the same way.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CanonicalPath {
    target: String,
    /// The length of the path, that is, the offset of `?` when there is a query.
    path_len: usize,
}

/// Why a request-target was refused. Every variant is answered with 400; the messages are safe
/// to show to the client and never echo its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the request target is empty")]
    Empty,
    #[error("the request target is longer than 8192 bytes")]
    TooLong,
    #[error("the request target must be an absolute path starting with '/' (origin-form)")]
    NotOriginForm,
    #[error("the request target contains a control character")]
    ControlCharacter,
    #[error("the request target contains a raw non-ASCII byte; percent-encode it")]
    NonAscii,
    #[error("the request target contains a fragment ('#')")]
    Fragment,
    #[error("the request target contains a character that must be percent-encoded")]
    MustBeEncoded,
    #[error("the path contains a backslash")]
    Backslash,
    #[error("the path contains ';' (path parameters are refused)")]
    Semicolon,
    #[error("the path contains an empty segment ('//')")]
    EmptySegment,
    #[error("the path contains a '.' or '..' segment")]
    DotSegment,
    #[error("the path contains '%' not followed by two hex digits")]
    MalformedEscape,
    #[error("the path contains an encoded slash (%2F)")]
    EncodedSlash,
    #[error("the path contains an encoded backslash (%5C)")]
    EncodedBackslash,
    #[error("the path contains an encoded dot (%2E)")]
    EncodedDot,
    #[error("the path contains an encoded percent sign (%25, double encoding)")]
    EncodedPercent,
    #[error("the path contains an encoded semicolon (%3B)")]
    EncodedSemicolon,
    #[error("the path contains an encoded NUL (%00)")]
    EncodedNul,
    #[error("the path contains an encoded control character")]
    EncodedControl,
    #[error("the path percent-encodes a letter, digit, '-', '_' or '~'; send it unencoded")]
    EncodedUnreserved,
    #[error("the path contains percent-encoded bytes that are not UTF-8")]
    InvalidUtf8,
}

impl CanonicalPath {
    /// Accepts `target` unchanged, or says why it is ambiguous or malformed.
    pub fn parse(target: &str) -> Result<Self, PathError> {
        if target.is_empty() {
            return Err(PathError::Empty);
        }
        if target.len() > MAX_TARGET_LEN {
            return Err(PathError::TooLong);
        }
        // Bytes that no part of a request-target may hold raw come first, so that a tab or a
        // fragment in the query is refused just like one in the path.
        for b in target.bytes() {
            match b {
                0x00..=0x1f | 0x7f => return Err(PathError::ControlCharacter),
                0x80..=0xff => return Err(PathError::NonAscii),
                b'#' => return Err(PathError::Fragment),
                b' ' => return Err(PathError::MustBeEncoded),
                _ => {}
            }
        }
        let path = match target.split_once('?') {
            Some((path, _query)) => path,
            None => target,
        };
        let Some(rest) = path.strip_prefix('/') else {
            return Err(PathError::NotOriginForm);
        };
        let mut scratch = Vec::new();
        let mut segments = rest.split('/').peekable();
        while let Some(segment) = segments.next() {
            let last = segments.peek().is_none();
            check_segment(segment, last, &mut scratch)?;
        }
        Ok(CanonicalPath {
            target: target.to_owned(),
            path_len: path.len(),
        })
    }

    /// The whole request-target, exactly as received: what the upstream is sent.
    pub fn as_str(&self) -> &str {
        &self.target
    }

    /// The path, without the query: what routes match.
    pub fn path(&self) -> &str {
        self.target.get(..self.path_len).unwrap_or_default()
    }

    /// The query after `?`, verbatim (`Some("")` for a bare `?`); never used for matching.
    pub fn query(&self) -> Option<&str> {
        self.target.get(self.path_len..)?.strip_prefix('?')
    }
}

impl fmt::Debug for CanonicalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the path: a query may carry secrets (a misplaced `access_token=` among them).
        f.debug_tuple("CanonicalPath").field(&self.path()).finish()
    }
}

/// RFC 3986 §2.3 unreserved characters: equivalent to their escapes, so never to be escaped.
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Checks one segment (the text between two `/`); `last` allows the empty segment after a
/// trailing slash. `scratch` collects the decoded bytes of a segment with escapes.
fn check_segment(segment: &str, last: bool, scratch: &mut Vec<u8>) -> Result<(), PathError> {
    if segment.is_empty() {
        return if last {
            Ok(())
        } else {
            Err(PathError::EmptySegment)
        };
    }
    if segment == "." || segment == ".." {
        return Err(PathError::DotSegment);
    }
    let bytes = segment.as_bytes();
    scratch.clear();
    let mut escaped = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let value = match (bytes.get(i + 1), bytes.get(i + 2)) {
                    (Some(&hi), Some(&lo)) => match (hex(hi), hex(lo)) {
                        (Some(hi), Some(lo)) => (hi << 4) | lo,
                        _ => return Err(PathError::MalformedEscape),
                    },
                    _ => return Err(PathError::MalformedEscape),
                };
                check_escaped(value)?;
                scratch.push(value);
                escaped = true;
                i += 3;
            }
            // RFC 3986 §3.3 pchar, minus ';' (path parameters) and '%' handled above.
            _ if is_unreserved(b) => {
                scratch.push(b);
                i += 1;
            }
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'=' | b':' | b'@' => {
                scratch.push(b);
                i += 1;
            }
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::Semicolon),
            _ => return Err(PathError::MustBeEncoded),
        }
    }
    // Only escapes produce non-ASCII bytes, so a segment without them is ASCII already.
    if escaped && std::str::from_utf8(scratch).is_err() {
        return Err(PathError::InvalidUtf8);
    }
    Ok(())
}

/// Refuses an escape whose decoded byte a decoder could treat as structure, or which should
/// never have been escaped.
fn check_escaped(value: u8) -> Result<(), PathError> {
    match value {
        0x00 => Err(PathError::EncodedNul),
        0x01..=0x1f | 0x7f => Err(PathError::EncodedControl),
        b'/' => Err(PathError::EncodedSlash),
        b'\\' => Err(PathError::EncodedBackslash),
        b'.' => Err(PathError::EncodedDot),
        b'%' => Err(PathError::EncodedPercent),
        b';' => Err(PathError::EncodedSemicolon),
        _ if is_unreserved(value) => Err(PathError::EncodedUnreserved),
        _ => Ok(()),
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    use PathError::*;

    fn check(cases: &[(&str, Result<(), PathError>)]) {
        for (target, want) in cases {
            let got = CanonicalPath::parse(target).map(|p| {
                assert_eq!(p.as_str(), *target, "accepted targets are kept verbatim");
            });
            assert_eq!(got, *want, "{target:?}");
        }
    }

    /// Percent-decodes a path the way a lenient upstream would (test oracle only).
    pub(crate) fn decode(path: &str) -> Vec<u8> {
        let b = path.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                let v = u8::from_str_radix(&path[i + 1..i + 3], 16).unwrap();
                out.push(v);
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        out
    }

    #[test]
    fn issue_hostile_path_table() {
        check(&[
            ("/photos", Ok(())),
            ("/photos/", Ok(())),
            ("/photos/1", Ok(())),
            ("/", Ok(())),
            // A path that matches one route and would be served as another.
            ("/photos/../orders", Err(DotSegment)),
            ("/photos%2f..%2forders", Err(EncodedSlash)),
            ("/photos%2F..%2Forders", Err(EncodedSlash)),
            ("/photos/%2e%2e/orders", Err(EncodedDot)),
            ("/photos/%2E%2E/orders", Err(EncodedDot)),
            ("/photos/.%2e/orders", Err(EncodedDot)),
            ("/photos/%c0%ae%c0%ae/orders", Err(InvalidUtf8)),
            ("/photos/%252e%252e/orders", Err(EncodedPercent)),
            ("/photos\\..\\orders", Err(Backslash)),
            ("/photos%5c..%5corders", Err(EncodedBackslash)),
            ("/photos%5C..%5Corders", Err(EncodedBackslash)),
            ("/photos;x=/orders", Err(Semicolon)),
            ("/photos;jsessionid=1", Err(Semicolon)),
            ("/photos%3bx=/orders", Err(EncodedSemicolon)),
            ("/%70hotos", Err(EncodedUnreserved)),
            // Case is kept; routes decide that /PHOTOS is not /photos.
            ("/PHOTOS", Ok(())),
            // Double slashes.
            ("/photos//orders", Err(EmptySegment)),
            ("//orders", Err(EmptySegment)),
            ("/photos//", Err(EmptySegment)),
            // A fragment, in the path or after the query.
            ("/photos#frag", Err(Fragment)),
            ("/photos?x=1#frag", Err(Fragment)),
            // Tabs, NUL, line breaks, DEL.
            ("/pho\ttos", Err(ControlCharacter)),
            ("/photos\t", Err(ControlCharacter)),
            ("/photos\0", Err(ControlCharacter)),
            ("/photos?x=\r\nSet-Cookie:a", Err(ControlCharacter)),
            ("/photos/\u{7f}", Err(ControlCharacter)),
            ("/photos%00", Err(EncodedNul)),
            ("/photos/%0d%0aSet-Cookie", Err(EncodedControl)),
            ("/photos/%7F", Err(EncodedControl)),
            // UTF-8: raw bytes are refused, escaped UTF-8 is fine.
            ("/photos/caf\u{e9}", Err(NonAscii)),
            ("/photos/caf%C3%A9", Ok(())),
            ("/photos/caf%c3%a9", Ok(())),
            ("/photos/%C3", Err(InvalidUtf8)),
            ("/photos/%ED%A0%80", Err(InvalidUtf8)),
            ("/photos/a b", Err(MustBeEncoded)),
            ("/photos/a%20b", Ok(())),
            ("/photos/<script>", Err(MustBeEncoded)),
        ]);
    }

    #[test]
    fn rfc9112_s3_2_1_origin_form_only() {
        check(&[
            ("", Err(Empty)),
            ("*", Err(NotOriginForm)),
            ("photos", Err(NotOriginForm)),
            ("http://evil.example/photos", Err(NotOriginForm)),
            ("?/photos", Err(NotOriginForm)),
            ("/photos?x=1", Ok(())),
        ]);
    }

    #[test]
    fn rfc3986_s3_3_dot_segments_and_empty_segments() {
        check(&[
            ("/.", Err(DotSegment)),
            ("/..", Err(DotSegment)),
            ("/photos/.", Err(DotSegment)),
            ("/photos/./1", Err(DotSegment)),
            ("/photos/...", Ok(())),
            ("/photos/.well-known", Ok(())),
            ("/photos/1.jpg", Ok(())),
            ("/photos/..jpg", Ok(())),
            ("/a/b/c/", Ok(())),
            ("/a//", Err(EmptySegment)),
        ]);
    }

    #[test]
    fn rfc3986_s2_1_malformed_escapes_refused() {
        check(&[
            ("/photos/%", Err(MalformedEscape)),
            ("/photos/%2", Err(MalformedEscape)),
            ("/photos/%zz", Err(MalformedEscape)),
            ("/photos/%%41", Err(MalformedEscape)),
            ("/photos/%2?x", Err(MalformedEscape)),
            ("/photos/%C3%A", Err(MalformedEscape)),
        ]);
    }

    #[test]
    fn rfc3986_s2_3_encoded_unreserved_refused_encoded_reserved_kept() {
        check(&[
            ("/%41", Err(EncodedUnreserved)),
            ("/%7e", Err(EncodedUnreserved)),
            ("/%2D", Err(EncodedUnreserved)),
            ("/%5F", Err(EncodedUnreserved)),
            ("/%30", Err(EncodedUnreserved)),
            // Reserved characters are not equivalent to their escapes (RFC 3986 §2.2).
            ("/files/a%2Bb", Ok(())),
            ("/files/a+b", Ok(())),
            ("/files/a%3Ab%40c%3F%23", Ok(())),
            ("/users:search", Ok(())),
            ("/a!$&'()*+,=:@", Ok(())),
        ]);
    }

    #[test]
    fn rfc3986_s3_3_characters_outside_pchar_refused() {
        for c in ['"', '<', '>', '[', ']', '^', '`', '{', '|', '}'] {
            let target = format!("/a{c}b");
            assert_eq!(CanonicalPath::parse(&target), Err(MustBeEncoded), "{c}");
        }
    }

    #[test]
    fn overlong_targets_refused_not_truncated() {
        let at_limit = format!("/{}", "a".repeat(MAX_TARGET_LEN - 1));
        assert!(CanonicalPath::parse(&at_limit).is_ok());
        let over = format!("/{}", "a".repeat(MAX_TARGET_LEN));
        assert_eq!(CanonicalPath::parse(&over), Err(TooLong));
        let long_query = format!("/photos?{}", "q".repeat(MAX_TARGET_LEN));
        assert_eq!(CanonicalPath::parse(&long_query), Err(TooLong));
    }

    #[test]
    fn cve_2025_54576_query_is_verbatim_and_never_part_of_the_path() {
        let p = CanonicalPath::parse("/photos?/public").unwrap();
        assert_eq!(p.path(), "/photos");
        assert_eq!(p.query(), Some("/public"));
        // The query is not checked like a path: it is the upstream's to decode.
        let p = CanonicalPath::parse("/photos?a=%zz&b=..//x\\;y=%2F").unwrap();
        assert_eq!(p.path(), "/photos");
        assert_eq!(p.query(), Some("a=%zz&b=..//x\\;y=%2F"));
        assert_eq!(p.as_str(), "/photos?a=%zz&b=..//x\\;y=%2F");
        let p = CanonicalPath::parse("/photos?").unwrap();
        assert_eq!((p.path(), p.query()), ("/photos", Some("")));
        let p = CanonicalPath::parse("/photos").unwrap();
        assert_eq!((p.path(), p.query()), ("/photos", None));
        assert_eq!(CanonicalPath::parse("/photos?a b"), Err(MustBeEncoded));
        // A second `?` belongs to the query.
        let p = CanonicalPath::parse("/photos?a?b").unwrap();
        assert_eq!((p.path(), p.query()), ("/photos", Some("a?b")));
    }

    #[test]
    fn debug_never_shows_the_query() {
        let p = CanonicalPath::parse("/photos?access_token=secret").unwrap();
        assert_eq!(format!("{p:?}"), "CanonicalPath(\"/photos\")");
    }

    fn hostile() -> impl Strategy<Value = String> {
        // An alphabet dense in the characters the rules are about, so accepted paths are common.
        proptest::string::string_regex(
            "(/|\\.|%|2|e|E|f|F|5|c|C|3|b|0|A|a|;|\\?|#|\\\\|\\t|~| |\u{e9}|x){0,40}",
        )
        .unwrap()
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = CanonicalPath::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_hostile_alphabet(s in hostile()) {
            let _ = CanonicalPath::parse(&s);
        }

        #[test]
        fn accepted_targets_round_trip(s in hostile()) {
            if let Ok(p) = CanonicalPath::parse(&s) {
                prop_assert_eq!(p.as_str(), s.as_str());
                let again = CanonicalPath::parse(p.as_str()).unwrap();
                prop_assert_eq!(&again, &p);
                let rebuilt = match p.query() {
                    Some(q) => format!("{}?{q}", p.path()),
                    None => p.path().to_owned(),
                };
                prop_assert_eq!(rebuilt, s);
            }
        }

        #[test]
        fn accepted_paths_decode_to_the_same_segments_without_dot_segments(s in hostile()) {
            if let Ok(p) = CanonicalPath::parse(&s) {
                let decoded = String::from_utf8(decode(p.path()));
                prop_assert!(decoded.is_ok(), "decodes to UTF-8: {}", s);
                let decoded = decoded.unwrap();
                prop_assert_eq!(decoded.matches('/').count(), p.path().matches('/').count());
                for seg in decoded.split('/') {
                    prop_assert!(seg != "." && seg != "..", "dot segment in {}", s);
                    prop_assert!(!seg.contains('\\') && !seg.contains(';') && !seg.contains('%'));
                }
            }
        }

        #[test]
        fn well_formed_paths_are_accepted(
            segs in proptest::collection::vec("[A-Za-z0-9_~!$&'()*+,=:@-]{1,8}(%C3%A9|%20)?", 0..6),
            trailing in any::<bool>(),
            query in proptest::option::of("[a-z=&%/?.]{0,12}"),
        ) {
            let mut target = format!("/{}", segs.join("/"));
            if trailing && !segs.is_empty() {
                target.push('/');
            }
            if let Some(q) = &query {
                target.push('?');
                target.push_str(q);
            }
            prop_assert!(CanonicalPath::parse(&target).is_ok(), "{}", target);
        }
    }
}
