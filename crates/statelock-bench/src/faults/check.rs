//! The independent checker: judges a fault run from the clients' own record of what they
//! attempted and were told (`record`) and from what is in the store at the end (the server
//! history through the versions API, the bucket's object versions through the storage port,
//! the current state, the lock), never from the servers' logs or beliefs.
//!
//! Each write's body names itself and the state it was based on (`doc`), so the accepted
//! writes form a chain from the seed to the final state. A state is *accepted* (it was the
//! state at some moment) when its write was acknowledged, a GET returned it, a later write was
//! based on it, it is an object version of the state in the bucket, or it is the final state.
//! The properties, one [`Violation`] kind each:
//!
//! - two holders: a write accepted under lock L although another lock was requested after L
//!   was granted and granted before the write was even sent (so L was not the holder at any
//!   moment of the write), or two accepted states based on the same parent (a fork);
//! - lost write: an acknowledged (or otherwise accepted) state that is not on the chain from
//!   the final state back to the seed, or an acknowledged write in no history;
//! - serial: along the chain each serial is its parent's plus one, the bucket's object
//!   versions never go back, and no serial is accepted with two contents;
//! - nobody wrote: a history version, object version or final state that no client sent;
//! - torn: a stored body that is not a whole state document, or whose MD5 is not the one
//!   listed for it;
//! - lock left behind: a lock at the end whose holder had its unlock acknowledged, or one
//!   that a new client could not take over within the TTL.
//!
//! Writes whose outcome is unknown are neither proof of acceptance nor required anywhere; a
//! history version of such a write that never became the state is allowed (the history keeps
//! versions of writes that may have landed), and counted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use super::doc;
use super::record::{Op, OpKind, Outcome};

/// Where a stored version was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The server history (`/v1/api/states/<key>/versions`), with its kind (`write`,
    /// `lock-takeover`...), MD5, lock ID and author as listed.
    ServerHistory {
        kind: String,
        md5: Option<String>,
        lock_id: Option<String>,
        who: String,
    },
    /// An object version of the state in the bucket, oldest first.
    ObjectVersion { md5: Option<String> },
}

/// A stored version's body, as read.
#[derive(Clone, Debug)]
pub struct Seen {
    pub id: String,
    /// Unix ms: when the server recorded it (history), or the store's `LastModified` (object
    /// versions; S3 gives whole seconds, so the write landed no earlier than this).
    pub time_ms: Option<u64>,
    pub source: Source,
    pub body: Result<Vec<u8>, String>,
}

/// What is in the store for one state at the end.
#[derive(Clone, Debug)]
pub struct Observed {
    pub key: String,
    /// Server history then object versions, each oldest first.
    pub versions: Vec<Seen>,
    pub current: Result<Option<Vec<u8>>, String>,
    /// The lock ID at the end, before the final takeover check.
    pub lock_at_end: Option<String>,
    /// The final check: a new client took the lock (over) within the TTL, or why not.
    pub final_lock: Result<(), String>,
}

/// A broken property, with the evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub property: &'static str,
    pub detail: String,
}

/// What the checker found, with the counts the report shows.
#[derive(Debug, Default)]
pub struct Verdict {
    pub violations: Vec<Violation>,
    /// Accepted states on the chain, per key.
    pub chain_lengths: BTreeMap<String, usize>,
    /// History versions of writes that were not acknowledged and never became the state.
    pub unaccepted_history_versions: usize,
    /// `lock-takeover` versions in the server history.
    pub takeovers_in_history: usize,
    /// The earliest operation that is evidence of a violation (Unix ms), where one is known.
    pub first_evidence_ms: Option<u64>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

struct Write<'a> {
    op: &'a Op,
    tag: &'a str,
    parent: &'a str,
    serial: u64,
}

/// Judges the run: `ops` as recorded, `observed` per state key, `ttl` the replicas' lock TTL.
pub fn check(ops: &[Op], observed: &[Observed], ttl: Duration) -> Verdict {
    let mut verdict = Verdict::default();
    for seen in observed {
        check_key(ops, seen, ttl, &mut verdict);
    }
    verdict
}

fn violation(verdict: &mut Verdict, property: &'static str, detail: String) {
    verdict.violations.push(Violation { property, detail });
}

