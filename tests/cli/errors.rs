//! Bad input and bad usage: a clear message with file, line and column and the fix; the right
//! exit code; never a panic (the harness fails any run that exits 101).

use crate::support::{Project, snapshot};

const SECRETS: &str = ".systemprompt/profiles/dev/secrets.json";
const PROFILE: &str = ".systemprompt/profiles/dev/profile.yaml";
const SETTINGS: &str = ".systemprompt/cloud-secrets.yaml";

/// A local profile.yaml as the platform accepts it, its secrets file beside it.
const LOCAL: &str =
    "target: local\nsecrets:\n  secrets_path: ./secrets.json\n  validation: warn\n  source: file\n";
/// cloud-secrets' settings naming the local store in profile dev's folder as its remote.
const SETTINGS_LOCAL: &str = "profiles:\n  dev:\n    remote: file:profiles/dev/store.json\n";

/// A desired state the platform accepts: its two required keys, the pepper long enough.
const GOOD: &str = "{\n  \"oauth_at_rest_pepper\": \"CANARY-pepper-0123456789abcdef0123456789abcdef\",\n  \
                    \"database_url\": \"postgres://app:CANARY-pw@db.internal:5432/app\"\n}\n";

/// A one-profile project planning against the local store, with this secrets.json.
fn project_with(secrets: &str) -> Project {
    Project::empty().write(PROFILE, LOCAL).write(SETTINGS, SETTINGS_LOCAL).write(SECRETS, secrets)
}

#[test]
fn malformed_secrets_files_point_at_the_problem() {
    let cases = [
        (
            "secrets_duplicate_key",
            "{\n  \"openai\": \"sk-CANARY-1\",\n  \"jwt_secret\": \"CANARY-2\",\n  \"openai\": \"sk-CANARY-3\"\n}\n",
        ),
        ("secrets_number_value", "{\n  \"jwt_secret\": \"CANARY-1\",\n  \"port\": 5432\n}\n"),
        ("secrets_nested_object", "{\n  \"db\": {\"url\": \"CANARY-1\"}\n}\n"),
        ("secrets_top_level_array", "[\"CANARY-1\"]\n"),
        ("secrets_top_level_string", "\"CANARY-1\"\n"),
        ("secrets_trailing_comma", "{\n  \"jwt_secret\": \"CANARY-1\",\n}\n"),
        ("secrets_truncated", "{\n  \"jwt_secret\": \"CANARY-1\""),
        ("secrets_empty", ""),
        ("secrets_bom", "\u{feff}{\"jwt_secret\": \"CANARY-1\"}"),
        (
            "secrets_two_keys_one_variable",
            "{\n  \"openai\": \"sk-CANARY-1\",\n  \"openai_api_key\": \"sk-CANARY-2\"\n}\n",
        ),
    ];
    for (name, text) in cases {
        let project = project_with(text);
        let out = project.cmd(&["plan"]).run();
        assert_eq!(out.code, 1, "{name}: {}", out.transcript());
        assert!(out.stderr.contains("hint:"), "{name}: no fix offered");
        snapshot(&project, name, &out);
    }
}

#[test]
fn a_missing_secrets_file_means_the_environment_alone_and_says_what_is_missing() {
    // No secrets file: the desired state is the environment's, which here sets neither of the
    // platform's required keys, so the plan stops at them and says what to export or create.
    let project = Project::empty().write(PROFILE, LOCAL).write(SETTINGS, SETTINGS_LOCAL);
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("desired state"), "{}", out.stderr);
    assert!(out.stderr.contains("environment"), "{}", out.stderr);
    assert!(out.stderr.contains("OAUTH_AT_REST_PEPPER"), "{}", out.stderr);
    assert!(out.stderr.contains("DATABASE_URL"), "{}", out.stderr);
    assert!(out.stderr.contains("create .systemprompt/profiles/dev/secrets.json"), "{}", out.stderr);
    snapshot(&project, "secrets_missing", &out);
    // Offline, `validate` cannot know whether the remote keeps the variables, so without a
    // secrets file their absence is a warning there, named against the environment.
    let out = project.cmd(&["validate"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    for rule in ["pepper-required", "database-url-required"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.contains("warning the environment (no secrets file)") && l.contains(rule)),
            "{rule}: {}",
            out.stdout
        );
    }
    // With the required keys in the environment the same project plans.
    let out = project
        .cmd(&["plan"])
        .env("OAUTH_AT_REST_PEPPER", "CANARY-env-pepper-0123456789abcdef0123456789")
        .env("DATABASE_URL", "postgres://app:CANARY-env@db.internal:5432/app")
        .run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stdout.contains("+ OAUTH_AT_REST_PEPPER"), "{}", out.stdout);
}

