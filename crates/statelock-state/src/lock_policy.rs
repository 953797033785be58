//! How a lock request behaves when the lock is taken: how long it may wait, how often a waiter looks at
//! the store, and after how much inactivity a lock counts as stuck.

use std::time::Duration;

use statelock_core::parse_duration;

/// The longest a lock request may wait (`?wait=`, `--lock-wait`). An hour covers any sane
/// queue of applies; beyond it a client is better told who holds the lock than left hanging,
/// and every waiter holds a connection and a task.
pub const MAX_LOCK_WAIT: Duration = Duration::from_secs(3600);

/// How often the first waiter on a replica re-reads the lock, to see releases made through
/// other replicas or directly on the store (which cannot notify this process).
pub const DEFAULT_LOCK_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The lock-queue and stuck-lock settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockPolicy {
    /// How long a lock request that names no wait of its own waits; zero fails at once, as Terraform expects.
    pub wait: Duration,
    /// How often the first waiter re-reads the lock when not notified.
    pub poll_interval: Duration,
    /// A lock idle for longer than this may be taken over by the next LOCK; `None`: never.
    pub ttl: Option<Duration>,
}

impl Default for LockPolicy {
    fn default() -> LockPolicy {
        LockPolicy {
            wait: Duration::ZERO,
            poll_interval: DEFAULT_LOCK_POLL_INTERVAL,
            ttl: None,
        }
    }
}

/// Parses a lock wait (`?wait=`, `--lock-wait`), refusing anything over [`MAX_LOCK_WAIT`].
pub fn parse_lock_wait(text: &str) -> Result<Duration, String> {
    let wait = parse_duration(text)?;
    if wait > MAX_LOCK_WAIT {
        return Err(format!(
            "a lock wait of {text} is longer than the maximum of {}s",
            MAX_LOCK_WAIT.as_secs()
        ));
    }
    Ok(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_capped_at_an_hour() {
        assert_eq!(parse_lock_wait("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_lock_wait("0"), Ok(Duration::ZERO));
        assert!(
            parse_lock_wait("2h")
                .unwrap_err()
                .contains("maximum of 3600s")
        );
        assert!(parse_lock_wait("soon").is_err());
    }
}
