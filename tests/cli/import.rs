//! `import FILE` and `pull`: variables mapped back to secrets.json keys, planned, confirmed and
//! written into secrets.json in place. Against the local store, the OpenBao and moto servers
//! scripts/test starts (their absence fails these tests), and the cloud emulator, whose listing
//! gives no values to pull.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;

use cloud_secrets_emulator::{Emulator, Listing};

use crate::support::{Input, Project, snapshot};

/// The `fresh` fixture's secrets file.
const SECRETS: &str = ".systemprompt/profiles/production/secrets.json";

/// A dotenv file as a team exports one: a change, an unchanged value, two names of one key, a
/// new custom key, and variables that are not the profile's to keep.
const DOTENV: &str = "\
# exported from the team's password manager
export OPENAI_API_KEY=sk-CANARY-import-openai-1a2b
ANTHROPIC_API_KEY=sk-ant-CANARY-anthropic-2b7e
GEMINI_API_KEY=\"AIza-CANARY-import-gemini-3c4d\"
GITHUB_TOKEN=ghp_CANARY-import-github-5e6f
GITHUB=ghp_CANARY-import-github-5e6f
JWT_SECRET='CANARY-import-jwt-7a8b'
FLY_APP_NAME=CANARY-import-fly-9c0d
SYSTEMPROMPT_API_URL=https://CANARY-import-stale.example
SIGNING_KEY_PEM=CANARY-import-pem-1e2f
SYSTEMPROMPT_CUSTOM_SECRETS=GITHUB,JWT_SECRET
lower_case=CANARY-import-lower-3a4b
";

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

fn mode(project: &Project, rel: &str) -> u32 {
    std::fs::metadata(project.path(rel)).unwrap().permissions().mode() & 0o777
}

#[test]
fn import_shows_the_keys_asks_and_writes_them_in_place() {
    let project = Project::fixture("fresh").write(".env", DOTENV);
    let before = project.read(SECRETS);
    let out = project.cmd(&["import", ".env"]).input(Input::Tty("y\n".into())).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    snapshot(&project, "import_asked", &out);
    let after = project.read(SECRETS);
    // The lines of the keys that kept their value are kept byte for byte, in their order; the
    // new keys come after the last one.
    for line in before.lines().filter(|l| !l.contains("\"openai\"") && !l.contains("\"gemini\"")) {
        let line = line.trim_end_matches(',');
        assert!(after.contains(line), "{line} lost:\n{after}");
    }
    let at = |key: &str| after.find(&format!("\"{key}\"")).unwrap();
    assert!(at("oauth_at_rest_pepper") < at("openai") && at("moltbook_builder") < at("github"));
    assert!(at("github") < at("jwt_secret"));
    let values = json(&after);
    assert_eq!(values["openai"], "sk-CANARY-import-openai-1a2b");
    assert_eq!(values["gemini"], "AIza-CANARY-import-gemini-3c4d");
    assert_eq!(values["github"], "ghp_CANARY-import-github-5e6f");
    assert_eq!(values["jwt_secret"], "CANARY-import-jwt-7a8b");
    assert_eq!(values.as_object().unwrap().len(), 8, "nothing skipped was written: {after}");
    assert_eq!(mode(&project, SECRETS), 0o600);
    // Imported again: nothing to change, and no question.
    let again = project.cmd(&["import", ".env", "-q"]).run();
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert_eq!(again.stdout, format!("No changes to {SECRETS}: 5 unchanged, 5 skipped.\n"));
}

#[test]
fn import_without_a_terminal_or_declined_changes_nothing() {
    let project = Project::fixture("fresh").write(".env", DOTENV);
    let before = project.read(SECRETS);
    let out = project.cmd(&["import", ".env", "-q"]).run();
    assert_eq!(out.code, 4, "{}", out.transcript());
    assert!(out.stdout.contains("~ openai"), "a plan awaiting a question is shown whole: {}", out.stdout);
    assert!(out.stderr.contains("nothing was changed") && out.stderr.contains("--yes"), "{}", out.stderr);
    let declined = project.cmd(&["import", ".env"]).input(Input::Tty("n\n".into())).run();
    assert_eq!(declined.code, 4, "{}", declined.transcript());
    assert!(declined.stderr.ends_with("Import cancelled; nothing was changed.\n"), "{}", declined.stderr);
    assert_eq!(project.read(SECRETS), before);
}

