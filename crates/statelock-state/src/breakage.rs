//! Deliberate breakages, for proving that the fault run's checker (`statelock-bench faults`,
//! RELIABILITY.md) catches a broken server. TEST BUILDS ONLY: the switch exists only with
//! `debug_assertions` (what `cargo test` and `cargo build` without `--release` compile); in a
//! release binary [`active`] is the constant `false` and the hooks compile away. Even in a
//! debug build nothing changes unless `STATELOCK_TEST_BREAK` names a breakage.

/// A guarantee to switch off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Breakage {
    /// `fence-off`: writes carrying a lock ID are not checked against the holder.
    FenceOff,
    /// `history-after-state`: the state is replaced first and its version recorded after.
    HistoryAfterState,
    /// `cas-off`: state writes overwrite instead of compare-and-swap on the version read.
    CasOff,
    /// `takeover-now`: with a TTL set, any held lock is taken over at once, idle or not.
    TakeoverNow,
}

/// Whether `breakage` is switched on (debug builds with `STATELOCK_TEST_BREAK` only).
#[cfg(debug_assertions)]
pub(crate) fn active(breakage: Breakage) -> bool {
    static SET: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let set = SET.get_or_init(|| {
        let set = std::env::var("STATELOCK_TEST_BREAK").unwrap_or_default();
        if !set.is_empty() {
            tracing::error!(breakages = %set, "STATELOCK_TEST_BREAK: this test build is deliberately broken");
        }
        set
    });
    let name = match breakage {
        Breakage::FenceOff => "fence-off",
        Breakage::HistoryAfterState => "history-after-state",
        Breakage::CasOff => "cas-off",
        Breakage::TakeoverNow => "takeover-now",
    };
    set.split(',').any(|s| s.trim() == name)
}

/// Release builds: never.
#[cfg(not(debug_assertions))]
pub(crate) fn active(_: Breakage) -> bool {
    false
}