/// Notes when the evidence of a violation happened (an operation's time), for the report's
/// "caught after".
fn evidence_at(verdict: &mut Verdict, ms: u64) {
    verdict.first_evidence_ms = Some(verdict.first_evidence_ms.map_or(ms, |t| t.min(ms)));
}

fn check_key(all_ops: &[Op], seen: &Observed, ttl: Duration, verdict: &mut Verdict) {
    let key = seen.key.as_str();
    let ops: Vec<&Op> = all_ops.iter().filter(|o| o.key == key).collect();
    // Every write any client sent, by MD5 and by tag (tags are unique per run).
    let mut by_md5: HashMap<&str, Write> = HashMap::new();
    let mut by_tag: HashMap<&str, &str> = HashMap::new();
    for op in ops.iter().filter(|o| o.op == OpKind::Write) {
        let (Some(md5), Some(tag), Some(parent), Some(serial)) =
            (&op.md5, &op.tag, &op.parent, op.serial)
        else {
            continue;
        };
        by_tag.insert(tag, md5);
        by_md5.insert(
            md5,
            Write {
                op,
                tag,
                parent,
                serial,
            },
        );
    }

    // Stored bodies: whole, listed correctly, and written by someone.
    let mut accepted: HashSet<String> = HashSet::new();
    let mut in_history: HashSet<String> = HashSet::new();
    let mut in_server_history: HashSet<String> = HashSet::new();
    let mut object_serials: Vec<(String, u64)> = Vec::new();
    // (old lock ID, new lock ID) of every takeover the history records, and when it was
    // recorded (after the takeover itself).
    let mut takeovers: Vec<(String, String)> = Vec::new();
    let mut takeover_times: Vec<(String, u64)> = Vec::new();
    // (MD5, LastModified) of every object version of the state.
    let mut landed: Vec<(String, u64)> = Vec::new();
    let stored = |what: &str, body: &[u8], listed: Option<&String>, verdict: &mut Verdict| {
        let md5 = doc::md5_hex(body);
        if let Some(listed) = listed
            && !listed.eq_ignore_ascii_case(&md5)
        {
            violation(
                verdict,
                "torn",
                format!("{key}: {what} is listed with MD5 {listed} but its body has {md5}"),
            );
        }
        match doc::parse(body) {
            Err(e) => violation(verdict, "torn", format!("{key}: {what} is unreadable: {e}")),
            Ok(parsed) if !by_md5.contains_key(md5.as_str()) => violation(
                verdict,
                "nobody wrote",
                format!(
                    "{key}: {what} holds {} (serial {}), which no client sent",
                    parsed.tag, parsed.serial
                ),
            ),
            Ok(_) => {}
        }
        md5
    };
    for version in &seen.versions {
        let what = format!("version {}", version.id);
        let body = match &version.body {
            Ok(body) => body,
            Err(e) => {
                violation(
                    verdict,
                    "torn",
                    format!("{key}: {what} cannot be read: {e}"),
                );
                continue;
            }
        };
        match &version.source {
            Source::ServerHistory {
                kind,
                md5,
                lock_id,
                who,
            } => {
                if kind == "lock-takeover" {
                    verdict.takeovers_in_history += 1;
                    // `<new who> (took over lock <old id> of <old who>)`.
                    if let (Some(new), Some(old)) = (
                        lock_id,
                        who.split_once("(took over lock ")
                            .and_then(|(_, rest)| rest.split_whitespace().next()),
                    ) {
                        takeovers.push((old.to_owned(), new.clone()));
                        if let Some(t) = version.time_ms {
                            takeover_times.push((old.to_owned(), t));
                        }
                    }
                    // The state as it was when the lock changed hands: accepted.
                    if !body.is_empty() {
                        accepted.insert(stored(&what, body, md5.as_ref(), verdict));
                    }
                    continue;
                }
                let md5 = stored(&what, body, md5.as_ref(), verdict);
                in_history.insert(md5.clone());
                in_server_history.insert(md5);
            }
            Source::ObjectVersion { md5 } => {
                let md5 = stored(&what, body, md5.as_ref(), verdict);
                if let Ok(parsed) = doc::parse(body) {
                    object_serials.push((md5.clone(), parsed.serial));
                }
                if let Some(t) = version.time_ms {
                    landed.push((md5.clone(), t));
                }
                in_history.insert(md5.clone());
                accepted.insert(md5);
            }
        }
    }
    let current = match &seen.current {
        Ok(Some(body)) => Some(stored("the final state", body, None, verdict)),
        Ok(None) => {
            violation(verdict, "lost write", format!("{key}: no state at the end"));
            None
        }
        Err(e) => {
            violation(
                verdict,
                "torn",
                format!("{key}: the final state cannot be read: {e}"),
            );
            None
        }
    };

    // Accepted: acknowledged, read by a GET, a parent, an object version, the final state.
    for w in by_md5.values() {
        if w.op.outcome == Outcome::Ok {
            accepted.insert(w.op.md5.clone().unwrap_or_default());
        }
        if let Some(parent) = by_tag.get(w.parent) {
            accepted.insert((*parent).to_owned());
        }
    }
    for op in ops
        .iter()
        .filter(|o| o.op == OpKind::Get && o.outcome == Outcome::Ok)
    {
        if let Some(md5) = op.tag.as_deref().and_then(|t| by_tag.get(t)) {
            accepted.insert((*md5).to_owned());
        } else if let Some(tag) = &op.tag {
            violation(
                verdict,
                "nobody wrote",
                format!("{key}: {} read {tag}, which no client sent", op.client),
            );
        }
    }
    if let Some(md5) = &current {
        accepted.insert(md5.clone());
    }
    accepted.retain(|md5| by_md5.contains_key(md5.as_str()));

    // The chain from the final state back to the seed.
    let mut chain: Vec<&Write> = Vec::new();
    let mut on_chain: HashSet<&str> = HashSet::new();
    let mut cursor = current.as_deref();
    while let Some(md5) = cursor {
        let Some(w) = by_md5.get(md5) else { break };
        if !on_chain.insert(md5) {
            violation(
                verdict,
                "serial",
                format!("{key}: the chain loops at {}", w.tag),
            );
            break;
        }
        chain.push(w);
        if w.parent.is_empty() {
            break;
        }
        cursor = by_tag.get(w.parent).copied();
        if cursor.is_none() {
            violation(
                verdict,
                "nobody wrote",
                format!(
                    "{key}: {} is based on {}, which no client sent",
                    w.tag, w.parent
                ),
            );
        }
    }
    chain.reverse();
    verdict.chain_lengths.insert(key.to_owned(), chain.len());
    for pair in chain.windows(2) {
        if pair[1].serial != pair[0].serial + 1 {
            violation(
                verdict,
                "serial",
                format!(
                    "{key}: {} has serial {} but is based on {} at serial {}",
                    pair[1].tag, pair[1].serial, pair[0].tag, pair[0].serial
                ),
            );
        }
    }
    for pair in object_serials.windows(2) {
        if pair[1].1 <= pair[0].1 && pair[1].0 != pair[0].0 {
            violation(
                verdict,
                "serial",
                format!(
                    "{key}: the bucket's object versions go from serial {} to {}",
                    pair[0].1, pair[1].1
                ),
            );
        }
    }

    // Accepted states off the chain are lost writes; two accepted children of one parent are
    // two holders.
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut serials: HashMap<u64, &str> = HashMap::new();
    for md5 in &accepted {
        let w = &by_md5[md5.as_str()];
        children.entry(w.parent).or_default().push(w.tag);
        if let Some(other) = serials.insert(w.serial, w.tag)
            && other != w.tag
        {
            evidence_at(verdict, w.op.invoked_ms);
            violation(
                verdict,
                "serial",
                format!(
                    "{key}: serial {} was accepted as {other} and as {}",
                    w.serial, w.tag
                ),
            );
        }
        if !on_chain.contains(md5.as_str()) {
            let how = if w.op.outcome == Outcome::Ok {
                "acknowledged"
            } else {
                "accepted (seen in the store)"
            };
            evidence_at(verdict, w.op.invoked_ms);
            violation(
                verdict,
                "lost write",
                format!(
                    "{key}: {} by {} ({how}, serial {}) is not on the chain to the final state: \
                     a later write did not build on it",
                    w.tag, w.op.client, w.serial
                ),
            );
        }
    }
    for (parent, kids) in &children {
        if kids.len() > 1 {
            violation(
                verdict,
                "two holders",
                format!("{key}: {kids:?} were all accepted on top of {parent}"),
            );
        }
    }

    // Every acknowledged write is in the final history; every state the server accepted is
    // in its own history (a version is stored before the state it records).
    for md5 in &accepted {
        let w = &by_md5[md5.as_str()];
        let known = in_history.contains(md5) || on_chain.contains(md5.as_str());
        if w.op.outcome == Outcome::Ok && !known {
            evidence_at(verdict, w.op.invoked_ms);
            violation(
                verdict,
                "lost write",
                format!(
                    "{key}: acknowledged {} by {} is in no history",
                    w.tag, w.op.client
                ),
            );
        }
        if w.op.kind.through_server() && w.tag != doc::SEED_TAG && !in_server_history.contains(md5)
        {
            evidence_at(verdict, w.op.invoked_ms);
            violation(
                verdict,
                "lost write",
                format!(
                    "{key}: {} by {} became the state but is missing from the server history",
                    w.tag, w.op.client
                ),
            );
        }
    }
    verdict.unaccepted_history_versions += in_server_history
        .iter()
        .filter(|md5| !accepted.contains(*md5))
        .count();

    two_holders_by_time(key, &ops, &by_md5, &accepted, &takeovers, verdict);
    early_takeovers(key, &ops, &takeovers, ttl, verdict);
    landed_after_takeover(key, &by_md5, &landed, &takeover_times, verdict);
    lock_at_end(key, &ops, seen, verdict);
}

