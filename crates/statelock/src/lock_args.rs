//! The `serve` flags for lock waiting and stuck locks, kept apart from the other flags.

use std::time::Duration;

use clap::Args;
use statelock_core::parse_duration;
use statelock_state::{LockPolicy, parse_lock_wait};

#[derive(Debug, Args)]
pub struct LockArgs {
    /// How long a LOCK waits for a held lock before answering 423 with the holder, when the
    /// lock address has no ?wait= (e.g. lock_address = ".../v1/states/x?wait=10m"). Waiters
    /// on one server are served first come, first served, and get the lock within
    /// milliseconds of an UNLOCK through the same server. At most 1h. Default 0: fail at
    /// once, as Terraform expects. Durations like 30s, 10m, 1h30m.
    #[arg(long, env = "STATELOCK_LOCK_WAIT", default_value = "0", value_parser = parse_lock_wait)]
    pub lock_wait: Duration,

    /// Opt-in: a lock with no activity for longer than this may be taken over by the next
    /// LOCK (logged as a warning; writes under the old lock ID are then refused). Activity is
    /// the LOCK itself and every accepted state write under the lock. Terraform >=1.5 writes
    /// a state snapshot about every 20s during an apply while the state changes, which counts
    /// as activity; Terraform 1.0.x writes only at the end, and a single resource that takes
    /// an hour to create writes nothing for that hour, so choose a TTL above the longest
    /// operation. Judged from the store's modification times, so also keep it well above any
    /// clock skew between this server and the store. A takeover waits a quarter of the TTL
    /// (at most 5s) and hands the lock back if a write of the old holder landed meanwhile;
    /// give every server on one bucket the same TTL.
    #[arg(long, env = "STATELOCK_LOCK_TTL", value_parser = parse_duration)]
    pub lock_ttl: Option<Duration>,

    /// How often a waiting LOCK re-reads the lock, to see releases made through other servers
    /// or directly on the store.
    #[arg(long, env = "STATELOCK_LOCK_POLL_INTERVAL", default_value = "1s", value_parser = parse_poll_interval)]
    pub lock_poll_interval: Duration,
}

impl LockArgs {
    pub fn policy(&self) -> LockPolicy {
        LockPolicy {
            wait: self.lock_wait,
            poll_interval: self.lock_poll_interval,
            ttl: self.lock_ttl,
        }
    }
}

/// Below 10ms polling only loads the store; above a minute other replicas' releases go
/// unnoticed for too long.
fn parse_poll_interval(text: &str) -> Result<Duration, String> {
    let interval = parse_duration(text)?;
    if !(Duration::from_millis(10)..=Duration::from_secs(60)).contains(&interval) {
        return Err(format!("{text} is not between 10ms and 60s"));
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        lock: LockArgs,
    }

    #[test]
    fn defaults_fail_at_once_and_never_take_over() {
        let policy = Cli::try_parse_from(["x"]).unwrap().lock.policy();
        assert_eq!(policy, LockPolicy::default());
    }

    #[test]
    fn parses_and_bounds_durations() {
        let cli = Cli::try_parse_from([
            "x",
            "--lock-wait",
            "10m",
            "--lock-ttl",
            "1h",
            "--lock-poll-interval",
            "250ms",
        ])
        .unwrap();
        let policy = cli.lock.policy();
        assert_eq!(policy.wait, Duration::from_secs(600));
        assert_eq!(policy.ttl, Some(Duration::from_secs(3600)));
        assert_eq!(policy.poll_interval, Duration::from_millis(250));
        assert!(Cli::try_parse_from(["x", "--lock-wait", "2h"]).is_err());
        assert!(Cli::try_parse_from(["x", "--lock-poll-interval", "1ms"]).is_err());
        assert!(Cli::try_parse_from(["x", "--lock-ttl", "soon"]).is_err());
    }
}
