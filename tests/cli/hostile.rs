//! A hostile checkout: a pull request writes the project's files while the pipeline's
//! environment holds the credentials. Each scenario runs the real binary against loopback
//! servers that record every request (the emulator serves as both the real service and the
//! attacker's), and asserts that no credential reached an address the environment did not choose.

use cloud_secrets_emulator::{Emulator, Listing};

use crate::support::{Outcome, Project};

const TOKEN: &str = "sp-CANARY-pipeline-token-7c3e";
const VAULT_TOKEN: &str = "hvs.CANARY-pipeline-vault-token-2b8f";
const SETTINGS: &str = ".systemprompt/cloud-secrets.yaml";

/// The real service, holding the fixture's tenant.
fn service() -> Emulator {
    let emulator = Emulator::start();
    emulator.set_listing(Listing::Digests);
    emulator.grant(TOKEN, &["acme"]);
    emulator.set_secrets("acme", &[]);
    emulator
}

/// Every file of the project that is not cloud-secrets' own (stores, locks, records, plan keys,
/// saved plans, kept values), with its bytes; symbolic links as their targets' names.
fn foreign_files(project: &Project) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let own = |name: &str| {
        name.ends_with("store.json")
            || name.ends_with(".lock")
            || name.ends_with("last-applied.json")
            || name.ends_with("plan-key")
            || name.ends_with(".previous")
            || name == "plan.json"
    };
    let mut found = Vec::new();
    let mut pending = vec![project.root().to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let (path, kind) = (entry.path(), entry.file_type().unwrap());
            let name = entry.file_name().to_string_lossy().into_owned();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&path).unwrap().to_string_lossy().into_owned().into_bytes();
                found.push((path, target));
            } else if !own(&name) {
                found.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    found.sort();
    found
}

/// Runs `scenario` and fails if it changed any file that is not cloud-secrets' own.
fn leaves_foreign_files_alone<T>(project: &Project, scenario: impl FnOnce() -> T) -> T {
    let before = foreign_files(project);
    let result = scenario();
    assert!(foreign_files(project) == before, "a file cloud-secrets does not own was changed");
    result
}

/// Fails if any request the attacker's server saw carries a credential, or if it saw any at all.
fn assert_untouched(attacker: &Emulator, out: &Outcome) {
    let log = attacker.log();
    for request in &log {
        let text = format!("{:?} {}", request.headers, request.body);
        assert!(!text.contains("CANARY"), "a credential reached the attacker: {text}");
    }
    assert_eq!(log.len(), 0, "the attacker's server was contacted:\n{}", out.transcript());
}

#[test]
fn a_remote_in_the_settings_never_receives_the_environment_s_token() {
    let (real, attacker) = (service(), Emulator::start());
    let project = Project::fixture("cloud")
        .write(SETTINGS, &format!("profiles:\n  prod:\n    remote: {}\n", attacker.url()));
    // With the service's address in the environment, and with the default address.
    for with_url in [true, false] {
        let mut run = project.cmd(&["plan"]).env("SYSTEMPROMPT_API_TOKEN", TOKEN);
        if with_url {
            run = run.env("SYSTEMPROMPT_API_URL", &real.url());
        }
        let out = leaves_foreign_files_alone(&project, || run.run());
        assert_eq!(out.code, 1, "{}", out.transcript());
        assert!(out.stderr.contains("the API token from the environment goes only to"), "{}", out.stderr);
        assert!(out.stderr.contains(&attacker.url()), "{}", out.stderr);
        assert!(out.stderr.contains("--remote"), "{}", out.stderr);
        assert_untouched(&attacker, &out);
    }
    assert_eq!(real.request_count(), 0);
}

#[test]
fn an_address_in_profile_yaml_of_an_earlier_version_is_refused_the_same_way() {
    let attacker = Emulator::start();
    let project = Project::fixture("cloud").write(
        ".systemprompt/profiles/prod/profile.yaml",
        &format!("target: cloud\ncloud:\n  tenant_id: acme\nsecrets:\n  remote: {}\n", attacker.url()),
    );
    let out = leaves_foreign_files_alone(&project, || {
        project.cmd(&["apply", "--yes"]).env("SYSTEMPROMPT_API_TOKEN", TOKEN).run()
    });
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert_untouched(&attacker, &out);
}

#[test]
fn a_credentials_json_added_by_the_pull_request_does_not_redirect_the_environment_s_token() {
    let attacker = Emulator::start();
    let project = Project::fixture("cloud").write(
        ".systemprompt/credentials.json",
        &format!(
            "{{\n  \"api_token\": \"\",\n  \"api_url\": \"{}\",\n  \"authenticated_at\": \"2026-11-01T09:00:00Z\",\n  \"user_email\": \"x@example.com\"\n}}\n",
            attacker.url()
        ),
    );
    let out = leaves_foreign_files_alone(&project, || {
        project.cmd(&["plan"]).env("SYSTEMPROMPT_API_TOKEN", TOKEN).run()
    });
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("credentials.json names"), "{}", out.stderr);
    assert_untouched(&attacker, &out);
}