/// A write accepted under lock L although, before the write was sent, another lock had been
/// granted that was requested after L was granted, or that took L over (as the history
/// records).
fn two_holders_by_time(
    key: &str,
    ops: &[&Op],
    by_md5: &HashMap<&str, Write>,
    accepted: &HashSet<String>,
    takeovers: &[(String, String)],
    verdict: &mut Verdict,
) {
    let grants: Vec<&&Op> = ops
        .iter()
        .filter(|o| o.op == OpKind::Lock && o.outcome == Outcome::Ok)
        .collect();
    let granted_at: HashMap<&str, u64> = grants
        .iter()
        .map(|g| (g.lock_id.as_str(), g.done_ms))
        .collect();
    for md5 in accepted {
        let w = &by_md5[md5.as_str()];
        let op = w.op;
        let Some(&mine) = granted_at.get(op.lock_id.as_str()) else {
            continue;
        };
        let took_over_mine = |g: &Op| {
            takeovers
                .iter()
                .any(|(old, new)| *old == op.lock_id && *new == g.lock_id)
        };
        // A takeover counts against L's grant only if it came after that grant: a LOCK whose
        // first create landed with its reply lost, was taken over and released, and was then
        // granted by a retry under the same ID holds the lock afresh (the fault run saw a
        // direct client do this under lost replies).
        if let Some(later) = grants.iter().find(|g| {
            g.lock_id != op.lock_id
                && (g.invoked_ms > mine || (took_over_mine(g) && g.done_ms > mine))
                && g.done_ms < op.invoked_ms
        }) {
            let fenced = if op.kind.fenced() {
                "fenced"
            } else {
                "unfenced, as Terraform's S3 protocol is"
            };
            evidence_at(verdict, op.invoked_ms);
            violation(
                verdict,
                "two holders",
                format!(
                    "{key}: {} ({}, {fenced}) was accepted under lock {} although lock {} of {} \
                     replaced it and was granted {} ms before the write was sent",
                    w.tag,
                    op.client,
                    op.lock_id,
                    later.lock_id,
                    later.client,
                    op.invoked_ms - later.done_ms
                ),
            );
        }
    }
}

