//! The typed errors of the storage port.
//!
//! Callers match on the semantic cases (a lock conflict is `AlreadyExists`, a lost
//! compare-and-swap is `Precondition`); everything else is `Other`, which keeps its source and
//! says which store and operation failed.

use std::error::Error as StdError;

/// A boxed error from an SDK, the file system or elsewhere.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist.
    #[error("{store}: object {key:?} not found")]
    NotFound { store: String, key: String },

    /// A create-if-absent put found an object already there.
    #[error("{store}: object {key:?} already exists")]
    AlreadyExists { store: String, key: String },

    /// A conditional put or delete found a different version than the one expected (or no
    /// object, for a conditional put).
    #[error("{store}: object {key:?} is not at the expected version {expected}")]
    Precondition {
        store: String,
        key: String,
        expected: String,
    },

    /// The store cannot do this at all.
    #[error("{store}: {operation} is not supported by this store")]
    NotImplemented {
        store: String,
        operation: &'static str,
    },

    /// The key breaks the port's key rules; nothing was touched.
    #[error("{store}: invalid object key {key:?}: {reason}")]
    InvalidKey {
        store: String,
        key: String,
        reason: &'static str,
    },

    /// Anything else: network, permissions, disk, an unexpected answer.
    #[error("{store}: {operation} of {key:?} failed: {source}")]
    Other {
        store: String,
        operation: &'static str,
        key: String,
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// An [`StoreError::Other`] from any error or message.
    pub fn other(
        store: impl Into<String>,
        operation: &'static str,
        key: &str,
        source: impl Into<BoxError>,
    ) -> StoreError {
        StoreError::Other {
            store: store.into(),
            operation,
            key: key.to_owned(),
            source: source.into(),
        }
    }

    /// Whether this is [`StoreError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}

/// An error and its causes on one line (`dispatch failure: io error: ... Connection refused`),
/// skipping a cause whose text the line already holds: many errors, [`StoreError`] among
/// them, repeat their source in their own message, and SDK errors stop at "dispatch failure"
/// without it.
pub fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chain_joins_causes_once() {
        let inner = std::io::Error::other("connection refused");
        let wrapped = StoreError::other("s3://b", "get", "k", inner);
        // The Display already ends with the source; the chain must not repeat it.
        assert_eq!(
            error_chain(&wrapped),
            "s3://b: get of \"k\" failed: connection refused"
        );
        #[derive(Debug, thiserror::Error)]
        #[error("dispatch failure")]
        struct Outer(#[source] std::io::Error);
        let outer = Outer(std::io::Error::other("tcp connect error"));
        assert_eq!(error_chain(&outer), "dispatch failure: tcp connect error");
    }
}
