//! New lock IDs in the format Terraform's `NewLockInfo` produces.

/// Generator for lock IDs: 16 random bytes as lower-case hex in 8-4-4-4-12 groups.
///
/// Like Terraform's IDs (go-uuid's `FormatUUID` over random bytes) these are not RFC 4122
/// UUIDs: the version and variant nibbles are random too. Unlike Terraform, which reads
/// `math/rand`, the bytes come from the operating system's CSPRNG, so IDs cannot be predicted.
pub struct LockId;

impl LockId {
    /// A fresh random lock ID, e.g. `5d109c26-30ce-86f3-fc6f-336cd8db7a28`.
    pub fn generate() -> String {
        let mut bytes = [0u8; 16];
        // The OS random source failing is not recoverable in any useful way for a lock client.
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        Self::format(&bytes)
    }

    /// Formats 16 bytes as 8-4-4-4-12 lower-case hex.
    pub fn format(bytes: &[u8; 16]) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(36);
        for (i, b) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out.push('-');
            }
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
        out
    }

    /// Whether `id` has the 8-4-4-4-12 lower-case hex shape of a generated ID.
    pub fn is_well_formed(id: &str) -> bool {
        id.len() == 36
            && id.bytes().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == b'-',
                _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_bytes_as_grouped_hex() {
        let bytes = [
            0x5d, 0x10, 0x9c, 0x26, 0x30, 0xce, 0x86, 0xf3, 0xfc, 0x6f, 0x33, 0x6c, 0xd8, 0xdb,
            0x7a, 0x28,
        ];
        assert_eq!(
            LockId::format(&bytes),
            "5d109c26-30ce-86f3-fc6f-336cd8db7a28"
        );
    }

    #[test]
    fn generated_ids_are_well_formed_and_distinct() {
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| LockId::generate()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| LockId::is_well_formed(id)), "{ids:?}");
        assert!(!LockId::is_well_formed(
            "5D109C26-30CE-86F3-FC6F-336CD8DB7A28"
        ));
        assert!(!LockId::is_well_formed(
            "5d109c26-30ce-86f3-fc6f-336cd8db7a2"
        ));
    }
}
