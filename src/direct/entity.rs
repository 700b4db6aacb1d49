//! A small, bounded reader of MIME entities for the S/MIME and notification formats: headers
//! (unfolded, raw values), Content-Type parameters, multipart bodies split on their boundary
//! with the exact bytes of each part (a detached signature covers those bytes), and a walk of
//! the entity tree that refuses bombs. Every loop is linear in its input and capped.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// At most this many header fields in one header block; real messages carry a few dozen.
pub const MAX_HEADERS: usize = 500;
/// At most this many bytes in one header block.
pub const MAX_HEADER_BYTES: usize = 512 * 1024;
/// Deepest nesting of multiparts and message/rfc822 entities we read: real messages (a
/// wrapped, signed message with an XDM attachment) stay under 6.
pub const MAX_DEPTH: usize = 16;
/// Most MIME parts in one message, counted over the whole tree.
pub const MAX_PARTS: usize = 1000;

#[derive(Debug, PartialEq, Eq)]
pub enum EntityError {
    Malformed(String),
    HeaderInjection,
    TooDeep,
    TooManyParts,
}

/// One entity: its header fields in order and the raw bytes of its body.
#[derive(Debug)]
pub struct Entity<'a> {
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

impl Entity<'_> {
    /// The first value of a header field, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Content-Type as (lower-case media type, parameters); text/plain when absent (RFC 2045).
    pub fn content_type(&self) -> (String, Vec<(String, String)>) {
        match self.header("Content-Type") {
            Some(v) => parse_content_type(v),
            None => ("text/plain".to_owned(), Vec::new()),
        }
    }

    /// The body with its Content-Transfer-Encoding undone (base64 and quoted-printable; the
    /// identity encodings as they are).
    pub fn decoded_body(&self) -> Result<Vec<u8>, EntityError> {
        let cte = self
            .header("Content-Transfer-Encoding")
            .map(|v| v.trim().to_ascii_lowercase());
        match cte.as_deref() {
            Some("base64") => decode_base64(self.body),
            Some("quoted-printable") => Ok(decode_quoted_printable(self.body)),
            _ => Ok(self.body.to_vec()),
        }
    }
}

/// Splits `raw` into its header block and body. Lines may end in CRLF or LF. A header value
/// holding a bare CR or NUL is header injection; a line that is neither a field nor a
/// continuation is malformed.
pub fn parse(raw: &[u8]) -> Result<Entity<'_>, EntityError> {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut pos = 0;
    let body_start;
    loop {
        if pos >= raw.len() {
            body_start = raw.len();
            break;
        }
        let end = memchr::memchr(b'\n', &raw[pos..]).map_or(raw.len(), |i| pos + i + 1);
        if end > MAX_HEADER_BYTES {
            return Err(EntityError::Malformed("header block too large".into()));
        }
        let line = strip_eol(&raw[pos..end]);
        if line.is_empty() {
            body_start = end;
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            let Some((_, value)) = headers.last_mut() else {
                return Err(EntityError::Malformed(
                    "continuation before any field".into(),
                ));
            };
            check_value(line)?;
            value.push_str(&String::from_utf8_lossy(line));
        } else {
            let colon = memchr::memchr(b':', line)
                .ok_or_else(|| EntityError::Malformed("header line without a colon".into()))?;
            let name = &line[..colon];
            if name.is_empty() || !name.iter().all(|b| (33..=126).contains(b)) {
                return Err(EntityError::Malformed("bad header field name".into()));
            }
            if headers.len() >= MAX_HEADERS {
                return Err(EntityError::Malformed("too many header fields".into()));
            }
            let value = &line[colon + 1..];
            check_value(value)?;
            headers.push((
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            ));
        }
        pos = end;
    }
    for (_, v) in &mut headers {
        let trimmed = v.trim();
        if trimmed.len() != v.len() {
            *v = trimmed.to_owned();
        }
    }
    Ok(Entity {
        headers,
        body: &raw[body_start..],
    })
}

fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn check_value(value: &[u8]) -> Result<(), EntityError> {
    if value.iter().any(|&b| b == b'\r' || b == 0) {
        return Err(EntityError::HeaderInjection);
    }
    Ok(())
}

/// `type/subtype; name=value; name="quoted value"` → lower-case type and parameters (names
/// lower-case, values unquoted).
pub fn parse_content_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut pieces = split_unquoted(value, ';').into_iter();
    let media = pieces
        .next()
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let params = pieces
        .filter_map(|p| {
            let (n, v) = p.split_once('=')?;
            Some((n.trim().to_ascii_lowercase(), unquote(v.trim())))
        })
        .collect();
    (media, params)
}

