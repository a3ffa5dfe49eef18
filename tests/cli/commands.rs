//! set, unset, cleanup, validate, generate, init, profiles; environment overrides; the checks
//! on local secrets files.

use crate::support::{Input, Project, snapshot};

const STORE: &str = ".systemprompt/profiles/staging/store.json";
const SECRETS: &str = ".systemprompt/profiles/staging/secrets.json";
const SETTINGS: &str = ".systemprompt/cloud-secrets.yaml";

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

/// Breaks every advice rule, with the keys the platform requires in order, and an upper-case
/// custom key (accepted).
const BAD_SECRETS: &str = r#"{
  "oauth_at_rest_pepper": "CANARY-pepper-long-enough-0123456789abcdef",
  "database_url": "mysql://CANARY@db/app",
  "anthropic": "CANARY-not-sk-ant",
    "openai": "CANARY-not-sk",
  "gemini": "CANARY-not-aiza",
  "MixedCase": "CANARY-mixed",
  "UPPER_CUSTOM_KEY": "CANARY-upper"
}
"#;

/// A project whose profile `dev` holds `secrets`, with `validation` set in cloud-secrets.yaml.
/// profile.yaml says `validation: strict`: it is the platform's and no longer decides.
fn checked_project(validation: &str, secrets: &str) -> Project {
    Project::empty()
        .write(
            ".systemprompt/profiles/dev/profile.yaml",
            "target: local\nsecrets:\n  secrets_path: ./secrets.json\n  source: file\n  validation: strict\n",
        )
        .write(
            SETTINGS,
            &format!(
                "profiles:\n  dev:\n    remote: file:profiles/dev/store.json\n    validation: {validation}\n"
            ),
        )
        .write(".systemprompt/profiles/dev/secrets.json", secrets)
}

fn bad_project(validation: &str) -> Project {
    checked_project(validation, BAD_SECRETS)
}