#[test]
fn a_bad_profile_yaml_or_settings_file_is_located() {
    let project = project_with(GOOD)
        .write(PROFILE, "target: moon\nsecrets:\n  secrets_path: ./secrets.json\n  source: file\n");
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("profile.yaml:1:9:"), "{}", out.stderr);
    snapshot(&project, "profile_yaml_bad_target", &out);
    let project = project_with(GOOD).write(SETTINGS, "profiles:\n  dev:\n    remote: s3://bucket\n");
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("cloud-secrets.yaml:3:5: remote:"), "{}", out.stderr);
    snapshot(&project, "settings_unknown_remote", &out);
}

#[test]
fn a_damaged_store_is_an_error_that_does_not_quote_it() {
    let project = project_with(GOOD).write(
        ".systemprompt/profiles/dev/store.json",
        "{\"version\": 1, \"variables\": {\"A\": \"CANARY-2\"",
    );
    let out = project.cmd(&["apply", "--yes"]).run();
    assert_eq!(out.code, 1);
    snapshot(&project, "store_damaged", &out);
}

#[test]
fn usage_errors_exit_64_never_2() {
    let project = project_with("{}");
    for args in [
        &["plan", "--no-such-flag"][..],
        &["frobnicate"],
        &[],
        &["plan", "--color", "rainbow"],
        &["apply", "--detailed-exitcode"],
        &["plan", "-q", "-v"],
        &["plan", "--remote", "gopher://x"],
        &["plan", "-C", "no/such/dir"],
    ] {
        let out = project.cmd(args).run();
        assert_eq!(out.code, 64, "{args:?}: {}", out.transcript());
        assert!(out.stdout.is_empty(), "{args:?}: usage errors go to stderr");
    }
    let out = project.cmd(&["plan", "--remote", "gopher://x"]).run();
    snapshot(&project, "usage_bad_remote", &out);
}

#[test]
fn every_command_has_help_with_an_example() {
    let project = Project::empty();
    for command in
        [&["--help"][..], &["plan", "--help"], &["apply", "--help"], &["sync", "--help"], &["help", "plan"]]
    {
        let out = project.cmd(command).run();
        assert_eq!(out.code, 0, "{command:?}");
        assert!(out.stdout.contains("Examples:"), "{command:?}: {}", out.stdout);
        assert!(out.stdout.contains("Usage: cloud-secrets"), "{command:?}");
    }
    let out = project.cmd(&["--help"]).run();
    assert!(out.stdout.contains("130 interrupted"), "{}", out.stdout);
    snapshot(&project, "help", &out);
    // sync shows its own examples, not apply's.
    let sync = project.cmd(&["sync", "--help"]).run();
    assert!(sync.stdout.contains("cloud-secrets sync --profile production --yes"), "{}", sync.stdout);
    assert!(!sync.stdout.contains("cloud-secrets apply --yes"), "{}", sync.stdout);
    let version = project.cmd(&["--version"]).run();
    assert_eq!(version.code, 0);
    assert!(version.stdout.starts_with("cloud-secrets "));
}

