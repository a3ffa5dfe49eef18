//! Projects shaped as the systemprompt platform makes them: its full profile.yaml, a cloud profile
//! with `source: env` and a secrets file outside the profile folder, two profiles and the session's
//! active one, the flat layout of platform versions up to 0.13, `${VAR}` in profile.yaml, a root
//! `.env` for local development, and the platform's deploy step writing the same tenant.

use cloud_secrets_emulator::{Emulator, Listing};

use crate::support::{Project, snapshot};

const TOKEN: &str = "sp-CANARY-api-token-platform-5e1d";
const PRODUCTION_SECRETS: &str = ".systemprompt/secrets/production.secrets.json";

#[test]
fn the_session_s_active_profile_is_used_and_its_secrets_path_is_the_desired_state() {
    let project = Project::fixture("platform");
    let out = project.cmd(&["plan", "-v"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "platform_production_plan", &out);
    assert!(
        out.stderr.contains("chosen by the active profile of .systemprompt/sessions/index.json"),
        "{}",
        out.stderr
    );
    // `source: env` tells the runtime where to read in its container; the desired state is still
    // the file at secrets_path.
    for line in [
        "+ ANTHROPIC_API_KEY",
        "from secrets.json `anthropic`",
        "+ MANIFEST_SIGNING_SECRET_SEED",
        "+ JWT_SECRET",
    ] {
        assert!(out.stdout.contains(line), "{line}: {}", out.stdout);
    }
    // Every value lands where the runtime reads it and where the deploy step writes it.
    for name in
        ["GITHUB_TOKEN", "GITHUB", "MOONSHOT_API_KEY", "MOONSHOT", "INTERNAL_DATABASE_URL", "DATABASE_URL"]
    {
        assert!(out.stdout.contains(&format!("+ {name} ")), "{name}: {}", out.stdout);
    }
    // A whitespace-only value is not set; the root .env (for local development) is not read.
    assert!(out.stdout.contains("openai") && !out.stdout.contains("+ OPENAI_API_KEY"), "{}", out.stdout);
    assert!(!out.stdout.contains(".env"), "{}", out.stdout);
}

#[test]
fn a_dotenv_is_read_only_where_the_settings_opt_in() {
    let settings = ".systemprompt/cloud-secrets.yaml";
    let project = Project::fixture("platform");
    let without = project.cmd(&["plan", "--profile", "local", "--format", "json"]).run();
    assert_eq!(without.code, 0, "{}", without.transcript());
    assert!(!without.stdout.contains("dotenv"), "{}", without.stdout);
    let opted = Project::fixture("platform").write(
        settings,
        "profiles:\n  local:\n    remote: file:profiles/local/store.json\n    dotenv: ../.env\n",
    );
    let with = opted.cmd(&["plan", "--profile", "local"]).run();
    assert_eq!(with.code, 0, "{}", with.transcript());
    assert!(
        with.stdout.contains(
            "+ ANTHROPIC_API_KEY            add       from .env (ANTHROPIC_API_KEY, overrides secrets.json)"
        ),
        "{}",
        with.stdout
    );
    // `openai` is null in secrets.json: a .env value for it fills it in.
    assert!(with.stdout.contains("+ OPENAI_API_KEY"), "{}", with.stdout);
    // A dotenv that names a missing file is an error, not a silent nothing.
    let missing = Project::fixture("platform").write(
        settings,
        "profiles:\n  local:\n    remote: file:profiles/local/store.json\n    dotenv: ../nope.env\n",
    );
    let out = missing.cmd(&["plan", "--profile", "local"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("nope.env") && out.stderr.contains("hint:"), "{}", out.stderr);
}

#[test]
fn the_environment_overrides_under_the_names_the_runtime_reads() {
    let project = Project::fixture("platform");
    let out = project
        .cmd(&["plan"])
        .env("KIMI_API_KEY", "sk-CANARY-env-kimi-7a2f")
        .env("GITHUB_TOKEN", "ghp_CANARY-env-github-1b9c")
        .env("GITHUB", "ghp_CANARY-not-a-name-the-runtime-reads-6d0e")
        .env("OPENAI_API_KEY", "")
        .run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stdout.contains("+ MOONSHOT_API_KEY              add       from the environment (MOONSHOT_API_KEY or KIMI_API_KEY)"), "{}", out.stdout);
    assert!(
        out.stdout.contains("+ GITHUB_TOKEN                  add       from the environment (GITHUB_TOKEN)"),
        "{}",
        out.stdout
    );
    // The deploy step's name carries the same value, from the same source.
    assert!(
        out.stdout.contains("+ GITHUB                        add       from the environment (GITHUB_TOKEN)"),
        "{}",
        out.stdout
    );
    // An empty variable is not set: it neither overrides nor adds.
    assert!(!out.stdout.contains("+ OPENAI_API_KEY"), "{}", out.stdout);
}

#[test]
fn without_a_secrets_file_the_environment_alone_never_removes_anything() {
    let project = Project::fixture("platform");
    let first = project.cmd(&["apply", "--yes", "-q"]).run();
    assert_eq!(first.code, 0, "{}", first.transcript());
    std::fs::remove_file(project.path(PRODUCTION_SECRETS)).unwrap();
    // A pipeline that provides only some variables, one of them empty by accident.
    let out = project
        .cmd(&["plan", "--detailed-exitcode"])
        .env("OAUTH_AT_REST_PEPPER", "CANARY-pepper-production-5c1e9a7b3d2f")
        .env("ANTHROPIC_API_KEY", "sk-ant-CANARY-ci-anthropic-0c4e")
        .env("GITHUB_TOKEN", "")
        .run();
    assert_eq!(out.code, 2, "{}", out.transcript());
    snapshot(&project, "platform_environment_only", &out);
    assert!(out.stdout.contains("~ ANTHROPIC_API_KEY"), "{}", out.stdout);
    assert!(!out.stdout.contains(" remove "), "{}", out.stdout);
    assert!(out.stderr.contains("production.secrets.json does not exist"), "{}", out.stderr);
    let apply = project
        .cmd(&["apply", "--yes"])
        .env("OAUTH_AT_REST_PEPPER", "CANARY-pepper-production-5c1e9a7b3d2f")
        .env("ANTHROPIC_API_KEY", "sk-ant-CANARY-ci-anthropic-0c4e")
        .run();
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    let store = project.read(".systemprompt/profiles/production/store.json");
    for name in
        ["GITHUB_TOKEN", "GITHUB", "MOONSHOT", "DATABASE_URL", "JWT_SECRET", "SYSTEMPROMPT_CUSTOM_SECRETS"]
    {
        assert!(store.contains(&format!("\"{name}\"")), "{name} was removed");
    }
}

#[test]
fn a_flat_profile_of_platform_0_13_is_found_and_planned() {
    let project = Project::fixture("flat");
    let profiles = project.cmd(&["profiles"]).run();
    assert_eq!(profiles.code, 0, "{}", profiles.transcript());
    assert!(profiles.stdout.contains("* local"), "{}", profiles.stdout);
    let out = project.cmd(&["apply", "--yes"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "platform_flat_apply", &out);
    assert!(project.path(".systemprompt/profiles/local.store.json").is_file());
    // The secrets file is where secrets_path says, relative to the folder of the profile file.
    assert!(out.stdout.contains("from secrets.json `anthropic`"), "{}", out.stdout);
    let again = project.cmd(&["plan", "--detailed-exitcode", "-q"]).run();
    assert_eq!(again.code, 0, "{}", again.transcript());
    // State kept for a flat profile carries its name, so that flat profiles never share it.
    let out = project.cmd(&["plan", "--out", "plan.json", "-q"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(project.path(".systemprompt/profiles/local.plan-key").is_file());
}

#[test]
fn variables_in_profile_yaml_are_substituted_as_the_platform_does() {
    let project = Project::fixture("cloud");
    let tenant = |out: &crate::support::Outcome| {
        out.stderr.lines().find(|l| l.starts_with("remote: ")).unwrap_or_default().to_owned()
    };
    let default = project
        .cmd(&["plan", "-v", "--remote", "http://127.0.0.1:1"])
        .env("SYSTEMPROMPT_API_TOKEN", TOKEN)
        .run();
    assert!(tenant(&default).contains("tenant acme"), "{}", default.transcript());
    let set = project
        .cmd(&["plan", "-v", "--remote", "http://127.0.0.1:1"])
        .env("SYSTEMPROMPT_API_TOKEN", TOKEN)
        .env("SYSTEMPROMPT_TENANT_ID", "globex")
        .run();
    assert!(tenant(&set).contains("tenant globex"), "{}", set.transcript());
}

#[test]
fn null_sections_are_the_platform_s_defaults() {
    let project = Project::fixture("fresh").write(
        ".systemprompt/profiles/production/profile.yaml",
        "name: production\ndisplay_name: Production\ntarget: local\ncloud: null\nsecrets: null\n",
    );
    let out = project.cmd(&["plan", "-q"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}

#[test]
fn the_root_is_the_nearest_folder_with_systemprompt_and_a_project_marker() {
    // A checkout of the project inside another folder that merely has a .systemprompt/ (say, a
    // home directory): the project's root is found, not the outer folder.
    let project =
        Project::fixture("fresh").write("work/.systemprompt/profiles/x/profile.yaml", "target: local\n");
    let out = project.cmd(&["plan", "-q"]).cwd("work").run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(out.stdout, "Plan: 6 to add, 0 to change, 0 to remove, 0 to clean up.\n");
}

#[test]
fn no_command_changes_a_byte_of_any_profile_yaml() {
    let project = Project::fixture("platform");
    let before = project.snapshot_files("profile.yaml");
    assert_eq!(before.len(), 2);
    let runs: &[&[&str]] = &[
        &["plan"],
        &["plan", "--out", "plan.json"],
        &["show", "plan.json"],
        &["apply", "plan.json"],
        &["apply", "--yes", "--profile", "local"],
        &["validate"],
        &["profiles"],
        &["set", "EXTRA_KEY=CANARY-extra-3c7d", "--save", "--yes"],
        &["unset", "EXTRA_KEY", "--yes"],
        &["cleanup", "--yes"],
        &["rollback", "--yes"],
        &["generate", "jwt-secret", "--into", "jwt_rotated"],
        &["init", "--profile", "local"],
        &["init", "--profile", "staging"],
    ];
    for args in runs {
        let out = project.cmd(args).run();
        assert!(matches!(out.code, 0 | 1), "{args:?}: {}", out.transcript());
        let after: Vec<_> = project
            .snapshot_files("profile.yaml")
            .into_iter()
            .filter(|(p, _)| !p.to_string_lossy().contains("/staging/"))
            .collect();
        assert_eq!(after, before, "{args:?} changed a profile.yaml");
    }
}

/// A tenant written by cloud-secrets and by the platform's deploy step of the same secrets file.
fn deploy_scenario(listing: Listing, deploy_first: bool) {
    let emulator = Emulator::start();
    emulator.set_listing(listing);
    emulator.grant(TOKEN, &["ten_01JACMEPRODUCTION0000000"]);
    emulator.set_secrets("ten_01JACMEPRODUCTION0000000", &[]);
    let project = Project::fixture("platform");
    let secrets = project.read(PRODUCTION_SECRETS);
    let url = emulator.url();
    let cs = |args: &[&str]| {
        let mut full = args.to_vec();
        full.extend(["--remote", url.as_str()]);
        project.cmd(&full).env("SYSTEMPROMPT_API_TOKEN", TOKEN).run()
    };
    let context = format!("{listing:?}, deploy first: {deploy_first}");
    if deploy_first {
        emulator.deploy("ten_01JACMEPRODUCTION0000000", "production", &secrets);
    }
    let apply = cs(&["apply", "--yes"]);
    assert_eq!(apply.code, 0, "{context}: {}", apply.transcript());
    emulator.deploy("ten_01JACMEPRODUCTION0000000", "production", &secrets);
    let held = emulator.secrets("ten_01JACMEPRODUCTION0000000").unwrap();
    let list = &held["SYSTEMPROMPT_CUSTOM_SECRETS"];
    assert_ne!(
        list, "GITHUB,JWT_SECRET,MANIFEST_SIGNING_SECRET_SEED,MOONSHOT",
        "{context}: the deploy wrote the list in its own order"
    );
    let after = cs(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        after.code,
        0,
        "{context}: a deploy of the same secrets is not drift:\n{}",
        after.transcript()
    );
    // Where the runtime reads each value, it is there.
    for name in
        ["GITHUB_TOKEN", "MOONSHOT_API_KEY", "INTERNAL_DATABASE_URL", "OAUTH_AT_REST_PEPPER", "JWT_SECRET"]
    {
        assert!(held.contains_key(name), "{context}: {name} missing");
    }
    assert_eq!(held["DATABASE_URL"], held["INTERNAL_DATABASE_URL"], "{context}");
}

#[test]
fn after_an_apply_and_the_platform_s_deploy_of_the_same_secrets_there_is_no_drift() {
    for listing in [Listing::Digests, Listing::NamesOnly] {
        for deploy_first in [false, true] {
            deploy_scenario(listing, deploy_first);
        }
    }
}

#[test]
fn a_plan_that_would_leave_the_remote_without_what_the_platform_requires_is_refused() {
    // A short pepper is never written.
    let project = Project::fixture("fresh").write(
        ".systemprompt/profiles/production/secrets.json",
        "{\n  \"oauth_at_rest_pepper\": \"CANARY-short\",\n  \"database_url\": \"postgres://a:CANARY-pw@h:5432/d\"\n}\n",
    );
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr.contains("secrets.json:2:3: `oauth_at_rest_pepper` is shorter than 32 characters"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("[pepper-length]"), "{}", out.stderr);

    // A required key that is not set here, while the remote keeps its value: a warning only.
    let project = Project::fixture("fresh");
    assert_eq!(project.cmd(&["apply", "--yes", "-q"]).run().code, 0);
    let project = project.write(
        ".systemprompt/profiles/production/secrets.json",
        "{\n  \"oauth_at_rest_pepper\": \"CANARY-pepper-fresh-7d2e4c9a1b3f5e8d0c6a\",\n  \"database_url\": null,\n  \"anthropic\": \"sk-ant-CANARY-anthropic-2b7e\",\n  \"openai\": \"sk-CANARY-openai-93d1\",\n  \"moltbook_builder\": \"moltbook_sk_CANARY-moltbook-6a0c\"\n}\n",
    );
    let kept = project.cmd(&["plan", "--detailed-exitcode"]).run();
    assert_eq!(kept.code, 0, "{}", kept.transcript());
    assert!(
        kept.stderr.contains("`database_url` is not set")
            && kept.stderr.contains("still holds DATABASE_URL after this plan"),
        "{}",
        kept.stderr
    );
    // Taking it away is refused, after the plan is shown.
    let unset = project.cmd(&["unset", "DATABASE_URL", "--yes"]).run();
    assert_eq!(unset.code, 1, "{}", unset.transcript());
    assert!(unset.stdout.contains("- DATABASE_URL"), "{}", unset.stdout);
    assert!(unset.stderr.contains("would hold no DATABASE_URL"), "{}", unset.stderr);
    assert!(project.read(".systemprompt/profiles/production/store.json").contains("\"DATABASE_URL\""));
}

#[test]
fn set_and_unset_of_a_key_cover_every_name_it_is_written_under() {
    let project = Project::fixture("fresh");
    assert_eq!(project.cmd(&["apply", "--yes", "-q"]).run().code, 0);
    let store = ".systemprompt/profiles/production/store.json";
    let out = project.cmd(&["set", "github=ghp_CANARY-set-github-8e1f", "--yes", "-q"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let held: serde_json::Value = serde_json::from_str(&project.read(store)).unwrap();
    assert!(held["variables"]["GITHUB_TOKEN"].is_string() && held["variables"]["GITHUB"].is_string());
    // A second set keeps what the first one listed.
    let out = project.cmd(&["set", "NEW_ONE=CANARY-new-one-2d4f", "--yes", "-q"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let held: serde_json::Value = serde_json::from_str(&project.read(store)).unwrap();
    assert_eq!(held["variables"]["SYSTEMPROMPT_CUSTOM_SECRETS"], "GITHUB,MOLTBOOK_BUILDER,NEW_ONE");
    // Removing the key removes it under both names, and from the list.
    let out = project.cmd(&["unset", "github", "--yes"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stdout.contains("- GITHUB ") && out.stdout.contains("- GITHUB_TOKEN "), "{}", out.stdout);
    let held: serde_json::Value = serde_json::from_str(&project.read(store)).unwrap();
    assert!(held["variables"].get("GITHUB").is_none() && held["variables"].get("GITHUB_TOKEN").is_none());
    assert_eq!(held["variables"]["SYSTEMPROMPT_CUSTOM_SECRETS"], "MOLTBOOK_BUILDER,NEW_ONE");
    // Two values for one variable are refused, whatever their order.
    let out = project
        .cmd(&[
            "set",
            "INTERNAL_DATABASE_URL=postgres://a:CANARY-i@h/d",
            "DATABASE_URL=postgres://a:CANARY-p@h/d",
            "--yes",
        ])
        .run();
    assert_eq!(out.code, 64, "{}", out.transcript());
}
