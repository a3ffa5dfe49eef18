//! Bad input and bad usage: a clear message with file, line and column and the fix; the right
//! exit code; never a panic (the harness fails any run that exits 101).

use crate::support::{Project, snapshot};

const SECRETS: &str = ".systemprompt/profiles/dev/secrets.json";

fn project_with(secrets: &str) -> Project {
    Project::empty()
        .write(".systemprompt/profiles/dev/profile.yaml", "secrets:\n  remote: file:store.json\n")
        .write(SECRETS, secrets)
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
fn a_missing_secrets_file_says_what_to_create() {
    let project = Project::empty()
        .write(".systemprompt/profiles/dev/profile.yaml", "secrets:\n  remote: file:s.json\n");
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 1);
    snapshot(&project, "secrets_missing", &out);
}

#[test]
fn a_bad_profile_yaml_is_located() {
    let project = project_with("{}").write(".systemprompt/profiles/dev/profile.yaml", "target: moon\n");
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 1);
    snapshot(&project, "profile_yaml_bad_target", &out);
    let project = project_with("{}")
        .write(".systemprompt/profiles/dev/profile.yaml", "secrets:\n  remote: s3://bucket\n");
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 1);
    snapshot(&project, "profile_yaml_unknown_remote", &out);
}

#[test]
fn a_damaged_store_is_an_error_that_does_not_quote_it() {
    let project = project_with("{\"jwt_secret\": \"CANARY-1\"}").write(
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
    snapshot(&project, "help", &out);
    let version = project.cmd(&["--version"]).run();
    assert_eq!(version.code, 0);
    assert!(version.stdout.starts_with("cloud-secrets "));
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
        let project = project_with("{}").write(".systemprompt/profiles/dev/profile.yaml", yaml);
        let out = project.cmd(&["plan"]).run();
        assert_eq!(out.code, 1, "{yaml}: {}", out.transcript());
        assert!(out.stderr.contains("profile.yaml:"), "{yaml}: {}", out.stderr);
    }
}

#[test]
fn files_that_are_not_regular_files_are_refused_instead_of_hanging() {
    for target in ["secrets.json", "profile.yaml", "store.json"] {
        let project = project_with("{\"jwt_secret\": \"CANARY-1\"}");
        let path = project.path(&format!(".systemprompt/profiles/dev/{target}"));
        let _ = std::fs::remove_file(&path);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let out = project.cmd(&["plan"]).run();
        assert_eq!(out.code, 1, "{target}: {}", out.transcript());
        assert!(out.stderr.contains("is not a regular file"), "{target}: {}", out.stderr);
    }
}

#[test]
fn an_empty_profile_argument_is_a_usage_error() {
    let out = project_with("{}").cmd(&["plan", "--profile", ""]).run();
    assert_eq!(out.code, 64, "{}", out.transcript());
}

#[test]
fn unknown_secrets_settings_are_warned_about() {
    let project = project_with("{}").write(
        ".systemprompt/profiles/dev/profile.yaml",
        "secrets:\n  remote: file:store.json\n  remtoe: x\n",
    );
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 0);
    assert!(out.stderr.contains("unknown field `secrets.remtoe` is ignored"), "{}", out.stderr);
}