#[test]
fn each_command_s_help_lists_only_the_options_it_takes() {
    let project = Project::empty();
    // (command, options its help must list, options it must not)
    let cases: [(&str, &[&str], &[&str]); 12] = [
        ("init", &["--profile"], &["--remote", "--timeout", "--write-rate", "--parallelism", "--yes"]),
        ("profiles", &["--profile"], &["--remote", "--timeout", "--write-rate", "--yes"]),
        ("validate", &["--profile"], &["--remote", "--timeout", "--write-rate", "--parallelism"]),
        ("generate", &["--into"], &["--remote", "--timeout", "--write-rate"]),
        ("show", &["--format"], &["--remote", "--timeout", "--write-rate", "--yes"]),
        (
            "plan",
            &["--remote", "--timeout", "--out"],
            &["--write-rate", "--parallelism", "--yes", "--lock-timeout"],
        ),
        (
            "apply",
            &["--remote", "--write-rate", "--parallelism", "--allow-mass-removal", "--yes"],
            &["--out"],
        ),
        ("sync", &["--remote", "--write-rate", "--parallelism", "--allow-mass-removal", "--yes"], &["--out"]),
        (
            "set",
            &["--remote", "--write-rate", "--stdin", "--save"],
            &["--parallelism", "--allow-mass-removal"],
        ),
        ("unset", &["--remote", "--parallelism", "--save"], &["--allow-mass-removal", "--stdin"]),
        ("cleanup", &["--remote", "--parallelism"], &["--allow-mass-removal", "--save"]),
        ("rollback", &["--remote", "--parallelism", "--allow-mass-removal"], &["--save", "--out"]),
    ];
    for (command, listed, absent) in cases {
        let out = project.cmd(&[command, "--help"]).run();
        assert_eq!(out.code, 0, "{command}: {}", out.transcript());
        assert!(out.stdout.contains("Examples:\n  cloud-secrets "), "{command}: {}", out.stdout);
        for option in listed {
            assert!(lists(&out.stdout, option), "{command} --help lacks {option}:\n{}", out.stdout);
        }
        for option in absent {
            assert!(!lists(&out.stdout, option), "{command} --help lists {option}:\n{}", out.stdout);
        }
    }
    // An option given to a command that does not take it is a usage error that says so.
    let out = project.cmd(&["validate", "--remote", "file:x.json"]).run();
    assert_eq!(out.code, 64, "{}", out.transcript());
    assert!(out.stderr.contains("--remote"), "{}", out.stderr);
}

/// Whether `help` has a line describing `option` (`      --remote <REMOTE>`, `  -y, --yes`).
fn lists(help: &str, option: &str) -> bool {
    help.lines().any(|line| {
        let line = line.trim_start();
        let line = line.split_once(", ").filter(|(short, _)| short.len() == 2).map_or(line, |(_, long)| long);
        line.strip_prefix(option).is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
    })
}

#[test]
fn keys_that_cannot_be_variable_names_are_refused_before_anything_is_shown() {
    for (name, text) in [
        ("secrets_key_with_dash", "{\n  \"jwt-secret\": \"CANARY-1\"\n}\n"),
        ("secrets_key_forging_a_plan_line", "{\n  \"x\\n  - DATABASE_URL  remove\": \"CANARY-1\"\n}\n"),
        ("secrets_key_empty", "{\n  \"\": \"CANARY-1\"\n}\n"),
    ] {
        let project = project_with(text);
        let out = project.cmd(&["plan"]).run();
        assert_eq!(out.code, 1, "{name}: {}", out.transcript());
        assert!(out.stdout.is_empty());
        snapshot(&project, name, &out);
    }
}

#[test]
fn remote_addresses_and_profile_yaml_values_are_not_echoed() {
    let project = project_with("{}");
    let out =
        project.cmd(&["plan", "--remote", "https://admin:CANARY-token@api.example.com/?key=CANARY-q"]).run();
    assert_eq!(out.code, 64);
    assert!(out.stderr.contains("https://<redacted>@api.example.com/?<redacted>"), "{}", out.stderr);
    for yaml in [
        "target: CANARY-t\n",
        "secrets: CANARY-s\n",
        "secrets:\n  validation: CANARY-v\n",
        "cloud: [CANARY-c]\n",
    ] {
        let project = project_with(GOOD).write(PROFILE, yaml);
        let out = project.cmd(&["plan"]).run();
        assert_eq!(out.code, 1, "{yaml}: {}", out.transcript());
        assert!(out.stderr.contains("profile.yaml:"), "{yaml}: {}", out.stderr);
    }
}

