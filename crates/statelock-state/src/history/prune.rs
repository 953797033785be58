//! Retention off the write path: a write whose state tag says enough versions were recorded
//! since the last prune (every [`prune_every`] writes) starts a prune in the background, so
//! no write waits for the listing and the deletes. At most one prune per state runs at a
//! time in a process; [`Pruner::settled`] waits for all of them (shutdown, tests).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use statelock_core::StateKey;
use statelock_store::ObjectStore;
use tokio::sync::Notify;

/// Writes between prunes of one state for `retention` kept versions: a quarter of it, 1 to
/// 16, so a history holds at most `retention + prune_every(retention) - 1` versions between
/// prunes (116 with the default 100).
pub fn prune_every(retention: usize) -> u32 {
    u32::try_from((retention / 4).clamp(1, 16)).unwrap_or(16)
}

/// The background prunes of one state service.
#[derive(Debug, Default)]
pub struct Pruner {
    running: Mutex<HashSet<String>>,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl Pruner {
    /// Prunes `key`'s history down to `keep` versions in the background, unless a prune of it
    /// is already running here.
    pub(crate) fn start(
        self: &Arc<Self>,
        store: Arc<dyn ObjectStore>,
        key: &StateKey,
        keep: usize,
    ) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(%key, "no async runtime to prune the history in; left for a later write");
            return;
        };
        if !self.lock().insert(key.as_str().to_owned()) {
            return;
        }
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let (pruner, key) = (Arc::clone(self), key.clone());
        runtime.spawn(async move {
            match super::read::scan(&*store, &key).await {
                Ok((listed, orphans)) => {
                    super::prune(&*store, keep, &key, &listed, &orphans).await;
                }
                Err(e) => tracing::warn!(%key, %e, "cannot list the history to prune it"),
            }
            pruner.lock().remove(key.as_str());
            if pruner.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
                pruner.idle.notify_waiters();
            }
        });
    }

    /// Returns once no prune started here is running.
    pub async fn settled(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prunes_every_quarter_of_the_retention_within_bounds() {
        assert_eq!(prune_every(1), 1);
        assert_eq!(prune_every(3), 1);
        assert_eq!(prune_every(8), 2);
        assert_eq!(prune_every(100), 16);
        assert_eq!(prune_every(10_000), 16);
    }
}
