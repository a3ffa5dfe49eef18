//! The example commands of README.md and docs/*.md: every line of a fenced code block that runs
//! `cloud-secrets` (after a `$ ` prompt, an environment assignment, `&&`, `;` or `|`, or in a CI
//! file's `run:` or `script:`) must parse, and every one that needs no network runs for real with
//! `bash -c` in a copy of `fixtures/platform`. The rest are listed in `CANNOT_RUN_HERE` with the
//! reason, and that list must match the docs.

use std::path::Path;

use clap::Parser;
use cloud_secrets::cli::{Cli, Command};

use crate::support::Project;

/// The project the examples run in: two profiles, `production` the active one (a cloud profile
/// whose settings name a local store), `local` the other.
const FIXTURE: &str = "platform";

/// The profile an example without `--profile` uses, and each profile's secrets file.
const DEFAULT_PROFILE: &str = "production";
const SECRETS_FILES: &[(&str, &str)] = &[
    ("production", ".systemprompt/secrets/production.secrets.json"),
    ("local", ".systemprompt/profiles/local/secrets.json"),
];

const VAULT: &str = "needs a Vault server at vault.example.com and a token for it";
const AWS: &str = "needs an AWS account: credentials and the eu-west-1 endpoints";
const MOTO: &str = "needs the moto server the block starts on 127.0.0.1:5000 (tests/cli/aws.rs covers moto)";
const OPENBAO: &str =
    "needs the OpenBao dev server the block starts on 127.0.0.1:8200 (tests/cli/vault.rs covers OpenBao)";

/// The examples that cannot run here, as (doc, the example as written, why). An example that
/// needs no network must not be here: it runs.
const CANNOT_RUN_HERE: &[(&str, &str, &str)] = &[
    (
        "README.md",
        "VAULT_TOKEN=... cloud-secrets apply --remote vault+https://vault.example.com:8200/secret/myapp/production",
        VAULT,
    ),
    ("README.md", "AWS_PROFILE=deploy cloud-secrets apply --remote awssm://eu-west-1/myapp/production", AWS),
    ("README.md", "AWS_PROFILE=deploy cloud-secrets apply --remote ssm://eu-west-1/myapp/production", AWS),
    ("docs/aws.md", "cloud-secrets plan  --remote awssm://eu-west-1/myapp/production", AWS),
    ("docs/aws.md", "cloud-secrets apply --remote awssm://eu-west-1/myapp/production", AWS),
    ("docs/aws.md", "cloud-secrets plan  --remote ssm://eu-west-1/myapp/production", AWS),
    ("docs/aws.md", "cloud-secrets apply --remote ssm://eu-west-1/myapp/production --write-rate 3", AWS),
    ("docs/aws.md", "cloud-secrets apply --remote awssm://us-east-1/demo", MOTO),
    ("docs/aws.md", "cloud-secrets apply --remote ssm://us-east-1/demo --write-rate 50", MOTO),
    (
        "docs/vault.md",
        "cloud-secrets plan  --remote vault+https://vault.example.com:8200/secret/myapp/production",
        VAULT,
    ),
    (
        "docs/vault.md",
        "cloud-secrets apply --remote vault+https://vault.example.com:8200/secret/myapp/production",
        VAULT,
    ),
    (
        "docs/vault.md",
        "VAULT_TOKEN=dev-root cloud-secrets apply --remote vault+http://127.0.0.1:8200/secret/demo",
        OPENBAO,
    ),
];

/// One line of a doc's code block that runs cloud-secrets.
#[derive(Debug)]
struct Example {
    /// The doc, relative to the repository root.
    file: String,
    /// The line in the doc, from 1.
    line: usize,
    /// The shell line, without a prompt, a CI file's `run:` or `script:`, or a trailing comment.
    text: String,
    /// Each cloud-secrets command of the line: its words, `cloud-secrets` first, without
    /// environment assignments or redirections.
    invocations: Vec<Vec<String>>,
    /// The environment assignments before them (`VAULT_TOKEN=...`).
    assignments: Vec<String>,
    /// The files the line's commands read standard input from (`< key.txt`).
    inputs: Vec<String>,
}

