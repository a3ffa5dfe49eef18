//! The confirmation question. It reads from the reader it is given and writes the question to the
//! writer it is given, so it can be driven by a test; the shell decides whether asking is possible.

use std::io::{self, BufRead, Write};

use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};

/// The controlling terminal, for questions when standard input is not it (it carries data, or
/// is locked by the program); `None` when there is none (a pipeline, a service).
pub fn terminal() -> Option<std::fs::File> {
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").ok()
}

/// Reads one line from the terminal `tty` without echoing it, the line break removed. The
/// terminal's mode is restored afterwards, and also if a signal ends the process meanwhile.
pub fn read_hidden(tty: &std::fs::File) -> io::Result<zeroize::Zeroizing<String>> {
    let saved = tcgetattr(tty).map_err(io::Error::from)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(tty, SetArg::TCSANOW, &quiet).map_err(io::Error::from)?;
    let watching = crate::interrupt::AtQuestion::start(tty.try_clone().ok().map(|t| (t, saved.clone())));
    let mut line = zeroize::Zeroizing::new(String::new());
    let read = io::BufReader::new(tty).read_line(&mut line);
    let restored = tcsetattr(tty, SetArg::TCSANOW, &saved).map_err(io::Error::from);
    drop(watching);
    // The line typed was not echoed, nor was its Enter.
    let mut out = tty;
    let _ = writeln!(out);
    read?;
    restored?;
    let trimmed = line.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&line);
    Ok(zeroize::Zeroizing::new(trimmed.to_owned()))
}

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
