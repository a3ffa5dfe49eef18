//! `apply` and `sync`: confirmation, the local store, and what is reported.

use crate::support::{Input, Project, snapshot};

const STORE: &str = ".systemprompt/profiles/staging/store.json";
const FRESH_STORE: &str = ".systemprompt/profiles/production/store.json";
const SECRETS: &str = ".systemprompt/profiles/staging/secrets.json";
const SETTINGS: &str = ".systemprompt/cloud-secrets.yaml";

#[test]
fn plan_apply_plan_exits_2_0_0_and_converges() {
    let project = Project::fixture("fresh");
    let first = project.cmd(&["plan", "--detailed-exitcode"]).run();
    assert_eq!(first.code, 2, "{}", first.transcript());
    let apply = project.cmd(&["apply", "--yes"]).run();
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    snapshot(&project, "apply_fresh_yes", &apply);
    let second = project.cmd(&["plan", "--detailed-exitcode"]).run();
    assert_eq!(second.code, 0, "{}", second.transcript());
    snapshot(&project, "plan_fresh_after_apply", &second);

    // The store holds exactly the desired variables, mode 0600, at version 1.
    let store: serde_json::Value = serde_json::from_str(&project.read(FRESH_STORE)).unwrap();
    assert_eq!(store["version"], 1);
    let names: Vec<&String> = store["variables"].as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        [
            "ANTHROPIC_API_KEY",
            "DATABASE_URL",
            "MOLTBOOK_BUILDER",
            "OAUTH_AT_REST_PEPPER",
            "OPENAI_API_KEY",
            "SYSTEMPROMPT_CUSTOM_SECRETS"
        ]
    );
    // The custom list names what the deploy step writes beyond the standard six.
    assert_eq!(store["variables"]["SYSTEMPROMPT_CUSTOM_SECRETS"], "MOLTBOOK_BUILDER");
    assert_eq!(store["variables"]["OAUTH_AT_REST_PEPPER"], "CANARY-pepper-fresh-7d2e4c9a1b3f5e8d0c6a");
    assert_eq!(store["variables"]["OPENAI_API_KEY"], "sk-CANARY-openai-93d1");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(project.path(FRESH_STORE)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn without_a_terminal_and_without_yes_nothing_changes_and_exit_is_4() {
    let project = Project::fixture("drift");
    let before = project.read_bytes(STORE).unwrap();
    let out = project.cmd(&["apply"]).run();
    assert_eq!(out.code, 4);
    snapshot(&project, "apply_no_terminal", &out);
    assert_eq!(project.read_bytes(STORE).unwrap(), before, "the store changed");

    let piped = project.cmd(&["apply"]).input(Input::Pipe("y\n".into())).run();
    assert_eq!(piped.code, 4, "a `y` on a pipe is not a confirmation");
    assert_eq!(project.read_bytes(STORE).unwrap(), before);
}

#[test]
fn ci_never_prompts_even_on_a_terminal() {
    let project = Project::fixture("drift");
    let before = project.read_bytes(STORE).unwrap();
    let out = project.cmd(&["apply"]).env("CI", "true").input(Input::Tty("y\n".into())).run();
    assert_eq!(out.code, 4, "{}", out.transcript());
    assert_eq!(project.read_bytes(STORE).unwrap(), before);
}

#[test]
fn yes_on_the_terminal_applies() {
    let project = Project::fixture("drift");
    let out = project.cmd(&["apply"]).input(Input::Tty("y\n".into())).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "apply_drift_confirmed", &out);
    let after = project.cmd(&["plan", "--detailed-exitcode"]).run();
    assert_eq!(after.code, 0, "{}", after.transcript());

    let store: serde_json::Value = serde_json::from_str(&project.read(STORE)).unwrap();
    assert_eq!(store["version"], 8);
    let vars = store["variables"].as_object().unwrap();
    // Deploy-owned and kept (not set here) variables are untouched; cleanup and removal happened.
    assert_eq!(vars["SYSTEMPROMPT_API_TOKEN"], "CANARY-deploy-token-remote-4a7b");
    assert_eq!(vars["SIGNING_KEY_PEM"], "CANARY-signing-key-remote-6e1f");
    assert_eq!(vars["GITHUB_TOKEN"], "CANARY-github-remote-3b6c");
    for gone in ["FLY_APP_NAME", "SYSTEMPROMPT_API_URL", "LEGACY_WEBHOOK_SECRET"] {
        assert!(!vars.contains_key(gone), "{gone} is still there");
    }
    assert_eq!(vars["OPENAI_API_KEY"], "sk-CANARY-openai-new-5e8f");
    // internal_database_url is written under both names the runtime reads.
    let internal = "postgres://app:CANARY-internal-db-4d2e@10.0.0.5:5432/app";
    assert_eq!(vars["INTERNAL_DATABASE_URL"], internal);
    assert_eq!(vars["DATABASE_URL"], internal);
    assert_eq!(vars["OAUTH_AT_REST_PEPPER"], "CANARY-pepper-0e5b7d3a9c1f4e6b8a2d0c7e5f3a1b9d");
}