impl Example {
    fn place(&self) -> String {
        format!("{}:{}: `{}`", self.file, self.line, self.text)
    }

    /// Why the example cannot run here, if the table says it cannot.
    fn cannot_run(&self) -> Option<&'static str> {
        CANNOT_RUN_HERE
            .iter()
            .find(|(file, text, _)| *file == self.file && *text == self.text)
            .map(|(_, _, why)| *why)
    }

    /// What makes the example need a network: a `--remote` other than the local store, or an
    /// address given in the environment (`SYSTEMPROMPT_API_URL=http://127.0.0.1:8787`).
    fn network(&self) -> Option<&str> {
        let remotes = self.invocations.iter().filter_map(|words| remote_of(words));
        let addresses = self.assignments.iter().map(String::as_str).filter(|word| word.contains("://"));
        remotes.filter(|remote| !remote.starts_with("file:")).chain(addresses).next()
    }
}

/// The examples of README.md and docs/*.md, in order.
fn examples() -> Vec<Example> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs = vec!["README.md".to_owned()];
    let mut pages: Vec<String> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    pages.sort();
    docs.extend(pages);
    docs.iter().flat_map(|doc| examples_in(doc, &std::fs::read_to_string(root.join(doc)).unwrap())).collect()
}

/// The examples in one Markdown text. Every fenced block is read, whatever its language: a
/// GitHub Actions workflow is YAML that runs commands.
fn examples_in(file: &str, markdown: &str) -> Vec<Example> {
    let mut found = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| matches!(c, '`' | '~'));
        let run = marker.map_or(0, |m| trimmed.chars().take_while(|c| *c == m).count());
        match (fence, marker) {
            (None, Some(m)) if run >= 3 => fence = Some((m, run)),
            (Some((m, open)), Some(c)) if c == m && run >= open && trimmed[run..].trim().is_empty() => {
                fence = None;
            }
            (Some(_), _) => found.extend(example(file, index + 1, line)),
            (None, _) => {}
        }
    }
    found
}

/// The example a code line holds, if it runs cloud-secrets.
fn example(file: &str, line: usize, code: &str) -> Option<Example> {
    let mut text = code.trim();
    for prefix in ["$ ", "- run:", "run:", "script:", "- "] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest.trim_start();
        }
    }
    let shell = split_shell(text);
    let mut invocations = Vec::new();
    let mut assignments = Vec::new();
    let mut inputs = Vec::new();
    for command in shell.commands {
        let mut assigned = command.words;
        let words = assigned.split_off(assigned.iter().take_while(|word| is_assignment(word)).count());
        if words.first().is_some_and(|word| word == "cloud-secrets") {
            invocations.push(words);
            assignments.extend(assigned);
        }
        inputs.extend(command.inputs);
    }
    (!invocations.is_empty()).then(|| Example {
        file: file.to_owned(),
        line,
        text: text[..shell.code_len].trim_end().to_owned(),
        invocations,
        assignments,
        inputs,
    })
}

/// `NAME=value`, a variable assignment before a command's name.
fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The value of `--remote` in a command's words.
fn remote_of(words: &[String]) -> Option<&str> {
    words.iter().enumerate().find_map(|(i, word)| match word.strip_prefix("--remote") {
        Some("") => words.get(i + 1).map(String::as_str),
        Some(rest) => rest.strip_prefix('='),
        None => None,
    })
}

/// A shell line split as bash splits it, expanding nothing.
#[derive(Debug, Default)]
struct Shell {
    /// The simple commands, split at `&&`, `||`, `|`, `;` and `&`.
    commands: Vec<Simple>,
    /// The length of the line before a comment.
    code_len: usize,
}

/// One simple command: its words (redirections removed) and the files it reads with `<`.
#[derive(Debug, Default)]
struct Simple {
    words: Vec<String>,
    inputs: Vec<String>,
}

