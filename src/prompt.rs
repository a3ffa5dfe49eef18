//! The confirmation question. It reads from the reader it is given and writes the question to the
//! writer it is given, so it can be driven by a test; the shell decides whether asking is possible.

use std::io::{self, BufRead, Write};

/// Asks `question` followed by ` [y/N] `; only `y` or `yes` (any case) is a yes. End of input is a no.
pub fn confirm(question: &str, input: &mut dyn BufRead, output: &mut dyn Write) -> io::Result<bool> {
    write!(output, "{question} [y/N] ")?;
    output.flush()?;
    let mut answer = Vec::new();
    let read = input.read_until(b'\n', &mut answer)?;
    if read == 0 {
        writeln!(output)?;
    }
    // Bytes that are not UTF-8 are simply not a yes.
    let answer = String::from_utf8_lossy(&answer).trim().to_ascii_lowercase();
    Ok(answer == "y" || answer == "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(answer: &str) -> (bool, String) {
        let mut out = Vec::new();
        let yes = confirm("Apply?", &mut answer.as_bytes(), &mut out).unwrap();
        (yes, String::from_utf8(out).unwrap())
    }

    #[test]
    fn only_y_or_yes_confirms() {
        for answer in ["y\n", "yes\n", "Y\n", " YES \n"] {
            assert!(ask(answer).0, "{answer:?}");
        }
        for answer in ["n\n", "\n", "", "yep\n", "no\n", "ye\n", "y\u{fffd}\n"] {
            assert!(!ask(answer).0, "{answer:?}");
        }
        assert_eq!(ask("y\n").1, "Apply? [y/N] ");
        let mut out = Vec::new();
        assert!(!confirm("Apply?", &mut &b"y\xff\n"[..], &mut out).unwrap());
    }
}
