//! What a command asks of the person at the terminal: a password (never echoed, never
//! a flag, so that it stays out of the shell's history and `ps`) or a confirmation.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;

/// A password from `variable`, or else asked for twice on the terminal; refused when
/// there is neither (a script must set the variable).
pub fn password(variable: &str, whose: &str) -> anyhow::Result<String> {
    if let Some(password) = std::env::var(variable).ok().filter(|p| !p.is_empty()) {
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no password for {whose}: set {variable}, or run on a terminal to be asked");
    }
    let first = rpassword::prompt_password(format!("Password for {whose}: "))
        .context("reading the password")?;
    let again =
        rpassword::prompt_password("The same password again: ").context("reading the password")?;
    if first != again {
        anyhow::bail!("the two passwords differ");
    }
    Ok(first)
}

/// Whether the person at the terminal types `word` to `question`; without a terminal
/// there is nobody to ask, and the answer is no.
pub fn confirmed(question: &str, word: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    let mut stderr = std::io::stderr().lock();
    write!(stderr, "{question} Type {word} to go on: ")?;
    stderr.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == word)
}