/// Splits a shell line into commands and words: quotes and backslashes are honoured, `#` at the
/// start of a word begins a comment, and redirections (`< FILE`, `> FILE`, `>> FILE`, `2>&1`,
/// `&> FILE`) are taken out of the words. Nothing is expanded: `$VAR` stays as written.
fn split_shell(line: &str) -> Shell {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|(_, c)| *c);
    let mut shell = Shell { commands: vec![Simple::default()], code_len: line.len() };
    // Set after a redirection operator: whether the next word is a file read from.
    let mut target: Option<bool> = None;
    let mut i = 0;
    while let Some(c) = at(i) {
        match c {
            c if c.is_whitespace() => i += 1,
            '#' => {
                shell.code_len = chars[i].0;
                break;
            }
            '&' if at(i + 1) == Some('>') => {
                i += 2 + usize::from(at(i + 2) == Some('>'));
                target = Some(false);
            }
            ';' | '|' | '&' => {
                i += 1 + usize::from(at(i + 1) == Some(c));
                shell.commands.push(Simple::default());
            }
            '<' | '>' => i = redirection(&chars, i, &mut target),
            _ => {
                let mut word = String::new();
                let mut quoted = false;
                while let Some(c) = at(i) {
                    if c.is_whitespace() || ";|&<>".contains(c) {
                        break;
                    }
                    i += 1;
                    match c {
                        '\'' => {
                            quoted = true;
                            while let Some(c) = at(i).filter(|c| *c != '\'') {
                                word.push(c);
                                i += 1;
                            }
                            i += 1;
                        }
                        '"' => {
                            quoted = true;
                            while let Some(c) = at(i).filter(|c| *c != '"') {
                                let escaped = c == '\\' && at(i + 1).is_some_and(|n| "\"\\$`".contains(n));
                                word.push(if escaped { at(i + 1).unwrap() } else { c });
                                i += 1 + usize::from(escaped);
                            }
                            i += 1;
                        }
                        '\\' => {
                            word.extend(at(i));
                            i += 1;
                        }
                        _ => word.push(c),
                    }
                }
                let command = shell.commands.last_mut().unwrap();
                let fd =
                    !quoted && word.chars().all(|c| c.is_ascii_digit()) && matches!(at(i), Some('<' | '>'));
                match target.take() {
                    _ if fd => i = redirection(&chars, i, &mut target),
                    Some(true) => command.inputs.push(word),
                    Some(false) => {}
                    None => command.words.push(word),
                }
            }
        }
    }
    shell.commands.retain(|command| !command.words.is_empty() || !command.inputs.is_empty());
    shell
}

/// Reads the redirection operator at `i` (`<`, `>`, `>>`, `>&2`, `<&0`); unless it duplicates a
/// descriptor, the next word is its file, and `target` says whether it is read from.
fn redirection(chars: &[(usize, char)], mut i: usize, target: &mut Option<bool>) -> usize {
    let at = |i: usize| chars.get(i).map(|(_, c)| *c);
    let input = at(i) == Some('<');
    i += 1;
    if at(i) == Some('>') {
        i += 1;
    }
    if at(i) == Some('&') {
        i += 1;
        while at(i).is_some_and(|c| c.is_ascii_digit() || c == '-') {
            i += 1;
        }
    } else {
        *target = Some(input);
    }
    i
}

