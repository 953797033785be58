//! A decorator that wraps any store to add latency, failures, lost replies and scripted
//! interventions (a hook run on the inner store just before or after one call: another
//! writer, a release at the worst moment, a rendezvous), and counts the requests that reach
//! it. Tests that need a call intercepted script it here rather than writing their own
//! wrapper.
//!
//! "The write happened but the reply was lost" is the failure behind stuck locks on real
//! stores (opentofu#4405: an SDK retried a lock PUT that had succeeded). The lock protocol's
//! tests script it here, on every adapter.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::StoreError;
use crate::port::{
    Capabilities, DeleteMode, GetResult, ListPage, ObjectMeta, ObjectStore, ObjectVersion,
    Observation, PutOptions, Quirk, StoreResult,
};

/// A port operation, for scripting faults and counting calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Get,
    Head,
    Put,
    Delete,
    List,
    ListVersions,
    GetVersion,
}

const OPS: [Op; 7] = [
    Op::Get,
    Op::Head,
    Op::Put,
    Op::Delete,
    Op::List,
    Op::ListVersions,
    Op::GetVersion,
];

/// What happens to one scripted call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Fail without reaching the store, as a refused connection or a 5xx would.
    Error,
    /// Reach the store, then fail as if the reply never arrived (a timeout after success).
    ReplyLost,
    /// Wait, then proceed normally.
    Delay(Duration),
    /// Run the hook on the inner store, then make the call; a hook error fails the call
    /// without it reaching the store.
    Before(Hook),
    /// Make the call, then run the hook on the inner store; a hook error replaces the reply.
    After(Hook),
}

type HookFn = dyn Fn(Arc<dyn ObjectStore>) -> Pin<Box<dyn Future<Output = StoreResult<()>> + Send>>
    + Send
    + Sync;

/// Something done to the inner store around one call, as another client would.
#[derive(Clone)]
pub struct Hook(Arc<HookFn>);

impl Hook {
    /// `f` gets the inner store (the one the decorator wraps, so its own calls are neither
    /// counted nor scripted).
    pub fn new<F, Fut>(f: F) -> Hook
    where
        F: Fn(Arc<dyn ObjectStore>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = StoreResult<()>> + Send + 'static,
    {
        Hook(Arc::new(move |store| Box::pin(f(store))))
    }
}

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hook")
    }
}

impl PartialEq for Hook {
    fn eq(&self, other: &Hook) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Hook {}

/// Wraps a store; scripted faults apply to the next matching calls, in order.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    latency: Mutex<Duration>,
    script: Mutex<VecDeque<Scripted>>,
    calls: [AtomicUsize; OPS.len()],
    /// A `Before` hook's error, handed from `before` to `run` for the call it fails.
    hook_error: Mutex<Option<StoreError>>,
}

#[derive(Debug)]
struct Scripted {
    op: Op,
    key: KeyMatch,
    fault: Fault,
}

#[derive(Debug)]
enum KeyMatch {
    Any,
    Contains(String),
    Exact(String),
}

impl KeyMatch {
    fn matches(&self, key: &str) -> bool {
        match self {
            KeyMatch::Any => true,
            KeyMatch::Contains(part) => key.contains(part.as_str()),
            KeyMatch::Exact(exact) => key == exact,
        }
    }
}

impl FaultyStore {
    /// Wraps `inner` with no faults and no added latency.
    pub fn new(inner: Arc<dyn ObjectStore>) -> FaultyStore {
        FaultyStore {
            inner,
            latency: Mutex::new(Duration::ZERO),
            script: Mutex::new(VecDeque::new()),
            calls: Default::default(),
            hook_error: Mutex::new(None),
        }
    }