/// A state version stored under lock L whose `LastModified` (no later than when it landed) is
/// after the history recorded L's takeover: the write landed when L was no longer the holder,
/// however early it passed the fence.
fn landed_after_takeover(
    key: &str,
    by_md5: &HashMap<&str, Write>,
    landed: &[(String, u64)],
    takeover_times: &[(String, u64)],
    verdict: &mut Verdict,
) {
    for (md5, at) in landed {
        let Some(w) = by_md5.get(md5.as_str()) else {
            continue;
        };
        let lock = &w.op.lock_id;
        if lock.is_empty() {
            continue;
        }
        if let Some((_, taken)) = takeover_times
            .iter()
            .find(|(old, taken)| old == lock && at > taken)
        {
            evidence_at(verdict, *at);
            violation(
                verdict,
                "two holders",
                format!(
                    "{key}: {} ({}) landed in the bucket at {at} (LastModified, Unix ms), {} ms \
                     after the history recorded that lock {lock} was taken over",
                    w.tag,
                    w.op.client,
                    at - taken
                ),
            );
        }
    }
}

/// Slack for the store's one-second modification times (S3 `LastModified`), which the TTL
/// is judged from.
const MTIME_SLACK_MS: u64 = 1_500;

/// A takeover of lock L granted before L can have been idle for the TTL: L was last active
/// no earlier than its LOCK (or its last write) was sent, and the takeover is done by the
/// time the new holder's LOCK is answered.
fn early_takeovers(
    key: &str,
    ops: &[&Op],
    takeovers: &[(String, String)],
    ttl: Duration,
    verdict: &mut Verdict,
) {
    let ttl_ms = ttl.as_millis() as u64;
    for (old, new) in takeovers {
        let Some(granted) = ops
            .iter()
            .find(|o| o.op == OpKind::Lock && o.outcome == Outcome::Ok && o.lock_id == *new)
        else {
            continue;
        };
        // Activity of the old lock, as a lower bound: its granted LOCK and its acknowledged
        // writes (an unknown write may never have landed, so it proves no activity).
        let active = ops
            .iter()
            .filter(|o| {
                o.lock_id == *old
                    && (o.op == OpKind::Lock || o.op == OpKind::Write)
                    && o.outcome == Outcome::Ok
                    && o.invoked_ms < granted.done_ms
            })
            .map(|o| o.invoked_ms)
            .max();
        if let Some(active) = active
            && granted.done_ms + MTIME_SLACK_MS < active + ttl_ms
        {
            evidence_at(verdict, granted.done_ms);
            violation(
                verdict,
                "two holders",
                format!(
                    "{key}: lock {old} was taken over by {new} ({}) at most {} ms after its last \
                     activity (its LOCK, or a write of its holder then in flight or just \
                     accepted), before the TTL of {ttl:?}: the takeover came early or raced that \
                     write",
                    granted.client,
                    granted.done_ms.saturating_sub(active)
                ),
            );
        }
    }
}

