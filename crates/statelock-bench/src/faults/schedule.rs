//! The seeded fault schedule: which fault comes next, on what, for how long, and the pause
//! before the one after. The same `--seed` gives the same sequence of faults; the moments
//! they hit the clients' operations depend on timing, so a replay reproduces the schedule,
//! not every interleaving.

use std::time::Duration;

/// SplitMix64: small, seedable, good enough for choosing faults (no dependency needed).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high.saturating_sub(low) + 1)
    }
}

/// A kind of fault (`--faults` names them in kebab case: `replica-kill`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum FaultKind {
    /// SIGKILL of a replica, restarted after a moment.
    ReplicaKill,
    /// SIGSTOP of a replica, SIGCONT after a moment: it comes back with stale beliefs.
    ReplicaPause,
    /// SIGSTOP of the store (SeaweedFS), then SIGCONT.
    StorePause,
    /// SIGKILL of the store, restarted on the same data.
    StoreKill,
    /// Added latency on every store connection, through the proxy.
    StoreLatency,
    /// Requests reach the store and its replies are lost, through the proxy.
    LostReplies,
    /// A client dies mid-apply holding its lock (the TTL must recover it).
    ClientKill,
    /// A client stalls past the TTL between its GET and its POST (its lock is taken over and
    /// its write must then be refused).
    ClientStall,
}

impl FaultKind {
    pub const ALL: [FaultKind; 8] = [
        FaultKind::ReplicaKill,
        FaultKind::ReplicaPause,
        FaultKind::StorePause,
        FaultKind::StoreKill,
        FaultKind::StoreLatency,
        FaultKind::LostReplies,
        FaultKind::ClientKill,
        FaultKind::ClientStall,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::ReplicaKill => "replica SIGKILL + restart",
            FaultKind::ReplicaPause => "replica SIGSTOP/SIGCONT",
            FaultKind::StorePause => "store SIGSTOP/SIGCONT",
            FaultKind::StoreKill => "store SIGKILL + restart",
            FaultKind::StoreLatency => "store latency (proxy)",
            FaultKind::LostReplies => "store replies lost (proxy)",
            FaultKind::ClientKill => "client killed mid-apply",
            FaultKind::ClientStall => "client stalled past the TTL",
        }
    }

    /// Whether it needs a separate store process (not the local directory).
    pub fn needs_store_process(self) -> bool {
        matches!(
            self,
            FaultKind::StorePause
                | FaultKind::StoreKill
                | FaultKind::StoreLatency
                | FaultKind::LostReplies
        )
    }
}

/// One scheduled fault.
#[derive(Clone, Debug)]
pub struct Fault {
    pub kind: FaultKind,
    /// Which replica or client (taken modulo their number).
    pub target: u64,
    /// How long it lasts (pauses, latency windows, lost-reply windows, restart delays).
    pub duration: Duration,
    /// The added latency, for [`FaultKind::StoreLatency`].
    pub latency: Duration,
    /// The quiet time before it.
    pub gap: Duration,
}

/// The faults of a run, in order, from `seed`.
pub struct Schedule {
    rng: Rng,
    kinds: Vec<FaultKind>,
    /// Longest pause or outage: kept below the TTL so that only clients that really stall
    /// (or die) lose their locks.
    max_outage: Duration,
    gap: (Duration, Duration),
}

impl Schedule {
    pub fn new(
        seed: u64,
        kinds: Vec<FaultKind>,
        max_outage: Duration,
        gap: (Duration, Duration),
    ) -> Schedule {
        Schedule {
            rng: Rng::new(seed),
            kinds,
            max_outage,
            gap,
        }
    }

    pub fn next_fault(&mut self) -> Fault {
        let kind = self.kinds[self.rng.below(self.kinds.len() as u64) as usize];
        let max = self.max_outage.as_millis() as u64;
        let duration = Duration::from_millis(self.rng.between(max / 10, max));
        let latency = Duration::from_millis(self.rng.between(20, 300));
        let gap = Duration::from_millis(
            self.rng
                .between(self.gap.0.as_millis() as u64, self.gap.1.as_millis() as u64),
        );
        Fault {
            kind,
            target: self.rng.next(),
            duration,
            latency,
            gap,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let make = |seed| {
            let mut s = Schedule::new(
                seed,
                FaultKind::ALL.to_vec(),
                Duration::from_secs(3),
                (Duration::from_millis(100), Duration::from_secs(2)),
            );
            (0..50)
                .map(|_| {
                    let f = s.next_fault();
                    (f.kind, f.target, f.duration, f.gap)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(make(7), make(7));
        assert_ne!(make(7), make(8));
    }
}
