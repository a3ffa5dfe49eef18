//! set, unset, cleanup, validate, generate, init, profiles; environment overrides; the checks
//! on local secrets files.

use crate::support::{Input, Project, snapshot};

const STORE: &str = ".systemprompt/profiles/staging/store.json";
const SECRETS: &str = ".systemprompt/profiles/staging/secrets.json";

fn store(project: &Project) -> serde_json::Value {
    serde_json::from_str(&project.read(STORE)).unwrap()
}

#[test]
fn set_plans_only_the_keys_given_and_warns_that_secrets_json_is_behind() {
    let project = Project::fixture("drift");
    let out = project.cmd(&["set", "openai=sk-CANARY-set-1a2b", "--yes"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "set_one_key", &out);
    let vars = &store(&project)["variables"];
    assert_eq!(vars["OPENAI_API_KEY"], "sk-CANARY-set-1a2b");
    // Nothing else moved: the removal and the cleanup of a full apply did not happen.
    assert_eq!(vars["LEGACY_WEBHOOK_SECRET"], "CANARY-legacy-2a9d");
    assert_eq!(vars["FLY_APP_NAME"], "CANARY-flyapp-remote-8d1a");
    assert!(!project.read(SECRETS).contains("sk-CANARY-set-1a2b"), "secrets.json changed without --save");
}

#[test]
fn set_takes_variable_names_and_keeps_the_custom_list_in_step() {
    let project = Project::fixture("drift");
    let out = project
        .cmd(&["set", "ANTHROPIC_API_KEY=sk-ant-CANARY-2c", "NEW_KEY=CANARY-new-3d", "--yes", "-q"])
        .run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(out.stdout.lines().next(), Some("Plan: 2 to add, 1 to change, 0 to remove, 0 to clean up."));
    let vars = &store(&project)["variables"];
    assert_eq!(vars["ANTHROPIC_API_KEY"], "sk-ant-CANARY-2c");
    assert_eq!(vars["NEW_KEY"], "CANARY-new-3d");
    // The list is the profile's custom secrets plus the new one: what the next plan computes
    // once NEW_KEY is saved in secrets.json (LEGACY_WEBHOOK_SECRET is not the profile's).
    assert_eq!(vars["SYSTEMPROMPT_CUSTOM_SECRETS"], "CUSTOM_API_KEY,NEW_KEY");
}

#[test]
fn set_refuses_what_the_platform_owns() {
    let project = Project::fixture("drift");
    let before = project.read_bytes(STORE).unwrap();
    let out = project.cmd(&["set", "FLY_APP_NAME=CANARY-x", "SIGNING_KEY_PEM=CANARY-y", "--yes"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    snapshot(&project, "set_all_refused", &out);
    assert_eq!(project.read_bytes(STORE).unwrap(), before);
    let out = project.cmd(&["set", "fly_app_name=CANARY-x", "github=CANARY-gh-4e", "--yes", "-q"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(store(&project)["variables"]["GITHUB_TOKEN"], "CANARY-gh-4e");
    assert_eq!(store(&project)["variables"]["FLY_APP_NAME"], "CANARY-flyapp-remote-8d1a");
}

#[test]
fn set_reads_one_value_from_stdin() {
    let project = Project::fixture("drift");
    let out = project
        .cmd(&["set", "openai", "--stdin", "--yes"])
        .input(Input::Pipe("sk-CANARY-stdin-5f\n".into()))
        .run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(
        store(&project)["variables"]["OPENAI_API_KEY"],
        "sk-CANARY-stdin-5f",
        "the newline is not part of it"
    );
    let empty = project.cmd(&["set", "openai", "--stdin", "--yes"]).input(Input::Pipe("\n".into())).run();
    assert_eq!(empty.code, 64, "{}", empty.transcript());
}

#[test]
fn set_asks_like_apply() {
    let project = Project::fixture("drift");
    let before = project.read_bytes(STORE).unwrap();
    let declined = project.cmd(&["set", "openai=sk-CANARY-6a"]).input(Input::Tty("n\n".into())).run();
    assert_eq!(declined.code, 4);
    let no_terminal = project.cmd(&["set", "openai=sk-CANARY-6a"]).run();
    assert_eq!(no_terminal.code, 4);
    assert_eq!(project.read_bytes(STORE).unwrap(), before);
    let same = project.cmd(&["set", "CUSTOM_API_KEY=CANARY-custom-7f2b"]).run();
    assert_eq!(same.code, 0, "an unchanged value needs no question: {}", same.transcript());
    assert!(same.stdout.contains("No changes. Nothing to do on"), "{}", same.stdout);
}

#[test]
fn set_save_writes_secrets_json_keeping_its_shape() {
    let project = Project::fixture("drift");
    let before = project.read(SECRETS);
    let out = project
        .cmd(&["set", "openai=sk-CANARY-saved-8b", "brand_new=CANARY-new-9c", "--yes", "--save"])
        .run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stderr.contains("Saved openai, brand_new to .systemprompt/profiles/staging/secrets.json."));
    let after = project.read(SECRETS);
    let expected = before.replace("sk-CANARY-openai-new-5e8f", "sk-CANARY-saved-8b").replace(
        "\"custom_api_key\": \"CANARY-custom-7f2b\"\n}",
        "\"custom_api_key\": \"CANARY-custom-7f2b\",\n  \"brand_new\": \"CANARY-new-9c\"\n}",
    );
    assert_eq!(after, expected);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(project.path(SECRETS)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The next plan sees no difference for those keys.
    let plan = project.cmd(&["plan", "-v"]).run();
    assert!(plan.stdout.contains("    OPENAI_API_KEY "), "{}", plan.stdout);
}

#[test]
fn set_arguments_are_checked_before_anything_else() {
    let project = Project::empty();
    for args in
        [&["set", "openai"][..], &["set", "openai="], &["set", "a=1", "b", "--stdin"], &["set", "bad-key=1"]]
    {
        let out = project.cmd(args).run();
        assert_eq!(out.code, 64, "{args:?}: {}", out.transcript());
    }
    let out = project.cmd(&["set", "openai"]).run();
    snapshot(&project, "set_without_equals", &out);
}

#[test]
fn unset_removes_just_those_keys_and_reports_the_rest() {
    let project = Project::fixture("drift");
    let out = project
        .cmd(&[
            "unset",
            "LEGACY_WEBHOOK_SECRET",
            "not_there",
            "SYSTEMPROMPT_API_TOKEN",
            "custom_api_key",
            "--yes",
        ])
        .run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "unset_keys", &out);
    let vars = &store(&project)["variables"];
    assert!(vars.get("LEGACY_WEBHOOK_SECRET").is_none() && vars.get("CUSTOM_API_KEY").is_none());
    assert_eq!(vars["SYSTEMPROMPT_API_TOKEN"], "CANARY-deploy-token-remote-4a7b", "deploy-owned stays");
    assert!(vars.get("SYSTEMPROMPT_CUSTOM_SECRETS").is_none(), "no custom names left on the remote");
    let again = project.cmd(&["unset", "LEGACY_WEBHOOK_SECRET"]).run();
    assert_eq!(again.code, 0);
    assert!(again.stdout.contains("No changes. Nothing to do"), "{}", again.stdout);
}

#[test]
fn cleanup_removes_only_system_managed_and_stale_variables() {
    let project = Project::fixture("drift");
    let out = project.cmd(&["cleanup", "--yes"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "cleanup", &out);
    let vars = &store(&project)["variables"];
    assert!(vars.get("FLY_APP_NAME").is_none() && vars.get("SYSTEMPROMPT_API_URL").is_none());
    assert_eq!(vars["LEGACY_WEBHOOK_SECRET"], "CANARY-legacy-2a9d", "not a cleanup");
    assert_eq!(vars["OPENAI_API_KEY"], "sk-CANARY-openai-old-0d4c", "not a cleanup");
    let declined = Project::fixture("drift");
    assert_eq!(declined.cmd(&["cleanup"]).input(Input::Tty("n\n".into())).run().code, 4);
}

const BAD_SECRETS: &str = r#"{
  "jwt_secret": "CANARY-short",
  "database_url": "mysql://CANARY@db/app",
  "anthropic": "CANARY-not-sk-ant",
    "openai": "CANARY-not-sk",
  "gemini": "CANARY-not-aiza",
  "MixedCase": "CANARY-mixed"
}
"#;

fn bad_project(validation: &str) -> Project {
    Project::empty()
        .write(
            ".systemprompt/profiles/dev/profile.yaml",
            &format!("secrets:\n  remote: file:store.json\n  validation: {validation}\n"),
        )
        .write(".systemprompt/profiles/dev/secrets.json", BAD_SECRETS)
}

#[test]
fn validate_reports_every_rule_by_file_key_and_rule() {
    let warn = bad_project("warn");
    let out = warn.cmd(&["validate"]).run();
    assert_eq!(out.code, 0, "warnings only: {}", out.transcript());
    snapshot(&warn, "validate_warn", &out);
    let strict = bad_project("strict");
    let out = strict.cmd(&["validate"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    snapshot(&strict, "validate_strict", &out);
    let skip = bad_project("skip");
    let out = skip.cmd(&["validate"]).run();
    assert_eq!(out.code, 0);
    snapshot(&skip, "validate_skip", &out);
    let empty = Project::empty()
        .write(".systemprompt/profiles/dev/profile.yaml", "secrets:\n  remote: file:store.json\n")
        .write(".systemprompt/profiles/dev/secrets.json", "{\"openai\": \"\"}\n");
    let out = empty.cmd(&["validate"]).run();
    assert_eq!(out.code, 0);
    snapshot(&empty, "validate_required", &out);
    let good = Project::fixture("fresh");
    let out = good.cmd(&["validate"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stdout.ends_with("Valid: no errors, no warnings.\n"), "{}", out.stdout);
}

#[test]
fn the_same_checks_run_before_every_plan() {
    let warn = bad_project("warn");
    let out = warn.cmd(&["plan"]).run();
    assert_eq!(out.code, 0);
    assert!(
        out.stderr.contains("[anthropic-format]") && out.stderr.starts_with("warning: "),
        "{}",
        out.stderr
    );
    let strict = bad_project("strict");
    let out = strict.cmd(&["apply", "--yes"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stdout.is_empty(), "strict findings stop before any plan: {}", out.stdout);
    snapshot(&strict, "plan_stopped_by_strict_validation", &out);
    assert!(strict.read_bytes(".systemprompt/profiles/dev/store.json").is_none());
}

#[test]
fn generate_prints_a_jwt_secret_or_writes_it_unprinted() {
    let project = Project::fixture("fresh");
    let out = project.cmd(&["generate", "jwt-secret"]).run();
    assert_eq!(out.code, 0);
    let secret = out.stdout.trim_end();
    assert_eq!(secret.len(), 64, "{secret}");
    assert!(secret.chars().all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)));
    let again = project.cmd(&["generate", "jwt-secret"]).run();
    assert_ne!(again.stdout, out.stdout);

    let secrets = ".systemprompt/profiles/production/secrets.json";
    let into = project.cmd(&["generate", "jwt-secret", "--into", "oauth_at_rest_pepper"]).run();
    assert_eq!(into.code, 0, "{}", into.transcript());
    assert!(into.stdout.is_empty(), "--into prints nothing on stdout");
    snapshot(&project, "generate_into", &into);
    let written: serde_json::Value = serde_json::from_str(&project.read(secrets)).unwrap();
    let value = written["oauth_at_rest_pepper"].as_str().unwrap();
    assert_eq!(value.len(), 64);
    assert!(!into.stderr.contains(value));
}

#[test]
fn init_scaffolds_a_profile_and_never_overwrites() {
    let project = Project::empty();
    let out = project.cmd(&["init", "--profile", "staging"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "init_new", &out);
    use std::os::unix::fs::PermissionsExt;
    let secrets = project.path(".systemprompt/profiles/staging/secrets.json");
    assert_eq!(std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777, 0o600);
    let gitignore = project.read(".systemprompt/.gitignore");
    assert!(gitignore.contains("profiles/*/secrets.json") && gitignore.contains("credentials.json"));

    let project = project
        .write(".systemprompt/profiles/staging/secrets.json", "{\"jwt_secret\": \"CANARY-kept-by-init\"}");
    let again = project.cmd(&["init", "--profile", "staging"]).run();
    assert_eq!(again.code, 0);
    snapshot(&project, "init_existing", &again);
    assert!(std::fs::read_to_string(&secrets).unwrap().contains("CANARY-kept-by-init"));

    // The scaffold plans straight away against its local store.
    let fresh = Project::empty();
    assert_eq!(fresh.cmd(&["init"]).run().code, 0);
    let plan = fresh.cmd(&["plan", "--detailed-exitcode"]).run();
    assert_eq!(plan.code, 0, "{}", plan.transcript());
    assert!(plan.stderr.contains("[database-url-required]"), "{}", plan.stderr);
}

#[test]
fn profiles_lists_target_tenant_and_remote() {
    let project = Project::fixture("drift")
        .write(".systemprompt/profiles/prod/profile.yaml", "target: cloud\ncloud:\n  tenant_id: acme\n")
        .write(".systemprompt/profiles/broken/profile.yaml", "target: [\n");
    let out = project.cmd(&["profiles"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "profiles", &out);
    let chosen = project.cmd(&["profiles"]).env("SYSTEMPROMPT_PROFILE", "prod").run();
    assert!(chosen.stdout.contains("* prod"), "{}", chosen.stdout);
}

#[test]
fn the_environment_and_dotenv_override_secrets_json() {
    let project = Project::fixture("fresh").write(
        ".env",
        "# local overrides\nOPENAI_API_KEY=sk-CANARY-dotenv-1a\nANTHROPIC_API_KEY=sk-ant-CANARY-dotenv-2b\n",
    );
    let out =
        project.cmd(&["plan"]).env("ANTHROPIC_API_KEY", "sk-ant-CANARY-env-3c").env("UNRELATED", "x").run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "plan_with_overrides", &out);
    let applied =
        project.cmd(&["apply", "--yes", "-q"]).env("ANTHROPIC_API_KEY", "sk-ant-CANARY-env-3c").run();
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    let vars: serde_json::Value =
        serde_json::from_str(&project.read(".systemprompt/profiles/production/store.json")).unwrap();
    assert_eq!(vars["variables"]["ANTHROPIC_API_KEY"], "sk-ant-CANARY-env-3c");
    assert_eq!(vars["variables"]["OPENAI_API_KEY"], "sk-CANARY-dotenv-1a");
    assert_eq!(vars["variables"]["JWT_SECRET"], "CANARY-jwt-4c1d9e7f2a6b8c3d5e0f1a2b3c4d5e6f");
    // An empty variable does not override.
    let empty = project.cmd(&["plan", "--detailed-exitcode", "-q"]).env("ANTHROPIC_API_KEY", "").run();
    assert_eq!(empty.code, 2, "{}", empty.transcript());
}

#[test]
fn a_source_env_profile_reads_the_environment_alone() {
    let project = Project::empty().write(
        ".systemprompt/profiles/ci/profile.yaml",
        "secrets:\n  source: env\n  remote: file:store.json\n",
    );
    let out = project
        .cmd(&["plan"])
        .env("DATABASE_URL", "postgres://ci:CANARY-ci-pw@db/app")
        .env("JWT_SECRET", "CANARY-ci-jwt-0123456789abcdef0123456789")
        .env("MY_TOOL_KEY", "CANARY-ci-tool")
        .env("SYSTEMPROMPT_CUSTOM_SECRETS", "JWT_SECRET,MY_TOOL_KEY,MISSING_ONE")
        .env("NOT_LISTED", "CANARY-not-listed")
        .run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "plan_source_env", &out);
    assert!(!out.stdout.contains("NOT_LISTED"));
}

#[test]
fn readable_or_tracked_secrets_files_are_flagged_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let project = Project::fixture("drift");
    std::fs::set_permissions(project.path(SECRETS), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = project.cmd(&["plan"]).run();
    assert!(out.stderr.contains("can be read by group or others (mode 0644)"), "{}", out.stderr);
    assert!(
        out.stderr.contains("fix: chmod 600 .systemprompt/profiles/staging/secrets.json"),
        "{}",
        out.stderr
    );

    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(args)
            .current_dir(project.root())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .status()
            .expect("git is needed by this test and by the tool's check");
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q", "."]);
    git(&["add", "-f", SECRETS]);
    let out = project.cmd(&["validate"]).run();
    assert_eq!(out.code, 0, "a warning under warn: {}", out.transcript());
    snapshot(&project, "validate_tracked_by_git", &out);
    let strict = project.write(
        ".systemprompt/profiles/staging/profile.yaml",
        "target: local\nsecrets:\n  remote: file:store.json\n  validation: strict\n",
    );
    let out = strict.cmd(&["plan"]).run();
    assert_eq!(out.code, 1, "an error under strict: {}", out.transcript());
    assert!(out.stderr.contains("is tracked by git"), "{}", out.stderr);
    assert!(out.stderr.contains("fix: git rm --cached"), "{}", out.stderr);
}

#[test]
fn ignored_variables_are_listed_and_left_alone() {
    let project = Project::fixture("drift").write(
        ".systemprompt/profiles/staging/profile.yaml",
        "secrets:\n  remote: file:store.json\n  ignore:\n    - LEGACY_*\n    - FLY_APP_NAME\n    - OPENAI_*\n",
    );
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "plan_with_ignored", &out);
    assert_eq!(project.cmd(&["apply", "--yes", "-q"]).run().code, 0);
    let vars = &store(&project)["variables"];
    assert_eq!(vars["LEGACY_WEBHOOK_SECRET"], "CANARY-legacy-2a9d", "ignored: not removed");
    assert_eq!(vars["FLY_APP_NAME"], "CANARY-flyapp-remote-8d1a", "ignored: not cleaned up");
    assert_eq!(vars["OPENAI_API_KEY"], "sk-CANARY-openai-old-0d4c", "ignored: not changed");
    assert!(vars.get("SYSTEMPROMPT_API_URL").is_none(), "not ignored: cleaned up");
    let set = project.cmd(&["set", "openai=sk-CANARY-ignored-set", "--yes"]).run();
    assert_eq!(set.code, 1, "{}", set.transcript());
    assert!(set.stderr.contains("not setting OPENAI_API_KEY: it matches secrets.ignore"), "{}", set.stderr);
    let bad = Project::fixture("drift").write(
        ".systemprompt/profiles/staging/profile.yaml",
        "secrets:\n  remote: file:store.json\n  ignore: [\"[\"]\n",
    );
    let out = bad.cmd(&["plan"]).run();
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("profile.yaml:3:3: secrets.ignore: `[` is not a glob pattern"),
        "{}",
        out.stderr
    );
}

#[test]
fn one_variable_given_twice_to_set_is_a_usage_error() {
    let project = Project::fixture("drift");
    let before = project.read_bytes(STORE).unwrap();
    let out =
        project.cmd(&["set", "openai=sk-CANARY-a", "OPENAI_API_KEY=sk-CANARY-b", "--yes", "--save"]).run();
    assert_eq!(out.code, 64, "{}", out.transcript());
    assert!(out.stderr.contains("OPENAI_API_KEY is given more than once"), "{}", out.stderr);
    assert_eq!(project.read_bytes(STORE).unwrap(), before);
}

#[test]
fn set_save_writes_database_url_where_it_is_read_from() {
    // internal_database_url provides DATABASE_URL here, though database_url comes first.
    let project = Project::fixture("drift");
    let out =
        project.cmd(&["set", "DATABASE_URL=postgres://a:CANARY-new-db@h/d", "--yes", "--save", "-q"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let secrets: serde_json::Value = serde_json::from_str(&project.read(SECRETS)).unwrap();
    assert_eq!(secrets["internal_database_url"], "postgres://a:CANARY-new-db@h/d");
    assert_eq!(secrets["database_url"], "postgres://app:CANARY-public-db-9c4a@db.example.com:5432/app");
    let plan = project.cmd(&["plan", "-v"]).run();
    assert!(plan.stdout.contains("    DATABASE_URL "), "the next plan agrees: {}", plan.stdout);
}

#[test]
fn set_checks_its_values_and_the_profile_like_every_plan() {
    let project = Project::fixture("drift").write(
        ".systemprompt/profiles/staging/profile.yaml",
        "secrets:\n  remote: file:store.json\n  validation: strict\n",
    );
    let before = project.read_bytes(STORE).unwrap();
    let out = project.cmd(&["set", "anthropic=CANARY-not-an-anthropic-key", "--yes"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr.contains("set ANTHROPIC_API_KEY: `anthropic` does not start with `sk-ant-`"),
        "{}",
        out.stderr
    );
    assert_eq!(project.read_bytes(STORE).unwrap(), before);
    let warn = Project::fixture("drift");
    let out = warn.cmd(&["set", "anthropic=CANARY-not-an-anthropic-key", "--yes", "-q"]).run();
    assert_eq!(out.code, 0, "a warning only, under warn: {}", out.transcript());
}

#[test]
fn rollback_plans_back_to_the_previous_version() {
    let project = Project::fixture("drift");
    let first = project.cmd(&["rollback", "--yes"]).run();
    assert_eq!(first.code, 1, "no earlier version recorded: {}", first.transcript());
    assert_eq!(project.cmd(&["apply", "--yes", "-q"]).run().code, 0);
    let declined = project.cmd(&["rollback"]).input(Input::Tty("n\n".into())).run();
    assert_eq!(declined.code, 4);
    let out = project.cmd(&["rollback", "--yes"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "rollback_local", &out);
    let vars = &store(&project)["variables"];
    assert_eq!(vars["OPENAI_API_KEY"], "sk-CANARY-openai-old-0d4c");
    assert_eq!(vars["LEGACY_WEBHOOK_SECRET"], "CANARY-legacy-2a9d");
    assert!(vars.get("OAUTH_AT_REST_PEPPER").is_none());
    assert!(vars.get("FLY_APP_NAME").is_none(), "what the platform owns is not brought back");
    assert_eq!(store(&project)["previous"]["version"], 8);
}

#[test]
fn cleanup_and_rollback_respect_ignore_and_the_mass_removal_guard() {
    let project = Project::fixture("drift").write(
        ".systemprompt/profiles/staging/profile.yaml",
        "secrets:\n  remote: file:store.json\n  ignore: [FLY_*]\n",
    );
    assert_eq!(project.cmd(&["cleanup", "--yes", "-q"]).run().code, 0);
    let vars = &store(&project)["variables"];
    assert_eq!(vars["FLY_APP_NAME"], "CANARY-flyapp-remote-8d1a", "ignored: not cleaned up");
    assert!(vars.get("SYSTEMPROMPT_API_URL").is_none());

    // A rollback to an almost empty version is a mass removal.
    let emptied = Project::fixture("drift").write(
        ".systemprompt/profiles/staging/secrets.json",
        "{\"custom_api_key\": \"CANARY-custom-7f2b\"}\n",
    );
    assert_eq!(emptied.cmd(&["apply", "--yes", "-q", "--allow-mass-removal"]).run().code, 0);
    let full = emptied.write(".systemprompt/profiles/staging/secrets.json", "{\"custom_api_key\": \"CANARY-custom-7f2b\", \"a\": \"CANARY-a\", \"b\": \"CANARY-b\", \"c\": \"CANARY-c\"}\n");
    assert_eq!(full.cmd(&["apply", "--yes", "-q"]).run().code, 0);
    let out = full.cmd(&["rollback", "--yes"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("refusing to apply"), "{}", out.stderr);
    assert_eq!(full.cmd(&["rollback", "--yes", "-q", "--allow-mass-removal"]).run().code, 0);
}
