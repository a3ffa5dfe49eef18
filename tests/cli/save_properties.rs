//! A property of `set ... --save`, end to end: for any secrets.json and any sequence of `set
//! ARGS --save --yes` against the local store, each command leaves the file valid JSON holding
//! exactly the expected keys and values, keeps its keys' order and every line it did not touch,
//! and leaves nothing for `plan --detailed-exitcode` to change.
//!
//! The expected key of each argument comes from the table below, written from the product
//! brief, never from the library's own mapping.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};

use crate::support::{CANARY, Project};

const SECRETS: &str = ".systemprompt/profiles/production/secrets.json";

/// What a key's values look like: what its validation expects, always with a canary in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `oauth_at_rest_pepper`: 32 characters or more, or the platform refuses it.
    Pepper,
    DatabaseUrl,
    Prefixed(&'static str),
}

/// A secrets.json key and the arguments of `set` that name it: the key itself and the variable
/// names the runtime or the deploy step read it under.
struct Slot {
    key: &'static str,
    args: &'static [&'static str],
    kind: Kind,
    /// A custom key: secrets.json may spell it in upper case too, and `--save` then writes it
    /// under that spelling.
    custom: bool,
}

const fn known(key: &'static str, args: &'static [&'static str], kind: Kind) -> Slot {
    Slot { key, args, kind, custom: false }
}

const fn custom(key: &'static str, args: &'static [&'static str]) -> Slot {
    Slot { key, args, kind: Kind::Prefixed(""), custom: true }
}

const PEPPER: usize = 0;
const DATABASE_URL: usize = 1;
const INTERNAL_DATABASE_URL: usize = 2;

/// Argument -> secrets.json key, from the brief. `set` refuses the `database_url` row (either
/// argument) while secrets.json sets `internal_database_url` (not blank), which provides
/// DATABASE_URL then, and the names the runtime only reads ([`ALSO_READ`]).
static SLOTS: [Slot; 14] = [
    known("oauth_at_rest_pepper", &["oauth_at_rest_pepper", "OAUTH_AT_REST_PEPPER"], Kind::Pepper),
    known("database_url", &["database_url", "DATABASE_URL"], Kind::DatabaseUrl),
    known("internal_database_url", &["internal_database_url", "INTERNAL_DATABASE_URL"], Kind::DatabaseUrl),
    known("anthropic", &["anthropic", "ANTHROPIC_API_KEY"], Kind::Prefixed("sk-ant-")),
    known("openai", &["openai", "OPENAI_API_KEY"], Kind::Prefixed("sk-")),
    known("gemini", &["gemini", "GEMINI_API_KEY"], Kind::Prefixed("AIza")),
    known("github", &["github", "GITHUB_TOKEN", "GITHUB"], Kind::Prefixed("ghp_")),
    known("moonshot", &["moonshot", "MOONSHOT_API_KEY", "MOONSHOT", "KIMI_API_KEY"], Kind::Prefixed("")),
    known("qwen", &["qwen", "QWEN_API_KEY", "QWEN", "DASHSCOPE_API_KEY"], Kind::Prefixed("")),
    custom("jwt_secret", &["jwt_secret", "JWT_SECRET"]),
    custom("stripe_secret", &["stripe_secret", "STRIPE_SECRET"]),
    custom("webhook_signing_key", &["webhook_signing_key", "WEBHOOK_SIGNING_KEY"]),
    custom("legacy_token", &["legacy_token", "LEGACY_TOKEN"]),
    custom("sentry_dsn", &["sentry_dsn", "SENTRY_DSN"]),
];

/// Names the runtime also reads for a key cloud-secrets writes under other names: `set` refuses
/// them and asks for the key.
const ALSO_READ: [&str; 2] = ["KIMI_API_KEY", "DASHSCOPE_API_KEY"];

/// A value in secrets.json as written: a string, or null.
type Value = Option<String>;

/// One member of the starting secrets.json.
#[derive(Debug, Clone)]
struct Member {
    key: String,
    value: Value,
    /// How the colon is spaced.
    colon: &'static str,
}

/// How the starting secrets.json is written.
#[derive(Debug, Clone)]
enum Layout {
    /// One member per line.
    Lines { indent: &'static str, newline: &'static str },
    /// All on one line, with or without blanks inside the braces.
    OneLine { padded: bool },
}

#[derive(Debug, Clone)]
struct Start {
    members: Vec<Member>,
    layout: Layout,
    trailing_newline: bool,
}

impl Start {
    fn render(&self) -> String {
        let body: Vec<String> = self
            .members
            .iter()
            .map(|m| {
                let value = m.value.as_ref().map_or("null".to_owned(), |v| serde_json::to_string(v).unwrap());
                format!("{}{}{value}", serde_json::to_string(&m.key).unwrap(), m.colon)
            })
            .collect();
        let object = match &self.layout {
            Layout::Lines { indent, newline } => {
                format!("{{{newline}{indent}{}{newline}}}", body.join(&format!(",{newline}{indent}")))
            }
            Layout::OneLine { padded: true } => format!("{{ {} }}", body.join(", ")),
            Layout::OneLine { padded: false } => format!("{{{}}}", body.join(",")),
        };
        if self.trailing_newline { object + "\n" } else { object }
    }
}

/// One `set` command: (argument naming the key, value) pairs, each for another key.
#[derive(Debug, Clone)]
struct SetCommand {
    /// (slot, argument, value).
    assignments: Vec<(usize, &'static str, String)>,
}

impl SetCommand {
    fn args(&self) -> Vec<String> {
        let mut args = vec!["set".to_owned()];
        args.extend(self.assignments.iter().map(|(_, name, value)| format!("{name}={value}")));
        args.extend(["--save".to_owned(), "--yes".to_owned()]);
        args
    }
}

/// A value of `kind` with a canary in it; `tail` varies it and `odd` adds characters that JSON
/// must escape (or that `KEY=VALUE` must not split on).
fn value_of(kind: Kind, tail: &str, odd: &str) -> String {
    match kind {
        Kind::Pepper => format!("CANARY-pepper-{tail}{tail}{tail}{odd}"),
        Kind::DatabaseUrl => format!("postgres://app:CANARY-{tail}@db.internal:5432/app{odd}"),
        Kind::Prefixed(prefix) => format!("{prefix}CANARY-{tail}{odd}"),
    }
}

fn tail() -> impl Strategy<Value = String> {
    "[a-z0-9]{12}"
}

fn odd() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", "", "=x", " \"q\"", "\\", "/é"])
}

