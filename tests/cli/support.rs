//! A small fluent harness: copy a fixture project into a temporary directory, run the binary in
//! it, capture the transcript, and check every output and written file for canary values.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every fixture secret contains this marker; it must never appear in output or written files.
pub const CANARY: &str = "CANARY";

pub struct Project {
    dir: tempfile::TempDir,
    /// Canary values found in the fixture, checked in full besides the marker.
    canaries: Vec<String>,
    /// Files that hold values by design, relative to the root: each profile's secrets.json (the
    /// input) and store.json (the local store the fixtures name as their remote), and any other
    /// store a test names. Every other file is checked for canaries.
    value_files: Vec<PathBuf>,
}

/// How standard input is connected.
pub enum Input {
    /// /dev/null: not a terminal, immediately at end of file.
    Null,
    /// A pipe carrying this text: not a terminal.
    Pipe(String),
    /// A pseudo-terminal on which this text is typed.
    Tty(String),
}

pub struct Run<'a> {
    project: &'a Project,
    program: Program,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    input: Input,
    closed_stdout: bool,
    panic_expected: bool,
}

/// What a run starts.
enum Program {
    /// The binary, with the run's arguments.
    Binary,
    /// `bash -c` on this line, with the binary's directory first on PATH, in a session of its
    /// own: no controlling terminal, so nothing can ask a question on /dev/tty (as in a pipeline).
    Shell(String),
}

pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Project {
    /// A copy of `fixtures/<name>`.
    pub fn fixture(name: &str) -> Self {
        let project = Self::empty();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
        copy_dir(&source, project.root());
        project.with_canaries()
    }

    /// The root of a new project: a directory holding `services/` (which, beside
    /// `.systemprompt/`, marks a systemprompt project's root) and nothing else.
    pub fn empty() -> Self {
        let project = Self::bare();
        std::fs::create_dir_all(project.root().join("services")).unwrap();
        project
    }

    /// An empty directory: no project root.
    pub fn bare() -> Self {
        let dir = tempfile::Builder::new().prefix("cs-test-").tempdir().unwrap();
        Self { dir, canaries: Vec::new(), value_files: Vec::new() }
    }

    /// Every file of the project with its bytes, to prove a command changed none of them.
    pub fn snapshot_files(&self, suffix: &str) -> Vec<(PathBuf, Vec<u8>)> {
        files(self.root())
            .into_iter()
            .filter(|f| f.to_string_lossy().ends_with(suffix))
            .map(|f| {
                let bytes = std::fs::read(&f).unwrap();
                (f, bytes)
            })
            .collect()
    }

    /// Declares a file that holds values by design (a store named with --remote).
    pub fn value_file(mut self, rel: &str) -> Self {
        self.value_files.push(PathBuf::from(rel));
        self
    }

    /// Writes an input file (creating directories) and records any canary in it. Inputs are
    /// exempt from the written-file check: the tool did not write them.
    pub fn write(mut self, rel: &str, contents: &str) -> Self {
        let path = self.root().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        make_private_if_secret(&path);
        self.value_files.push(PathBuf::from(rel));
        self.with_canaries()
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    pub fn read_bytes(&self, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(rel)).ok()
    }

    /// A run of the binary with these arguments, in the project root, stdin at /dev/null.
    pub fn cmd(&self, args: &[&str]) -> Run<'_> {
        Run {
            project: self,
            program: Program::Binary,
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            env: Vec::new(),
            cwd: self.root().to_path_buf(),
            input: Input::Null,
            closed_stdout: false,
            panic_expected: false,
        }
    }

    /// A run of a shell line (`cloud-secrets plan > plan.md`) with `bash -c`, in the project root,
    /// stdin at /dev/null, `cloud-secrets` on PATH the binary under test.
    pub fn shell(&self, line: &str) -> Run<'_> {
        Run { program: Program::Shell(line.to_owned()), ..self.cmd(&[]) }
    }

    fn with_canaries(mut self) -> Self {
        // The files that hold values by design, wherever the project keeps them: secrets files
        // (`secrets.json`, `<name>.secrets.json`), local stores, the platform's credentials and
        // tenants, and `.env` files.
        for file in files(self.root()) {
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let holds_values = name.ends_with("secrets.json")
                || name.ends_with(".previous")
                || name.ends_with("store.json")
                || matches!(name, "credentials.json" | "tenants.json" | ".env");
            let rel = file.strip_prefix(self.root()).unwrap().to_path_buf();
            if holds_values && !self.value_files.contains(&rel) {
                self.value_files.push(rel);
            }
        }
        for profile in ["production", "staging", "prod", "local", "dev", "other"] {
            let rel = Path::new(".systemprompt/profiles").join(profile).join("store.json");
            if !self.value_files.contains(&rel) {
                self.value_files.push(rel);
            }
        }
        let mut found = Vec::new();
        for file in files(self.root()) {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for token in text.split(|c: char| c == '"' || c.is_whitespace()) {
                if token.contains(CANARY) && !found.contains(&token.to_owned()) {
                    found.push(token.to_owned());
                }
            }
        }
        self.canaries = found;
        self
    }

    /// Fails if any canary appears in `text`, naming where.
    pub fn assert_clean(&self, what: &str, text: &str) {
        assert!(!text.contains(CANARY), "a canary leaked into {what}:\n{text}");
        for canary in &self.canaries {
            assert!(!text.contains(canary.as_str()), "canary {canary} leaked into {what}");
        }
    }

    /// Checks every file in the project except those that hold values by design.
    pub fn assert_files_clean(&self) {
        for file in files(self.root()) {
            // A local store holds values by design, wherever a test's settings put it.
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.ends_with("store.json")
                || name.ends_with(".previous")
                || self.value_files.iter().any(|rel| file == self.root().join(rel))
            {
                continue;
            }
            let bytes = std::fs::read(&file).unwrap();
            self.assert_clean(&file.display().to_string(), &String::from_utf8_lossy(&bytes));
        }
    }
}

