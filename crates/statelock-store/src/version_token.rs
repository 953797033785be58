//! Version tokens for the stores that mint their own (memory and local disk).

/// A fresh random version token: 128 bits as 32 lower-case hex characters.
///
/// Random rather than a content hash so that writing the same bytes twice still changes the
/// version, and a compare-and-swap against a stale read can never succeed by coincidence.
pub(crate) fn new_version_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
