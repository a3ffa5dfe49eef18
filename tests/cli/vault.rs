//! Vault KV version 2 as a remote, against a real OpenBao server on 127.0.0.1 (started by
//! scripts/test; its absence fails these tests).

use crate::support::{Project, snapshot};

/// The server scripts/test started: its address and root token.
pub(crate) fn server() -> (String, String) {
    let addr = std::env::var("CLOUD_SECRETS_VAULT_ADDR");
    let token = std::env::var("CLOUD_SECRETS_VAULT_TOKEN");
    match (addr, token) {
        (Ok(addr), Ok(token)) => (addr, token),
        _ => panic!(
            "OpenBao is not running: run ./scripts/test, which installs and starts it \
             (CLOUD_SECRETS_VAULT_ADDR and CLOUD_SECRETS_VAULT_TOKEN are not set)"
        ),
    }
}

/// A raw HTTP/1.1 request to the server, so that the tests do not share the tool's client.
pub(crate) fn request(method: &str, path: &str, body: &str) -> (u16, String) {
    let (addr, token) = server();
    let host = addr.trim_start_matches("http://");
    crate::support::raw_http(host, (method, path), &format!("X-Vault-Token: {token}\r\n"), body)
}

/// A path of its own for each test.
fn unique_path(name: &str) -> String {
    format!("cs-{}-{name}", std::process::id())
}

fn read_secret(path: &str) -> (u64, serde_json::Value) {
    let (status, body) = request("GET", &format!("/v1/secret/data/{path}"), "");
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    (json["data"]["metadata"]["version"].as_u64().unwrap(), json["data"]["data"].clone())
}

fn remote(path: &str) -> String {
    format!("vault+{}/secret/{path}", server().0)
}

#[test]
fn plan_apply_plan_against_openbao() {
    let path = unique_path("round-trip");
    let (status, _) = request(
        "POST",
        &format!("/v1/secret/data/{path}"),
        r#"{"data": {"OPENAI_API_KEY": "sk-CANARY-vault-old", "LEGACY": "CANARY-vault-legacy", "FLY_APP_NAME": "CANARY-vault-fly", "SIGNING_KEY_PEM": "CANARY-vault-pem"}}"#,
    );
    assert_eq!(status, 200);
    let project = Project::fixture("fresh");
    let token = server().1;
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        let remote = remote(&path);
        all.extend(["--remote", remote.as_str()]);
        project.cmd(&all).env("VAULT_TOKEN", &token).run()
    };
    let plan = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.transcript());
    snapshot(&project, "vault_plan", &plan);
    let apply = run(&["apply", "--yes"]);
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    let (version, data) = read_secret(&path);
    assert_eq!(version, 2, "one write: the whole change set at once");
    assert_eq!(data["OPENAI_API_KEY"], "sk-CANARY-openai-93d1");
    assert_eq!(data["SIGNING_KEY_PEM"], "CANARY-vault-pem", "deploy-owned: left alone");
    assert!(data.get("LEGACY").is_none() && data.get("FLY_APP_NAME").is_none());
    let again = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
}

#[test]
fn a_missing_secret_is_an_empty_remote_created_on_first_apply() {
    let path = unique_path("missing");
    let project = Project::fixture("fresh");
    let (remote, token) = (remote(&path), server().1);
    let plan = project.cmd(&["plan", "-q", "--remote", &remote]).env("VAULT_TOKEN", &token).run();
    assert_eq!(
        plan.stdout,
        "Plan: 6 to add, 0 to change, 0 to remove, 0 to clean up.\n",
        "{}",
        plan.transcript()
    );
    let logged = project.cmd(&["plan", "-vv", "--remote", &remote]).env("VAULT_TOKEN", &token).run();
    assert!(logged.stderr.contains(&format!("http: GET /v1/secret/data/{path} -> 404")), "{}", logged.stderr);
    let apply = project.cmd(&["apply", "--yes", "-q", "--remote", &remote]).env("BAO_TOKEN", &token).run();
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    assert_eq!(read_secret(&path).0, 1);
}

