//! Placeholder: cross-process compare-and-swap and crash tests of the local-disk store.
fn main() {}