/// A value of the starting file: set, or one of the ways of "not set" (null, empty, blank).
fn start_value(kind: Kind, required: bool) -> BoxedStrategy<Value> {
    let set = (tail(), odd()).prop_map(move |(t, o)| Some(value_of(kind, &t, o)));
    if required {
        set.boxed()
    } else {
        prop_oneof![6 => set, 1 => Just(None), 1 => Just(Some(String::new())), 1 => Just(Some("  ".to_owned()))]
            .boxed()
    }
}

fn start() -> impl Strategy<Value = Start> {
    let members = SLOTS
        .iter()
        .enumerate()
        .map(|(i, slot)| {
            let required = i == PEPPER || i == DATABASE_URL;
            let present = if required { Just(true).boxed() } else { any::<bool>().boxed() };
            (
                present,
                start_value(slot.kind, required),
                any::<bool>(),
                prop::sample::select(vec![": ", ":", " : "]),
            )
                .prop_map(move |(present, value, upper, colon)| {
                    let key = if slot.custom && upper {
                        slot.key.to_ascii_uppercase()
                    } else {
                        slot.key.to_owned()
                    };
                    present.then_some(Member { key, value, colon })
                })
        })
        .collect::<Vec<_>>()
        .prop_map(|members| members.into_iter().flatten().collect::<Vec<_>>())
        .prop_shuffle();
    let layout = prop_oneof![
        3 => (prop::sample::select(vec!["  ", "    ", "\t"]), prop::sample::select(vec!["\n", "\n", "\r\n"]))
            .prop_map(|(indent, newline)| Layout::Lines { indent, newline }),
        1 => any::<bool>().prop_map(|padded| Layout::OneLine { padded }),
    ];
    (members, layout, any::<bool>()).prop_map(|(members, layout, trailing_newline)| Start {
        members,
        layout,
        trailing_newline,
    })
}

