//! `plan --all-profiles`: every profile planned in one report, in every format, one failure
//! not hiding the others.

use cloud_secrets_emulator::{Emulator, Listing};

use crate::support::{Project, snapshot};

const SETTINGS: &str = ".systemprompt/cloud-secrets.yaml";

#[test]
fn every_profile_is_planned_in_one_report_with_a_summary() {
    let project = Project::fixture("platform");
    // A warning, to see it said under its profile's name.
    let production = project.path(".systemprompt/secrets/production.secrets.json");
    std::fs::set_permissions(&production, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = project.cmd(&["plan", "--all-profiles"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "all_profiles_text", &out);
    assert!(out.stdout.contains("Profile local · remote file:"), "{}", out.stdout);
    assert!(out.stdout.contains("Profile production · remote file:"), "{}", out.stdout);
    assert!(out.stdout.contains("Profiles: 2 with changes, 0 without, 0 failed, 0 without a remote."));
    // Warnings say which profile they belong to.
    assert!(out.stderr.contains("== profile production"), "{}", out.stderr);

    let changes = project.cmd(&["plan", "--all-profiles", "--detailed-exitcode", "-q"]).run();
    assert_eq!(changes.code, 2, "{}", changes.transcript());
    assert!(!changes.stdout.contains("Changes (values"), "quiet shows the table alone: {}", changes.stdout);

    let markdown = project.cmd(&["plan", "--all-profiles", "--format", "markdown"]).run();
    assert_eq!(markdown.code, 0, "{}", markdown.transcript());
    snapshot(&project, "all_profiles_markdown", &markdown);
    let table = markdown.stdout.find("| Profile | Remote |").expect("a summary table");
    assert!(table < markdown.stdout.find("<details>").expect("folded sections"), "the table comes first");

    let json = project.cmd(&["plan", "--all-profiles", "--format", "json"]).run();
    assert_eq!(json.code, 0, "{}", json.transcript());
    snapshot(&project, "all_profiles_json", &json);
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    assert_eq!(document["kind"], "plan_all_profiles");
    assert_eq!(document["summary"]["profiles"], 2);
    let profiles = document["profiles"].as_array().unwrap();
    assert_eq!(
        profiles.iter().map(|p| p["profile"].as_str().unwrap()).collect::<Vec<_>>(),
        ["local", "production"]
    );
    assert!(profiles.iter().all(|p| p["status"] == "changes" && p["plan"]["kind"] == "plan"));

    // Applied, the profiles have nothing left to change.
    for profile in ["local", "production"] {
        let apply = project.cmd(&["apply", "--yes", "-q", "--profile", profile]).run();
        assert_eq!(apply.code, 0, "{}", apply.transcript());
    }
    let none = project.cmd(&["plan", "--all-profiles", "--detailed-exitcode"]).run();
    assert_eq!(none.code, 0, "{}", none.transcript());
    assert!(none.stdout.contains("Profiles: 0 with changes, 2 without"), "{}", none.stdout);
}

#[test]
fn a_failing_profile_does_not_hide_the_others() {
    let project = Project::fixture("platform").write(
        SETTINGS,
        "profiles:\n  local:\n    remote: file:profiles/local/store.json\n  production:\n    remote: \
         http://127.0.0.1:1\n",
    );
    let out = project.cmd(&["plan", "--all-profiles", "--detailed-exitcode"]).run();
    assert_eq!(out.code, 1, "a failure is exit 1 whatever else changes: {}", out.transcript());
    snapshot(&project, "all_profiles_one_failing", &out);
    assert!(out.stdout.contains("Profile local · remote file:"), "{}", out.stdout);
    assert!(out.stdout.contains("Profile production · not planned"), "{}", out.stdout);
    assert!(out.stdout.contains("1 with changes, 0 without, 1 failed"), "{}", out.stdout);
    let json = project.cmd(&["plan", "--all-profiles", "--format", "json"]).run();
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    assert_eq!(document["profiles"][1]["status"], "failed");
    assert!(document["profiles"][1]["error"]["message"].as_str().unwrap().contains("no API token"));
    assert!(document["profiles"][0]["plan"]["summary"]["add"].as_u64().unwrap() > 0, "the other is there");
    // A profile without a remote is listed, not planned.
    let unnamed = Project::fixture("platform")
        .write(SETTINGS, "profiles:\n  production:\n    remote: file:profiles/production/store.json\n");
    let out = unnamed.cmd(&["plan", "--all-profiles"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stdout.contains("1 with changes, 0 without, 0 failed, 1 without a remote"), "{}", out.stdout);
}

#[test]
fn all_profiles_refuses_a_single_profile_or_a_saved_plan() {
    let project = Project::fixture("platform");
    let out = project.cmd(&["plan", "--all-profiles", "--profile", "local"]).run();
    assert_eq!(out.code, 64, "{}", out.transcript());
    assert!(out.stderr.contains("--profile chooses one"), "{}", out.stderr);
    let out = project.cmd(&["plan", "--all-profiles", "--out", "plan.json"]).run();
    assert_eq!(out.code, 64, "{}", out.transcript());
    assert!(!project.path("plan.json").exists());
}

#[test]
fn all_profiles_plans_a_cloud_profile_against_the_emulator() {
    let token = "sp-CANARY-api-token-all-7c1e";
    let emulator = Emulator::start();
    emulator.set_listing(Listing::Digests);
    emulator.grant(token, &["acme"]);
    emulator.set_secrets("acme", &[]);
    let project = Project::fixture("cloud");
    let out = project
        .cmd(&["plan", "--all-profiles", "--format", "json"])
        .env("SYSTEMPROMPT_API_URL", &emulator.url())
        .env("SYSTEMPROMPT_API_TOKEN", token)
        .run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let document: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(document["profiles"][0]["profile"], "prod");
    assert_eq!(document["profiles"][0]["status"], "changes");
    assert!(document["profiles"][0]["remote"].as_str().unwrap().ends_with("tenant acme"));
}

#[test]
fn profiles_as_json_give_a_ci_matrix_with_where_each_remote_comes_from() {
    let project = Project::fixture("platform")
        .write(SETTINGS, "profiles:\n  local:\n    remote: file:profiles/local/store.json\n");
    let out = project.cmd(&["profiles", "--format", "json"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "profiles_json", &out);
    let document: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(document["kind"], "profiles");
    let local = &document["profiles"][0];
    assert_eq!((local["name"].as_str(), local["layout"].as_str()), (Some("local"), Some("folder")));
    assert_eq!(local["remote"], "file:profiles/local/store.json");
    assert_eq!(local["remote_from"], "cloud-secrets.yaml");
    let production = &document["profiles"][1];
    assert_eq!(production["target"], "cloud");
    assert_eq!(production["tenant"], "ten_01JACMEPRODUCTION0000000");
    assert_eq!(production["remote_from"], "target");
    // The session's active profile is the one a command would use.
    assert_eq!(production["selected"], true);
    assert_eq!(local["selected"], false);
}

#[test]
fn twenty_profiles_make_one_comment_with_a_table_and_a_folded_section_each() {
    let mut project = Project::fixture("platform");
    let yaml = project.read(".systemprompt/profiles/local/profile.yaml");
    let mut settings = String::from("profiles:\n");
    for i in 1..=20 {
        let name = format!("p{i:02}");
        project = project.write(
            &format!(".systemprompt/profiles/{name}/profile.yaml"),
            &yaml
                .replace("name: local", &format!("name: {name}"))
                .replace("./secrets.json", "../local/secrets.json"),
        );
        settings.push_str(&format!("  {name}:\n    remote: file:profiles/{name}/store.json\n"));
    }
    settings.push_str("  local:\n    remote: file:profiles/local/store.json\n");
    let project = project.write(SETTINGS, &settings);
    let out = project.cmd(&["plan", "--all-profiles", "--format", "markdown"]).run();
    // production (a cloud target without a token) fails; the twenty-one others are planned.
    assert_eq!(out.code, 1, "{}", out.transcript());
    let rows =
        out.stdout.lines().filter(|l| l.starts_with("| `p") && !l.starts_with("| `production")).count();
    assert_eq!(rows, 20, "{}", out.stdout);
    for i in 1..=20 {
        assert!(
            out.stdout.contains(&format!("<details><summary>Profile p{i:02}: ")),
            "p{i:02}: {}",
            out.stdout
        );
    }
    let table_end = out.stdout.find("<details>").unwrap();
    assert!(out.stdout[..table_end].lines().count() < 30, "the summary comes first, a line a profile");
}