fn lock_at_end(key: &str, ops: &[&Op], seen: &Observed, verdict: &mut Verdict) {
    if let Some(id) = &seen.lock_at_end
        && let Some(unlock) = ops
            .iter()
            .find(|o| o.op == OpKind::Unlock && o.outcome == Outcome::Ok && &o.lock_id == id)
    {
        violation(
            verdict,
            "lock left behind",
            format!(
                "{key}: lock {id} is still there although {}'s unlock of it was acknowledged",
                unlock.client
            ),
        );
    }
    if let Err(e) = &seen.final_lock {
        violation(verdict, "lock left behind", format!("{key}: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::record::ClientKind;

    const TTL: Duration = Duration::from_secs(8);

    /// A history under construction: writes chained by the test, stored as the test says.
    struct H {
        ops: Vec<Op>,
        bodies: HashMap<String, Vec<u8>>,
        t: u64,
    }

    impl H {
        fn new() -> H {
            let mut h = H {
                ops: Vec::new(),
                bodies: HashMap::new(),
                t: 1_000,
            };
            h.write("seed", "", 1, "", Outcome::Ok, doc::SEED_TAG);
            h
        }

        fn op(&mut self, client: &str, op: OpKind, lock: &str, outcome: Outcome) -> Op {
            self.t += 10;
            Op {
                client: client.into(),
                kind: ClientKind::Http,
                key: "k".into(),
                op,
                lock_id: lock.into(),
                invoked_ms: self.t,
                done_ms: self.t + 5,
                outcome,
                tag: None,
                parent: None,
                serial: None,
                md5: None,
            }
        }

        fn lock(&mut self, client: &str, lock: &str) {
            let op = self.op(client, OpKind::Lock, lock, Outcome::Ok);
            self.ops.push(op);
        }

        fn write(
            &mut self,
            client: &str,
            lock: &str,
            serial: u64,
            parent: &str,
            outcome: Outcome,
            tag: &str,
        ) {
            let body = doc::body(serial, tag, parent);
            let mut op = self.op(client, OpKind::Write, lock, outcome);
            op.tag = Some(tag.into());
            op.parent = Some(parent.into());
            op.serial = Some(serial);
            op.md5 = Some(doc::md5_hex(&body));
            self.bodies.insert(tag.into(), body);
            self.ops.push(op);
        }

        fn unlock(&mut self, client: &str, lock: &str) {
            let op = self.op(client, OpKind::Unlock, lock, Outcome::Ok);
            self.ops.push(op);
        }

        /// One whole apply by `client` on top of `parent`.
        fn apply(&mut self, client: &str, serial: u64, parent: &str, tag: &str) {
            let lock = format!("lock-{tag}");
            self.lock(client, &lock);
            self.write(client, &lock, serial, parent, Outcome::Ok, tag);
            self.unlock(client, &lock);
        }

        fn history(&self, tags: &[&str]) -> Vec<Seen> {
            tags.iter()
                .map(|t| {
                    let body = self.bodies[*t].clone();
                    Seen {
                        time_ms: None,
                        id: t.to_string(),
                        source: Source::ServerHistory {
                            kind: "write".into(),
                            md5: Some(doc::md5_hex(&body)),
                            lock_id: None,
                            who: String::new(),
                        },
                        body: Ok(body),
                    }
                })
                .collect()
        }

        fn observed(&self, history: Vec<Seen>, current: &str) -> Vec<Observed> {
            vec![Observed {
                key: "k".into(),
                versions: history,
                current: Ok(Some(self.bodies[current].clone())),
                lock_at_end: None,
                final_lock: Ok(()),
            }]
        }
    }

    /// The history's record of b's lock `lb` taking over a's lock `la`, at `time_ms` if known.
    fn b_took_over_a(time_ms: Option<u64>) -> Seen {
        Seen {
            time_ms,
            id: "takeover".into(),
            source: Source::ServerHistory {
                kind: "lock-takeover".into(),
                md5: None,
                lock_id: Some("lb".into()),
                who: "b (took over lock la of a)".into(),
            },
            body: Ok(Vec::new()),
        }
    }

    fn properties(v: &Verdict) -> Vec<&'static str> {
        let mut p: Vec<_> = v.violations.iter().map(|v| v.property).collect();
        p.dedup();
        p
    }

    #[test]
    fn a_clean_chain_passes() {
        let mut h = H::new();
        h.apply("a", 2, doc::SEED_TAG, "a#1");
        h.apply("b", 3, "a#1", "b#1");
        let seen = h.history(&["a#1", "b#1"]);
        let v = check(&h.ops, &h.observed(seen, "b#1"), TTL);
        assert!(v.passed(), "{:?}", v.violations);
        assert_eq!(v.chain_lengths["k"], 3);
    }

    #[test]
    fn two_writes_on_one_parent_are_two_holders_and_a_lost_write() {
        let mut h = H::new();
        h.apply("a", 2, doc::SEED_TAG, "a#1");
        h.apply("b", 2, doc::SEED_TAG, "b#1");
        let seen = h.history(&["a#1", "b#1"]);
        let v = check(&h.ops, &h.observed(seen, "b#1"), TTL);
        let p = properties(&v);
        assert!(p.contains(&"two holders"), "{:?}", v.violations);
        assert!(p.contains(&"lost write"), "{:?}", v.violations);
        assert!(p.contains(&"serial"), "serial 2 twice: {:?}", v.violations);
    }

    #[test]
    fn an_acknowledged_write_missing_from_the_history_is_lost() {
        let mut h = H::new();
        h.apply("a", 2, doc::SEED_TAG, "a#1");
        h.apply("b", 3, "a#1", "b#1");
        // The final state is b#1 on a#1, but a#1 has no server history version.
        let seen = h.history(&["b#1"]);
        let v = check(&h.ops, &h.observed(seen, "b#1"), TTL);
        assert_eq!(properties(&v), ["lost write"], "{:?}", v.violations);
    }

    #[test]
    fn a_version_nobody_sent_and_a_torn_one_are_caught() {
        let mut h = H::new();
        h.apply("a", 2, doc::SEED_TAG, "a#1");
        let mut seen = h.history(&["a#1"]);
        let foreign = doc::body(9, "x#1", "a#1");
        seen.push(Seen {
            time_ms: None,
            id: "foreign".into(),
            source: Source::ObjectVersion {
                md5: Some(doc::md5_hex(&foreign)),
            },
            body: Ok(foreign),
        });
        let torn = h.bodies["a#1"][..20].to_vec();
        seen.push(Seen {
            time_ms: None,
            id: "torn".into(),
            source: Source::ObjectVersion {
                md5: Some(doc::md5_hex(&h.bodies["a#1"])),
            },
            body: Ok(torn),
        });
        let v = check(&h.ops, &h.observed(seen, "a#1"), TTL);
        let p = properties(&v);
        assert!(p.contains(&"nobody wrote"), "{:?}", v.violations);
        assert!(p.contains(&"torn"), "{:?}", v.violations);
    }

    #[test]
    fn a_serial_going_back_in_the_bucket_is_caught() {
        let mut h = H::new();
        h.apply("a", 2, doc::SEED_TAG, "a#1");
        h.apply("b", 3, "a#1", "b#1");
        let mut seen = h.history(&["a#1", "b#1"]);
        for tag in ["b#1", "a#1"] {
            let body = h.bodies[tag].clone();
            seen.push(Seen {
                time_ms: None,
                id: format!("s3:{tag}"),
                source: Source::ObjectVersion {
                    md5: Some(doc::md5_hex(&body)),
                },
                body: Ok(body),
            });
        }
        let v = check(&h.ops, &h.observed(seen, "b#1"), TTL);
        assert_eq!(properties(&v), ["serial"], "{:?}", v.violations);
    }

    #[test]
    fn a_write_accepted_after_its_lock_was_taken_over_is_two_holders() {
        let mut h = H::new();
        h.lock("a", "la");
        // b takes a's lock over (recorded in the history), then a's stale write lands.
        h.lock("b", "lb");
        h.write("a", "la", 2, doc::SEED_TAG, Outcome::Ok, "a#1");
        h.write("b", "lb", 3, "a#1", Outcome::Ok, "b#1");
        let mut seen = h.history(&["a#1", "b#1"]);
        seen.insert(0, b_took_over_a(None));
        let v = check(&h.ops, &h.observed(seen.clone(), "b#1"), TTL);
        assert_eq!(properties(&v), ["two holders"], "{:?}", v.violations);
        assert_eq!(v.takeovers_in_history, 1);
        // Without the takeover record (and b waiting since before a's grant) nothing proves it.
        seen.remove(0);
        h.ops[2].invoked_ms = 0;
        assert!(check(&h.ops, &h.observed(seen, "b#1"), TTL).passed());
    }

    /// Seen in a fault run under lost replies: a's LOCK created its lock, the reply was lost,
    /// b took the idle lock over, wrote and released it, and a's retry then created the lock
    /// afresh under the same ID. a's write after that grant is no second holder.
    #[test]
    fn a_lock_granted_again_after_the_takeover_that_replaced_it_holds_afresh() {
        let mut h = H::new();
        // a's LOCK is sent at 10 s; b takes the lock over after the TTL (8 s), at 20 s.
        h.t = 20_000;
        h.lock("b", "lb");
        h.write("b", "lb", 2, doc::SEED_TAG, Outcome::Ok, "b#1");
        h.unlock("b", "lb");
        h.lock("a", "la");
        h.ops[4].invoked_ms = 10_000;
        h.write("a", "la", 3, "b#1", Outcome::Ok, "a#1");
        let mut seen = h.history(&["b#1", "a#1"]);
        seen.insert(0, b_took_over_a(None));
        let v = check(&h.ops, &h.observed(seen, "a#1"), TTL);
        assert!(v.passed(), "{:?}", v.violations);
    }

    #[test]
    fn a_lock_left_after_an_acknowledged_unlock_is_caught() {
        let mut h = H::new();
        h.apply("a", 2, doc::SEED_TAG, "a#1");
        let seen = h.history(&["a#1"]);
        let mut observed = h.observed(seen, "a#1");
        observed[0].lock_at_end = Some("lock-a#1".into());
        let v = check(&h.ops, &observed, TTL);
        assert_eq!(properties(&v), ["lock left behind"], "{:?}", v.violations);
        observed[0].lock_at_end = None;
        observed[0].final_lock = Err("a new client got the lock only after 30s".into());
        assert!(!check(&h.ops, &observed, TTL).passed());
    }

    #[test]
    fn an_unacknowledged_write_that_never_landed_is_allowed() {
        let mut h = H::new();
        h.apply("a", 2, doc::SEED_TAG, "a#1");
        // b's reply was lost and its version recorded, but the state never became it.
        h.lock("b", "lb");
        h.write(
            "b",
            "lb",
            3,
            "a#1",
            Outcome::Unknown("no reply".into()),
            "b#1",
        );
        h.apply("c", 3, "a#1", "c#1");
        let seen = h.history(&["a#1", "b#1", "c#1"]);
        let v = check(&h.ops, &h.observed(seen, "c#1"), TTL);
        assert!(v.passed(), "{:?}", v.violations);
        assert_eq!(v.unaccepted_history_versions, 1);
    }

    #[test]
    fn a_takeover_before_the_ttl_is_two_holders() {
        let mut h = H::new();
        h.lock("a", "la");
        h.lock("b", "lb");
        h.write("b", "lb", 2, doc::SEED_TAG, Outcome::Ok, "b#1");
        let mut seen = h.history(&["b#1"]);
        seen.insert(0, b_took_over_a(None));
        let v = check(&h.ops, &h.observed(seen.clone(), "b#1"), TTL);
        assert_eq!(properties(&v), ["two holders"], "{:?}", v.violations);
        assert!(
            v.violations[0].detail.contains("before the TTL"),
            "{:?}",
            v.violations
        );
        // Idle for longer than the TTL: a legitimate takeover.
        h.ops[2].done_ms = h.ops[1].invoked_ms + TTL.as_millis() as u64;
        assert!(check(&h.ops, &h.observed(seen, "b#1"), TTL).passed());
    }

    #[test]
    fn a_write_that_landed_after_its_lock_was_taken_over_is_two_holders() {
        let mut h = H::new();
        // a's write passed the fence before b took over (so client times prove nothing), but
        // the bucket says it landed after the takeover was recorded.
        h.lock("a", "la");
        h.write("a", "la", 2, doc::SEED_TAG, Outcome::Ok, "a#1");
        h.lock("b", "lb");
        h.ops[2].done_ms = h.ops[1].invoked_ms + 10_000;
        h.ops[3].done_ms = h.ops[2].done_ms + 10;
        h.write("b", "lb", 3, "a#1", Outcome::Ok, "b#1");
        let taken = h.ops[3].done_ms - 5;
        let object = |h: &H, tag: &str, at: u64| {
            let body = h.bodies[tag].clone();
            Seen {
                time_ms: Some(at),
                id: format!("s3:{tag}"),
                source: Source::ObjectVersion {
                    md5: Some(doc::md5_hex(&body)),
                },
                body: Ok(body),
            }
        };
        let mut seen = h.history(&["a#1", "b#1"]);
        seen.push(b_took_over_a(Some(taken)));
        let mut late = seen.clone();
        late.push(object(&h, "a#1", taken + 1_000));
        late.push(object(&h, "b#1", taken + 2_000));
        let v = check(&h.ops, &h.observed(late, "b#1"), TTL);
        assert_eq!(properties(&v), ["two holders"], "{:?}", v.violations);
        assert!(
            v.violations[0].detail.contains("landed"),
            "{:?}",
            v.violations
        );
        // Landed before the takeover: fine.
        seen.push(object(&h, "a#1", taken - 1_000));
        seen.push(object(&h, "b#1", taken + 2_000));
        assert!(check(&h.ops, &h.observed(seen, "b#1"), TTL).passed());
    }
}