#[test]
fn import_refuses_two_names_of_one_key_that_disagree() {
    let project = Project::fixture("fresh")
        .write("github.env", "GITHUB=ghp_CANARY-one-4a\nGITHUB_TOKEN=ghp_CANARY-two-5b\nJWT_SECRET=CANARY-j\n")
        .write(
            "db.env",
            "DATABASE_URL=postgres://a:CANARY-public-6c@db/a\nINTERNAL_DATABASE_URL=postgres://a:CANARY-internal-7d@10.0.0.2/a\n",
        );
    let before = project.read(SECRETS);
    let out = project.cmd(&["import", "github.env", "--yes"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    snapshot(&project, "import_names_disagree", &out);
    let out = project.cmd(&["import", "db.env", "--yes"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        out.stderr.contains(
            "db.env:2:1: DATABASE_URL and INTERNAL_DATABASE_URL both give the key `internal_database_url` \
             (DATABASE_URL comes from internal_database_url when that key is set)"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(project.read(SECRETS), before);
}

#[test]
fn import_creates_an_absent_secrets_json_with_mode_0600() {
    let project = Project::fixture("fresh").write(".env", DOTENV);
    std::fs::remove_file(project.path(SECRETS)).unwrap();
    let out = project.cmd(&["import", ".env", "--yes", "-q"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(out.stdout, "Import: 5 to add, 0 to change, 0 unchanged, 5 skipped.\n");
    assert_eq!(out.stderr, "");
    assert_eq!(mode(&project, SECRETS), 0o600);
    let keys: Vec<String> = json(&project.read(SECRETS)).as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["anthropic", "gemini", "github", "jwt_secret", "openai"]);
    let missing = project.cmd(&["import", "nope.env"]).run();
    assert_eq!(missing.code, 1, "{}", missing.transcript());
    assert!(missing.stderr.starts_with("error: nope.env: the file does not exist"), "{}", missing.stderr);
}

#[test]
fn pull_from_the_local_store_shows_changes_and_asks() {
    let project = Project::fixture("drift");
    let secrets = ".systemprompt/profiles/staging/secrets.json";
    let before = project.read(secrets);
    let out = project.cmd(&["pull"]).run();
    assert_eq!(out.code, 4, "{}", out.transcript());
    snapshot(&project, "pull_local_store", &out);
    assert_eq!(project.read(secrets), before, "not confirmed: nothing written");
    let out = project.cmd(&["pull", "--yes", "-vv"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stderr.contains("Saved github, legacy_webhook_secret, openai to"), "{}", out.stderr);
    let values = json(&project.read(secrets));
    assert_eq!(values["openai"], "sk-CANARY-openai-old-0d4c");
    assert_eq!(values["github"], "CANARY-github-remote-3b6c");
    assert_eq!(values["legacy_webhook_secret"], "CANARY-legacy-2a9d");
    // DATABASE_URL is internal_database_url's; database_url and the file's own skipped key stay.
    assert_eq!(values["database_url"], "postgres://app:CANARY-public-db-9c4a@db.example.com:5432/app");
    assert_eq!(values["fly_app_name"], "CANARY-flyapp-local-1c3e");
}

#[test]
fn pull_into_an_absent_file_round_trips_through_apply() {
    let project = Project::fixture("platform");
    let secrets = ".systemprompt/secrets/production.secrets.json";
    assert_eq!(project.cmd(&["apply", "--yes", "-q"]).run().code, 0);
    std::fs::remove_file(project.path(secrets)).unwrap();
    let out = project.cmd(&["pull", "--yes", "-q"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(out.stdout, "Pull: 7 to add, 0 to change, 0 unchanged, 1 skipped.\n");
    let keys: Vec<String> = json(&project.read(secrets)).as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "anthropic",
            "github",
            "internal_database_url",
            "jwt_secret",
            "manifest_signing_secret_seed",
            "moonshot",
            "oauth_at_rest_pepper"
        ]
    );
    let plan = project.cmd(&["plan", "--detailed-exitcode"]).run();
    assert_eq!(plan.code, 0, "what was pulled applies as the remote holds it: {}", plan.transcript());
}

/// OpenBao, started by scripts/test: its address and root token.
fn vault() -> (String, String) {
    match (std::env::var("CLOUD_SECRETS_VAULT_ADDR"), std::env::var("CLOUD_SECRETS_VAULT_TOKEN")) {
        (Ok(addr), Ok(token)) => (addr, token),
        _ => panic!("OpenBao is not running: run ./scripts/test, which installs and starts it"),
    }
}

/// moto, started by scripts/test.
fn moto() -> String {
    std::env::var("CLOUD_SECRETS_MOTO_ADDR")
        .unwrap_or_else(|_| panic!("moto is not running: run ./scripts/test, which installs and starts it"))
}

/// One raw HTTP/1.1 request, so that the tests do not share the tool's client; the status.
fn request(addr: &str, head: &str, body: &str) -> u16 {
    let host = addr.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).unwrap();
    let length = body.len();
    write!(stream, "{head}Host: {host}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n{body}")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// One AWS JSON call to moto (which reads the region from the scope, not the signature).
fn aws(service: &str, target: &str, body: serde_json::Value) {
    let head = format!(
        "POST / HTTP/1.1\r\nX-Amz-Target: {target}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, \
         SignedHeaders=host, Signature=0\r\n"
    );
    assert_eq!(request(&moto(), &head, &body.to_string()), 200, "{target}");
}

#[test]
fn pull_from_openbao() {
    let (addr, token) = vault();
    let path = format!("cs-{}-pull", std::process::id());
    let data = r#"{"data": {"OPENAI_API_KEY": "sk-CANARY-vault-pulled-8e", "GITHUB": "ghp_CANARY-vault-9f",
        "GITHUB_TOKEN": "ghp_CANARY-vault-9f", "FLY_APP_NAME": "CANARY-vault-fly", "SIGNING_KEY_PEM": "CANARY-vault-pem"}}"#;
    let head = format!("POST /v1/secret/data/{path} HTTP/1.1\r\nX-Vault-Token: {token}\r\n");
    assert_eq!(request(&addr, &head, data), 200);
    let project = Project::fixture("fresh");
    let remote = format!("vault+{addr}/secret/{path}");
    let out = project.cmd(&["pull", "--remote", &remote]).env("VAULT_TOKEN", &token).run();
    assert_eq!(out.code, 4, "{}", out.transcript());
    snapshot(&project, "pull_openbao", &out);
    let out = project.cmd(&["pull", "--yes", "--remote", &remote]).env("VAULT_TOKEN", &token).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let values = json(&project.read(SECRETS));
    assert_eq!(values["openai"], "sk-CANARY-vault-pulled-8e");
    assert_eq!(values["github"], "ghp_CANARY-vault-9f");
    assert!(values.get("fly_app_name").is_none() && values.get("signing_key_pem").is_none());
}

#[test]
fn pull_from_secrets_manager_and_parameter_store() {
    let name = format!("cs-{}-pull", std::process::id());
    let value = r#"{"OPENAI_API_KEY": "sk-CANARY-sm-pulled-1a", "MY_TOKEN": "CANARY-sm-token-2b"}"#;
    aws(
        "secretsmanager",
        "secretsmanager.CreateSecret",
        serde_json::json!({ "Name": name, "SecretString": value }),
    );
    let prefix = format!("/{name}");
    for (var, value) in [("OPENAI_API_KEY", "sk-CANARY-ssm-pulled-3c"), ("GITHUB_TOKEN", "ghp_CANARY-ssm-4d")]
    {
        let body =
            serde_json::json!({ "Name": format!("{prefix}/{var}"), "Value": value, "Type": "SecureString" });
        aws("ssm", "AmazonSSM.PutParameter", body);
    }
    let project = Project::fixture("fresh");
    let pull = |remote: &str| {
        project
            .cmd(&["pull", "--yes", "--remote", remote])
            .env("AWS_ACCESS_KEY_ID", "AKIDCANARY")
            .env("AWS_SECRET_ACCESS_KEY", "CANARY-aws-secret-key")
            .env("AWS_ENDPOINT_URL", &moto())
            .run()
    };
    let out = pull(&format!("awssm://us-east-1/{name}"));
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stdout.contains("Pull: 1 to add, 1 to change, 0 unchanged, 0 skipped."), "{}", out.stdout);
    let values = json(&project.read(SECRETS));
    assert_eq!(
        (&values["openai"], &values["my_token"]),
        (&"sk-CANARY-sm-pulled-1a".into(), &"CANARY-sm-token-2b".into())
    );
    let out = pull(&format!("ssm://us-east-1{prefix}"));
    assert_eq!(out.code, 0, "{}", out.transcript());
    let values = json(&project.read(SECRETS));
    assert_eq!(
        (&values["openai"], &values["github"]),
        (&"sk-CANARY-ssm-pulled-3c".into(), &"ghp_CANARY-ssm-4d".into())
    );
}

#[test]
fn pull_from_the_cloud_lists_the_names_and_says_values_cannot_be_read() {
    let secrets = ".systemprompt/profiles/prod/secrets.json";
    for listing in [Listing::NamesOnly, Listing::Digests] {
        let emulator = Emulator::start();
        emulator.set_listing(listing);
        emulator.grant("sp-CANARY-api-token-4f2a9c71", &["acme"]);
        emulator.set_secrets(
            "acme",
            &[("OPENAI_API_KEY", "sk-CANARY-cloud-5e"), ("FLY_APP_NAME", "CANARY-fly-6f")],
        );
        let project = Project::fixture("cloud");
        let before = project.read(secrets);
        let out = project.cmd(&["pull", "--yes"]).env("SYSTEMPROMPT_API_URL", &emulator.url()).run();
        assert_eq!(out.code, 1, "{}", out.transcript());
        assert!(
            out.stderr.contains("values cannot be read from it, so nothing was pulled"),
            "{}",
            out.stderr
        );
        if listing == Listing::NamesOnly {
            snapshot(&project, "pull_cloud_names_only", &out);
        }
        assert_eq!(project.read(secrets), before);
    }
}

#[test]
fn import_writes_nothing_when_secrets_json_changed_at_the_question() {
    let project = Project::fixture("fresh").write(".env", DOTENV);
    let edited = "{\n  \"openai\": \"sk-CANARY-edited-meanwhile-8f\"\n}\n";
    let out = project
        .cmd(&["import", ".env"])
        .run_answering("y\n", || std::fs::write(project.path(SECRETS), edited).unwrap());
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert!(
        out.stderr.contains("changed while the changes were shown; nothing was written"),
        "{}",
        out.stderr
    );
    assert_eq!(project.read(SECRETS), edited);
}

#[test]
fn help_of_import_and_pull_has_examples_and_only_their_options() {
    let project = Project::fixture("fresh");
    for (command, options, absent) in [
        ("import", &["--yes"][..], &["--remote"][..]),
        ("pull", &["--yes", "--remote", "--timeout"], &["--write-rate"]),
    ] {
        let out = project.cmd(&[command, "--help"]).run();
        assert_eq!(out.code, 0, "{}", out.transcript());
        assert!(out.stdout.contains(&format!("Examples:\n  cloud-secrets {command} ")), "{}", out.stdout);
        for option in options {
            assert!(out.stdout.contains(&format!(" {option}")), "{command} --help lacks {option}");
        }
        for option in absent {
            assert!(!out.stdout.contains(&format!(" {option}")), "{command} --help lists {option}");
        }
    }
}