/// The value of parameter `name` in a parsed parameter list.
pub fn param<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Splits on `sep` outside double quotes and angle brackets.
pub fn split_unquoted(value: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut escaped, mut angle) = (false, false, false);
    let mut start = 0;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            c if c == sep && !quoted && !angle => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut escaped = false;
            for c in inner.chars() {
                if c == '\\' && !escaped {
                    escaped = true;
                } else {
                    out.push(c);
                    escaped = false;
                }
            }
            out
        }
        None => v.to_owned(),
    }
}

/// The addr-spec of each mailbox in an address list (`Name <a@b>, c@d` → `a@b`, `c@d`);
/// groups and comments are not expected in Direct headers and are read loosely.
pub fn addresses(value: &str) -> Vec<String> {
    split_unquoted(value, ',')
        .into_iter()
        .filter_map(|m| {
            let m = m.trim();
            let addr = match (m.rfind('<'), m.rfind('>')) {
                (Some(a), Some(b)) if a < b => &m[a + 1..b],
                _ => m,
            };
            let addr = addr.trim();
            (!addr.is_empty()).then(|| addr.to_owned())
        })
        .collect()
}

/// The parts of a multipart body: for each, the exact bytes between the CRLF ending a
/// delimiter line and the CRLF before the next delimiter (RFC 2046 §5.1.1). At most
/// `max_parts` parts; a body without any delimiter is malformed.
pub fn split_multipart<'a>(
    body: &'a [u8],
    boundary: &str,
    max_parts: usize,
) -> Result<Vec<&'a [u8]>, EntityError> {
    if boundary.is_empty() || boundary.len() > 200 {
        return Err(EntityError::Malformed("bad multipart boundary".into()));
    }
    let delimiter = format!("--{boundary}");
    let finder = memchr::memmem::Finder::new(delimiter.as_bytes());
    let mut parts = Vec::new();
    // Start of the current part's content, once the first delimiter was seen.
    let mut open: Option<usize> = None;
    for at in finder.find_iter(body) {
        if at > 0 && body[at - 1] != b'\n' {
            continue;
        }
        let after = at + delimiter.len();
        let line_end = memchr::memchr(b'\n', &body[after..]).map_or(body.len(), |i| after + i + 1);
        let rest = strip_eol(&body[after..line_end]);
        let closing = rest.starts_with(b"--");
        let tail = if closing { &rest[2..] } else { rest };
        if !tail.iter().all(|b| *b == b' ' || *b == b'\t') {
            // The boundary text followed by something else: content, not a delimiter.
            continue;
        }
        if let Some(start) = open {
            // The CRLF before the delimiter belongs to the delimiter.
            let mut end = at;
            if end > start && body[end - 1] == b'\n' {
                end -= 1;
                if end > start && body[end - 1] == b'\r' {
                    end -= 1;
                }
            }
            if parts.len() >= max_parts {
                return Err(EntityError::TooManyParts);
            }
            parts.push(&body[start..end.max(start)]);
        }
        if closing {
            return Ok(parts);
        }
        open = Some(line_end);
    }
    match open {
        // No closing delimiter: the last part runs to the end, as lenient readers do.
        Some(start) => {
            if parts.len() >= max_parts {
                return Err(EntityError::TooManyParts);
            }
            parts.push(&body[start..]);
            Ok(parts)
        }
        None => Err(EntityError::Malformed(
            "multipart without a delimiter".into(),
        )),
    }
}

/// Walks the entity tree of `raw` (multiparts and message/rfc822 bodies) and refuses more than
/// [`MAX_DEPTH`] levels or [`MAX_PARTS`] parts. Work is bounded by those caps times the size.
/// A part this reader cannot read is a leaf here: judging sloppy MIME is the caller's reader's
/// business, bounding the tree is ours.
pub fn check_tree(raw: &[u8]) -> Result<(), EntityError> {
    let mut parts = 0;
    walk(raw, 0, &mut parts)
}

