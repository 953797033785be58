//! Scenario 1: lock hand-off under contention. N clients want one state's lock while another
//! holder has it; each does LOCK → GET → POST → UNLOCK. Either they wait in the server's lock
//! queue (`?wait=`), or they poll the way Terraform's `-lock-timeout` loop does (spec §1.3:
//! retry on a conflict after 1 s, doubling up to 16 s).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::client::Client;
use crate::server::Server;
use crate::state_doc::StateDoc;
use crate::stats::Samples;

/// How clients wait for a held lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arm {
    /// One LOCK with `?wait=`, served first come, first served by the server.
    Queue,
    /// Terraform's back-off: LOCK, and on 423 sleep 1 s, 2 s, 4 s, 8 s, then 16 s each time.
    Poll,
}

impl Arm {
    pub fn label(self) -> &'static str {
        match self {
            Arm::Queue => "lock queue (`?wait=`)",
            Arm::Poll => "Terraform-style polling",
        }
    }
}

/// Gap between two clients' arrivals, so "first come" is well defined.
const ARRIVAL_GAP: Duration = Duration::from_millis(10);
/// How long the holder keeps the lock after the last client arrived, so every first LOCK has
/// reached the server (and, for the queue, joined it) before the release.
const SETTLE: Duration = Duration::from_millis(150);
/// Terraform's first retry delay and its cap (`statemgr.LockWithContext`).
const POLL_FIRST: Duration = Duration::from_secs(1);
const POLL_MAX: Duration = Duration::from_secs(16);

/// What one run of N clients measured, timed from the holder's release.
#[derive(Debug)]
pub struct Outcome {
    /// From the release to the last client's UNLOCK.
    pub total: Duration,
    /// Per client: from the release (or its arrival, if later) to its lock.
    pub acquire: Samples,
    /// Pairs of clients served in the opposite order of their arrival.
    pub inversions: usize,
}

/// Runs N clients against `server` on a fresh state `key`.
pub fn run(server: &Server, key: &str, clients: usize, arm: Arm) -> anyhow::Result<Outcome> {
    let mut holder = Client::new(&server.addr, key, "bench-holder")?;
    holder.lock_ok("")?;
    let arrived = Arc::new(AtomicUsize::new(0));
    let order = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(clients + 1));
    let mut threads = Vec::new();
    for i in 0..clients {
        let (addr, key) = (server.addr.clone(), key.to_owned());
        let (arrived, order, start) = (arrived.clone(), order.clone(), start.clone());
        threads.push(std::thread::spawn(move || -> anyhow::Result<_> {
            let mut client = Client::new(&addr, &key, &format!("bench-client-{i}"))?;
            let mut doc = StateDoc::new(1024, "bench-handoff");
            start.wait();
            std::thread::sleep(ARRIVAL_GAP * i as u32);
            let arrival = Instant::now();
            arrived.fetch_add(1, Ordering::SeqCst);
            acquire(&mut client, arm)?;
            let locked = Instant::now();
            let rank = order.fetch_add(1, Ordering::SeqCst);
            client.read_and_write(&mut doc)?;
            client.unlock()?;
            Ok((i, arrival, locked, rank, Instant::now()))
        }));
    }
    start.wait();
    while arrived.load(Ordering::SeqCst) < clients {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(SETTLE);
    let released = Instant::now();
    holder.unlock()?;
    let mut results = Vec::new();
    for t in threads {
        results.push(t.join().expect("client thread panicked")?);
    }
    let mut acquire = Samples::default();
    let mut total = Duration::ZERO;
    let mut ranks = vec![0; clients];
    for (i, arrival, locked, rank, done) in results {
        acquire.push(locked.saturating_duration_since(released.max(arrival)));
        total = total.max(done.saturating_duration_since(released));
        ranks[i] = rank;
    }
    Ok(Outcome {
        total,
        acquire,
        inversions: inversions(&ranks),
    })
}

/// Takes the lock the way `arm` does.
fn acquire(client: &mut Client, arm: Arm) -> anyhow::Result<()> {
    match arm {
        Arm::Queue => client.lock_ok("?wait=10m").context("LOCK ?wait=10m"),
        Arm::Poll => {
            let mut delay = POLL_FIRST;
            loop {
                let reply = client.lock("")?;
                match reply.status {
                    200 => return Ok(()),
                    423 => {
                        std::thread::sleep(delay);
                        delay = (delay * 2).min(POLL_MAX);
                    }
                    _ => reply.expect(200, "LOCK").map(drop)?,
                }
            }
        }
    }
}

/// Pairs (i, j) with i arriving before j but served after it; `ranks[i]` is the position in
/// which client i (numbered in arrival order) got the lock.
fn inversions(ranks: &[usize]) -> usize {
    let mut count = 0;
    for i in 0..ranks.len() {
        for j in i + 1..ranks.len() {
            if ranks[i] > ranks[j] {
                count += 1;
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::inversions;

    #[test]
    fn counts_pairs_served_out_of_arrival_order() {
        assert_eq!(inversions(&[0, 1, 2, 3]), 0);
        assert_eq!(inversions(&[1, 0, 2, 3]), 1);
        assert_eq!(inversions(&[3, 2, 1, 0]), 6);
    }
}
