//! Plans for machines and reviewers: JSON checked against the schema in docs/, Markdown, and
//! saved plan files with every way they can go stale.

use cloud_secrets_emulator::{Emulator, Listing};

use crate::support::{Input, Outcome, Project, snapshot};

const STORE: &str = ".systemprompt/profiles/staging/store.json";
const SECRETS: &str = ".systemprompt/profiles/staging/secrets.json";

/// Validates a document against docs/plan.schema.json, and returns it parsed.
fn valid(text: &str) -> serde_json::Value {
    let schema_text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/plan.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&schema_text).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let document: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"));
    let errors: Vec<String> =
        validator.iter_errors(&document).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "the document breaks the schema:\n{}\n{text}", errors.join("\n"));
    document
}

fn json_of(out: &Outcome) -> serde_json::Value {
    valid(&out.stdout)
}

#[test]
fn plan_json_follows_the_schema_and_describes_each_change() {
    let project = Project::fixture("drift");
    let out = project.cmd(&["plan", "--format", "json"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let doc = json_of(&out);
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["kind"], "plan");
    let changes: Vec<(String, String)> = doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["action"].as_str().unwrap().to_owned(), c["variable"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        changes,
        [
            ("add".into(), "INTERNAL_DATABASE_URL".into()),
            ("add".into(), "OAUTH_AT_REST_PEPPER".into()),
            ("change".into(), "OPENAI_API_KEY".into()),
            ("remove".into(), "LEGACY_WEBHOOK_SECRET".into()),
            ("cleanup".into(), "FLY_APP_NAME".into()),
            ("cleanup".into(), "SYSTEMPROMPT_API_URL".into()),
        ]
    );
    assert_eq!(doc["changes"][0]["key"], "internal_database_url");
    assert_eq!(doc["changes"][2]["key"], "openai");
    assert_eq!(doc["changes"][2]["source"], "file");
    assert_eq!(doc["changes"][2]["comparison"], "differs");
    assert_eq!(doc["changes"][4]["class"], "system_managed");
    assert_eq!(doc["changes"][5]["class"], "stale");
    assert_eq!(doc["summary"]["add"], 2);
    assert_eq!(doc["summary"]["cleanup"], 2);
    snapshot(&project, "json_plan_drift", &out);
    // --detailed-exitcode works the same in every format.
    let code = project.cmd(&["plan", "--format", "json", "--detailed-exitcode"]).run().code;
    assert_eq!(code, 2);
}

#[test]
fn json_records_the_source_of_overridden_values_and_what_could_not_be_compared() {
    let project = Project::fixture("fresh").write(".env", "OPENAI_API_KEY=sk-CANARY-dotenv-json\n").write(
        ".systemprompt/cloud-secrets.yaml",
        "profiles:\n  production:\n    remote: file:profiles/production/store.json\n    dotenv: ../.env\n",
    );
    let out =
        project.cmd(&["plan", "--format", "json"]).env("ANTHROPIC_API_KEY", "sk-ant-CANARY-env-json").run();
    let doc = json_of(&out);
    let source_of = |name: &str| {
        doc["changes"].as_array().unwrap().iter().find(|c| c["variable"] == name).unwrap()["source"].clone()
    };
    assert_eq!(source_of("OPENAI_API_KEY"), "dotenv");
    assert_eq!(source_of("ANTHROPIC_API_KEY"), "environment");
    assert_eq!(source_of("SYSTEMPROMPT_CUSTOM_SECRETS"), "derived");

    let emulator = Emulator::start();
    emulator.set_listing(Listing::NamesOnly);
    emulator.grant_all("sp-CANARY-api-token-4f2a9c71");
    emulator.set_secrets("acme", &[("JWT_SECRET", "CANARY-remote-jwt")]);
    let cloud = Project::fixture("cloud");
    let out = cloud.cmd(&["plan", "--format", "json"]).env("SYSTEMPROMPT_API_URL", &emulator.url()).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let doc = json_of(&out);
    let jwt =
        doc["changes"].as_array().unwrap().iter().find(|c| c["variable"] == "JWT_SECRET").unwrap().clone();
    assert_eq!(jwt["comparison"], "unverifiable");
    assert_eq!(jwt["verified"], false);
    assert_eq!(doc["summary"]["unverified"], 1);
}

#[test]
fn apply_json_reports_the_outcome_of_each_change() {
    let project = Project::fixture("drift");
    let out = project.cmd(&["apply", "--yes", "--format", "json"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let doc = json_of(&out);
    assert_eq!(doc["kind"], "apply");
    assert_eq!(doc["result"]["status"], "applied");
    assert_eq!(doc["result"]["revision"], 8);
    assert!(doc["changes"].as_array().unwrap().iter().all(|c| c["outcome"] == "applied"));
    // Nothing left to do: still one document.
    let again = project.cmd(&["apply", "--yes", "--format", "json"]).run();
    let doc = json_of(&again);
    assert_eq!(doc["result"]["status"], "nothing_to_do");
    assert!(doc["changes"].as_array().unwrap().is_empty());
}

#[test]
fn a_machine_format_asks_with_the_plan_on_stderr_and_keeps_stdout_one_document() {
    let project = Project::fixture("drift");
    let before = project.read_bytes(STORE).unwrap();
    let declined = project.cmd(&["apply", "--format", "json"]).input(Input::Tty("n\n".into())).run();
    assert_eq!(declined.code, 4);
    assert!(declined.stdout.is_empty(), "{}", declined.stdout);
    assert!(declined.stderr.contains("  ~ OPENAI_API_KEY"), "{}", declined.stderr);
    assert_eq!(project.read_bytes(STORE).unwrap(), before);
    let confirmed = project.cmd(&["apply", "--format", "json"]).input(Input::Tty("y\n".into())).run();
    assert_eq!(confirmed.code, 0, "{}", confirmed.transcript());
    assert_eq!(json_of(&confirmed)["result"]["status"], "applied");
}

#[test]
fn markdown_for_pull_requests() {
    let project = Project::fixture("drift");
    let out = project.cmd(&["plan", "--format", "markdown"]).run();
    assert_eq!(out.code, 0);
    snapshot(&project, "markdown_plan_drift", &out);
    let nothing = Project::fixture("drift");
    assert_eq!(nothing.cmd(&["apply", "--yes", "-q"]).run().code, 0);
    let out = nothing.cmd(&["plan", "--format", "markdown"]).run();
    snapshot(&nothing, "markdown_plan_no_changes", &out);

    // Long lists are folded.
    let many: String = (0..14).map(|i| format!("  \"custom_{i:02}\": \"CANARY-many-{i}\",\n")).collect();
    let big = Project::fixture("fresh")
        .write(".systemprompt/profiles/production/secrets.json", &format!("{{\n{many}  \"oauth_at_rest_pepper\": \"CANARY-pepper-0123456789abcdef0123456789abcdef\",\n  \"database_url\": \"postgres://a:CANARY-b@c/d\"\n}}\n"));
    let out = big.cmd(&["plan", "--format", "markdown"]).run();
    assert!(out.stdout.contains("<details><summary>Additions and changes (17)</summary>"), "{}", out.stdout);
    snapshot(&big, "markdown_plan_folded", &out);
}

#[test]
fn a_saved_plan_applies_exactly_as_reviewed() {
    let project = Project::fixture("drift");
    let out = project.cmd(&["plan", "--out", "plan.json"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let saved = valid(&project.read("plan.json"));
    assert_eq!(saved["saved_plan_version"], 1);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(project.path("plan.json")).unwrap().permissions().mode() & 0o777, 0o600);

    let shown = project.cmd(&["show", "plan.json"]).run();
    assert_eq!(shown.code, 0);
    let direct = project.cmd(&["plan"]).run();
    assert_eq!(shown.stdout, direct.stdout, "show renders the saved plan as plan does");
    let shown_json = project.cmd(&["show", "plan.json", "--format", "json"]).run();
    assert_eq!(valid(&shown_json.stdout), saved["plan"]);

    // No terminal, no --yes: a saved plan needs neither.
    let applied = project.cmd(&["apply", "plan.json"]).run();
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    snapshot(&project, "apply_saved_plan", &applied);
    let after = project.cmd(&["plan", "--detailed-exitcode", "-q"]).run();
    assert_eq!(after.code, 0, "{}", after.transcript());
    // Applied once, the plan is stale: the remote moved.
    let twice = project.cmd(&["apply", "plan.json"]).run();
    assert_eq!(twice.code, 3, "{}", twice.transcript());
}

/// Saves a plan of the drift fixture, lets `meanwhile` change something, and checks that
/// `apply plan.json` exits 3 with `expected` in its message and the store untouched.
fn stale_case(name: &str, meanwhile: impl FnOnce(&Project) -> Vec<&'static str>, expected: &str) {
    let project = Project::fixture("drift")
        .write(".systemprompt/profiles/other/secrets.json", "{\"jwt_secret\": \"CANARY-other-jwt\"}\n")
        .write(".systemprompt/profiles/other/profile.yaml", "target: local\n")
        .write(
            ".systemprompt/cloud-secrets.yaml",
            "profiles:\n  staging:\n    remote: file:profiles/staging/store.json\n    dotenv: ../.env\n  \
             other:\n    remote: file:profiles/staging/store.json\n",
        )
        .write(".env", "# overrides, written by some cases\n");
    assert_eq!(project.cmd(&["plan", "--profile", "staging", "--out", "plan.json", "-q"]).run().code, 0);
    let args = meanwhile(&project);
    let before = project.read_bytes(STORE).unwrap();
    let out = project.cmd(&args).run();
    assert_eq!(out.code, 3, "{name}: {}", out.transcript());
    assert!(out.stderr.contains(expected), "{name}: {}", out.stderr);
    assert_eq!(project.read_bytes(STORE).unwrap(), before, "{name}: the store changed");
    snapshot(&project, &format!("saved_plan_stale_{name}"), &out);
}

#[test]
fn a_stale_saved_plan_is_refused_and_says_why() {
    stale_case(
        "desired_changed",
        |p| {
            let edited = p.read(SECRETS).replace("sk-CANARY-openai-new-5e8f", "sk-CANARY-openai-newer-1b2c");
            std::fs::write(p.path(SECRETS), edited).unwrap();
            vec!["apply", "--profile", "staging", "plan.json"]
        },
        "the desired state changed since the plan was saved",
    );
    stale_case(
        "dotenv_changed",
        |p| {
            std::fs::write(p.path(".env"), "OPENAI_API_KEY=sk-CANARY-from-dotenv-5d6e\n").unwrap();
            vec!["apply", "--profile", "staging", "plan.json"]
        },
        "the desired state changed since the plan was saved",
    );
    stale_case(
        "remote_changed",
        |p| {
            let edited = p.read(STORE).replace("CANARY-legacy-2a9d", "CANARY-legacy-edited-3f4a");
            std::fs::write(p.path(STORE), edited).unwrap();
            vec!["apply", "--profile", "staging", "plan.json"]
        },
        "changed since the plan was saved",
    );
    stale_case(
        "other_profile",
        |_| vec!["apply", "--profile", "other", "plan.json"],
        "the saved plan was made for the profile in",
    );
    stale_case(
        "other_remote",
        |_| vec!["apply", "--profile", "staging", "--remote", "file:elsewhere.json", "plan.json"],
        "the saved plan was made for the remote",
    );
    stale_case(
        "edited_by_hand",
        |p| {
            let edited = p.read("plan.json").replacen(
                "\"variable\": \"LEGACY_WEBHOOK_SECRET\"",
                "\"variable\": \"CUSTOM_API_KEY\"",
                1,
            );
            std::fs::write(p.path("plan.json"), edited).unwrap();
            vec!["apply", "--profile", "staging", "plan.json"]
        },
        "was changed after it was written",
    );
}

#[test]
fn every_command_that_shows_a_plan_prints_schema_valid_json() {
    let project = Project::fixture("drift");
    for args in [
        &["set", "openai=sk-CANARY-json-set", "--yes", "--format", "json"][..],
        &["unset", "LEGACY_WEBHOOK_SECRET", "--yes", "--format", "json"],
        &["cleanup", "--yes", "--format", "json"],
        &["cleanup", "--yes", "--format", "json"],
        &["sync", "--yes", "--format", "json"],
    ] {
        let out = project.cmd(args).run();
        assert_eq!(out.code, 0, "{args:?}: {}", out.transcript());
        let doc = json_of(&out);
        assert_eq!(doc["kind"], "apply", "{args:?}");
    }
    let md = project.cmd(&["cleanup", "--yes", "--format", "markdown"]).run();
    assert!(md.stdout.starts_with("### cloud-secrets plan"), "{}", md.stdout);
}

#[test]
fn plan_out_replaces_a_saved_plan_but_nothing_else() {
    let project = Project::fixture("drift");
    let out = project.cmd(&["plan", "-q", "--out", SECRETS]).run();
    assert_eq!(out.code, 64, "{}", out.transcript());
    assert!(out.stderr.contains("exists and is not a saved plan"), "{}", out.stderr);
    assert!(project.read(SECRETS).contains("sk-CANARY-openai-new-5e8f"), "secrets.json was overwritten");
    assert_eq!(project.cmd(&["plan", "-q", "--out", "plan.json"]).run().code, 0);
    assert_eq!(
        project.cmd(&["plan", "-q", "--out", "plan.json"]).run().code,
        0,
        "a saved plan may be replaced"
    );
}

#[test]
fn a_saved_plan_is_keyed_apart_from_the_file() {
    let project = Project::fixture("drift");
    assert_eq!(project.cmd(&["plan", "-q", "--out", "plan.json"]).run().code, 0);
    let key = project.path(".systemprompt/profiles/staging/plan-key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    // Another key (as on another machine without CLOUD_SECRETS_PLAN_KEY) cannot vouch for it.
    let before = project.read_bytes(STORE).unwrap();
    let out = project
        .cmd(&["apply", "plan.json"])
        .env("CLOUD_SECRETS_PLAN_KEY", "another-key-of-enough-length")
        .run();
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert!(out.stderr.contains("made with another plan key"), "{}", out.stderr);
    std::fs::remove_file(&key).unwrap();
    let out = project.cmd(&["apply", "plan.json"]).run();
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert!(out.stderr.contains("there is no plan key"), "{}", out.stderr);
    assert_eq!(project.read_bytes(STORE).unwrap(), before);
    // A shared key, as a pipeline passes it to both jobs, works across machines.
    let shared = [("CLOUD_SECRETS_PLAN_KEY", "a-key-shared-by-both-jobs")];
    assert_eq!(
        project.cmd(&["plan", "-q", "--out", "plan.json"]).env(shared[0].0, shared[0].1).run().code,
        0
    );
    let out = project.cmd(&["apply", "plan.json"]).env(shared[0].0, shared[0].1).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
}