fn walk(raw: &[u8], depth: usize, parts: &mut usize) -> Result<(), EntityError> {
    if depth > MAX_DEPTH {
        return Err(EntityError::TooDeep);
    }
    *parts += 1;
    if *parts > MAX_PARTS {
        return Err(EntityError::TooManyParts);
    }
    let Ok(entity) = parse(raw) else {
        return Ok(());
    };
    let (media, params) = entity.content_type();
    if media.starts_with("multipart/") {
        let Some(boundary) = param(&params, "boundary") else {
            return Ok(());
        };
        let children = match split_multipart(entity.body, boundary, MAX_PARTS) {
            Ok(children) => children,
            Err(EntityError::TooManyParts) => return Err(EntityError::TooManyParts),
            Err(_) => return Ok(()),
        };
        for part in children {
            walk(part, depth + 1, parts)?;
        }
    } else if media == "message/rfc822" {
        let cte = entity
            .header("Content-Transfer-Encoding")
            .map(|v| v.trim().to_ascii_lowercase());
        // An encoded message/rfc822 is not allowed (RFC 2046 §5.2.1); read it as opaque.
        if matches!(cte.as_deref(), None | Some("7bit" | "8bit" | "binary")) {
            walk(entity.body, depth + 1, parts)?;
        }
    }
    Ok(())
}

fn base64_engine() -> GeneralPurpose {
    GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    )
}

/// Base64 with line breaks and other whitespace ignored.
pub fn decode_base64(text: &[u8]) -> Result<Vec<u8>, EntityError> {
    let compact: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64_engine()
        .decode(compact)
        .map_err(|e| EntityError::Malformed(format!("bad base64: {e}")))
}

fn decode_quoted_printable(text: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'=' {
            if text[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if text[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            if let (Some(h), Some(l)) = (
                text.get(i + 1).copied().and_then(hex),
                text.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

/// `raw` with every bare LF (and bare CR) turned into CRLF.
pub fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if raw.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// True when every line break in `raw` is CRLF.
pub fn is_crlf(raw: &[u8]) -> bool {
    memchr::memchr2_iter(b'\r', b'\n', raw).all(|i| match raw[i] {
        b'\r' => raw.get(i + 1) == Some(&b'\n'),
        _ => i > 0 && raw[i - 1] == b'\r',
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_unfold_and_the_body_starts_after_the_blank_line() {
        let e = parse(b"Subject: a\r\n b\r\nTo: x@y\r\n\r\nbody\r\n").unwrap();
        assert_eq!(e.header("subject"), Some("a b"));
        assert_eq!(e.header("TO"), Some("x@y"));
        assert_eq!(e.body, b"body\r\n");
    }

    #[test]
    fn a_bare_cr_in_a_header_is_injection() {
        assert_eq!(
            parse(b"Subject: a\rBcc: x@y\r\n\r\n").unwrap_err(),
            EntityError::HeaderInjection
        );
    }

    #[test]
    fn multipart_parts_are_the_exact_bytes_between_delimiters() {
        let body =
            b"preamble\r\n--b\r\nA: 1\r\n\r\none\r\n--b \r\n\r\ntwo\r\n\r\n--b--\r\nepilogue";
        let parts = split_multipart(body, "b", 10).unwrap();
        assert_eq!(parts, vec![&b"A: 1\r\n\r\none"[..], &b"\r\ntwo\r\n"[..]]);
        assert_eq!(
            split_multipart(body, "b", 1).unwrap_err(),
            EntityError::TooManyParts
        );
    }

    #[test]
    fn content_type_parameters_are_unquoted() {
        let (m, p) = parse_content_type(
            r#"Multipart/Signed; protocol="application/pkcs7-signature"; boundary="a;b""#,
        );
        assert_eq!(m, "multipart/signed");
        assert_eq!(param(&p, "boundary"), Some("a;b"));
        assert_eq!(param(&p, "protocol"), Some("application/pkcs7-signature"));
    }

    #[test]
    fn addresses_take_the_addr_spec() {
        assert_eq!(
            addresses(r#""Doe, J" <j@a.org>, k@b.org"#),
            vec!["j@a.org".to_owned(), "k@b.org".to_owned()]
        );
    }

    #[test]
    fn the_tree_walk_refuses_bombs_and_passes_sloppy_parts() {
        let mut deep = String::from("x");
        for i in 0..=MAX_DEPTH {
            deep = format!(
                "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n{deep}\r\n--b{i}--"
            );
        }
        assert_eq!(check_tree(deep.as_bytes()), Err(EntityError::TooDeep));
        let sloppy =
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nno header here\r\n--b--\r\n";
        assert_eq!(check_tree(sloppy.as_bytes()), Ok(()));
    }

    #[test]
    fn crlf_normalisation() {
        assert_eq!(to_crlf(b"a\nb\r\nc\rd"), b"a\r\nb\r\nc\r\nd");
        assert!(is_crlf(b"a\r\nb"));
        assert!(!is_crlf(b"a\nb"));
    }
}
