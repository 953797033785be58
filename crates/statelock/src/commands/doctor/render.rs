//! The human-readable table; `--json` output is the `Report` serialized as is.

use std::fmt::Write as _;

use super::finding::Report;

pub fn table(report: &Report) -> String {
    let mut out = format!("statelock doctor: {}\n\n", report.store);
    let width = report
        .findings
        .iter()
        .map(|f| f.check.len())
        .max()
        .unwrap_or(0)
        .max("CHECK".len());
    let _ = writeln!(out, "{:width$}  {:8}FINDING", "CHECK", "RESULT");
    for finding in &report.findings {
        let _ = writeln!(
            out,
            "{:width$}  {:8}{}",
            finding.check,
            finding.severity.label(),
            finding.message
        );
        if let Some(fix) = &finding.fix {
            let _ = writeln!(out, "{:width$}  {:8}fix: {fix}", "", "");
        }
    }
    let s = report.summary;
    let _ = writeln!(
        out,
        "\n{} fail, {} warn, {} ok, {} info",
        s.fail, s.warn, s.ok, s.info
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::doctor::finding::{Finding, Severity};

    #[test]
    fn fixes_are_indented_under_their_finding() {
        let report = Report::new(
            "s3://b".into(),
            "b".into(),
            None,
            vec![
                Finding::new("versioning", Severity::Fail, "off").with_fix("aws fix".into()),
                Finding::new("object-lock", Severity::Info, "not enabled"),
            ],
        );
        let text = table(&report);
        assert!(
            text.contains("versioning   FAIL    off\n                     fix: aws fix\n"),
            "{text}"
        );
        assert!(
            text.contains("object-lock  INFO    not enabled\n"),
            "{text}"
        );
        assert!(text.ends_with("1 fail, 0 warn, 0 ok, 1 info\n"), "{text}");
    }
}
