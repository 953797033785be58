//! Which bucket and object a request names: the one bucket, and each key as a state or as
//! a state's lock. A key that breaks a key rule, or lies under `.statelock/` (the history,
//! the audit trail), is refused before the store is touched; the probe's scratch keys
//! (`.statelock/probe/…`) are the one exception, reachable as plain objects.

use s3s::{S3ErrorCode, S3Result};
use statelock_core::StateKey;
use statelock_state::history::{RESERVED_PREFIX, check_server_key};
use statelock_state::is_scratch_key;

use crate::app::AppState;

use super::errors::error;

/// What an object key stands for.
#[derive(Debug)]
pub(super) enum Target {
    /// A state object.
    State(StateKey),
    /// The `.tflock` object of this state.
    Lock(StateKey),
    /// One of `statelock probe`'s scratch objects (`.statelock/probe/…`), so that the probe
    /// can judge the front: a plain object with S3's conditional writes, no state.
    Scratch(String),
}

impl Target {
    /// The object key in the store.
    pub(super) fn object_key(&self) -> String {
        match self {
            Target::State(key) => key.as_str().to_owned(),
            Target::Lock(key) => key.lock_key(),
            Target::Scratch(key) => key.clone(),
        }
    }
}

/// `NoSuchBucket` unless `bucket` is the one this front serves.
pub(super) fn check_bucket(app: &AppState, bucket: &str) -> S3Result<()> {
    let served = &app.config().bucket;
    if bucket == served {
        return Ok(());
    }
    Err(error(
        S3ErrorCode::NoSuchBucket,
        format!(
            "this server has one bucket, {served:?}; there is no bucket {bucket:?} (start \
             `statelock serve` with --bucket-name {bucket} to serve it under that name)"
        ),
    ))
}

/// Whether a listed key is one of statelock's own objects, never shown to S3 clients.
pub(super) fn is_reserved(key: &str) -> bool {
    key.starts_with(RESERVED_PREFIX) || key == RESERVED_PREFIX.trim_end_matches('/')
}

/// The state or lock that `key` names, or why it may not be used.
pub(super) fn target(key: &str) -> S3Result<Target> {
    if is_scratch_key(key) {
        return Ok(Target::Scratch(key.to_owned()));
    }
    if is_reserved(key) {
        return Err(error(
            S3ErrorCode::AccessDenied,
            format!(
                "keys under {RESERVED_PREFIX} are statelock's own (history, audit) and are not reachable over S3"
            ),
        ));
    }
    let bad = |e: &dyn std::fmt::Display| {
        error(
            S3ErrorCode::InvalidArgument,
            format!("object key {key:?} is refused: {e}"),
        )
    };
    let target = match StateKey::from_lock_key(key) {
        Some(parsed) => Target::Lock(parsed.map_err(|e| bad(&e))?),
        None => Target::State(StateKey::parse(key).map_err(|e| bad(&e))?),
    };
    if let Target::State(state) | Target::Lock(state) = &target {
        check_server_key(state).map_err(|e| bad(&e))?;
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_states_locks_or_refused() {
        assert!(matches!(target("env:/dev/a.tfstate"), Ok(Target::State(_))));
        match target("env:/dev/a.tfstate.tflock") {
            Ok(Target::Lock(k)) => assert_eq!(k.as_str(), "env:/dev/a.tfstate"),
            other => panic!("{other:?}"),
        }
        for refused in [
            ".statelock/history/a",
            ".statelock",
            "a/../b",
            "/a",
            "a//b",
            "x.tflock.tflock",
        ] {
            assert!(target(refused).is_err(), "{refused}");
        }
        let reserved = target(".statelock/audit/x").unwrap_err();
        assert_eq!(reserved.code(), &S3ErrorCode::AccessDenied);
        assert!(matches!(
            target(".statelock/probe/0a1b"),
            Ok(Target::Scratch(k)) if k == ".statelock/probe/0a1b"
        ));
        assert!(target(".statelock/probe/").is_err());
    }
}