/// Parses a command's words as the binary does. A request for help or the version is a success.
fn parse(words: &[String]) -> Result<Option<Cli>, clap::Error> {
    match Cli::try_parse_from(words) {
        Ok(cli) => Ok(Some(cli)),
        Err(error)
            if matches!(
                error.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// The exit codes a command may end with when nobody is at a terminal: 0 or 2 for `plan
/// --detailed-exitcode`; for a command that changes the remote without `--yes` or a saved plan, 0
/// (nothing to change) or 4 (not confirmed); 0 for everything else.
fn allowed_exits(cli: Option<&Cli>) -> &'static [i32] {
    let Some(cli) = cli else { return &[0] };
    let asks = match &cli.command {
        Command::Plan(args) if args.detailed_exitcode => return &[0, 2],
        Command::Apply(command) | Command::Sync(command) => command.plan_file.is_none() && !command.apply.yes,
        Command::Set(args) => !args.apply.yes,
        Command::Unset(args) => !args.apply.yes,
        Command::Cleanup(args) => !args.apply.yes,
        Command::Rollback(args) => !args.apply.yes,
        _ => false,
    };
    if asks { &[0, 4] } else { &[0] }
}

/// The saved plan a command applies or shows.
fn saved_plan_of(cli: &Cli) -> Option<&Path> {
    match &cli.command {
        Command::Apply(command) | Command::Sync(command) => command.plan_file.as_deref(),
        Command::Show(args) => Some(&args.plan_file),
        _ => None,
    }
}

/// Makes the copy of the fixture hold what the example assumes, and returns it: the default
/// profile's remote at its second version, a change away from the desired state (so that plans
/// have something to show and `rollback` a version to return to); a value in each file a command
/// reads standard input from; no value yet for the key `generate --into` fills; a saved plan
/// for `apply FILE` or `show FILE` when the line does not save it first.
fn prepare(example: &Example, clis: &[Option<Cli>]) -> Project {
    let project = Project::fixture(FIXTURE);
    for args in
        [&["apply", "--yes", "-q"][..], &["set", "anthropic=sk-ant-CANARY-docs-remote-5b2c", "--yes", "-q"]]
    {
        let out = project.cmd(args).run();
        assert_eq!(out.code, 0, "preparing for {}: {args:?}\n{}", example.place(), out.transcript());
    }
    std::fs::create_dir_all(project.path("tmp")).unwrap();
    let mut project = project;
    for file in &example.inputs {
        project = project.write(file, "sk-CANARY-docs-stdin-8d3f\n");
    }
    for (index, (cli, words)) in clis.iter().zip(&example.invocations).enumerate() {
        let Some(cli) = cli else { continue };
        let profile = cli.profile.as_deref().unwrap_or(DEFAULT_PROFILE);
        if let Command::Generate(args) = &cli.command
            && let Some(key) = &args.into
        {
            let (_, file) = SECRETS_FILES
                .iter()
                .find(|(name, _)| *name == profile)
                .unwrap_or_else(|| panic!("{}: no secrets file for profile {profile}", example.place()));
            let mut secrets: serde_json::Value = serde_json::from_str(&project.read(file)).unwrap();
            secrets[key.as_str()] = serde_json::Value::from("");
            project = project.write(file, &serde_json::to_string_pretty(&secrets).unwrap());
        }
        let Some(plan_file) = saved_plan_of(cli) else { continue };
        let saved_before = clis[..index].iter().flatten().any(|earlier| {
            matches!(&earlier.command, Command::Plan(args) if args.out.as_deref() == Some(plan_file))
        });
        if !saved_before {
            let plan_file = plan_file.to_string_lossy();
            let mut args = vec!["plan", "--out", &plan_file, "--profile", profile];
            if let Some(remote) = remote_of(words) {
                args.extend(["--remote", remote]);
            }
            let out = project.cmd(&args).run();
            assert_eq!(out.code, 0, "saving a plan for {}\n{}", example.place(), out.transcript());
        }
    }
    project
}

#[test]
fn every_example_in_the_docs_parses() {
    let examples = examples();
    assert!(examples.iter().any(|example| example.file == "README.md"), "no example found in README.md");
    let mut failures = Vec::new();
    for example in &examples {
        for words in &example.invocations {
            if let Err(error) = parse(words) {
                failures.push(format!("{} does not parse:\n{}", example.place(), error.render()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_example_that_needs_no_network_runs() {
    // A path under /tmp/ (`file:/tmp/store.json`) is taken inside the project, so that no
    // example touches anything outside its copy.
    let under_tmp = regex::Regex::new(r"(^|[\s:=])/tmp/").unwrap();
    let mut failures = Vec::new();
    for example in examples() {
        if example.cannot_run().is_some() || example.network().is_some() {
            continue;
        }
        // An example that does not parse is reported by the test above.
        let Ok(clis) = example.invocations.iter().map(|words| parse(words)).collect::<Result<Vec<_>, _>>()
        else {
            continue;
        };
        let project = prepare(&example, &clis);
        let tmp = format!("${{1}}{}/tmp/", project.root().display());
        let line = under_tmp.replace_all(&example.text, tmp.as_str());
        // The harness fails the run if a canary reaches stdout, stderr or any file written.
        let out = project.shell(&line).run();
        let allowed = allowed_exits(clis.last().unwrap().as_ref());
        if !allowed.contains(&out.code) {
            failures.push(format!(
                "{} exited {}, not one of {allowed:?}:\n{}",
                example.place(),
                out.code,
                out.transcript()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_examples_that_cannot_run_here_are_exactly_those_in_the_table() {
    let examples = examples();
    let mut failures = Vec::new();
    for example in &examples {
        match (example.cannot_run(), example.network()) {
            (Some(_), None) => failures.push(format!(
                "{} needs no network: take it out of CANNOT_RUN_HERE, so that it runs",
                example.place()
            )),
            (None, Some(address)) => failures.push(format!(
                "{} needs {address}: make it run here, or add it to CANNOT_RUN_HERE with the reason",
                example.place()
            )),
            _ => {}
        }
    }
    for (file, text, _) in CANNOT_RUN_HERE {
        if !examples.iter().any(|example| example.file == *file && example.text == *text) {
            failures.push(format!("CANNOT_RUN_HERE names `{text}` in {file}, which is no longer there"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn examples_are_found_in_every_kind_of_block_and_split_as_bash_would() {
    let markdown = "\
Text: cloud-secrets plan is not in a block.

```sh
$ cloud-secrets plan --out plan.json && cloud-secrets apply plan.json   # saved, then applied
CI=true VAULT_TOKEN=... cloud-secrets set OPENAI_API_KEY --stdin < key.txt 2>&1
cloud-secrets plan --format markdown >comment.md; echo done | cloud-secrets show 'a plan.json'
echo \"# not a comment\" x#y
```

````yaml
steps:
  - run: cloud-secrets apply --yes --format json > result.json
  - name: Plan
    run: |
      cloud-secrets plan --detailed-exitcode
script:
  - cloud-secrets validate
```
  - \"cloud-secrets\" &> out.txt
````

```json
{ \"oauth_at_rest_pepper\": \"64 random letters and digits (cloud-secrets generate pepper)\" }
```
";
    let examples = examples_in("doc.md", markdown);
    let texts: Vec<(usize, &str)> = examples.iter().map(|e| (e.line, e.text.as_str())).collect();
    assert_eq!(
        texts,
        [
            (4, "cloud-secrets plan --out plan.json && cloud-secrets apply plan.json"),
            (5, "CI=true VAULT_TOKEN=... cloud-secrets set OPENAI_API_KEY --stdin < key.txt 2>&1"),
            (
                6,
                "cloud-secrets plan --format markdown >comment.md; echo done | cloud-secrets show 'a plan.json'"
            ),
            (12, "cloud-secrets apply --yes --format json > result.json"),
            (15, "cloud-secrets plan --detailed-exitcode"),
            (17, "cloud-secrets validate"),
            (19, "\"cloud-secrets\" &> out.txt"),
        ]
    );
    let words = |e: &Example| e.invocations.iter().map(|w| w.join(" ")).collect::<Vec<_>>();
    assert_eq!(words(&examples[0]), ["cloud-secrets plan --out plan.json", "cloud-secrets apply plan.json"]);
    assert_eq!(words(&examples[1]), ["cloud-secrets set OPENAI_API_KEY --stdin"]);
    assert_eq!(examples[1].assignments, ["CI=true", "VAULT_TOKEN=..."]);
    assert_eq!(examples[1].inputs, ["key.txt"]);
    assert_eq!(
        words(&examples[2]),
        ["cloud-secrets plan --format markdown", "cloud-secrets show a plan.json"]
    );
    assert_eq!(words(&examples[3]), ["cloud-secrets apply --yes --format json"]);
    assert_eq!(words(&examples[6]), ["cloud-secrets"]);
    let shell = split_shell("echo \"# not a comment\" x#y 'it''s' a\\ b \"\\$HOME\" # comment");
    assert_eq!(shell.commands[0].words, ["echo", "# not a comment", "x#y", "its", "a b", "$HOME"]);
    assert_eq!(shell.code_len, "echo \"# not a comment\" x#y 'it''s' a\\ b \"\\$HOME\" ".len());
}