    /// Adds `latency` before every call from now on.
    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap_or_else(|p| p.into_inner()) = latency;
    }

    /// The next call of `op` suffers `fault`. Several scripted faults apply in order.
    pub fn inject(&self, op: Op, fault: Fault) {
        self.push(op, KeyMatch::Any, fault);
    }

    /// The next call of `op` on a key containing `key_contains` suffers `fault`.
    pub fn inject_for_key(&self, op: Op, key_contains: &str, fault: Fault) {
        self.push(op, KeyMatch::Contains(key_contains.to_owned()), fault);
    }

    /// The next call of `op` on exactly `key` suffers `fault` (a state key, not its lock or
    /// its history versions, whose keys contain it).
    pub fn inject_for_exact_key(&self, op: Op, key: &str, fault: Fault) {
        self.push(op, KeyMatch::Exact(key.to_owned()), fault);
    }

    /// How many calls of `op` reached this decorator (faulted or not).
    pub fn calls(&self, op: Op) -> usize {
        self.calls[Self::index(op)].load(Ordering::SeqCst)
    }

    /// Calls of every operation, in a fixed order, with their names: for round-trip reports.
    pub fn call_counts(&self) -> Vec<(Op, usize)> {
        OPS.iter().map(|&op| (op, self.calls(op))).collect()
    }

    /// Forgets the call counts.
    pub fn reset_counts(&self) {
        for c in &self.calls {
            c.store(0, Ordering::SeqCst);
        }
    }

    /// Scripted faults that have not fired yet.
    pub fn pending_faults(&self) -> usize {
        self.script.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn push(&self, op: Op, key: KeyMatch, fault: Fault) {
        self.script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(Scripted { op, key, fault });
    }

    fn index(op: Op) -> usize {
        OPS.iter()
            .position(|o| *o == op)
            .expect("every Op is listed")
    }

    /// Counts the call, applies latency and any delay, and returns the fault to act on.
    async fn before(&self, op: Op, key: &str) -> Option<Fault> {
        self.calls[Self::index(op)].fetch_add(1, Ordering::SeqCst);
        let fault = {
            let mut script = self.script.lock().unwrap_or_else(|p| p.into_inner());
            let pos = script.iter().position(|s| s.op == op && s.key.matches(key));
            pos.and_then(|p| script.remove(p)).map(|s| s.fault)
        };
        let latency = *self.latency.lock().unwrap_or_else(|p| p.into_inner());
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match fault {
            Some(Fault::Delay(d)) => {
                tokio::time::sleep(d).await;
                None
            }
            Some(Fault::Before(hook)) => (hook.0)(self.inner.clone()).await.err().map(|e| {
                *self.hook_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                Fault::Error
            }),
            other => other,
        }
    }

    fn injected(&self, op: Op, key: &str, what: &'static str) -> StoreError {
        StoreError::other(
            self.describe(),
            op_name(op),
            key,
            format!("injected fault: {what}"),
        )
    }

    /// Runs `call` under the fault scripted for (`op`, `key`), if any.
    async fn run<T: Send>(
        &self,
        op: Op,
        key: &str,
        call: impl Future<Output = StoreResult<T>> + Send,
    ) -> StoreResult<T> {
        match self.before(op, key).await {
            Some(Fault::Error) => {
                let from_hook = self
                    .hook_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take();
                Err(from_hook.unwrap_or_else(|| self.injected(op, key, "request failed")))
            }
            Some(Fault::ReplyLost) => {
                // The outcome is deliberately discarded: the caller must not learn it.
                let _ = call.await;
                Err(self.injected(op, key, "reply lost after the request was applied"))
            }
            Some(Fault::After(hook)) => {
                let reply = call.await;
                match (hook.0)(self.inner.clone()).await {
                    Ok(()) => reply,
                    Err(e) => Err(e),
                }
            }
            _ => call.await,
        }
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Get => "get",
        Op::Head => "head",
        Op::Put => "put",
        Op::Delete => "delete",
        Op::List => "list",
        Op::ListVersions => "list versions",
        Op::GetVersion => "get version",
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    fn describe(&self) -> String {
        format!("faulty({})", self.inner.describe())
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn observed(&self, observation: Observation) {
        self.inner.observed(observation);
    }

    fn quirks(&self) -> Vec<Quirk> {
        self.inner.quirks()
    }

    async fn get_stream(&self, key: &str) -> StoreResult<crate::port::GetStream> {
        self.run(Op::Get, key, self.inner.get_stream(key)).await
    }

    async fn get(&self, key: &str) -> StoreResult<GetResult> {
        self.run(Op::Get, key, self.inner.get(key)).await
    }

    async fn head(&self, key: &str) -> StoreResult<ObjectMeta> {
        self.run(Op::Head, key, self.inner.head(key)).await
    }

    async fn put(&self, key: &str, body: Bytes, options: PutOptions) -> StoreResult<ObjectMeta> {
        self.run(Op::Put, key, self.inner.put(key, body, options))
            .await
    }

    async fn delete(&self, key: &str, mode: DeleteMode) -> StoreResult<()> {
        self.run(Op::Delete, key, self.inner.delete(key, mode))
            .await
    }

    async fn list(&self, prefix: &str, continuation: Option<&str>) -> StoreResult<ListPage> {
        self.run(Op::List, prefix, self.inner.list(prefix, continuation))
            .await
    }

    async fn list_versions(&self, key: &str) -> StoreResult<Vec<ObjectVersion>> {
        self.run(Op::ListVersions, key, self.inner.list_versions(key))
            .await
    }

    async fn get_version(&self, key: &str, version_id: &str) -> StoreResult<GetResult> {
        self.run(Op::GetVersion, key, self.inner.get_version(key, version_id))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use crate::port::{DeleteMode, PutMode};

    #[tokio::test]
    async fn reply_lost_applies_the_write_but_reports_failure() {
        let faulty = FaultyStore::new(Arc::new(MemoryStore::new()));
        faulty.inject(Op::Put, Fault::ReplyLost);
        let err = faulty
            .put(
                "k",
                Bytes::from_static(b"v"),
                PutOptions::new(PutMode::Create),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("reply lost"), "{err}");
        assert_eq!(
            faulty.get("k").await.unwrap().body,
            Bytes::from_static(b"v")
        );
        assert_eq!(faulty.calls(Op::Put), 1);
        assert_eq!(faulty.calls(Op::Get), 1);
    }

    #[tokio::test]
    async fn hooks_act_on_the_inner_store_around_one_call() {
        let faulty = FaultyStore::new(Arc::new(MemoryStore::new()));
        let intruder = Hook::new(|store: Arc<dyn ObjectStore>| async move {
            let options = PutOptions::new(PutMode::Overwrite);
            store
                .put("k", Bytes::from_static(b"theirs"), options)
                .await?;
            Ok(())
        });
        faulty.inject_for_key(Op::Put, "k", Fault::Before(intruder.clone()));
        let refused = faulty
            .put(
                "k",
                Bytes::from_static(b"ours"),
                PutOptions::new(PutMode::Create),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(refused, StoreError::AlreadyExists { .. }),
            "{refused}"
        );
        let failing = Hook::new(|_| async {
            Err(StoreError::other("hook", "delete", "k", "connection reset"))
        });
        faulty.inject(Op::Delete, Fault::Before(failing));
        let err = faulty
            .delete("k", DeleteMode::Unconditional)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("connection reset"), "{err}");
        assert_eq!(
            faulty.get("k").await.unwrap().body,
            Bytes::from_static(b"theirs")
        );
        faulty.inject(Op::Head, Fault::After(intruder));
        faulty.delete("k", DeleteMode::Unconditional).await.unwrap();
        assert!(
            faulty.head("k").await.unwrap_err().is_not_found(),
            "reply from before the hook"
        );
        assert!(
            faulty.head("k").await.is_ok(),
            "the hook's write came after"
        );
        assert_eq!(
            faulty.calls(Op::Put),
            1,
            "the hooks' own calls are not counted"
        );
    }

    #[tokio::test]
    async fn error_does_not_reach_the_store_and_faults_fire_once_in_order() {
        let faulty = FaultyStore::new(Arc::new(MemoryStore::new()));
        faulty.inject_for_key(Op::Put, "lock", Fault::Error);
        // A put on another key is not affected by the key-scoped fault.
        faulty
            .put("state", Bytes::new(), PutOptions::new(PutMode::Overwrite))
            .await
            .unwrap();
        assert_eq!(faulty.pending_faults(), 1);
        let err = faulty
            .put("a.lock", Bytes::new(), PutOptions::new(PutMode::Create))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("request failed"), "{err}");
        assert!(faulty.head("a.lock").await.unwrap_err().is_not_found());
        faulty
            .put("a.lock", Bytes::new(), PutOptions::new(PutMode::Create))
            .await
            .unwrap();
        assert_eq!(faulty.pending_faults(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn delay_and_latency_add_time() {
        let faulty = FaultyStore::new(Arc::new(MemoryStore::new()));
        faulty.set_latency(Duration::from_millis(10));
        faulty.inject(Op::Head, Fault::Delay(Duration::from_secs(2)));
        let start = tokio::time::Instant::now();
        assert!(faulty.head("k").await.unwrap_err().is_not_found());
        assert_eq!(start.elapsed(), Duration::from_millis(2010));
    }
}