#[test]
fn validate_reports_every_rule_by_file_key_and_rule() {
    let warn = bad_project("warn");
    let out = warn.cmd(&["validate"]).run();
    assert_eq!(out.code, 0, "warnings only: {}", out.transcript());
    for rule in ["database-url-format", "anthropic-format", "openai-format", "gemini-format", "key-case"] {
        assert!(out.stdout.contains(&format!("[{rule}]")), "{rule}: {}", out.stdout);
    }
    assert!(!out.stdout.contains("UPPER_CUSTOM_KEY"), "an upper-case custom key is fine: {}", out.stdout);
    snapshot(&warn, "validate_warn", &out);
    let strict = bad_project("strict");
    let out = strict.cmd(&["validate"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    snapshot(&strict, "validate_strict", &out);
    let skip = bad_project("skip");
    let out = skip.cmd(&["validate"]).run();
    assert_eq!(out.code, 0);
    snapshot(&skip, "validate_skip", &out);
    // `defaults:` sets it for every profile without a value of its own.
    let by_default = Project::empty()
        .write(".systemprompt/profiles/dev/profile.yaml", "target: local\n")
        .write(
            SETTINGS,
            "defaults:\n  validation: strict\nprofiles:\n  dev:\n    remote: file:profiles/dev/store.json\n",
        )
        .write(".systemprompt/profiles/dev/secrets.json", BAD_SECRETS);
    let out = by_default.cmd(&["validate"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stdout.starts_with("Profile dev · validation: strict\n"), "{}", out.stdout);

    // The platform's own rules: errors whatever `validation` says. Missing, empty and
    // whitespace-only values are all not set.
    let empty = checked_project("skip", "{\"oauth_at_rest_pepper\": \"   \", \"openai\": \"\"}\n");
    let out = empty.cmd(&["validate"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    snapshot(&empty, "validate_required", &out);
    let short = checked_project(
        "skip",
        "{\"oauth_at_rest_pepper\": \"CANARY-short\", \"database_url\": \"postgres://a:CANARY-b@c/d\"}\n",
    );
    let out = short.cmd(&["validate"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stdout.contains("`oauth_at_rest_pepper` is shorter than 32 characters"), "{}", out.stdout);
    assert!(out.stdout.contains("[pepper-length]"), "{}", out.stdout);
    assert!(out.stdout.ends_with("Invalid: 1 error(s), 0 warning(s).\n"), "{}", out.stdout);
    // jwt_secret is an ordinary custom secret now: however long, it stands in for no pepper.
    let jwt_only = checked_project(
        "warn",
        "{\"jwt_secret\": \"CANARY-jwt-0123456789abcdef0123456789abcdef\", \"database_url\": \"postgres://a:CANARY-b@c/d\"}\n",
    );
    let out = jwt_only.cmd(&["validate"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stdout.contains("`oauth_at_rest_pepper` is missing"), "{}", out.stdout);
    assert!(out.stdout.contains("[pepper-required]"), "{}", out.stdout);
    assert!(!out.stdout.contains("jwt_secret"), "no rule is about jwt_secret: {}", out.stdout);
    assert!(out.stdout.ends_with("Invalid: 1 error(s), 0 warning(s).\n"), "{}", out.stdout);
    let good = Project::fixture("fresh");
    let out = good.cmd(&["validate"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stdout.ends_with("Valid: no errors, no warnings.\n"), "{}", out.stdout);
}

#[test]
fn the_same_checks_run_before_every_plan() {
    let warn = bad_project("warn");
    let out = warn.cmd(&["plan"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
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
    // A short pepper stops every plan, even under skip.
    let short = checked_project(
        "skip",
        "{\"oauth_at_rest_pepper\": \"CANARY-short\", \"database_url\": \"postgres://a:CANARY-b@c/d\"}\n",
    );
    let out = short.cmd(&["apply", "--yes"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("[pepper-length]"), "{}", out.stderr);
    assert!(short.read_bytes(".systemprompt/profiles/dev/store.json").is_none());
    // A required key not set here, which the remote keeps, is only a warning for a plan.
    let kept = Project::fixture("drift");
    assert_eq!(kept.cmd(&["apply", "--yes", "-q"]).run().code, 0);
    let edited = kept.read(SECRETS).replace("\"CANARY-pepper-0e5b7d3a9c1f4e6b8a2d0c7e5f3a1b9d\"", "null");
    let kept = kept.write(SECRETS, &edited);
    let out = kept.cmd(&["plan", "--detailed-exitcode"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stderr.contains(
            "warning: .systemprompt/profiles/staging/secrets.json:2:3: `oauth_at_rest_pepper` is not set: the \
             platform requires it and does not start without it (cloud-secrets generate pepper --into \
             oauth_at_rest_pepper makes one) [pepper-required]; file:.systemprompt/profiles/staging/store.json \
             still holds OAUTH_AT_REST_PEPPER after this plan"
        ),
        "{}",
        out.stderr
    );
    // validate, which sees no remote, calls it an error.
    assert_eq!(kept.cmd(&["validate"]).run().code, 1);
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
    let into = project.cmd(&["generate", "jwt-secret", "--into", "jwt_secret"]).run();
    assert_eq!(into.code, 0, "{}", into.transcript());
    assert!(into.stdout.is_empty(), "--into prints nothing on stdout");
    snapshot(&project, "generate_into", &into);
    let written: serde_json::Value = serde_json::from_str(&project.read(secrets)).unwrap();
    let value = written["jwt_secret"].as_str().unwrap();
    assert_eq!(value.len(), 64);
    assert!(!into.stderr.contains(value));
}

#[test]
fn generate_pepper_makes_what_the_platform_accepts() {
    let project = Project::fixture("fresh");
    let out = project.cmd(&["generate", "pepper"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let pepper = out.stdout.trim_end();
    assert_eq!(pepper.len(), 64);
    assert!(pepper.chars().all(|c| c.is_ascii_alphanumeric()), "not letters and digits only");
    assert_ne!(project.cmd(&["generate", "pepper"]).run().stdout, out.stdout);

    let secrets = ".systemprompt/profiles/production/secrets.json";
    let before: serde_json::Value = serde_json::from_str(&project.read(secrets)).unwrap();
    let into = project.cmd(&["generate", "pepper", "--into", "oauth_at_rest_pepper", "--force"]).run();
    assert_eq!(into.code, 0, "{}", into.transcript());
    assert!(into.stdout.is_empty(), "--into prints nothing on stdout");
    assert!(
        into.stderr.starts_with("Wrote a new 64-character secret to `oauth_at_rest_pepper` in "),
        "{}",
        into.stderr
    );
    let written: serde_json::Value = serde_json::from_str(&project.read(secrets)).unwrap();
    let value = written["oauth_at_rest_pepper"].as_str().unwrap();
    assert_eq!(value.len(), 64);
    assert!(value.chars().all(|c| c.is_ascii_alphanumeric()), "not letters and digits only");
    assert_ne!(
        written["oauth_at_rest_pepper"], before["oauth_at_rest_pepper"],
        "the pepper was not replaced"
    );
    assert!(!into.stderr.contains(value), "the pepper was shown");
    assert_eq!(written["database_url"], before["database_url"], "other keys are kept");
    // What it wrote passes the platform's rules, and the next plan carries it.
    assert_eq!(project.cmd(&["validate"]).run().code, 0);
    let plan = project.cmd(&["plan"]).run();
    assert!(plan.stdout.contains("  + OAUTH_AT_REST_PEPPER"), "{}", plan.stdout);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(project.path(secrets)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn init_scaffolds_a_profile_and_never_overwrites() {
    use std::os::unix::fs::PermissionsExt;
    let project = Project::empty();
    let out = project.cmd(&["init", "--profile", "staging"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "init_new", &out);

    // profile.yaml in the platform's shape, with the secrets file beside it.
    let yaml = project.read(".systemprompt/profiles/staging/profile.yaml");
    for line in ["name: staging", "target: local", "  secrets_path: ./secrets.json", "  source: file"] {
        assert!(yaml.lines().any(|l| l == line), "{line:?} missing from profile.yaml:\n{yaml}");
    }
    // secrets.json, private, with a new pepper the platform accepts (never printed, here either).
    let secrets_path = project.path(".systemprompt/profiles/staging/secrets.json");
    assert_eq!(std::fs::metadata(&secrets_path).unwrap().permissions().mode() & 0o777, 0o600);
    let secrets: serde_json::Value =
        serde_json::from_str(&project.read(".systemprompt/profiles/staging/secrets.json"))
            .expect("secrets.json is JSON");
    let pepper = secrets["oauth_at_rest_pepper"].as_str().expect("a pepper").to_owned();
    assert_eq!(pepper.chars().count(), 64);
    assert!(pepper.chars().all(|c| c.is_ascii_alphanumeric()), "the pepper is not letters and digits only");
    assert!(!out.stdout.contains(&pepper) && !out.stderr.contains(&pepper), "init showed the pepper");
    assert_eq!(secrets["database_url"], "");
    // cloud-secrets.yaml with the profile's section, naming a local store.
    let settings = project.read(SETTINGS);
    assert!(
        settings.contains("profiles:\n  staging:\n    remote: file:profiles/staging/store.json\n"),
        "{settings}"
    );
    // .gitignore: what the platform's covers, and what cloud-secrets keeps beside a profile.
    let gitignore = project.read(".systemprompt/.gitignore");
    for line in [
        "credentials.json",
        "tenants.json",
        "**/secrets.json",
        "sessions/",
        "docker/",
        "storage/",
        "**/*last-applied.json",
        "**/*plan-key",
        "**/*.lock",
        "**/*store.json",
        "**/.cloud-secrets-*.tmp",
    ] {
        assert!(gitignore.lines().any(|l| l == line), "{line:?} missing from .gitignore:\n{gitignore}");
    }

    // A second init overwrites nothing, even a file it would write differently.
    let project = project.write(".systemprompt/profiles/staging/profile.yaml", "target: local\n");
    let before = project.snapshot_files("");
    let again = project.cmd(&["init", "--profile", "staging"]).run();
    assert_eq!(again.code, 0, "{}", again.transcript());
    snapshot(&project, "init_existing", &again);
    assert_eq!(project.snapshot_files(""), before, "a second init changed a file");

    // Right after init, a plan stops: database_url is empty and the store would lack it.
    let fresh = Project::empty();
    assert_eq!(fresh.cmd(&["init"]).run().code, 0);
    let plan = fresh.cmd(&["plan", "--detailed-exitcode"]).run();
    assert_eq!(plan.code, 1, "{}", plan.transcript());
    assert!(plan.stderr.contains("[database-url-required]"), "{}", plan.stderr);
    assert!(plan.stderr.contains("would hold no DATABASE_URL"), "{}", plan.stderr);
    // With database_url set, it plans and applies against the store init named.
    let secrets_rel = ".systemprompt/profiles/local/secrets.json";
    let mut secrets: serde_json::Value = serde_json::from_str(&fresh.read(secrets_rel)).unwrap();
    secrets["database_url"] = "postgres://app:CANARY-init-db@db.internal:5432/app".into();
    let fresh = fresh.write(secrets_rel, &serde_json::to_string_pretty(&secrets).unwrap());
    let plan = fresh.cmd(&["plan", "--detailed-exitcode"]).run();
    assert_eq!(plan.code, 2, "{}", plan.transcript());
    assert!(
        plan.stdout.starts_with("Profile local · remote file:.systemprompt/profiles/local/store.json\n"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("Plan: 2 to add, 0 to change, 0 to remove, 0 to clean up."),
        "{}",
        plan.stdout
    );
    let pepper = secrets["oauth_at_rest_pepper"].as_str().unwrap();
    assert!(!plan.stdout.contains(pepper) && !plan.stderr.contains(pepper), "the plan showed the pepper");
    assert_eq!(fresh.cmd(&["apply", "--yes", "-q"]).run().code, 0);
    let store: serde_json::Value =
        serde_json::from_str(&fresh.read(".systemprompt/profiles/local/store.json")).unwrap();
    let names: Vec<&String> = store["variables"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["DATABASE_URL", "OAUTH_AT_REST_PEPPER"]);
    assert!(store["variables"]["OAUTH_AT_REST_PEPPER"] == pepper, "the store holds another pepper");

    // An existing .gitignore gets only the lines it lacks.
    let mine = "# my own\ncredentials.json\nsessions/\n**/*.lock\n";
    let existing = Project::empty().write(".systemprompt/.gitignore", mine);
    let out = existing.cmd(&["init"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let gitignore = existing.read(".systemprompt/.gitignore");
    assert_eq!(
        gitignore,
        format!(
            "{mine}# Added by cloud-secrets init.\ntenants.json\n**/secrets.json\n**/*.secrets.json\ndocker/\nstorage/\n\
             **/*last-applied.json\n**/*plan-key\n**/*store.json\n**/.cloud-secrets-*.tmp\n**/*.previous\n*.tmp\n"
        )
    );
    assert!(
        out.stdout.contains(
            "updated  .systemprompt/.gitignore (added tenants.json, **/secrets.json, **/*.secrets.json, docker/, \
             storage/, \
             **/*last-applied.json, **/*plan-key, **/*store.json, **/.cloud-secrets-*.tmp, **/*.previous, *.tmp)"
        ),
        "{}",
        out.stdout
    );
    let before = existing.snapshot_files(".gitignore");
    assert_eq!(existing.cmd(&["init"]).run().code, 0);
    assert_eq!(existing.snapshot_files(".gitignore"), before, "the lines were added twice");

    // A directory that is no project root yet becomes one.
    let bare = Project::bare();
    let out = bare.cmd(&["init"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stdout.starts_with("created  services (marks the project root)\n"), "{}", out.stdout);
    assert!(bare.path("services").is_dir());

    // A settings file without the profile's section is not rewritten: init says what to add.
    let other = Project::fixture("fresh");
    let settings = other.read(SETTINGS);
    let out = other.cmd(&["init", "--profile", "staging"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(other.read(SETTINGS), settings);
    assert!(
        out.stderr.contains(
            "warning: .systemprompt/cloud-secrets.yaml has no section for `staging`; add these lines under \
             `profiles:` to give it a remote:\n  staging:\n    remote: file:profiles/staging/store.json\n"
        ),
        "{}",
        out.stderr
    );
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
    // The session's active profile is the one marked when nothing else chooses.
    let project = project.write(".systemprompt/sessions/index.json", "{\"active_profile_name\": \"prod\"}\n");
    let active = project.cmd(&["profiles"]).run();
    assert!(active.stdout.contains("* prod"), "{}", active.stdout);
    let chosen = project.cmd(&["profiles", "--profile", "staging"]).run();
    assert!(chosen.stdout.contains("* staging") && !chosen.stdout.contains("* prod"), "{}", chosen.stdout);
}

#[test]
fn the_environment_and_dotenv_override_secrets_json() {
    let dotenv =
        "# local overrides\nOPENAI_API_KEY=sk-CANARY-dotenv-1a\nANTHROPIC_API_KEY=sk-ant-CANARY-dotenv-2b\n";
    // Without an opt-in, a .env at the root is not read.
    let unread = Project::fixture("fresh").write(".env", dotenv);
    let out = unread.cmd(&["plan"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout.contains("  + OPENAI_API_KEY               add       from secrets.json `openai`\n"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains(".env"), "{}", out.stdout);
    assert_eq!(unread.cmd(&["apply", "--yes", "-q"]).run().code, 0);
    let vars: serde_json::Value =
        serde_json::from_str(&unread.read(".systemprompt/profiles/production/store.json")).unwrap();
    assert_eq!(vars["variables"]["OPENAI_API_KEY"], "sk-CANARY-openai-93d1");
    assert_eq!(vars["variables"]["ANTHROPIC_API_KEY"], "sk-ant-CANARY-anthropic-2b7e");

    // `dotenv:` opts in; the environment still wins over it.
    let project = Project::fixture("fresh").write(".env", dotenv).write(
        SETTINGS,
        "profiles:\n  production:\n    remote: file:profiles/production/store.json\n    dotenv: ../.env\n",
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
    assert_eq!(vars["variables"]["OAUTH_AT_REST_PEPPER"], "CANARY-pepper-fresh-7d2e4c9a1b3f5e8d0c6a");
    assert!(vars["variables"].get("UNRELATED").is_none());
    // An empty or whitespace-only variable does not override.
    for blank in ["", "   "] {
        let out = project.cmd(&["plan", "--detailed-exitcode", "-q"]).env("ANTHROPIC_API_KEY", blank).run();
        assert_eq!(out.code, 2, "{blank:?}: {}", out.transcript());
    }
    // A .env that dotenv names must exist.
    std::fs::remove_file(project.path(".env")).unwrap();
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr
            .contains("error: .systemprompt/cloud-secrets.yaml:4:5: dotenv names .env, which does not exist"),
        "{}",
        out.stderr
    );
}

#[test]
fn without_a_secrets_file_the_environment_alone_is_the_desired_state() {
    // `source: env` or not, absence of the file is what means "from the environment".
    let project = Project::empty()
        .write(
            ".systemprompt/profiles/ci/profile.yaml",
            "target: local\nsecrets:\n  secrets_path: ./secrets.json\n  source: env\n",
        )
        .write(SETTINGS, "profiles:\n  ci:\n    remote: file:profiles/ci/store.json\n")
        .write(
            ".systemprompt/profiles/ci/store.json",
            "{\"version\": 1, \"variables\": {\"KEPT_ON_THE_REMOTE\": \"CANARY-kept-1f\"}}\n",
        );
    assert!(project.read_bytes(".systemprompt/profiles/ci/secrets.json").is_none());
    let run = |args: &[&str]| {
        project
            .cmd(args)
            .env("DATABASE_URL", "postgres://ci:CANARY-ci-pw@db/app")
            .env("OAUTH_AT_REST_PEPPER", "CANARY-ci-pepper-0123456789abcdef0123456789")
            .env("JWT_SECRET", "CANARY-ci-jwt")
            .env("MY_TOOL_KEY", "CANARY-ci-tool")
            .env("SYSTEMPROMPT_CUSTOM_SECRETS", "JWT_SECRET,MY_TOOL_KEY,MISSING_ONE")
            .env("NOT_LISTED", "CANARY-not-listed")
            .run()
    };
    let out = run(&["plan"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "plan_source_env", &out);
    assert!(!out.stdout.contains("NOT_LISTED"));
    assert!(!out.stdout.contains("  - KEPT_ON_THE_REMOTE"), "removed without a secrets file: {}", out.stdout);
    let applied = run(&["apply", "--yes", "-q"]);
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    let store = project.read(".systemprompt/profiles/ci/store.json");
    let vars: serde_json::Value = serde_json::from_str(&store).unwrap();
    assert_eq!(vars["variables"]["KEPT_ON_THE_REMOTE"], "CANARY-kept-1f", "kept");
    assert_eq!(vars["variables"]["MY_TOOL_KEY"], "CANARY-ci-tool");
    assert!(vars["variables"].get("NOT_LISTED").is_none());

    // Once the file exists it is the desired state, though the profile says `source: env`.
    let project = project.write(
        ".systemprompt/profiles/ci/secrets.json",
        "{\"oauth_at_rest_pepper\": \"CANARY-file-pepper-0123456789abcdef01234\", \"database_url\": \"postgres://f:CANARY-file-db@h/d\"}\n",
    );
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout
            .contains("  ~ OAUTH_AT_REST_PEPPER         change    from secrets.json `oauth_at_rest_pepper`"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("  - KEPT_ON_THE_REMOTE"), "{}", out.stdout);
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
        SETTINGS,
        "profiles:\n  staging:\n    remote: file:profiles/staging/store.json\n    validation: strict\n",
    );
    let out = strict.cmd(&["plan"]).run();
    assert_eq!(out.code, 1, "an error under strict: {}", out.transcript());
    assert!(out.stderr.contains("is tracked by git"), "{}", out.stderr);
    assert!(out.stderr.contains("fix: git rm --cached"), "{}", out.stderr);
}

#[test]
fn ignored_variables_are_listed_and_left_alone() {
    let project = Project::fixture("drift").write(
        SETTINGS,
        "profiles:\n  staging:\n    remote: file:profiles/staging/store.json\n    ignore:\n      - LEGACY_*\n      \
         - FLY_APP_NAME\n      - OPENAI_*\n",
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
    assert!(
        set.stderr.contains("not setting OPENAI_API_KEY: it matches `ignore` in cloud-secrets.yaml"),
        "{}",
        set.stderr
    );
    let bad = Project::fixture("drift").write(
        SETTINGS,
        "profiles:\n  staging:\n    remote: file:profiles/staging/store.json\n    ignore: [\"[\"]\n",
    );
    let out = bad.cmd(&["plan"]).run();
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("cloud-secrets.yaml:4:5: ignore: `[` is not a glob pattern"),
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
fn set_of_database_url_is_refused_while_internal_database_url_provides_it() {
    // internal_database_url provides DATABASE_URL here (and INTERNAL_DATABASE_URL), though
    // database_url comes first: setting DATABASE_URL alone would be undone by the next apply.
    let project = Project::fixture("drift");
    let (held, secrets) = (project.read_bytes(STORE).unwrap(), project.read(SECRETS));
    let out = project.cmd(&["set", "DATABASE_URL=postgres://a:CANARY-new-db@h/d", "--yes", "--save"]).run();
    assert_eq!(out.code, 64, "{}", out.transcript());
    assert!(out.stderr.contains("DATABASE_URL comes from `internal_database_url`"), "{}", out.stderr);
    assert!(out.stderr.contains("cloud-secrets set internal_database_url=..."), "{}", out.stderr);
    assert_eq!(project.read_bytes(STORE).unwrap(), held, "nothing written to the remote");
    assert_eq!(project.read(SECRETS), secrets, "nor to secrets.json");
    // Setting the key that provides it changes both names, and secrets.json, together.
    let out = project
        .cmd(&["set", "internal_database_url=postgres://a:CANARY-new-db@h/d", "--yes", "--save", "-q"])
        .run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let saved: serde_json::Value = serde_json::from_str(&project.read(SECRETS)).unwrap();
    assert_eq!(saved["internal_database_url"], "postgres://a:CANARY-new-db@h/d");
    assert_eq!(saved["database_url"], "postgres://app:CANARY-public-db-9c4a@db.example.com:5432/app");
    let vars = &store(&project)["variables"];
    assert_eq!(vars["DATABASE_URL"], "postgres://a:CANARY-new-db@h/d");
    assert_eq!(vars["INTERNAL_DATABASE_URL"], "postgres://a:CANARY-new-db@h/d");
    let plan = project.cmd(&["plan", "-v"]).run();
    assert!(plan.stdout.contains("    DATABASE_URL "), "the next plan agrees: {}", plan.stdout);
    assert!(plan.stdout.contains("    INTERNAL_DATABASE_URL "), "the next plan agrees: {}", plan.stdout);
}

#[test]
fn set_checks_its_values_and_the_profile_like_every_plan() {
    let project = Project::fixture("drift").write(
        SETTINGS,
        "profiles:\n  staging:\n    remote: file:profiles/staging/store.json\n    validation: strict\n",
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
    // Version 8 adds the pepper alone; rolling back to 7 would take it away: refused.
    let pepper = "CANARY-pepper-0e5b7d3a9c1f4e6b8a2d0c7e5f3a1b9d";
    let set = project.cmd(&["set", &format!("oauth_at_rest_pepper={pepper}"), "--yes", "-q"]).run();
    assert_eq!(set.code, 0, "{}", set.transcript());
    let before = project.read_bytes(STORE).unwrap();
    let refused = project.cmd(&["rollback", "--yes"]).run();
    assert_eq!(refused.code, 1, "{}", refused.transcript());
    assert!(refused.stderr.contains("would hold no OAUTH_AT_REST_PEPPER"), "{}", refused.stderr);
    assert_eq!(project.read_bytes(STORE).unwrap(), before);
    // Version 9 is the full apply; rolling back returns to 8.
    assert_eq!(project.cmd(&["apply", "--yes", "-q"]).run().code, 0);
    let declined = project.cmd(&["rollback"]).input(Input::Tty("n\n".into())).run();
    assert_eq!(declined.code, 4, "{}", declined.transcript());
    let out = project.cmd(&["rollback", "--yes"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "rollback_local", &out);
    let vars = &store(&project)["variables"];
    assert_eq!(vars["OPENAI_API_KEY"], "sk-CANARY-openai-old-0d4c");
    assert_eq!(vars["LEGACY_WEBHOOK_SECRET"], "CANARY-legacy-2a9d");
    assert!(vars.get("INTERNAL_DATABASE_URL").is_none());
    assert_eq!(vars["OAUTH_AT_REST_PEPPER"], pepper);
    assert!(vars.get("FLY_APP_NAME").is_none(), "what the platform owns is not brought back");
    assert_eq!(store(&project)["previous"]["version"], 9);
}

#[test]
fn cleanup_and_rollback_respect_ignore_and_the_mass_removal_guard() {
    let project = Project::fixture("drift").write(
        SETTINGS,
        "profiles:\n  staging:\n    remote: file:profiles/staging/store.json\n    ignore: [FLY_*]\n",
    );
    assert_eq!(project.cmd(&["cleanup", "--yes", "-q"]).run().code, 0);
    let vars = &store(&project)["variables"];
    assert_eq!(vars["FLY_APP_NAME"], "CANARY-flyapp-remote-8d1a", "ignored: not cleaned up");
    assert!(vars.get("SYSTEMPROMPT_API_URL").is_none());

    // A rollback to an almost empty version is a mass removal.
    let required = "\"oauth_at_rest_pepper\": \"CANARY-pepper-0e5b7d3a9c1f4e6b8a2d0c7e5f3a1b9d\", \"database_url\": \"postgres://a:CANARY-db@h/d\"";
    let emptied = Project::fixture("drift").write(SECRETS, &format!("{{{required}}}\n"));
    assert_eq!(emptied.cmd(&["apply", "--yes", "-q", "--allow-mass-removal"]).run().code, 0);
    let full = emptied.write(
        SECRETS,
        &format!(
            "{{{required}, \"a\": \"CANARY-a\", \"b\": \"CANARY-b\", \"c\": \"CANARY-c\", \"d\": \"CANARY-d\"}}\n"
        ),
    );
    assert_eq!(full.cmd(&["apply", "--yes", "-q"]).run().code, 0);
    let before = full.read_bytes(STORE).unwrap();
    let out = full.cmd(&["rollback", "--yes"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr.contains("refusing to apply: the plan removes 5 of the 7 managed variables"),
        "{}",
        out.stderr
    );
    assert_eq!(full.read_bytes(STORE).unwrap(), before);
    assert_eq!(full.cmd(&["rollback", "--yes", "-q", "--allow-mass-removal"]).run().code, 0);
    let names: Vec<String> = store(&full)["variables"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(names, ["DATABASE_URL", "OAUTH_AT_REST_PEPPER", "SIGNING_KEY_PEM", "SYSTEMPROMPT_API_TOKEN"]);
}

#[test]
fn unset_save_removes_the_keys_from_secrets_json_and_leaves_nothing_to_plan() {
    const FRESH: &str = ".systemprompt/profiles/production/secrets.json";
    let project = Project::fixture("fresh");
    assert_eq!(project.cmd(&["apply", "--yes", "-q"]).run().code, 0);
    let before = project.read(FRESH);
    // A key by its variable name and a custom key by its key: each goes from the file, the rest
    // of which is kept byte for byte.
    let out = project.cmd(&["unset", "ANTHROPIC_API_KEY", "moltbook_builder", "--save", "--yes"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stderr.contains(
            "Removed anthropic, moltbook_builder from .systemprompt/profiles/production/secrets.json."
        ),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("adds it back"), "{}", out.stderr);
    let expected: String = before
        .lines()
        .filter(|line| !line.contains("\"anthropic\"") && !line.contains("\"moltbook_builder\""))
        .map(|line| if line.contains("\"gemini\"") { "  \"gemini\": \"\"" } else { line })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    assert_eq!(project.read(FRESH), expected);
    let plan = project.cmd(&["plan", "--detailed-exitcode"]).run();
    assert_eq!(plan.code, 0, "{}", plan.transcript());
    // Without --save the file keeps the key, and the warning says how to remove it there too.
    let out = project.cmd(&["unset", "openai", "--yes"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stderr.contains("run unset with --save to remove its key there too"), "{}", out.stderr);
    assert!(project.read(FRESH).contains("\"openai\""));
}
