//! A TCP proxy between the replicas (and the direct clients) and the store, which adds latency
//! or loses replies on command: "the write happened, the reply did not" is made honestly
//! here, by letting the request through and cutting the connection when the answer comes.
//!
//! Blocking threads, two per connection: the store's clients keep few connections and the
//! proxy must cost little next to the processes under test.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// What the proxy does to traffic now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pass,
    /// Each chunk in either direction waits this long first.
    Delay(Duration),
    /// Requests go through; each reply is discarded and its connection cut.
    LoseReplies,
}

#[derive(Debug, Default)]
struct Shared {
    /// Replies are being lost.
    lose: AtomicBool,
    /// Added latency per chunk, in milliseconds (0: none).
    delay_ms: AtomicU64,
    stopped: AtomicBool,
    /// Replies discarded while losing replies.
    lost: AtomicU64,
}

/// A running proxy to one upstream address.
pub struct Proxy {
    /// `127.0.0.1:PORT`, where clients connect.
    pub addr: String,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub fn start(upstream: &str) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?.to_string();
        let shared = Arc::new(Shared::default());
        let upstream = upstream.to_owned();
        let accept_shared = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accept_shared.stopped.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let shared = accept_shared.clone();
                let upstream = upstream.clone();
                std::thread::spawn(move || connect(client, &upstream, shared));
            }
        });
        Ok(Proxy { addr, shared })
    }

    /// Changes what happens to traffic from now on (connections already open included).
    pub fn set(&self, mode: Mode) {
        let (lose, delay) = match mode {
            Mode::Pass => (false, 0),
            Mode::Delay(d) => (false, d.as_millis() as u64),
            Mode::LoseReplies => (true, 0),
        };
        self.shared.delay_ms.store(delay, Ordering::Relaxed);
        self.shared.lose.store(lose, Ordering::Relaxed);
    }

    /// Replies discarded so far.
    pub fn lost_replies(&self) -> u64 {
        self.shared.lost.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

fn connect(client: TcpStream, upstream: &str, shared: Arc<Shared>) {
    let Ok(server) = TcpStream::connect(upstream) else {
        // The store is down: the client sees a refused request, as it would without a proxy.
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up_shared = shared.clone();
    std::thread::spawn(move || pump(client2, server2, &up_shared, false));
    pump(server, client, &shared, true);
}

/// Copies `from` to `to` until either side closes; `replies` is the store-to-client side,
/// whose chunks are the ones lost.
fn pump(mut from: TcpStream, mut to: TcpStream, shared: &Shared, replies: bool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let delay = shared.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        if replies && shared.lose.load(Ordering::Relaxed) {
            shared.lost.fetch_add(1, Ordering::Relaxed);
            break;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
