//! Scenario 4: throughput. C clients, each on its own small state, repeat Terraform's apply
//! sequence (LOCK, GET, POST, UNLOCK) for a fixed time; the server's CPU time and peak RSS
//! over the same interval come from `/proc`.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::server::{Server, Usage};
use crate::state_doc::StateDoc;
use crate::stats::Samples;

/// What C clients achieved together.
pub struct Outcome {
    pub clients: usize,
    pub elapsed: Duration,
    /// Every request's latency.
    pub requests: Samples,
    /// The POSTs' latency alone: three fsynced puts each.
    pub posts: Samples,
    /// Completed LOCK..UNLOCK sequences.
    pub applies: usize,
    /// Server CPU time used during the run.
    pub cpu: Duration,
    pub peak_rss: u64,
}

/// Runs `clients` clients for `duration` against `server`.
pub fn run(server: &Server, clients: usize, duration: Duration) -> anyhow::Result<Outcome> {
    server.reset_peak()?;
    let before: Usage = server.usage()?;
    let start = Arc::new(Barrier::new(clients + 1));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let (addr, start) = (server.addr.clone(), start.clone());
            std::thread::spawn(move || -> anyhow::Result<(Samples, Samples, usize)> {
                let key = format!("throughput/c{clients}/client-{i}.tfstate");
                let mut client = Client::new(&addr, &key, &format!("bench-tp-{i}"))?;
                let mut doc = StateDoc::new(1024, "bench-throughput");
                let (mut samples, mut posts) = (Samples::default(), Samples::default());
                let mut applies = 0;
                start.wait();
                let began = Instant::now();
                while began.elapsed() < duration {
                    let t = Instant::now();
                    client.lock_ok("")?;
                    samples.push(t.elapsed());
                    let t = Instant::now();
                    client.get()?;
                    samples.push(t.elapsed());
                    applies += 1;
                    doc.set_serial(applies as u64);
                    let t = Instant::now();
                    client.write(doc.bytes())?;
                    let took = t.elapsed();
                    samples.push(took);
                    posts.push(took);
                    let t = Instant::now();
                    client.unlock()?;
                    samples.push(t.elapsed());
                }
                Ok((samples, posts, applies))
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let (mut requests, mut posts) = (Samples::default(), Samples::default());
    let mut applies = 0;
    for t in threads {
        let (samples, post, n) = t.join().expect("client thread panicked")?;
        requests.extend(samples);
        posts.extend(post);
        applies += n;
    }
    let elapsed = began.elapsed();
    let after = server.usage()?;
    Ok(Outcome {
        clients,
        elapsed,
        requests,
        posts,
        applies,
        cpu: after.cpu.saturating_sub(before.cpu),
        peak_rss: after.peak_rss,
    })
}

impl Outcome {
    pub fn requests_per_second(&self) -> f64 {
        self.requests.len() as f64 / self.elapsed.as_secs_f64()
    }

    pub fn applies_per_second(&self) -> f64 {
        self.applies as f64 / self.elapsed.as_secs_f64()
    }

    /// Server CPU time as a share of one core over the run.
    pub fn cpu_share(&self) -> f64 {
        self.cpu.as_secs_f64() / self.elapsed.as_secs_f64()
    }
}
