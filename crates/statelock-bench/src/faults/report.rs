//! The fault run's report (Markdown): the settings and seed, operations attempted,
//! acknowledged, refused and unknown by kind, the refusals' messages grouped, faults by kind,
//! takeovers, and the checker's verdict with every violation found.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::FaultArgs;
use super::check::Verdict;
use super::record::{ClientKind, Op, OpKind, Outcome};
use super::schedule::FaultKind;

/// Client faults as carried out, and the proxy's count.
pub struct Carried {
    pub kills: u64,
    pub stalls: u64,
    pub lost_replies: u64,
}

pub struct Run<'a> {
    pub args: &'a FaultArgs,
    pub seed: u64,
    pub under_faults: Duration,
    pub ops: &'a [Op],
    pub injected: &'a BTreeMap<FaultKind, u64>,
    pub carried: &'a Carried,
    pub verdict: &'a Verdict,
    pub work: &'a Path,
    /// When the clients started (Unix ms).
    pub started_ms: u64,
}

/// A refusal's message with IDs, numbers and addresses blanked, so like refusals group: runs
/// of hex digits and dashes of 8 or more become `<id>`, other digit runs `N`.
fn shape(message: &str) -> String {
    let text: String = message.chars().take(200).collect();
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 8 && run.chars().any(|c| c.is_ascii_digit()) {
            out.push_str("<id>");
        } else if !run.is_empty() && run.chars().all(|c| c.is_ascii_digit()) {
            out.push('N');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() || (c == '-' && !run.is_empty()) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(if c == '\n' { ' ' } else { c });
        }
    }
    flush(&mut run, &mut out);
    out
}

pub fn render(run: &Run) -> String {
    let a = run.args;
    let mut s = String::new();
    let verdict = if run.verdict.passed() { "PASS" } else { "FAIL" };
    let _ = writeln!(s, "# Fault run: {verdict}\n");
    let _ = writeln!(
        s,
        "- Seed: {} (replay: `statelock-bench faults --seed {} --store {} --duration {}s`)",
        run.seed,
        run.seed,
        match a.store {
            super::StoreKind::Seaweedfs => "seaweedfs",
            super::StoreKind::Local => "local",
        },
        a.duration.as_secs()
    );
    let _ = writeln!(
        s,
        "- {:?} store, {} replicas, clients: {} http, {} direct, {} s3-front; {} keys; \
         --lock-ttl {:?}, lock wait {:?}, longest outage {:?}",
        a.store,
        a.replicas,
        a.http_clients,
        a.direct_clients,
        a.s3_front_clients,
        a.keys,
        a.lock_ttl,
        a.lock_wait,
        a.max_outage
    );
    if !a.replica_env.is_empty() {
        let _ = writeln!(s, "- Replica environment: {:?}", a.replica_env);
    }
    let _ = writeln!(
        s,
        "- Under faults for {:.0?}; operation record: {}",
        run.under_faults,
        run.work.join("operations.jsonl").display()
    );

    let _ = writeln!(s, "\n## Operations\n");
    let _ = writeln!(
        s,
        "| client | operation | attempted | acknowledged | refused (clear error) | unknown (no clear answer) |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|");
    let mut table: BTreeMap<(ClientKind, OpKind), [u64; 3]> = BTreeMap::new();
    let mut refusals: BTreeMap<String, u64> = BTreeMap::new();
    let mut unknowns: BTreeMap<String, u64> = BTreeMap::new();
    for op in run.ops.iter().filter(|o| o.client != "seed") {
        let row = table.entry((op.kind, op.op)).or_default();
        match &op.outcome {
            Outcome::Ok => row[0] += 1,
            Outcome::Refused(m) => {
                row[1] += 1;
                *refusals
                    .entry(format!("{} {}: {}", op.kind.name(), op.op.name(), shape(m)))
                    .or_default() += 1;
            }
            Outcome::Unknown(m) => {
                row[2] += 1;
                *unknowns
                    .entry(format!("{} {}: {}", op.kind.name(), op.op.name(), shape(m)))
                    .or_default() += 1;
            }
        }
    }
    let mut total = [0u64; 3];
    for ((kind, op), row) in &table {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            kind.name(),
            op.name(),
            row.iter().sum::<u64>(),
            row[0],
            row[1],
            row[2]
        );
        for i in 0..3 {
            total[i] += row[i];
        }
    }
    let _ = writeln!(
        s,
        "| all | all | {} | {} | {} | {} |",
        total.iter().sum::<u64>(),
        total[0],
        total[1],
        total[2]
    );
    let applies = run
        .ops
        .iter()
        .filter(|o| o.op == OpKind::Write && o.outcome == Outcome::Ok && o.client != "seed")
        .count();
    let _ = writeln!(
        s,
        "\nAcknowledged state writes (completed applies): {applies}"
    );
    for (title, groups) in [("Refusals", &refusals), ("Unknown outcomes", &unknowns)] {
        let _ = writeln!(s, "\n{title}, by message (most frequent first):\n");
        let mut sorted: Vec<_> = groups.iter().collect();
        sorted.sort_by(|x, y| y.1.cmp(x.1));
        for (message, n) in sorted.iter().take(15) {
            let _ = writeln!(s, "- {n} × `{}`", message.replace('`', "'"));
        }
        if sorted.len() > 15 {
            let _ = writeln!(s, "- ... and {} more shapes", sorted.len() - 15);
        }
    }

    let _ = writeln!(s, "\n## Faults\n");
    let _ = writeln!(s, "| fault | injected |");
    let _ = writeln!(s, "|---|---:|");
    for (kind, n) in run.injected {
        let shown = match kind {
            FaultKind::ClientKill => {
                format!("{n} scheduled, {} carried out mid-apply", run.carried.kills)
            }
            FaultKind::ClientStall => {
                format!("{n} scheduled, {} carried out", run.carried.stalls)
            }
            FaultKind::LostReplies => {
                format!("{n} windows, {} replies lost", run.carried.lost_replies)
            }
            _ => n.to_string(),
        };
        let _ = writeln!(s, "| {} | {shown} |", kind.name());
    }
    let _ = writeln!(
        s,
        "\nLock takeovers recorded in the server history: {}",
        run.verdict.takeovers_in_history
    );

    let _ = writeln!(s, "\n## Checker\n");
    let _ = writeln!(
        s,
        "- Accepted states on the chain per key: {:?}",
        run.verdict.chain_lengths
    );
    let _ = writeln!(
        s,
        "- History versions of unacknowledged writes that never became the state (allowed): {}",
        run.verdict.unaccepted_history_versions
    );
    if run.verdict.passed() {
        let _ = writeln!(
            s,
            "- Verdict: PASS: no two holders, no lost or unrecorded write, serials only go up, \
             every version was written by a client, no torn state, no lock left behind"
        );
    } else {
        let mut by: BTreeMap<&str, u64> = BTreeMap::new();
        for v in &run.verdict.violations {
            *by.entry(v.property).or_default() += 1;
        }
        let _ = writeln!(
            s,
            "- Verdict: FAIL, {} violations: {by:?}",
            run.verdict.violations.len()
        );
        if let Some(at) = run.verdict.first_evidence_ms {
            let _ = writeln!(
                s,
                "- Caught: the first violating operation came {:.1} s after the clients started",
                at.saturating_sub(run.started_ms) as f64 / 1000.0
            );
        }
        let _ = writeln!(s);
        for v in run.verdict.violations.iter().take(40) {
            let _ = writeln!(s, "  - [{}] {}", v.property, v.detail);
        }
    }
    s
}
