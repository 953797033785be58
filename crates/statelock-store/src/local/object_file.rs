//! The on-disk format of one stored object: a one-line header, then the body.
//!
//! ```text
//! statelock-object 1 <32 hex version> <content type, may be empty>[\t<name>=<value>]…\n
//! <body bytes>
//! ```
//!
//! The version lives inside the file, not beside it, so that a single `rename` or `link`
//! publishes body and version together: no reader can ever pair a new body with an old
//! version; user metadata rides in the same line for the same reason. The header is text so
//! an operator can `head -1` a file to see its version.
//!
//! Metadata came after format 1's first release and keeps its magic: a tab can be neither in
//! a content type nor in a metadata value (both refuse control characters), so readers from
//! before it took the pairs for part of the content type, which they never used, and read the
//! body unchanged; files without metadata are byte for byte what they always were.

use std::io::{self, Read};

use crate::port::Metadata;

const MAGIC: &str = "statelock-object 1 ";

/// Longest header accepted when reading; anything longer is not one of our files. Room for a
/// content type (under 1024 bytes) and the most metadata a put may carry, with separators.
pub(crate) const MAX_HEADER_LEN: usize = 8192;

/// A decoded header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub version: String,
    pub content_type: Option<String>,
    pub metadata: Metadata,
    /// Bytes taken by the header, newline included: the body starts here.
    pub len: usize,
}

/// The header line for a new object (`metadata` already checked by `check_metadata`).
pub(crate) fn encode_header(
    version: &str,
    content_type: Option<&str>,
    metadata: &Metadata,
) -> Vec<u8> {
    let mut line = format!("{MAGIC}{version} {}", content_type.unwrap_or(""));
    for (name, value) in metadata {
        line.push('\t');
        line.push_str(name);
        line.push('=');
        line.push_str(value);
    }
    line.push('\n');
    line.into_bytes()
}

/// Whether a content type can be stored in a header (one line, printable).
pub(crate) fn content_type_is_storable(content_type: &str) -> bool {
    content_type.len() < 1024 && !content_type.chars().any(char::is_control)
}

/// Decodes the header at the start of `bytes`; `None` if this is not an object file (or the
/// header is cut short, which a staged-then-renamed file never is).
pub(crate) fn decode_header(bytes: &[u8]) -> Option<Header> {
    let end = bytes
        .iter()
        .take(MAX_HEADER_LEN)
        .position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&bytes[..end]).ok()?;
    let rest = line.strip_prefix(MAGIC)?;
    let (version, rest) = rest.split_once(' ')?;
    if version.len() != 32 || !version.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut fields = rest.split('\t');
    let content_type = fields.next().unwrap_or("");
    let metadata = fields
        .map(|pair| {
            pair.split_once('=')
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
        })
        .collect::<Option<Metadata>>()?;
    Some(Header {
        version: version.to_owned(),
        content_type: (!content_type.is_empty()).then(|| content_type.to_owned()),
        metadata,
        len: end + 1,
    })
}

/// Reads just enough of `file` to decode its header.
pub(crate) fn read_header(file: &mut impl Read) -> io::Result<Option<Header>> {
    let mut buf = Vec::with_capacity(128);
    let mut chunk = [0u8; 256];
    while buf.len() < MAX_HEADER_LEN {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if chunk[..n].contains(&b'\n') {
            break;
        }
    }
    Ok(decode_header(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_with_and_without_content_type() {
        let v = "0123456789abcdef0123456789abcdef";
        for ct in [
            None,
            Some("application/json"),
            Some("text/plain; charset=utf-8"),
        ] {
            for metadata in [
                Metadata::new(),
                Metadata::from([
                    ("statelock-serial".to_owned(), "7".to_owned()),
                    ("x".to_owned(), "a=b c".to_owned()),
                ]),
            ] {
                let mut file = encode_header(v, ct, &metadata);
                let len = file.len();
                file.extend_from_slice(b"body\nwith newline");
                let h = decode_header(&file).unwrap();
                assert_eq!(h.version, v);
                assert_eq!(h.content_type.as_deref(), ct);
                assert_eq!(h.metadata, metadata);
                assert_eq!(h.len, len);
                assert_eq!(read_header(&mut &file[..]).unwrap(), Some(h));
            }
        }
    }

    #[test]
    fn a_header_without_metadata_is_the_format_it_always_was() {
        let v = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            encode_header(v, Some("application/json"), &Metadata::new()),
            format!("statelock-object 1 {v} application/json\n").into_bytes()
        );
    }

    #[test]
    fn foreign_files_are_not_objects() {
        for bad in [
            &b""[..],
            b"hello\n",
            b"statelock-object 1 short \n",
            b"statelock-object 2 0123456789abcdef0123456789abcdef \n",
            b"statelock-object 1 0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(
                decode_header(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
