//! `compare A B`: two profiles by variable name, values never shown, in every format; the
//! desired states, and the remotes (local stores, the cloud emulator).

use cloud_secrets_emulator::{Emulator, Listing};

use crate::support::{Project, snapshot};

const SETTINGS: &str = ".systemprompt/cloud-secrets.yaml";
/// Both profiles of the platform fixture on local stores.
const BOTH_LOCAL: &str = "profiles:\n  local:\n    remote: file:profiles/local/store.json\n  production:\n    \
                          remote: file:profiles/production/store.json\n";

fn result_of<'a>(document: &'a serde_json::Value, name: &str) -> &'a str {
    document["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("{name} not compared"))["result"]
        .as_str()
        .unwrap()
}

#[test]
fn two_desired_states_are_compared_by_name_without_a_value() {
    let project = Project::fixture("platform");
    let out = project.cmd(&["compare", "local", "production"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "compare_desired_text", &out);
    let markdown = project.cmd(&["compare", "local", "production", "--format", "markdown"]).run();
    snapshot(&project, "compare_desired_markdown", &markdown);

    let json =
        project.cmd(&["compare", "local", "production", "--format", "json", "--detailed-exitcode"]).run();
    assert_eq!(json.code, 2, "they differ: {}", json.transcript());
    snapshot(&project, "compare_desired_json", &json);
    let document: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(document["kind"], "compare");
    assert_eq!(document["of"], "desired");
    assert_eq!(result_of(&document, "ANTHROPIC_API_KEY"), "different");
    assert_eq!(result_of(&document, "EXTERNAL_DATABASE_URL"), "only_in_a");
    assert_eq!(result_of(&document, "GITHUB_TOKEN"), "only_in_b");
    assert_eq!(result_of(&document, "OPENAI_API_KEY"), "not_set");
    assert_eq!(document["summary"]["differ"], true);

    // A profile against a copy of itself: the same, exit 0 under --detailed-exitcode.
    let same = Project::fixture("platform").write(
        ".systemprompt/profiles/copy/profile.yaml",
        &std::fs::read_to_string(
            Project::fixture("platform").path(".systemprompt/profiles/local/profile.yaml"),
        )
        .unwrap()
        .replace("name: local", "name: copy")
        .replace("./secrets.json", "../local/secrets.json"),
    );
    let out = same.cmd(&["compare", "local", "copy", "--detailed-exitcode"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stdout.contains(", 0 different, 0 only in local, 0 only in copy"), "{}", out.stdout);

    let itself = project.cmd(&["compare", "local", "local"]).run();
    assert_eq!(itself.code, 64, "{}", itself.transcript());
}

#[test]
fn two_remotes_are_compared_where_they_can_be_read_or_digested() {
    let project = Project::fixture("platform").write(SETTINGS, BOTH_LOCAL);
    for profile in ["local", "production"] {
        let apply = project.cmd(&["apply", "--yes", "-q", "--profile", profile]).run();
        assert_eq!(apply.code, 0, "{}", apply.transcript());
    }
    let out = project.cmd(&["compare", "local", "production", "--remotes", "--format", "json"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let document: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(document["of"], "remotes");
    assert!(document["a"]["remote"].as_str().unwrap().contains("profiles/local/store.json"));
    assert_eq!(result_of(&document, "ANTHROPIC_API_KEY"), "different");
    assert_eq!(result_of(&document, "GITHUB_TOKEN"), "only_in_b");

    // The same value on both remotes is the same, whatever the names of the profiles.
    let store = project.path(".systemprompt/profiles/production/store.json");
    let mut held: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&store).unwrap()).unwrap();
    let local: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(project.path(".systemprompt/profiles/local/store.json")).unwrap(),
    )
    .unwrap();
    held["variables"]["ANTHROPIC_API_KEY"] = local["variables"]["ANTHROPIC_API_KEY"].clone();
    std::fs::write(&store, serde_json::to_string_pretty(&held).unwrap()).unwrap();
    let out = project.cmd(&["compare", "local", "production", "--remotes", "--format", "json"]).run();
    let document: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(result_of(&document, "ANTHROPIC_API_KEY"), "same");
}

#[test]
fn a_remote_that_lists_names_only_is_said_not_comparable() {
    let token = "sp-CANARY-api-token-compare-4d2a";
    let emulator = Emulator::start();
    emulator.set_listing(Listing::NamesOnly);
    emulator.grant(token, &["ten_01JACMEPRODUCTION0000000"]);
    emulator
        .set_secrets("ten_01JACMEPRODUCTION0000000", &[("ANTHROPIC_API_KEY", "sk-ant-CANARY-remote-9a1b")]);
    // production's target is the cloud: without a remote in the settings, it is the tenant.
    let project = Project::fixture("platform")
        .write(SETTINGS, "profiles:\n  local:\n    remote: file:profiles/local/store.json\n");
    let local = project.cmd(&["apply", "--yes", "-q", "--profile", "local"]).run();
    assert_eq!(local.code, 0, "{}", local.transcript());
    let out = project
        .cmd(&["compare", "local", "production", "--remotes"])
        .env("SYSTEMPROMPT_API_URL", &emulator.url())
        .env("SYSTEMPROMPT_API_TOKEN", token)
        .run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "compare_remotes_names_only", &out);
    assert!(out.stdout.contains("ANTHROPIC_API_KEY"), "{}", out.stdout);
    assert!(out.stdout.contains("unreadable"), "{}", out.stdout);
    assert!(out.stdout.contains("1 not comparable"), "{}", out.stdout);
}
