//! The per-state queue of lock requests waiting on this replica, first come, first served.
//!
//! This is the only lock-related state kept in the process, and it is only an ordering of
//! requests: who holds a lock is always the `.tflock` object. Only the head of a queue tries
//! the store, so waiters are served in arrival order and a busy state costs one poll per
//! interval, not one per waiter. A [`Place`] leaves its queue when dropped (served, expired,
//! or its connection gone) and wakes the next head, so nobody waits behind a departed request.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use statelock_core::{LockInfo, StateKey, Timestamp};
use tokio::sync::{Notify, watch};

/// Every state's waiters on this replica, plus the shutdown signal they obey.
#[derive(Debug)]
pub struct Waiting {
    queues: Mutex<HashMap<StateKey, VecDeque<Entry>>>,
    next_ticket: AtomicU64,
    shutdown: watch::Sender<bool>,
}

#[derive(Debug)]
struct Entry {
    ticket: u64,
    wake: Arc<Notify>,
    waiter: Waiter,
}

/// Who is waiting, for the fronts that show the queue (the web UI's locks page): the
/// request's lock record without the parts a reader has no use for, and when it joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiter {
    pub id: String,
    pub who: String,
    pub operation: String,
    /// The client's version (Terraform's, OpenTofu's).
    pub version: String,
    /// When the request joined the queue on this replica.
    pub since: Timestamp,
}

impl Waiter {
    /// The waiter for a request with lock record `info`, joining now.
    pub fn of(info: &LockInfo) -> Waiter {
        Waiter {
            id: info.id.clone(),
            who: info.who.clone(),
            operation: info.operation.clone(),
            version: info.version.clone(),
            since: Timestamp::now(),
        }
    }
}

/// One request's place in a state's queue.
#[derive(Debug)]
pub struct Place<'a> {
    waiting: &'a Waiting,
    key: StateKey,
    ticket: u64,
    wake: Arc<Notify>,
}

impl Default for Waiting {
    fn default() -> Waiting {
        Waiting {
            queues: Mutex::default(),
            next_ticket: AtomicU64::new(0),
            shutdown: watch::Sender::new(false),
        }
    }
}

impl Waiting {
    /// Queues `waiter`'s request for `key`'s lock behind those already waiting.
    pub fn join(&self, key: &StateKey, waiter: Waiter) -> Place<'_> {
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let wake = Arc::new(Notify::new());
        self.lock()
            .entry(key.clone())
            .or_default()
            .push_back(Entry {
                ticket,
                wake: wake.clone(),
                waiter,
            });
        Place {
            waiting: self,
            key: key.clone(),
            ticket,
            wake,
        }
    }

    /// Tells the first waiter for `key` to try now: the lock was just released through here.
    pub fn wake_head(&self, key: &StateKey) {
        if let Some(head) = self.lock().get(key).and_then(VecDeque::front) {
            // A stored permit if the head is busy, so a release during its attempt is not lost.
            head.wake.notify_one();
        }
    }

    /// How many requests wait for `key`'s lock on this replica.
    pub fn queued(&self, key: &StateKey) -> usize {
        self.lock().get(key).map_or(0, VecDeque::len)
    }

    /// Every state with requests waiting on this replica, in key order, each with its waiters
    /// in line order (the head first).
    pub fn snapshot(&self) -> Vec<(StateKey, Vec<Waiter>)> {
        let mut all: Vec<(StateKey, Vec<Waiter>)> = self
            .lock()
            .iter()
            .map(|(key, queue)| {
                (
                    key.clone(),
                    queue.iter().map(|e| e.waiter.clone()).collect(),
                )
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Answers every waiter now and makes later LOCKs fail at once: the server is stopping.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Completes once [`Waiting::begin_shutdown`] has been called.
    pub async fn shutdown(&self) {
        let mut rx = self.shutdown.subscribe();
        // The sender lives as long as `self`, so the only way out is the flag turning true.
        let _ = rx.wait_for(|stopping| *stopping).await;
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<StateKey, VecDeque<Entry>>> {
        // A panic while holding this lock cannot leave the map inconsistent (each change is
        // one push or remove), so a poisoned lock is still usable.
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Place<'_> {
    /// Whether this request is first in line.
    pub fn is_head(&self) -> bool {
        self.waiting
            .lock()
            .get(&self.key)
            .and_then(VecDeque::front)
            .is_some_and(|e| e.ticket == self.ticket)
    }

    /// Completes when this request is woken: it became head, or the lock was released here.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut queues = self.waiting.lock();
        let Some(queue) = queues.get_mut(&self.key) else {
            return;
        };
        let was_head = queue.front().is_some_and(|e| e.ticket == self.ticket);
        queue.retain(|e| e.ticket != self.ticket);
        match queue.front() {
            None => {
                queues.remove(&self.key);
            }
            Some(next) if was_head => next.wake.notify_one(),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_passes_in_arrival_order_and_departures_wake_the_next() {
        let waiting = Waiting::default();
        let key = StateKey::parse("a.tfstate").unwrap();
        let who = |id: &str| {
            let mut info = LockInfo::new("OperationTypeApply", "a@x", "1.15.5");
            info.id = id.to_owned();
            Waiter::of(&info)
        };
        let first = waiting.join(&key, who("1"));
        let second = waiting.join(&key, who("2"));
        let third = waiting.join(&key, who("3"));
        let line: Vec<String> = waiting.snapshot()[0]
            .1
            .iter()
            .map(|w| w.id.clone())
            .collect();
        assert_eq!(line, ["1", "2", "3"], "the snapshot is in line order");
        assert!(first.is_head() && !second.is_head() && !third.is_head());
        drop(second);
        assert_eq!(waiting.queued(&key), 2);
        assert!(first.is_head());
        drop(first);
        assert!(third.is_head());
        drop(third);
        assert_eq!(waiting.queued(&key), 0);
        assert!(waiting.snapshot().is_empty());
        assert!(waiting.lock().is_empty(), "empty queues are removed");
    }
}
