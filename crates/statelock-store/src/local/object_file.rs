//! The on-disk format of one stored object: a one-line header, then the body.
//!
//! ```text
//! statelock-object 1 <32 hex version> <content type, may be empty>\n
//! <body bytes>
//! ```
//!
//! The version lives inside the file, not beside it, so that a single `rename` or `link`
//! publishes body and version together: no reader can ever pair a new body with an old
//! version. The header is text so an operator can `head -1` a file to see its version.

use std::io::{self, Read};

const MAGIC: &str = "statelock-object 1 ";

/// Longest header accepted when reading; anything longer is not one of our files.
pub(crate) const MAX_HEADER_LEN: usize = 4096;

/// A decoded header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub version: String,
    pub content_type: Option<String>,
    /// Bytes taken by the header, newline included: the body starts here.
    pub len: usize,
}

/// The header line for a new object.
pub(crate) fn encode_header(version: &str, content_type: Option<&str>) -> Vec<u8> {
    format!("{MAGIC}{version} {}\n", content_type.unwrap_or("")).into_bytes()
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
    let (version, content_type) = rest.split_once(' ')?;
    if version.len() != 32 || !version.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(Header {
        version: version.to_owned(),
        content_type: (!content_type.is_empty()).then(|| content_type.to_owned()),
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
            let mut file = encode_header(v, ct);
            let len = file.len();
            file.extend_from_slice(b"body\nwith newline");
            let h = decode_header(&file).unwrap();
            assert_eq!(h.version, v);
            assert_eq!(h.content_type.as_deref(), ct);
            assert_eq!(h.len, len);
            assert_eq!(read_header(&mut &file[..]).unwrap(), Some(h));
        }
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