/// A `set` of 1 to 3 keys, each named by any of its arguments (those in `excluded` aside).
fn set_command(excluded: &'static [&'static str]) -> impl Strategy<Value = SetCommand> {
    let assignment = (0..SLOTS.len(), any::<prop::sample::Index>(), tail(), odd()).prop_map(
        move |(slot, pick, tail, odd)| {
            let args: Vec<&'static str> =
                SLOTS[slot].args.iter().copied().filter(|a| !excluded.contains(a)).collect();
            (slot, *pick.get(&args), value_of(SLOTS[slot].kind, &tail, odd))
        },
    );
    prop::collection::vec(assignment, 1..=3)
        .prop_map(|mut assignments| {
            let mut seen = Vec::new();
            assignments.retain(|(slot, ..)| {
                let first = !seen.contains(slot);
                seen.push(*slot);
                first
            });
            SetCommand { assignments }
        })
        // Both would write DATABASE_URL: a usage error by design, not the property's business.
        .prop_filter("database_url and internal_database_url in one command", |c| {
            !(c.assignments.iter().any(|a| a.0 == DATABASE_URL)
                && c.assignments.iter().any(|a| a.0 == INTERNAL_DATABASE_URL))
        })
}

/// The key, among `members`, that an argument for `slot` is saved under.
fn expected_key(members: &[(String, Value)], slot: usize) -> String {
    let key = SLOTS[slot].key;
    match members.iter().find(|(k, _)| k == key || (SLOTS[slot].custom && k.eq_ignore_ascii_case(key))) {
        Some((k, _)) => k.clone(),
        None => key.to_owned(),
    }
}

/// Whether `set` refuses `command` on a secrets.json holding `members`: it names a variable the
/// runtime only reads, or DATABASE_URL while `internal_database_url` is set (not blank).
fn refused(members: &[(String, Value)], command: &SetCommand) -> bool {
    let internal_is_set = members.iter().any(|(k, v)| {
        k == SLOTS[INTERNAL_DATABASE_URL].key && v.as_ref().is_some_and(|v| !v.trim().is_empty())
    });
    command
        .assignments
        .iter()
        .any(|(slot, name, _)| ALSO_READ.contains(name) || (*slot == DATABASE_URL && internal_is_set))
}

/// What secrets.json holds after `command`: each value replaced in place under its key, or
/// appended, in the order given.
fn apply_to_model(members: &mut Vec<(String, Value)>, command: &SetCommand) {
    let keys: Vec<String> =
        command.assignments.iter().map(|(slot, ..)| expected_key(members, *slot)).collect();
    for (key, (_, _, value)) in keys.into_iter().zip(&command.assignments) {
        match members.iter_mut().find(|(k, _)| *k == key) {
            Some(member) => member.1 = Some(value.clone()),
            None => members.push((key, Some(value.clone()))),
        }
    }
}

/// The members of a JSON object in file order (duplicates kept), each a string or null.
fn read_members(text: &str) -> Result<Vec<(String, Value)>, String> {
    struct Ordered(Vec<(String, Value)>);
    impl<'de> serde::Deserialize<'de> for Ordered {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Ordered;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an object of strings and nulls")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                    let mut members = Vec::new();
                    while let Some(entry) = map.next_entry::<String, Option<String>>()? {
                        members.push(entry);
                    }
                    Ok(Ordered(members))
                }
            }
            deserializer.deserialize_map(Visit)
        }
    }
    serde_json::from_str::<Ordered>(text).map(|o| o.0).map_err(|e| e.to_string())
}

