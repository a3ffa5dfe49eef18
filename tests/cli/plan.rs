//! `plan`: the redacted plan, profile and remote selection, output options.

use crate::support::{Project, snapshot};

#[test]
fn plan_against_a_missing_store_adds_every_key() {
    let project = Project::fixture("fresh");
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 0);
    snapshot(&project, "plan_fresh", &out);
    assert!(
        project.read_bytes(".systemprompt/profiles/production/store.json").is_none(),
        "plan wrote the store"
    );
}

#[test]
fn plan_shows_every_class_of_change() {
    let project = Project::fixture("drift");
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 0);
    snapshot(&project, "plan_drift", &out);
}

#[test]
fn detailed_exitcode_is_2_with_changes() {
    let project = Project::fixture("drift");
    let out = project.cmd(&["plan", "--detailed-exitcode", "-q"]).run();
    assert_eq!(out.code, 2, "{}", out.transcript());
    assert_eq!(out.stdout, "Plan: 2 to add, 1 to change, 1 to remove, 2 to clean up.\n");
}

#[test]
fn plan_works_from_any_directory_below_the_project_root() {
    let project = Project::fixture("drift").write("src/deep/er/.keep", "");
    let top = project.cmd(&["plan"]).run();
    let below = project.cmd(&["plan"]).cwd("src/deep/er").run();
    assert_eq!(below.code, 0, "{}", below.transcript());
    // Paths below the working directory are shown relative to it, others in full; the plan
    // itself is the same.
    let root = format!("{}/", project.root().display());
    let strip = |s: &str| s.replace(&root, "");
    assert_eq!(strip(&below.stdout), top.stdout);
}

#[test]
fn verbose_lists_unchanged_variables_and_the_choices_made() {
    let project = Project::fixture("drift");
    let out = project.cmd(&["plan", "-v"]).run();
    assert_eq!(out.code, 0);
    snapshot(&project, "plan_drift_verbose", &out);
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let project = Project::fixture("drift");
    let always = project.cmd(&["plan", "--color", "always"]).run();
    assert!(always.stdout.contains("\u{1b}[32m  + OAUTH_AT_REST_PEPPER"), "{}", always.stdout);
    let never = project.cmd(&["plan", "--color", "never"]).run();
    assert!(!never.stdout.contains('\u{1b}'));
    // Not a terminal, so `auto` means no colour; NO_COLOR does not override an explicit `always`.
    let auto = project.cmd(&["plan"]).run();
    assert!(!auto.stdout.contains('\u{1b}'));
    let forced = project.cmd(&["plan", "--color", "always"]).env("NO_COLOR", "1").run();
    assert!(forced.stdout.contains('\u{1b}'));
    // Uncoloured output is the coloured output without escapes: symbols carry the meaning.
    let stripped = console::strip_ansi_codes(&always.stdout);
    assert_eq!(stripped, never.stdout);
}

#[test]
fn several_profiles_need_a_choice() {
    // A folder without profile.yaml is not a profile: staging is still the only one.
    let project = Project::fixture("drift").write(".systemprompt/profiles/other/secrets.json", "{}");
    let only = project.cmd(&["plan", "-q"]).run();
    assert_eq!(only.code, 0, "{}", only.transcript());
    let project = project.write(".systemprompt/profiles/other/profile.yaml", "target: local\n");
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 1);
    snapshot(&project, "plan_two_profiles_no_choice", &out);

    let by_env = project.cmd(&["plan", "-q"]).env("SYSTEMPROMPT_PROFILE", "staging").run();
    assert_eq!(by_env.code, 0, "{}", by_env.transcript());
    let by_flag =
        project.cmd(&["plan", "-q", "--profile", "staging"]).env("SYSTEMPROMPT_PROFILE", "other").run();
    assert_eq!(by_flag.stdout, by_env.stdout, "--profile wins over SYSTEMPROMPT_PROFILE");
}

#[test]
fn a_profile_can_be_named_by_path() {
    let project = Project::fixture("drift");
    let by_dir = project.cmd(&["plan", "-q", "--profile", "./.systemprompt/profiles/staging"]).run();
    let by_yaml =
        project.cmd(&["plan", "-q", "--profile", ".systemprompt/profiles/staging/profile.yaml"]).run();
    let by_home = project.cmd(&["plan", "-q", "--profile", "~/.systemprompt/profiles/staging"]).run();
    assert_eq!(by_dir.code, 0, "{}", by_dir.transcript());
    assert_eq!(by_yaml.stdout, by_dir.stdout);
    assert_eq!(by_home.stdout, by_dir.stdout);
    assert!(by_dir.stdout.starts_with("Plan: 2 to add"), "{}", by_dir.stdout);
}

