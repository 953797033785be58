//! Asking the operator before a change: only on a terminal, and only a typed `yes` counts.

use std::io::{BufRead, IsTerminal, Write};

/// The operator's answer, or why there was none.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    /// stdin is not a terminal, so nobody could be asked; pass `--yes` instead.
    NoTerminal,
}

/// Asks `question` on stderr and reads the answer from stdin.
pub fn confirm(question: &str) -> anyhow::Result<Answer> {
    if !std::io::stdin().is_terminal() {
        return Ok(Answer::NoTerminal);
    }
    eprint!("{question} Only 'yes' is accepted: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(if answer.trim() == "yes" {
        Answer::Yes
    } else {
        Answer::No
    })
}
