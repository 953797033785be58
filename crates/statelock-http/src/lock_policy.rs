//! How LOCK behaves when the lock is taken: how long it may wait, how often a waiter looks at
//! the store, and after how much inactivity a lock counts as stuck.

use std::time::Duration;

use crate::error::ApiError;
use statelock_core::parse_duration;

/// The longest a LOCK may wait, from `?wait=` or `--lock-wait`. An hour covers any sane
/// queue of applies; beyond it a client is better told who holds the lock than left hanging,
/// and every waiter holds a connection and a task.
pub const MAX_LOCK_WAIT: Duration = Duration::from_secs(3600);

/// How often the first waiter on a replica re-reads the lock, to see releases made through
/// other replicas or directly on the store (which cannot notify this process).
pub const DEFAULT_LOCK_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The lock-queue and stuck-lock settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockPolicy {
    /// How long a LOCK without `?wait=` waits; zero fails at once, as Terraform expects.
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

/// Parses a lock wait (`?wait=` or `--lock-wait`), refusing anything over [`MAX_LOCK_WAIT`].
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

/// The wait a LOCK asked for in its query string, if any.
pub fn requested_wait(query: Option<&str>) -> Result<Option<Duration>, ApiError> {
    let Some(query) = query else {
        return Ok(None);
    };
    let mut wait = None;
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("wait=") {
            // Only digits and unit letters are meaningful, so no percent-decoding is needed;
            // anything encoded is refused by the parser and named in the 400.
            wait = Some(
                parse_lock_wait(value)
                    .map_err(|e| ApiError::BadRequest(format!("invalid ?wait=: {e}")))?,
            );
        }
    }
    Ok(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_comes_from_the_query_and_is_capped() {
        assert_eq!(requested_wait(None).unwrap(), None);
        assert_eq!(requested_wait(Some("ID=x")).unwrap(), None);
        assert_eq!(
            requested_wait(Some("ID=x&wait=10m")).unwrap(),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            requested_wait(Some("wait=0")).unwrap(),
            Some(Duration::ZERO)
        );
        assert!(requested_wait(Some("wait=2h")).is_err());
        assert!(requested_wait(Some("wait=soon")).is_err());
    }
}
