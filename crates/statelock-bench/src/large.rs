//! Scenario 5: large states. A fresh server writes and reads one big state several times; each
//! direction's throughput and the server's peak RSS during it.

use std::time::Instant;

use crate::client::Client;
use crate::server::Server;
use crate::state_doc::StateDoc;
use crate::stats::Samples;

/// Throughput and memory of writing and reading one state size.
pub struct Outcome {
    pub size: usize,
    pub write: Samples,
    pub read: Samples,
    /// Server RSS before the first transfer (the idle baseline).
    pub idle_rss: u64,
    pub write_peak_rss: u64,
    pub read_peak_rss: u64,
}

/// Writes then reads a `size`-byte state `rounds` times through `server` (a fresh one, so the
/// peaks belong to this scenario).
pub fn run(server: &Server, size: usize, rounds: usize) -> anyhow::Result<Outcome> {
    let mut client = Client::new(&server.addr, "large/state.tfstate", "bench-large")?;
    let mut doc = StateDoc::new(size, "bench-large");
    let idle_rss = server.usage()?.peak_rss;
    let (mut write, mut read) = (Samples::default(), Samples::default());
    let (mut write_peak, mut read_peak) = (0, 0);
    client.lock_ok("")?;
    for serial in 0..rounds as u64 {
        doc.set_serial(serial);
        server.reset_peak()?;
        let t = Instant::now();
        client.write(doc.bytes())?;
        write.push(t.elapsed());
        write_peak = write_peak.max(server.usage()?.peak_rss);
        server.reset_peak()?;
        let t = Instant::now();
        let body = client.get()?;
        read.push(t.elapsed());
        read_peak = read_peak.max(server.usage()?.peak_rss);
        anyhow::ensure!(body.len() == size, "GET returned {} bytes", body.len());
    }
    client.unlock()?;
    Ok(Outcome {
        size,
        write,
        read,
        idle_rss,
        write_peak_rss: write_peak,
        read_peak_rss: read_peak,
    })
}

impl Outcome {
    /// MB/s (10^6 bytes) at the median duration.
    pub fn mb_per_second(&self, samples: &Samples) -> f64 {
        self.size as f64 / 1e6 / samples.p50().as_secs_f64()
    }
}
