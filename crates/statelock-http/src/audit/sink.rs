//! Where audit lines are written: a file (appended, one `write` per line, so lines from
//! several processes never interleave) or stdout, and whether they also go into the store.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use super::AuditEvent;

/// The configured audit trail.
pub struct AuditLog {
    lines: Option<Mutex<Box<dyn Write + Send>>>,
    to_store: bool,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("lines", &self.lines.is_some())
            .field("to_store", &self.to_store)
            .finish()
    }
}

impl AuditLog {
    /// Lines to `target`: a file path, or `-` for stdout; `None` for no lines.
    pub fn open(target: Option<&Path>, to_store: bool) -> std::io::Result<AuditLog> {
        let lines: Option<Box<dyn Write + Send>> = match target {
            None => None,
            Some(path) if path == Path::new("-") => Some(Box::new(std::io::stdout())),
            Some(path) => Some(Box::new(
                File::options().create(true).append(true).open(path)?,
            )),
        };
        Ok(AuditLog {
            lines: lines.map(Mutex::new),
            to_store,
        })
    }

    pub fn to_store(&self) -> bool {
        self.to_store
    }

    pub(super) fn write_line(&self, event: &AuditEvent) {
        let Some(lines) = &self.lines else {
            return;
        };
        let mut line = serde_json::to_vec(event).expect("audit events serialise");
        line.push(b'\n');
        let mut out = lines.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = out.write_all(&line).and_then(|()| out.flush()) {
            tracing::error!(%e, "cannot write the audit line");
        }
    }
}