impl Run<'_> {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn cwd(mut self, rel: &str) -> Self {
        self.cwd = self.project.path(rel);
        self
    }

    pub fn input(mut self, input: Input) -> Self {
        self.input = input;
        self
    }

    /// Expects the binary to panic (exit 101); the outputs are still checked for canaries.
    pub fn expect_panic(mut self) -> Self {
        self.panic_expected = true;
        self
    }

    /// Connects stdout to a pipe nobody reads (as in `cloud-secrets plan | head -0`).
    pub fn closed_stdout(mut self) -> Self {
        self.closed_stdout = true;
        self
    }

    /// Runs the binary, asserts no canary reached stdout, stderr or any written file, and
    /// asserts it did not panic.
    pub fn run(self) -> Outcome {
        let mut command = self.command();
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        if self.closed_stdout {
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            command.stdout(Stdio::from(writer));
        }
        let mut typist = None;
        match &self.input {
            Input::Null => {
                command.stdin(Stdio::null());
            }
            Input::Pipe(_) => {
                command.stdin(Stdio::piped());
            }
            Input::Tty(text) => {
                let pty = nix::pty::openpty(None, None).expect("openpty");
                command.stdin(Stdio::from(pty.slave));
                let mut master = std::fs::File::from(pty.master);
                master.write_all(text.as_bytes()).unwrap();
                typist = Some(master);
            }
        }
        let mut child = command.spawn().expect("spawn cloud-secrets");
        if let (Input::Pipe(text), Some(mut stdin)) = (&self.input, child.stdin.take()) {
            stdin.write_all(text.as_bytes()).unwrap();
        }
        drop(command);
        let output = child.wait_with_output().unwrap();
        drop(typist);
        self.finish(output.status.code(), output.stdout, output.stderr)
    }
}

