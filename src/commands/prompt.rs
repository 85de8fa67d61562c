//! Asking a person: whether one can be asked, and a yes/no question on stderr.

use std::io::{IsTerminal, Write};

/// Whether a person can be asked (stdin and stderr are terminals).
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Lists `lines` under `header` on stderr and asks `question`; true only for y / yes.
pub fn ask(
    header: &str,
    lines: impl Iterator<Item = String>,
    question: &str,
) -> std::io::Result<bool> {
    let mut err = std::io::stderr();
    writeln!(err, "{header}")?;
    for line in lines {
        writeln!(err, "  {line}")?;
    }
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
