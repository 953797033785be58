//! What `doctor` reports: one finding per check, and the exit code they add up to.

use std::process::ExitCode;

use serde::Serialize;

/// Exit code when at least one check failed; distinct from 1 (the command itself failed) so
/// that automation can tell "bucket misconfigured" from "could not look".
pub const EXIT_FAIL: u8 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Info,
    Warn,
    Fail,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Ok => "OK",
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable name of the check, for automation.
    pub check: &'static str,
    pub severity: Severity,
    /// One line: what was found and why it matters.
    pub message: String,
    /// The `aws s3api` command that fixes it; only for failures.
    pub fix: Option<String>,
}

impl Finding {
    pub fn new(check: &'static str, severity: Severity, message: impl Into<String>) -> Finding {
        Finding {
            check,
            severity,
            message: message.into(),
            fix: None,
        }
    }

    pub fn with_fix(mut self, fix: String) -> Finding {
        self.fix = Some(fix);
        self
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub ok: usize,
    pub info: usize,
    pub warn: usize,
    pub fail: usize,
}

/// The whole answer, as printed with `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub store: String,
    pub bucket: String,
    pub prefix: Option<String>,
    pub findings: Vec<Finding>,
    pub summary: Summary,
    pub exit_code: u8,
}

impl Report {
    pub fn new(
        store: String,
        bucket: String,
        prefix: Option<String>,
        findings: Vec<Finding>,
    ) -> Report {
        let mut summary = Summary::default();
        for finding in &findings {
            match finding.severity {
                Severity::Ok => summary.ok += 1,
                Severity::Info => summary.info += 1,
                Severity::Warn => summary.warn += 1,
                Severity::Fail => summary.fail += 1,
            }
        }
        let exit_code = if summary.fail > 0 { EXIT_FAIL } else { 0 };
        Report {
            store,
            bucket,
            prefix,
            findings,
            summary,
            exit_code,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit_code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(severities: &[Severity]) -> Report {
        let findings = severities
            .iter()
            .map(|s| Finding::new("x", *s, "m"))
            .collect();
        Report::new("s3://b".into(), "b".into(), None, findings)
    }

    #[test]
    fn any_failure_sets_exit_code_four() {
        assert_eq!(
            report(&[Severity::Ok, Severity::Warn, Severity::Info]).exit_code,
            0
        );
        assert_eq!(report(&[Severity::Ok, Severity::Fail]).exit_code, EXIT_FAIL);
        let summary = report(&[Severity::Fail, Severity::Fail, Severity::Warn]).summary;
        assert_eq!((summary.fail, summary.warn, summary.ok), (2, 1, 0));
    }
}
