//! Messages that name the real cause: a host name that does not resolve, a refused connection, a
//! bad option value, a damaged store, a trailing comma; and a question interrupted with Ctrl-C.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use crate::support::Project;

#[test]
fn a_host_name_that_does_not_resolve_is_said_so_and_not_retried() {
    let project = Project::fixture("cloud");
    let out = project
        .cmd(&["plan", "--remote", "https://cloud-secrets-test.invalid"])
        .env("SYSTEMPROMPT_API_TOKEN", "sp-CANARY-token-0d1e")
        .run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("its host name does not resolve (DNS) after 1 attempt(s)"), "{}", out.stderr);
}

#[test]
fn a_refused_connection_is_said_so() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let project = Project::fixture("cloud");
    let out = project
        .cmd(&["plan", "--remote", &format!("http://127.0.0.1:{port}"), "--timeout", "1"])
        .env("SYSTEMPROMPT_API_TOKEN", "sp-CANARY-token-0d1e")
        .run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("refused the connection"), "{}", out.stderr);
}

#[test]
fn option_values_and_damaged_files_are_explained() {
    let project = Project::fixture("fresh");
    let out = project.cmd(&["apply", "--lock-timeout", "-1"]).run();
    assert_eq!(out.code, 64, "{}", out.transcript());
    assert!(out.stderr.contains("expected a whole number of seconds"), "{}", out.stderr);
    let project = project.write(".systemprompt/profiles/production/store.json", "not json\n");
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("the local store is damaged: it is not JSON"), "{}", out.stderr);
    let project = Project::fixture("fresh").write(
        ".systemprompt/profiles/production/secrets.json",
        "{\n  \"oauth_at_rest_pepper\": \"CANARY-pepper-fresh-7d2e4c9a1b3f5e8d0c6a\",\n  \"database_url\": \"postgres://a:CANARY-b@h/d\",\n}\n",
    );
    let out = project.cmd(&["plan"]).run();
    assert!(out.stderr.contains("secrets.json:3:46: invalid JSON: trailing comma"), "{}", out.stderr);
}

#[test]
fn ctrl_c_at_the_question_says_nothing_was_changed() {
    let project = Project::fixture("drift");
    let (mut child, pty_master) = spawn_on_a_pty(&project, env!("CARGO_BIN_EXE_cloud-secrets"), &["apply"]);
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("[y/N] ") {
        let n = stderr.read(&mut chunk).unwrap();
        assert!(n > 0, "no question: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&chunk[..n]);
    }
    let before = project.read(".systemprompt/profiles/staging/store.json");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT)
        .unwrap();
    stderr.read_to_end(&mut seen).unwrap();
    let status = child.wait().unwrap();
    drop(pty_master);
    let text = String::from_utf8_lossy(&seen);
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("Interrupted at the question: nothing was changed."), "{text}");
    assert_eq!(project.read(".systemprompt/profiles/staging/store.json"), before);
    project.assert_clean("stderr", &text);
}

/// Starts `program ARGS` in the project, with a clean environment and a pseudo-terminal on standard
/// input; returns the child (stdout and stderr piped) and the terminal's other end.
fn spawn_on_a_pty(project: &Project, program: &str, args: &[&str]) -> (std::process::Child, std::fs::File) {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let child = Command::new(program)
        .args(args)
        .current_dir(project.root())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", project.root())
        .stdin(Stdio::from(pty.slave))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, std::fs::File::from(pty.master))
}

/// Runs `cloud-secrets ARGS` (through `sh -c`, for redirections) in a new session whose
/// controlling terminal is a pseudo-terminal, types `typed` on it, and returns the exit code and
/// standard error, and what the terminal showed.
fn on_a_terminal(project: &Project, shell: &str, typed: &[&str]) -> (Option<i32>, String, String) {
    let shell = shell.replace("BIN", env!("CARGO_BIN_EXE_cloud-secrets"));
    let (mut child, mut master) = spawn_on_a_pty(project, "setsid", &["-w", "-c", "sh", "-c", &shell]);
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut screen = Vec::new();
    for text in typed {
        // Wait for the prompt (on standard error, or on the terminal itself), then type.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let shown = String::from_utf8_lossy(&seen).into_owned() + &String::from_utf8_lossy(&screen);
            if shown.contains("(not shown): ") && text.starts_with("sk-") || shown.contains("[y/N] ") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no prompt: {shown}");
            nix::fcntl::fcntl(&stderr, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).unwrap();
            if let Ok(n) = stderr.read(&mut chunk) {
                seen.extend_from_slice(&chunk[..n]);
            }
            nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).unwrap();
            if let Ok(n) = master.read(&mut chunk) {
                screen.extend_from_slice(&chunk[..n]);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        master.write_all(text.as_bytes()).unwrap();
        seen.clear();
        screen.clear();
    }
    nix::fcntl::fcntl(&stderr, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty())).unwrap();
    let mut rest = Vec::new();
    stderr.read_to_end(&mut rest).unwrap();
    let status = child.wait().unwrap();
    if let Ok(n) = master.read(&mut chunk) {
        screen.extend_from_slice(&chunk[..n]);
    }
    (
        status.code(),
        String::from_utf8_lossy(&rest).into_owned(),
        String::from_utf8_lossy(&screen).into_owned(),
    )
}

#[test]
fn a_value_typed_for_set_stdin_is_read_hidden_from_the_terminal() {
    let project = Project::fixture("fresh");
    assert_eq!(project.cmd(&["apply", "--yes", "-q"]).run().code, 0);
    let (code, stderr, screen) = on_a_terminal(
        &project,
        "exec BIN set OPENAI_API_KEY --stdin",
        &["sk-CANARY-typed-value-5c2d\n", "y\n"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!screen.contains("CANARY") && !stderr.contains("CANARY"), "the value was echoed: {screen}");
    assert!(
        project.read(".systemprompt/profiles/production/store.json").contains("sk-CANARY-typed-value-5c2d")
    );
}

#[test]
fn a_value_piped_into_set_stdin_is_confirmed_on_the_terminal() {
    let project = Project::fixture("fresh").write("key.txt", "sk-CANARY-piped-value-8e4f\n");
    assert_eq!(project.cmd(&["apply", "--yes", "-q"]).run().code, 0);
    let (code, stderr, _) =
        on_a_terminal(&project, "exec BIN set OPENAI_API_KEY --stdin < key.txt", &["y\n"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        project.read(".systemprompt/profiles/production/store.json").contains("sk-CANARY-piped-value-8e4f")
    );
}

#[test]
fn unset_of_a_key_the_secrets_file_still_sets_warns_that_apply_adds_it_back() {
    let project = Project::fixture("fresh");
    assert_eq!(project.cmd(&["apply", "--yes", "-q"]).run().code, 0);
    let out = project.cmd(&["unset", "anthropic", "--yes"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stderr.contains("secrets.json still sets ANTHROPIC_API_KEY, so the next apply adds it back"),
        "{}",
        out.stderr
    );
    assert_eq!(project.cmd(&["plan", "--detailed-exitcode", "-q"]).run().code, 2);
}

#[test]
fn paths_are_shown_relative_to_the_directory_of_dash_c() {
    let project = Project::fixture("fresh").write("elsewhere/.keep", "");
    let out = project.cmd(&["-C", "..", "plan", "-v"]).cwd("elsewhere").run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stderr.contains("profile: production (.systemprompt/profiles/production; "),
        "{}",
        out.stderr
    );
    let out = project.cmd(&["-C", "nowhere", "plan"]).run();
    assert_eq!(out.code, 64, "{}", out.transcript());
}