#[test]
fn any_other_answer_declines_with_exit_4_and_nothing_written() {
    for (answer, name) in
        [("n\n", "apply_declined_n"), ("\n", "apply_declined_empty"), ("yep\n", "apply_declined_yep")]
    {
        let project = Project::fixture("drift");
        let before = project.read_bytes(STORE).unwrap();
        let out = project.cmd(&["apply"]).input(Input::Tty(answer.into())).run();
        assert_eq!(out.code, 4, "{answer:?}: {}", out.transcript());
        assert_eq!(project.read_bytes(STORE).unwrap(), before, "{answer:?}");
        snapshot(&project, name, &out);
    }
}

#[test]
fn sync_is_apply() {
    let applied = Project::fixture("drift");
    let synced = Project::fixture("drift");
    let a = applied.cmd(&["apply", "--yes"]).run();
    let s = synced.cmd(&["sync", "--yes"]).run();
    assert_eq!((a.code, &a.stdout, &a.stderr), (s.code, &s.stdout, &s.stderr));
    assert_eq!(applied.read(STORE), synced.read(STORE));
    let declined = synced.cmd(&["sync"]).run();
    assert_eq!(declined.code, 0, "nothing left to change: no question, exit 0");
}

#[test]
fn nothing_to_change_exits_0_without_asking() {
    let project = Project::fixture("drift");
    assert_eq!(project.cmd(&["apply", "--yes", "-q"]).run().code, 0);
    let before = project.read_bytes(STORE).unwrap();
    let out = project.cmd(&["apply"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "apply_nothing_to_do", &out);
    assert_eq!(project.read_bytes(STORE).unwrap(), before, "a no-op apply rewrote the store");
}

#[test]
fn every_write_bumps_the_version_and_leaves_no_temporary_files() {
    let project = Project::fixture("fresh");
    assert_eq!(project.cmd(&["apply", "--yes", "-q"]).run().code, 0);
    let secrets = ".systemprompt/profiles/production/secrets.json";
    let edited = project.read(secrets).replace("\"gemini\": \"\"", "\"gemini\": \"AIzaCANARY-gemini-1f0a\"");
    let project = project.write(secrets, &edited);
    let out = project.cmd(&["apply", "--yes"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout.contains("Plan: 1 to add, 0 to change, 0 to remove, 0 to clean up."),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("(now at version 2)"), "{}", out.stdout);
    let names: Vec<String> = std::fs::read_dir(project.path(".systemprompt/profiles/production"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn quiet_apply_prints_the_summary_and_the_result_only() {
    let project = Project::fixture("drift");
    let out = project.cmd(&["apply", "--yes", "-q"]).run();
    assert_eq!(out.code, 0);
    snapshot(&project, "apply_quiet", &out);
}

#[test]
fn a_store_changed_between_plan_and_confirmation_is_not_written() {
    let project = Project::fixture("drift");
    let edited = r#"{"version": 7, "variables": {"OPENAI_API_KEY": "sk-CANARY-edited-by-hand-77aa"}}"#;
    let out = project.cmd(&["apply"]).run_answering("y\n", || {
        std::fs::write(project.path(STORE), edited).unwrap();
    });
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert_eq!(project.read(STORE), edited, "apply wrote over a store that changed after the plan");
    snapshot(&project, "apply_store_changed_meanwhile", &out);
}

#[test]
fn a_second_apply_waits_for_the_lock_then_names_the_holder() {
    use std::io::Write;
    let project = Project::fixture("drift");
    let before = project.read_bytes(STORE).unwrap();
    let mut lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(project.path(&format!("{STORE}.lock")))
        .unwrap();
    lock.lock().unwrap();
    write!(lock, "4242").unwrap();
    let started = std::time::Instant::now();
    let out = project.cmd(&["apply", "--yes", "--lock-timeout", "1"]).run();
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "it did not wait");
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr.contains("Waiting up to 1s for another cloud-secrets process (pid 4242)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("is locked by another cloud-secrets process (pid 4242)"), "{}", out.stderr);
    assert_eq!(project.read_bytes(STORE).unwrap(), before);
    drop(lock);
    let out = project.cmd(&["apply", "--yes", "-q", "--lock-timeout", "1"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
}

#[test]
fn apply_refuses_when_the_plan_cannot_be_shown() {
    let project = Project::fixture("drift");
    let before = project.read_bytes(STORE).unwrap();
    let out = project.cmd(&["apply", "--yes"]).closed_stdout().run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("nothing was applied"), "{}", out.stderr);
    assert_eq!(project.read_bytes(STORE).unwrap(), before);
}

#[test]
fn an_emptied_secrets_file_does_not_wipe_the_remote() {
    // `{}` would take the variables the platform requires off the remote: refused before the
    // mass-removal guard is even asked, and --allow-mass-removal does not lift it.
    let project = Project::fixture("drift").write(SECRETS, "{}\n");
    let before = project.read_bytes(STORE).unwrap();
    let plan = project.cmd(&["plan", "-q"]).run();
    assert_eq!(plan.code, 1, "{}", plan.transcript());
    assert!(plan.stderr.contains("apply will refuse it without --allow-mass-removal"), "{}", plan.stderr);
    let out = project.cmd(&["apply", "--yes"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr.contains(
            "error: after this plan file:.systemprompt/profiles/staging/store.json would hold no \
             OAUTH_AT_REST_PEPPER and no DATABASE_URL: the platform's runtime does not start without them; \
             nothing was applied"
        ),
        "{}",
        out.stderr
    );
    snapshot(&project, "apply_required_keys_refused", &out);
    assert_eq!(project.read_bytes(STORE).unwrap(), before);
    let forced = project.cmd(&["apply", "--yes", "-q", "--allow-mass-removal"]).run();
    assert_eq!(forced.code, 1, "{}", forced.transcript());
    assert!(
        forced.stderr.contains("would hold no OAUTH_AT_REST_PEPPER and no DATABASE_URL"),
        "{}",
        forced.stderr
    );
    assert_eq!(project.read_bytes(STORE).unwrap(), before);

    // Only the required keys left: the mass-removal guard itself refuses the five removals.
    let project = Project::fixture("drift").write(
        SECRETS,
        "{\n  \"oauth_at_rest_pepper\": \"CANARY-pepper-only-0123456789abcdef0123\",\n  \
         \"database_url\": \"postgres://app:CANARY-only-db@db.example.com:5432/app\"\n}\n",
    );
    let plan = project.cmd(&["plan", "-q"]).run();
    assert_eq!(plan.code, 0, "{}", plan.transcript());
    assert!(
        plan.stderr.contains(
            "this plan removes 5 of the 6 managed variables on the remote; apply will refuse it without \
             --allow-mass-removal"
        ),
        "{}",
        plan.stderr
    );
    let out = project.cmd(&["apply", "--yes"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr.contains("refusing to apply: the plan removes 5 of the 6 managed variables"),
        "{}",
        out.stderr
    );
    snapshot(&project, "apply_mass_removal_refused", &out);
    assert_eq!(project.read_bytes(STORE).unwrap(), before);

    let out = project.cmd(&["apply", "--yes", "-q", "--allow-mass-removal"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let store: serde_json::Value = serde_json::from_str(&project.read(STORE)).unwrap();
    let names: Vec<&String> = store["variables"].as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        ["DATABASE_URL", "OAUTH_AT_REST_PEPPER", "SIGNING_KEY_PEM", "SYSTEMPROMPT_API_TOKEN"],
        "the required variables are written and deploy-owned variables stay"
    );
}

#[test]
fn the_threshold_comes_from_cloud_secrets_yaml() {
    // Removing one of six managed variables is within the default; a threshold of 0.1 is not,
    // whether the profile's section or `defaults:` sets it.
    for settings in [
        "profiles:\n  staging:\n    remote: file:profiles/staging/store.json\n    mass_removal_threshold: 0.1\n",
        "defaults:\n  mass_removal_threshold: 0.1\nprofiles:\n  staging:\n    remote: file:profiles/staging/store.json\n",
    ] {
        let project = Project::fixture("drift").write(SETTINGS, settings);
        let before = project.read_bytes(STORE).unwrap();
        let out = project.cmd(&["apply", "--yes"]).run();
        assert_eq!(out.code, 1, "{settings}: {}", out.transcript());
        assert!(out.stderr.contains("the plan removes 1 of the 6 managed variables"), "{}", out.stderr);
        assert_eq!(project.read_bytes(STORE).unwrap(), before);
    }
    let default = Project::fixture("drift");
    assert_eq!(default.cmd(&["apply", "--yes", "-q"]).run().code, 0, "within the default threshold");
}

#[test]
fn secrets_edited_while_the_question_waits_are_not_applied() {
    let project = Project::fixture("drift");
    let before = project.read_bytes(STORE).unwrap();
    let edited = project.read(SECRETS).replace("sk-CANARY-openai-new-5e8f", "sk-CANARY-openai-newer-6f9a");
    let out = project.cmd(&["apply"]).run_answering("y\n", || {
        std::fs::write(project.path(SECRETS), &edited).unwrap();
    });
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert!(out.stderr.contains("changed while the question was waiting"), "{}", out.stderr);
    assert_eq!(project.read_bytes(STORE).unwrap(), before);
}

#[test]
fn quiet_still_shows_the_whole_plan_before_asking() {
    let project = Project::fixture("drift");
    let out = project.cmd(&["apply", "-q"]).input(Input::Tty("n\n".into())).run();
    assert_eq!(out.code, 4);
    assert!(out.stdout.contains("  - LEGACY_WEBHOOK_SECRET  remove"), "{}", out.stdout);
}
