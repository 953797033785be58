//! A simulated Terraform process on the `http` backend: its lock record, and the requests of
//! one operation (LOCK, GET, POST `?ID=`, UNLOCK) over one keep-alive connection.

use statelock_core::LockInfo;

use crate::http::{Connection, Reply};
use crate::state_doc::{StateDoc, serial_of};

/// One client working on one state.
pub struct Client {
    conn: Connection,
    path: String,
    lock: LockInfo,
}

impl Client {
    /// A client of the server at `addr` for state `key`.
    pub fn new(addr: &str, key: &str, who: &str) -> anyhow::Result<Client> {
        Ok(Client {
            conn: Connection::open(addr)?,
            path: format!("/v1/states/{key}"),
            lock: LockInfo::new("OperationTypeApply", who, "1.0.3"),
        })
    }

    /// LOCK, with `query` (e.g. `?wait=10m`) on the lock address; 200 or 423.
    pub fn lock(&mut self, query: &str) -> anyhow::Result<Reply> {
        let body = self.lock.encode();
        self.conn
            .request("LOCK", &format!("{}{query}", self.path), body.as_bytes())
    }

    /// LOCK that must succeed.
    pub fn lock_ok(&mut self, query: &str) -> anyhow::Result<()> {
        self.lock(query)?.expect(200, "LOCK").map(drop)
    }

    /// UNLOCK with the LOCK body, as Terraform sends it.
    pub fn unlock(&mut self) -> anyhow::Result<()> {
        let body = self.lock.encode();
        self.conn
            .request("UNLOCK", &self.path, body.as_bytes())?
            .expect(200, "UNLOCK")
            .map(drop)
    }

    /// GET: the stored state, empty when there is none.
    pub fn get(&mut self) -> anyhow::Result<Vec<u8>> {
        let reply = self.conn.request("GET", &self.path, b"")?;
        match reply.status {
            204 | 404 => Ok(Vec::new()),
            _ => Ok(reply.expect(200, "GET")?.body),
        }
    }

    /// POST `?ID=` of `body` under our lock.
    pub fn write(&mut self, body: &[u8]) -> anyhow::Result<()> {
        let path = format!("{}?ID={}", self.path, self.lock.id);
        self.conn
            .request("POST", &path, body)?
            .expect(200, "POST")
            .map(drop)
    }

    /// GET, then POST the next serial of `doc`: what `terraform apply` does between its LOCK
    /// and UNLOCK.
    pub fn read_and_write(&mut self, doc: &mut StateDoc) -> anyhow::Result<()> {
        let current = self.get()?;
        doc.set_serial(serial_of(&current).map_or(0, |s| s + 1));
        self.write(doc.bytes())
    }
}
