//! Plain-text tables for the operator commands: left-aligned columns two spaces apart, the last
//! column unpadded, no trailing spaces.

use std::fmt::Write as _;

/// `header` and `rows` (each as long as `header`) as aligned lines.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cols: &[&str]| {
        let mut text = String::new();
        for (i, (c, w)) in cols.iter().zip(&widths).enumerate() {
            if i + 1 == cols.len() {
                text.push_str(c);
            } else {
                let _ = write!(text, "{c:<w$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header);
    for row in rows {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_lines_end_cleanly() {
        let text = render(
            &["A", "LONG HEADER", "LAST"],
            &[
                vec!["xyz".into(), "1".into(), "".into()],
                vec!["k".into(), "22".into(), "tail".into()],
            ],
        );
        assert_eq!(
            text,
            "A    LONG HEADER  LAST\nxyz  1\nk    22           tail\n"
        );
    }
}