#[test]
fn files_that_are_not_regular_files_are_refused_instead_of_hanging() {
    for target in
        [".systemprompt/profiles/dev/secrets.json", ".systemprompt/profiles/dev/store.json", SETTINGS, ".env"]
    {
        // The `.env` is read only where cloud-secrets.yaml opts in.
        let project = project_with(GOOD)
            .write(SETTINGS, &format!("{SETTINGS_LOCAL}    dotenv: ../.env\n"))
            .write(".env", "# nothing\n");
        let path = project.path(target);
        let _ = std::fs::remove_file(&path);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let out = project.cmd(&["plan"]).run();
        assert_eq!(out.code, 1, "{target}: {}", out.transcript());
        assert!(out.stderr.contains("is not a regular file"), "{target}: {}", out.stderr);
    }
    // A profile.yaml that is not a regular file is named as such, and never opened.
    let project = project_with(GOOD);
    let path = project.path(PROFILE);
    std::fs::remove_file(&path).unwrap();
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("profile.yaml: profile.yaml is not a regular file"), "{}", out.stderr);
}

#[test]
fn an_empty_profile_argument_is_a_usage_error() {
    let out = project_with("{}").cmd(&["plan", "--profile", ""]).run();
    assert_eq!(out.code, 64, "{}", out.transcript());
}

#[test]
fn legacy_secrets_fields_still_work_and_the_warning_says_what_to_move() {
    // A profile.yaml of earlier versions: the platform's fields and cloud-secrets' old ones, with
    // no cloud-secrets.yaml.
    let legacy = "target: local\nsecrets:\n  secrets_path: ./secrets.json\n  source: file\n  \
                  remote: file:store.json\n  ignore: [LEGACY_*]\n  mass_removal_threshold: 0.25\n";
    let project = Project::empty().write(PROFILE, legacy).write(SECRETS, GOOD).write(
        ".systemprompt/profiles/dev/store.json",
        "{\"version\": 1, \"variables\": {\"LEGACY_WEBHOOK\": \"CANARY-legacy\"}}",
    );
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stdout.contains("remote file:.systemprompt/profiles/dev/store.json"), "{}", out.stdout);
    // The old `ignore` is in force: the variable it matches is left alone, not removed.
    assert!(out.stdout.contains("LEGACY_WEBHOOK") && out.stdout.contains("0 to remove"), "{}", out.stdout);
    let warning = out.stderr.lines().find(|l| l.starts_with("warning:")).unwrap_or_default();
    assert!(
        warning.starts_with("warning: .systemprompt/profiles/dev/profile.yaml:2:1: ")
            && warning.contains(
                "secrets.remote, secrets.ignore, secrets.mass_removal_threshold belong to cloud-secrets"
            )
            && warning.contains("the platform, which rejects a profile.yaml holding them")
            && warning.contains("Move them into .systemprompt/cloud-secrets.yaml"),
        "{}",
        out.stderr
    );
    let lines = "    profiles:\n      dev:\n        remote: file:profiles/dev/store.json\n        \
                 ignore: [LEGACY_*]\n        mass_removal_threshold: 0.25\n";
    assert!(out.stderr.contains(lines), "{}", out.stderr);

    // Doing as the warning says gives the same plan, and no warning.
    let moved: String = lines.lines().map(|l| format!("{}\n", &l[4..])).collect();
    let project = project
        .write(PROFILE, "target: local\nsecrets:\n  secrets_path: ./secrets.json\n  source: file\n")
        .write(SETTINGS, &moved);
    let after = project.cmd(&["plan"]).run();
    assert_eq!(after.code, 0, "{}", after.transcript());
    // (The heading of the ignored list may name where `ignore` is written; the rest is the same.)
    let plan =
        |stdout: &str| stdout.lines().filter(|l| !l.starts_with("Ignored (")).collect::<Vec<_>>().join("\n");
    assert_eq!(plan(&after.stdout), plan(&out.stdout));
    assert!(
        after.stdout.contains("LEGACY_WEBHOOK") && after.stdout.contains("0 to remove"),
        "{}",
        after.stdout
    );
    assert!(after.stderr.is_empty(), "{}", after.stderr);

    // A field that is neither the platform's nor an old one of cloud-secrets' is ignored, with
    // a warning at its line that the platform rejects it.
    let project = project_with(GOOD).write(
        PROFILE,
        "target: local\nsecrets:\n  secrets_path: ./secrets.json\n  source: file\n  bogus: x\n",
    );
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stderr.contains(
            "warning: .systemprompt/profiles/dev/profile.yaml:5:3: `secrets.bogus` is not a field the platform \
             defines; it rejects the profile as it is (cloud-secrets ignores the field)"
        ),
        "{}",
        out.stderr
    );
}