#[test]
fn a_concurrent_write_stops_the_apply_with_nothing_written() {
    let path = unique_path("concurrent");
    let project = Project::fixture("fresh");
    let (remote, token) = (remote(&path), server().1);
    let out =
        project.cmd(&["apply", "--remote", &remote]).env("VAULT_TOKEN", &token).run_answering("y\n", || {
            let (status, _) = request(
                "POST",
                &format!("/v1/secret/data/{path}"),
                r#"{"data": {"MEANWHILE": "CANARY-meanwhile"}}"#,
            );
            assert_eq!(status, 200);
        });
    assert_eq!(out.code, 3, "{}", out.transcript());
    let (version, data) = read_secret(&path);
    assert_eq!(version, 1, "only the concurrent write happened");
    assert_eq!(data, serde_json::json!({"MEANWHILE": "CANARY-meanwhile"}));
}

#[test]
fn a_token_without_permission_is_told_what_to_check() {
    let project = Project::fixture("fresh");
    let out = project
        .cmd(&["plan", "--remote", &remote(&unique_path("denied"))])
        .env("VAULT_TOKEN", "s.CANARY-not-a-token")
        .run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("403 Forbidden"), "{}", out.stderr);
    assert!(out.stderr.contains("hint: the token may not do this"), "{}", out.stderr);
    let none = project.cmd(&["plan", "--remote", &remote("x/y")]).run();
    assert_eq!(none.code, 1);
    assert!(none.stderr.contains("no Vault token"), "{}", none.stderr);
}

#[test]
fn rollback_returns_to_the_previous_vault_version() {
    let path = unique_path("rollback");
    let project = Project::fixture("fresh");
    let (remote, token) = (remote(&path), server().1);
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--remote", remote.as_str()]);
        project.cmd(&all).env("VAULT_TOKEN", &token).run()
    };
    let (status, _) = request(
        "POST",
        &format!("/v1/secret/data/{path}"),
        r#"{"data": {"OAUTH_AT_REST_PEPPER": "CANARY-v1-pepper-0123456789abcdef0123", "DATABASE_URL": "postgres://v1:CANARY-v1@db/v1"}}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(run(&["apply", "--yes", "-q"]).code, 0);
    assert_eq!(read_secret(&path).0, 2);
    // Back to a version with two keys of six: a mass removal, so the flag is needed.
    let refused = run(&["rollback", "--yes"]);
    assert_eq!(refused.code, 1, "{}", refused.transcript());
    assert!(refused.stderr.contains("--allow-mass-removal"), "{}", refused.stderr);
    let out = run(&["rollback", "--yes", "--allow-mass-removal"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let (version, data) = read_secret(&path);
    assert_eq!(version, 3);
    assert_eq!(
        data,
        serde_json::json!({"OAUTH_AT_REST_PEPPER": "CANARY-v1-pepper-0123456789abcdef0123", "DATABASE_URL": "postgres://v1:CANARY-v1@db/v1"})
    );
}

#[test]
fn rollback_refuses_a_deleted_version_and_a_kv1_mount_is_refused() {
    let path = unique_path("deleted");
    let project = Project::fixture("fresh");
    let (remote_url, token) = (remote(&path), server().1);
    for body in [r#"{"data": {"A": "CANARY-v1"}}"#, r#"{"data": {"A": "CANARY-v2"}}"#] {
        assert_eq!(request("POST", &format!("/v1/secret/data/{path}"), body).0, 200);
    }
    assert_eq!(request("POST", &format!("/v1/secret/delete/{path}"), r#"{"versions": [1]}"#).0, 204);
    let out = project.cmd(&["rollback", "--yes", "--remote", &remote_url]).env("VAULT_TOKEN", &token).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("version 1 of secret/"), "{}", out.stderr);
    assert_eq!(read_secret(&path).0, 2, "nothing written");

    let mount = format!("kv1-{}", std::process::id());
    let (status, body) =
        request("POST", &format!("/v1/sys/mounts/{mount}"), r#"{"type": "kv", "options": {"version": "1"}}"#);
    assert!(status == 204 || status == 200, "{status} {body}");
    let kv1 = format!("vault+{}/{mount}/app", server().0);
    let out = project.cmd(&["apply", "--yes", "--remote", &kv1]).env("VAULT_TOKEN", &token).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("is a KV version 1 engine"), "{}", out.stderr);

    let missing_mount = format!("vault+{}/no-such-mount/app", server().0);
    let out = project.cmd(&["plan", "--remote", &missing_mount]).env("VAULT_TOKEN", &token).run();
    assert_eq!(out.code, 1, "a wrong mount is an error, not an empty remote: {}", out.transcript());
    let dots = format!("vault+{}/secret/a/../../sys/x", server().0);
    assert_eq!(project.cmd(&["plan", "--remote", &dots]).env("VAULT_TOKEN", &token).run().code, 64);
}