#[test]
fn an_unknown_profile_lists_the_real_ones() {
    let project = Project::fixture("drift");
    let out = project.cmd(&["plan", "--profile", "prod"]).run();
    assert_eq!(out.code, 1);
    snapshot(&project, "plan_unknown_profile", &out);
}

#[test]
fn remote_flag_overrides_cloud_secrets_yaml_and_is_relative_to_the_working_directory() {
    let project = Project::fixture("drift").value_file("elsewhere.json");
    let out = project.cmd(&["plan", "--remote", "file:elsewhere.json"]).run();
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("remote file:elsewhere.json"), "{}", out.stdout);
    // The other store is empty, so everything is an addition.
    assert!(
        out.stdout.contains("Plan: 6 to add, 0 to change, 0 to remove, 0 to clean up."),
        "{}",
        out.stdout
    );
    let applied = project.cmd(&["apply", "--yes", "-q", "--remote", "file:elsewhere.json"]).run();
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    assert!(project.read("elsewhere.json").contains("sk-CANARY-openai-new-5e8f"));
    assert!(project.read(".systemprompt/profiles/staging/store.json").contains("sk-CANARY-openai-old-0d4c"));
}

#[test]
fn a_profile_without_a_remote_says_how_to_name_one() {
    let project = Project::empty()
        .write(".systemprompt/profiles/dev/profile.yaml", "target: local\n")
        .write(".systemprompt/profiles/dev/secrets.json", "{\"jwt_secret\": \"CANARY-x\"}");
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 1);
    snapshot(&project, "plan_no_remote", &out);
}

#[test]
fn outside_a_project_the_error_says_where_it_looked() {
    let project = Project::empty();
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 1);
    snapshot(&project, "plan_outside_project", &out);
    // .systemprompt/ alone, without Cargo.toml, services/ or storage/ beside it, is no project.
    let unmarked = Project::bare().write(".systemprompt/profiles/dev/profile.yaml", "target: local\n");
    let out = unmarked.cmd(&["plan"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr.contains("error: no systemprompt project in . or any parent directory"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_profile_yaml_named_by_path_is_the_one_read() {
    // custom.yaml is profile `custom`: its secrets_path and its section of cloud-secrets.yaml.
    let project = Project::fixture("drift")
        .value_file(".systemprompt/profiles/staging/other-store.json")
        .write(
            ".systemprompt/profiles/staging/custom.yaml",
            "target: local\nsecrets:\n  secrets_path: ./custom-secrets.json\n  source: file\n",
        )
        .write(
            ".systemprompt/profiles/staging/custom-secrets.json",
            "{\"oauth_at_rest_pepper\": \"CANARY-custom-pepper-0123456789abcdef01\", \"database_url\": \"postgres://a:CANARY-c@h/d\"}\n",
        )
        .write(
            ".systemprompt/cloud-secrets.yaml",
            "profiles:\n  staging:\n    remote: file:profiles/staging/store.json\n  custom:\n    remote: file:profiles/staging/other-store.json\n",
        );
    let out = project.cmd(&["plan", "--profile", ".systemprompt/profiles/staging/custom.yaml"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout
            .starts_with("Profile custom · remote file:.systemprompt/profiles/staging/other-store.json"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Plan: 2 to add, 0 to change, 0 to remove, 0 to clean up."),
        "{}",
        out.stdout
    );
    let applied = project
        .cmd(&["apply", "--yes", "-q", "--profile", ".systemprompt/profiles/staging/custom.yaml"])
        .run();
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    let written = project.read(".systemprompt/profiles/staging/other-store.json");
    assert!(
        written.contains("CANARY-custom-pepper-0123456789abcdef01"),
        "custom-secrets.json was not the one read"
    );
    assert!(!written.contains("OPENAI_API_KEY"), "staging's secrets.json was read");
    // The flat layout keeps its state files beside it, prefixed with the profile's name.
    let saved = project
        .cmd(&["plan", "-q", "--out", "plan.json", "--profile", ".systemprompt/profiles/staging/custom.yaml"])
        .run();
    assert_eq!(saved.code, 0, "{}", saved.transcript());
    assert!(project.path(".systemprompt/profiles/staging/custom.plan-key").exists());
    assert!(
        !project.path(".systemprompt/profiles/staging/plan-key").exists(),
        "staging's state file was used"
    );
}

#[test]
fn a_reader_that_goes_away_does_not_change_the_outcome_of_plan() {
    let project = Project::fixture("drift");
    let out = project.cmd(&["plan", "--detailed-exitcode"]).closed_stdout().run();
    assert_eq!(out.code, 2, "{}", out.transcript());
    let out = project.cmd(&["plan"]).closed_stdout().run();
    assert_eq!(out.code, 0, "{}", out.transcript());
}
