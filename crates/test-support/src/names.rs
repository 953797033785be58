//! Unique, valid S3 bucket names, so tests sharing one server never see each other's objects.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A bucket name unique within this machine's recent test runs: `<prefix>-<pid>-<n>-<time>`.
///
/// The prefix is lower-cased and reduced to `[a-z0-9-]`; the result is 3..=63 characters and
/// starts and ends with a letter or digit, as S3 requires.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Sub-second time keeps names distinct across test processes that reuse a PID.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() % 1_000_000_000);
    let suffix = format!("-{}-{n}-{nanos:x}", std::process::id());
    let clean: String = prefix
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let clean = clean.trim_matches('-');
    let clean = if clean.is_empty() { "t" } else { clean };
    let room = 63 - suffix.len();
    let head = clean[..clean.len().min(room)].trim_end_matches('-');
    format!("{head}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::unique_name;

    #[test]
    fn names_are_valid_and_unique() {
        let long = "Some_Test::Name".repeat(10);
        for prefix in ["a", "", "--", "Prefix With Spaces", long.as_str()] {
            let a = unique_name(prefix);
            let b = unique_name(prefix);
            assert_ne!(a, b);
            for name in [a, b] {
                assert!((3..=63).contains(&name.len()), "{name}");
                assert!(
                    name.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                    "{name}"
                );
                assert!(!name.starts_with('-') && !name.ends_with('-'), "{name}");
            }
        }
    }
}