#[test]
fn a_token_in_credentials_json_goes_only_to_its_own_api_url() {
    let (real, attacker) = (service(), Emulator::start());
    real.grant("sp-CANARY-file-token-4d1a", &["acme"]);
    let credentials = format!(
        "{{\n  \"api_token\": \"sp-CANARY-file-token-4d1a\",\n  \"api_url\": \"{}\",\n  \"authenticated_at\": \"2026-11-01T09:00:00Z\",\n  \"user_email\": \"dev@example.com\"\n}}\n",
        real.url()
    );
    let project = Project::fixture("cloud")
        .write(".systemprompt/credentials.json", &credentials)
        .write(SETTINGS, &format!("profiles:\n  prod:\n    remote: {}\n", attacker.url()));
    let out = leaves_foreign_files_alone(&project, || project.cmd(&["plan"]).run());
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("the API token from credentials.json goes only to"), "{}", out.stderr);
    assert_untouched(&attacker, &out);
    // Its own address is fine, wherever it is written.
    let settled = Project::fixture("cloud")
        .write(".systemprompt/credentials.json", &credentials)
        .write(SETTINGS, &format!("profiles:\n  prod:\n    remote: {}\n", real.url()));
    let out = leaves_foreign_files_alone(&settled, || settled.cmd(&["plan", "-q"]).run());
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(real.request_count() > 0);
}

#[test]
fn addresses_the_owner_chose_are_used() {
    let real = service();
    // The same address in the settings as in the environment.
    let project = Project::fixture("cloud")
        .write(SETTINGS, &format!("profiles:\n  prod:\n    remote: {}\n", real.url()));
    let out = project
        .cmd(&["plan", "-q"])
        .env("SYSTEMPROMPT_API_TOKEN", TOKEN)
        .env("SYSTEMPROMPT_API_URL", &real.url())
        .run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    // An address given on the command line is the owner's choice, whatever the settings say.
    let elsewhere = Project::fixture("cloud")
        .write(SETTINGS, "profiles:\n  prod:\n    remote: https://example.invalid\n");
    let out =
        elsewhere.cmd(&["plan", "-q", "--remote", &real.url()]).env("SYSTEMPROMPT_API_TOKEN", TOKEN).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
}

#[test]
fn a_vault_address_in_the_settings_never_receives_vault_token() {
    let attacker = Emulator::start();
    let address = attacker.url().replacen("http://", "vault+http://", 1);
    let project = Project::fixture("fresh")
        .write(SETTINGS, &format!("profiles:\n  production:\n    remote: {address}/secret/app\n"));
    for vault_addr in [Some("https://vault.internal.example:8200"), None] {
        let mut run = project.cmd(&["plan"]).env("VAULT_TOKEN", VAULT_TOKEN);
        if let Some(addr) = vault_addr {
            run = run.env("VAULT_ADDR", addr);
        }
        let out = leaves_foreign_files_alone(&project, || run.run());
        assert_eq!(out.code, 1, "{}", out.transcript());
        assert!(out.stderr.contains("VAULT_TOKEN from the environment goes only to"), "{}", out.stderr);
        assert_untouched(&attacker, &out);
    }
    // VAULT_ADDR naming the same server lets it through (the request then reaches it).
    let out = leaves_foreign_files_alone(&project, || {
        project.cmd(&["plan"]).env("VAULT_TOKEN", VAULT_TOKEN).env("VAULT_ADDR", &attacker.url()).run()
    });
    assert!(!out.stderr.contains("goes only to"), "{}", out.transcript());
    assert!(attacker.request_count() > 0);
}

#[test]
fn a_lock_file_planted_as_a_link_is_refused_and_its_target_untouched() {
    let project = Project::fixture("fresh").write("victim/.bashrc", "export PATH=/usr/bin\n");
    let victim = project.path("victim/.bashrc");
    std::os::unix::fs::symlink(&victim, project.path(".systemprompt/profiles/production/store.json.lock"))
        .unwrap();
    let out = leaves_foreign_files_alone(&project, || project.cmd(&["apply", "--yes"]).run());
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("store.json.lock: the lock file is a symbolic link"), "{}", out.stderr);
    assert_eq!(project.read("victim/.bashrc"), "export PATH=/usr/bin\n");
    assert!(
        project.read_bytes(".systemprompt/profiles/production/store.json").is_none(),
        "nothing was applied"
    );
}

