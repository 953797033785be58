//! A minimal blocking HTTP/1.1 client with keep-alive, enough to drive the server's Terraform
//! protocol (GET, POST, LOCK, UNLOCK) from many threads.
//!
//! Hand-written rather than hyper's client so the benchmark measures the server, not a client
//! stack: one persistent connection per simulated Terraform process, as Go's pooled client
//! keeps one, and no async runtime on the client side.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use anyhow::{Context, bail};

/// One keep-alive connection to a server.
pub struct Connection {
    addr: String,
    reader: BufReader<TcpStream>,
    /// No request has been sent on this connection yet.
    fresh: bool,
    /// Read and write timeout, kept for a reopened connection too.
    timeout: Option<std::time::Duration>,
}

/// How one attempt failed.
enum Exchange {
    /// The connection was closed (or broke) before any byte of a reply: the request can be sent again.
    ClosedBeforeReply(anyhow::Error),
    Failed(anyhow::Error),
}

impl Exchange {
    fn into_error(self) -> anyhow::Error {
        match self {
            Exchange::ClosedBeforeReply(e) | Exchange::Failed(e) => e,
        }
    }
}

/// A reply: status and body.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Connection {
    /// Connects to `addr` (`host:port`).
    pub fn open(addr: &str) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connect to {addr}"))?;
        // Requests are small and latency matters more than packet count.
        stream.set_nodelay(true)?;
        Ok(Connection {
            addr: addr.to_owned(),
            reader: BufReader::with_capacity(64 * 1024, stream),
            fresh: true,
            timeout: None,
        })
    }

    /// Gives up on a reply (or a send) after `timeout`, so a client of a stopped server
    /// cannot hang forever.
    pub fn set_timeout(&mut self, timeout: std::time::Duration) -> anyhow::Result<()> {
        self.timeout = Some(timeout);
        let stream = self.reader.get_ref();
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(())
    }

    /// Sends `method path` with `body` and reads the whole reply.
    ///
    /// The server closes keep-alive connections that stay idle longer than its header
    /// timeout (10 s by default), and a polling client sleeps up to 16 s. When a reused
    /// connection turns out closed before any reply byte arrived, the request never reached
    /// the server, so it is sent again once on a new connection, as Go's HTTP client does for
    /// a connection the server closed while idle.
    pub fn request(&mut self, method: &str, path: &str, body: &[u8]) -> anyhow::Result<Reply> {
        let reused = !self.fresh;
        self.fresh = false;
        match self.exchange(method, path, body) {
            Err(Exchange::ClosedBeforeReply(_)) if reused => {
                let timeout = self.timeout;
                *self = Connection::open(&self.addr)?;
                if let Some(timeout) = timeout {
                    self.set_timeout(timeout)?;
                }
                self.fresh = false;
                self.exchange(method, path, body)
                    .map_err(Exchange::into_error)
            }
            other => other.map_err(Exchange::into_error),
        }
        .with_context(|| format!("{method} {path} on {}", self.addr))
    }

    fn exchange(&mut self, method: &str, path: &str, body: &[u8]) -> Result<Reply, Exchange> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let stream = self.reader.get_mut();
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body))
            .map_err(|e| Exchange::ClosedBeforeReply(e.into()))?;
        if self
            .reader
            .fill_buf()
            .map_err(|e| Exchange::ClosedBeforeReply(e.into()))?
            .is_empty()
        {
            return Err(Exchange::ClosedBeforeReply(anyhow::anyhow!(
                "the server closed the connection"
            )));
        }
        self.read_reply().map_err(Exchange::Failed)
    }

    fn read_reply(&mut self) -> anyhow::Result<Reply> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut length = None;
        let mut chunked = false;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("connection closed inside the reply headers");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.parse::<usize>()?);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.eq_ignore_ascii_case("chunked");
                }
            }
        }
        let body = if chunked {
            self.read_chunked()?
        } else {
            let mut body = vec![0; length.unwrap_or(0)];
            self.reader.read_exact(&mut body)?;
            body
        };
        Ok(Reply { status, body })
    }

    fn read_chunked(&mut self) -> anyhow::Result<Vec<u8>> {
        let mut body = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .with_context(|| format!("bad chunk size {line:?}"))?;
            let start = body.len();
            body.resize(start + size, 0);
            self.reader.read_exact(&mut body[start..])?;
            line.clear();
            self.reader.read_line(&mut line)?;
            if size == 0 {
                return Ok(body);
            }
        }
    }
}

impl Reply {
    /// Fails unless the status is `expected`, quoting the body.
    pub fn expect(self, expected: u16, what: &str) -> anyhow::Result<Reply> {
        if self.status != expected {
            bail!(
                "{what}: expected {expected}, got {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            );
        }
        Ok(self)
    }
}
