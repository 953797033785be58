//! The two pieces of Go's `encoding/json` that the lock record depends on: how a string is
//! escaped on output, and how an object key is matched to a struct field on input.
//!
//! Hand-written rather than delegated to `serde_json` because the bytes must match Go's:
//! `serde_json` leaves `<`, `>`, `&`, U+2028 and U+2029 unescaped and writes `\u001F` style
//! escapes differently from Go in places.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` to `out` as a JSON string literal exactly as Go's `json.Marshal` writes it
/// (HTML-safe escaping on, as `Marshal` always has it).
///
/// Short escapes are used for `"`, `\`, `\b`, `\f`, `\n`, `\r`, `\t` (Go ≥ 1.22, which builds
/// every Terraform and OpenTofu release with lockfile support; older Go wrote `\u0008` and
/// `\u000c`). Other control bytes, `<`, `>` and `&` become `\u00xx` with lower-case hex, and
/// U+2028 / U+2029 become `\u2028` / `\u2029`.
pub(crate) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\u{2028}' => Some("\\u2028"),
            '\u{2029}' => Some("\\u2029"),
            _ => None,
        };
        let needs_hex = c < '\u{20}' || c == '<' || c == '>' || c == '&';
        if escape.is_none() && !needs_hex {
            continue;
        }
        out.push_str(&s[start..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => {
                let b = c as u8;
                out.push_str("\\u00");
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 0xf)] as char);
            }
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Whether a JSON object key selects the struct field `field` when Go decodes it.
///
/// Go prefers an exact match and otherwise accepts a case-insensitive one, using Unicode simple
/// folding. For the ASCII field names of `LockInfo` that means ASCII case folding plus two
/// non-ASCII characters that fold onto ASCII letters: U+017F (long s) onto `s` and U+212A
/// (Kelvin sign) onto `k`.
pub(crate) fn key_matches_field(key: &str, field: &str) -> bool {
    let mut key_chars = key.chars();
    for f in field.chars() {
        let Some(k) = key_chars.next() else {
            return false;
        };
        let folded = match k {
            '\u{17f}' => 's',
            '\u{212a}' => 'k',
            other => other.to_ascii_lowercase(),
        };
        if folded != f.to_ascii_lowercase() {
            return false;
        }
    }
    key_chars.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &str) -> String {
        let mut out = String::new();
        write_string(&mut out, s);
        out
    }

    #[test]
    fn escapes_like_go_marshal() {
        assert_eq!(enc(""), r#""""#);
        assert_eq!(enc("plain ascii"), r#""plain ascii""#);
        assert_eq!(enc(r#"q"b\"#), r#""q\"b\\""#);
        assert_eq!(enc("<a&b>"), r#""\u003ca\u0026b\u003e""#);
        assert_eq!(enc("\u{8}\u{c}\n\r\t"), r#""\b\f\n\r\t""#);
        assert_eq!(enc("\u{0}\u{1f}\u{b}"), r#""\u0000\u001f\u000b""#);
        assert_eq!(enc("\u{2028}x\u{2029}"), r#""\u2028x\u2029""#);
        // Non-ASCII other than the two separators passes through as UTF-8.
        assert_eq!(enc("zoë@hôte"), "\"zoë@hôte\"");
        // DEL (0x7f) is not escaped by Go.
        assert_eq!(enc("\u{7f}"), "\"\u{7f}\"");
    }

    #[test]
    fn matches_keys_like_go() {
        assert!(key_matches_field("ID", "ID"));
        assert!(key_matches_field("id", "ID"));
        assert!(key_matches_field("iD", "ID"));
        assert!(key_matches_field("VERSION", "Version"));
        assert!(key_matches_field("Ver\u{17f}ion", "Version"));
        assert!(!key_matches_field("IDs", "ID"));
        assert!(!key_matches_field("I", "ID"));
        assert!(!key_matches_field("Ïd", "ID"));
        assert!(!key_matches_field("", "ID"));
    }
}