#[test]
fn generate_never_replaces_a_live_secret_unasked_and_keeps_the_previous_one() {
    let project = Project::fixture("fresh");
    let secrets = ".systemprompt/profiles/production/secrets.json";
    let before = project.read(secrets);
    let out = project.cmd(&["generate", "pepper", "--into", "oauth_at_rest_pepper"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("already has a value") && out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(project.read(secrets), before);
    let out = project.cmd(&["generate", "pepper", "--into", "oauth_at_rest_pepper", "--force"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_ne!(project.read(secrets), before);
    let kept: serde_json::Value =
        serde_json::from_str(&project.read(&format!("{secrets}.previous"))).unwrap();
    assert_eq!(kept["oauth_at_rest_pepper"], "CANARY-pepper-fresh-7d2e4c9a1b3f5e8d0c6a");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(project.path(&format!("{secrets}.previous"))).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // An empty key is simply filled.
    let out = project.cmd(&["generate", "jwt-secret", "--into", "gemini"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
}

#[test]
fn a_secrets_path_built_from_the_environment_never_prints_what_it_substituted() {
    // A pull request points secrets_path at the pipeline's token: the resolved path would carry it.
    let profile = ".systemprompt/profiles/production/profile.yaml";
    let project = Project::fixture("fresh");
    let yaml = project
        .read(profile)
        .replace("secrets_path: ./secrets.json", "secrets_path: ./${SYSTEMPROMPT_API_TOKEN}.json");
    let project = project.write(profile, &yaml);
    for args in [&["plan"][..], &["validate"], &["apply", "--yes"], &["set", "NEW=CANARY-new-3e1d", "--yes"]]
    {
        let out = leaves_foreign_files_alone(&project, || {
            project.cmd(args).env("SYSTEMPROMPT_API_TOKEN", TOKEN).run()
        });
        assert!(
            !out.stderr.contains("pipeline-token") && !out.stdout.contains("pipeline-token"),
            "{}",
            out.transcript()
        );
    }
    // A credential is never substituted: the path stays as written, and is refused.
    let out = project.cmd(&["plan"]).env("SYSTEMPROMPT_API_TOKEN", TOKEN).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("names a credential or a secret"), "{}", out.stderr);
    // A variable of any other name is substituted, and the path is named as written, never as
    // resolved: its errors too.
    let yaml = project.read(profile).replace("${SYSTEMPROMPT_API_TOKEN}", "${DEPLOY_STAGE}");
    let stage = "CANARY-stage-from-the-environment-6b1f";
    let project = project
        .write(profile, &yaml)
        .write(&format!(".systemprompt/profiles/production/{stage}.json"), "{\n  \"a\": 1\n}\n");
    let out =
        leaves_foreign_files_alone(&project, || project.cmd(&["plan"]).env("DEPLOY_STAGE", stage).run());
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("${DEPLOY_STAGE}") && !out.stderr.contains(stage), "{}", out.stderr);
}

#[test]
fn a_pull_request_s_env_file_is_not_read() {
    let project =
        Project::fixture("fresh").write(".env", "OPENAI_API_KEY=sk-CANARY-from-the-pull-request-5a2b\n");
    let out = leaves_foreign_files_alone(&project, || project.cmd(&["plan", "--format", "json"]).run());
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(!out.stdout.contains("dotenv"), "{}", out.stdout);
}

#[test]
fn files_of_cloud_secrets_planted_as_links_are_refused_and_their_targets_untouched() {
    let dir = ".systemprompt/profiles/production";
    for planted in ["plan-key", "last-applied.json"] {
        let project = Project::fixture("fresh").write("victim.txt", "precious\n");
        std::os::unix::fs::symlink(project.path("victim.txt"), project.path(&format!("{dir}/{planted}")))
            .unwrap();
        let _ = leaves_foreign_files_alone(&project, || project.cmd(&["plan", "--out", "plan.json"]).run());
        let _ = leaves_foreign_files_alone(&project, || project.cmd(&["apply", "--yes"]).run());
        assert_eq!(project.read("victim.txt"), "precious\n", "{planted}");
        assert!(
            project.path(&format!("{dir}/{planted}")).symlink_metadata().unwrap().file_type().is_symlink()
        );
    }
}

#[test]
fn a_tampered_plan_file_is_refused_and_an_unverifiable_one_says_so() {
    let project = Project::fixture("drift");
    assert_eq!(project.cmd(&["plan", "--out", "plan.json", "-q"]).run().code, 0);
    let tampered = project
        .read("plan.json")
        .replace("\"OPENAI_API_KEY\"", "\"OPENAI_API_KEY\\u001b[2K\\u001b[1A  + ALL_GOOD\"");
    let project = project.write("plan.json", &tampered);
    let out = leaves_foreign_files_alone(&project, || project.cmd(&["show", "plan.json"]).run());
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert!(!out.stdout.contains('\u{1b}'), "{}", out.stdout);
    // Elsewhere, with no plan key at hand, it is shown escaped, with a plain warning.
    let elsewhere = Project::bare().write("plan.json", &tampered);
    let out = leaves_foreign_files_alone(&elsewhere, || elsewhere.cmd(&["show", "plan.json"]).run());
    assert!(out.stderr.contains("could not be verified"), "{}", out.transcript());
    assert!(!out.stdout.contains('\u{1b}'), "{}", out.stdout);
}