/// The 0-based line of the member `key` in `text`.
fn line_of(text: &str, key: &str) -> usize {
    let pattern = regex::Regex::new(&format!(r#""{}"\s*:"#, regex::escape(key))).unwrap();
    let at = pattern.find(text).unwrap_or_else(|| panic!("no member {key}")).start();
    text[..at].matches('\n').count()
}

/// The lines of `before` that `command` does not touch are in `after`, byte for byte: every line
/// but those holding a replaced value and, when keys are appended, the one holding the last
/// member (it gains a comma); the appended members come after it, one a line.
fn check_untouched_lines(
    before: &str,
    members: &[(String, Value)],
    after: &str,
    replaced: &[String],
    appended: usize,
) -> Result<(), TestCaseError> {
    let old: Vec<&str> = before.split('\n').collect();
    let new: Vec<&str> = after.split('\n').collect();
    prop_assert_eq!(new.len(), old.len() + appended, "lines added other than the appended members");
    let last = line_of(before, &members.last().unwrap().0);
    let mut touched: Vec<usize> = replaced.iter().map(|k| line_of(before, k)).collect();
    if appended > 0 {
        touched.push(last);
    }
    for (i, line) in old.iter().enumerate().filter(|(i, _)| !touched.contains(i)) {
        let moved = if i > last { i + appended } else { i };
        prop_assert_eq!(new[moved], *line, "line {} changed", i + 1);
    }
    Ok(())
}

/// Runs the sequence in a fresh project whose remote (a `file:` store) holds what `start` sets,
/// checking the property after each command.
fn check_sequence(start: &Start, commands: &[SetCommand]) -> Result<(), TestCaseError> {
    let project = Project::fixture("fresh").write(SECRETS, &start.render());
    let applied = project.cmd(&["apply", "--yes", "-q"]).run();
    prop_assert_eq!(applied.code, 0, "the starting state does not apply:\n{}", applied.transcript());
    let mut members: Vec<(String, Value)> =
        start.members.iter().map(|m| (m.key.clone(), m.value.clone())).collect();
    for command in commands {
        let before = project.read(SECRETS);
        let args = command.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = project.cmd(&args).run();
        let shown = format!("{command:?}:\n{}", out.transcript());
        prop_assert!(
            !out.stdout.contains(CANARY) && !out.stderr.contains(CANARY),
            "a value was shown: {}",
            shown
        );
        if refused(&members, command) {
            // Refused with the fix, before anything is written anywhere.
            prop_assert_eq!(out.code, 64, "{}", shown);
            prop_assert!(out.stderr.contains("hint: set"), "{}", shown);
            prop_assert_eq!(project.read(SECRETS), before, "{}", shown);
            let plan = project.cmd(&["plan", "--detailed-exitcode", "-q"]).run();
            prop_assert_eq!(
                plan.code,
                0,
                "a refused set changed the remote: {}\n{}",
                shown,
                plan.transcript()
            );
            continue;
        }
        prop_assert_eq!(out.code, 0, "{}", shown);

        let after = project.read(SECRETS);
        let read = read_members(&after).map_err(|e| TestCaseError::fail(format!("{e}: {after:?}")))?;
        let replaced: Vec<String> = command
            .assignments
            .iter()
            .map(|(slot, ..)| expected_key(&members, *slot))
            .filter(|k| members.iter().any(|(m, _)| m == k))
            .collect();
        let old_members = members.clone();
        apply_to_model(&mut members, command);
        prop_assert_eq!(&read, &members, "{}\nbefore: {:?}\nafter: {:?}", shown, before, after);
        // Implied by the line above, said for itself: the keys that were there keep their order.
        let kept: Vec<&String> = read.iter().take(old_members.len()).map(|(k, _)| k).collect();
        prop_assert_eq!(kept, old_members.iter().map(|(k, _)| k).collect::<Vec<_>>());
        let appended = members.len() - old_members.len();
        check_untouched_lines(&before, &old_members, &after, &replaced, appended)?;

        let plan = project.cmd(&["plan", "--detailed-exitcode", "-q"]).run();
        prop_assert_eq!(
            plan.code,
            0,
            "after {}\nthe plan is not empty:\n{}\nsecrets.json: {:?}",
            shown,
            plan.transcript(),
            after
        );
    }
    Ok(())
}

/// Each case runs the binary a few times (some milliseconds each): few cases, and a bounded
/// shrink, keep the test to seconds.
fn config(cases: u32) -> Config {
    Config { cases, max_shrink_iters: 128, max_shrink_time: 30_000, ..Config::default() }
}

proptest! {
    #![proptest_config(config(48))]

    /// The property, over every start and every sequence of 1 to 4 `set ... --save`.
    #[test]
    fn set_save_keeps_secrets_json_and_the_remote_in_step(
        start in start(),
        commands in prop::collection::vec(set_command(&[]), 1..=4),
    ) {
        check_sequence(&start, &commands)?;
    }
}

fn minimal_start(extra: &[(&str, Value)]) -> Start {
    let member = |key: &str, value: Value| Member { key: key.to_owned(), value, colon: ": " };
    let mut members = vec![
        member("oauth_at_rest_pepper", Some(value_of(Kind::Pepper, "000000000000", ""))),
        member("database_url", Some(value_of(Kind::DatabaseUrl, "db1", ""))),
    ];
    members.extend(extra.iter().map(|(k, v)| member(k, v.clone())));
    Start { members, layout: Layout::Lines { indent: "  ", newline: "\n" }, trailing_newline: true }
}

fn run_case(start: &Start, commands: &[SetCommand]) {
    if let Err(e) = check_sequence(start, commands) {
        panic!("{e}");
    }
}

/// `set DATABASE_URL=v` (or `database_url=v`) while `internal_database_url` is set: that key
/// provides DATABASE_URL and is also written as INTERNAL_DATABASE_URL, so setting DATABASE_URL
/// alone would be undone by the next plan. Refused, naming the key to set; nothing is written.
#[test]
fn database_url_while_internal_database_url_is_set_is_refused_with_the_key_to_set() {
    let start = minimal_start(&[("internal_database_url", Some(value_of(Kind::DatabaseUrl, "db2", "")))]);
    for name in ["DATABASE_URL", "database_url"] {
        let set =
            SetCommand { assignments: vec![(DATABASE_URL, name, value_of(Kind::DatabaseUrl, "db3", ""))] };
        run_case(&start, std::slice::from_ref(&set));
    }
    let project = Project::fixture("fresh").write(SECRETS, &start.render());
    let out = project.cmd(&["set", "DATABASE_URL=postgres://CANARY-x@h/d", "--yes"]).run();
    assert_eq!(out.code, 64, "{}", out.transcript());
    assert!(out.stderr.contains("DATABASE_URL comes from `internal_database_url`"), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "hint: set that key, which changes them together: cloud-secrets set internal_database_url="
        ),
        "{}",
        out.stderr
    );
}

/// The same with `internal_database_url` blank ("  "), which the platform reads as not set:
/// DATABASE_URL comes from `database_url`, and `--save` writes it there.
#[test]
fn database_url_while_internal_database_url_is_blank_is_saved_as_database_url() {
    let start = minimal_start(&[("internal_database_url", Some("  ".to_owned()))]);
    let set = SetCommand {
        assignments: vec![(DATABASE_URL, "database_url", value_of(Kind::DatabaseUrl, "db3", ""))],
    };
    run_case(&start, &[set]);
}

/// `set KIMI_API_KEY=v`: the runtime also reads moonshot's value under KIMI_API_KEY, but
/// cloud-secrets writes `moonshot` as MOONSHOT_API_KEY and MOONSHOT; refused, naming the key.
#[test]
fn a_name_the_runtime_only_reads_is_refused_with_the_key_to_set() {
    let moonshot = SLOTS.iter().position(|s| s.key == "moonshot").unwrap();
    let set = SetCommand {
        assignments: vec![(moonshot, "KIMI_API_KEY", value_of(Kind::Prefixed(""), "kimi", ""))],
    };
    run_case(&minimal_start(&[]), &[set]);
    let project = Project::fixture("fresh");
    let out = project.cmd(&["set", "DASHSCOPE_API_KEY=CANARY-qwen-1", "--yes"]).run();
    assert_eq!(out.code, 64, "{}", out.transcript());
    assert!(out.stderr.contains("hint: set the key instead: cloud-secrets set qwen=..."), "{}", out.stderr);
}