impl Run<'_> {
    /// Runs the binary with a terminal on stdin, waits for its `[y/N]` question, calls
    /// `meanwhile` (to change the world between plan and apply), then types `answer`.
    pub fn run_answering(self, answer: &str, meanwhile: impl FnOnce()) -> Outcome {
        use std::io::Read;
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let mut child = self
            .command()
            .stdin(Stdio::from(pty.slave))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cloud-secrets");
        let mut stderr_pipe = child.stderr.take().unwrap();
        let mut stderr = Vec::new();
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&stderr).contains("[y/N] ") {
            let n = stderr_pipe.read(&mut chunk).unwrap();
            assert!(n > 0, "the binary exited before asking: {}", String::from_utf8_lossy(&stderr));
            stderr.extend_from_slice(&chunk[..n]);
        }
        meanwhile();
        let mut master = std::fs::File::from(pty.master);
        master.write_all(answer.as_bytes()).unwrap();
        stderr_pipe.read_to_end(&mut stderr).unwrap();
        let output = child.wait_with_output().unwrap();
        drop(master);
        self.finish(output.status.code(), output.stdout, stderr)
    }

    /// The process to start: the program, its arguments, the working directory and a clean
    /// environment (PATH, HOME at the project root, and what the test adds).
    fn command(&self) -> Command {
        let binary = Path::new(env!("CARGO_BIN_EXE_cloud-secrets"));
        let path = std::env::var("PATH").unwrap_or_default();
        let (mut command, path) = match &self.program {
            Program::Binary => (Command::new(binary), path),
            Program::Shell(line) => {
                let mut command = Command::new("setsid");
                command.args(["-w", "bash", "-c", line]);
                (command, format!("{}:{path}", binary.parent().unwrap().display()))
            }
        };
        command
            .args(&self.args)
            .current_dir(&self.cwd)
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.project.root())
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    fn finish(&self, code: Option<i32>, stdout: Vec<u8>, stderr: Vec<u8>) -> Outcome {
        let outcome = Outcome {
            code: code.unwrap_or(-1),
            stdout: String::from_utf8(stdout).unwrap(),
            stderr: String::from_utf8(stderr).unwrap(),
        };
        if self.panic_expected {
            assert_eq!(outcome.code, 101, "the binary did not panic:\n{}", outcome.stderr);
        } else {
            assert_ne!(outcome.code, 101, "the binary panicked:\n{}", outcome.stderr);
        }
        self.project.assert_clean("stdout", &outcome.stdout);
        self.project.assert_clean("stderr", &outcome.stderr);
        self.project.assert_files_clean();
        outcome
    }
}

impl Outcome {
    /// Exit code, stdout and stderr in one text, for snapshots.
    pub fn transcript(&self) -> String {
        format!("exit: {}\n----- stdout -----\n{}----- stderr -----\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Asserts a transcript against `snapshots/<name>.snap`, with the project's path filtered out.
pub fn snapshot(project: &Project, name: &str, outcome: &Outcome) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    let root = project.root().canonicalize().unwrap();
    settings.add_filter(&regex::escape(&root.display().to_string()), "[PROJECT]");
    settings.add_filter(&regex::escape(&project.root().display().to_string()), "[PROJECT]");
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    settings.add_filter(r"cs-\d+-", "cs-[PID]-");
    settings.bind(|| insta::assert_snapshot!(name, outcome.transcript()));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            make_private_if_secret(&target);
        }
    }
}

/// Gives secrets files mode 0600, as a careful user has them (git checks files out 0644); the
/// permission warning has tests of its own.
fn make_private_if_secret(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if name.ends_with("secrets.json") || matches!(name, "credentials.json" | "tenants.json") {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// Every regular file below `dir`.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

/// A raw HTTP/1.1 request to `host` (`127.0.0.1:PORT`) with extra `headers` (`Name: value\r\n`
/// each), so that the tests never share the tool's own client; the status and the body.
pub fn raw_http(host: &str, (method, path): (&str, &str), headers: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}
