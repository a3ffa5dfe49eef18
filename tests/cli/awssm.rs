//! AWS Secrets Manager as a remote, against a real moto server on 127.0.0.1 (started by
//! scripts/test; its absence fails these tests).

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::support::{Project, Run};

const REGION: &str = "us-east-1";

/// The server scripts/test started.
fn server() -> String {
    std::env::var("CLOUD_SECRETS_MOTO_ADDR").unwrap_or_else(|_| {
        panic!("moto is not running: run ./scripts/test, which installs and starts it (CLOUD_SECRETS_MOTO_ADDR is not set)")
    })
}

/// One Secrets Manager call, made without the tool's client (moto does not check signatures).
fn call(operation: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let addr = server();
    let host = addr.trim_start_matches("http://");
    let body = body.to_string();
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {host}\r\nX-Amz-Target: secretsmanager.{operation}\r\n\
         Content-Type: application/x-amz-json-1.1\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/secretsmanager/aws4_request, \
         SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
}

/// The secret's current value, parsed, and how many versions it has.
fn read_secret(name: &str) -> (serde_json::Value, usize) {
    let (status, answer) = call("GetSecretValue", serde_json::json!({ "SecretId": name }));
    assert_eq!(status, 200, "{answer}");
    let value = serde_json::from_str(answer["SecretString"].as_str().unwrap()).unwrap();
    let (status, versions) = call("ListSecretVersionIds", serde_json::json!({ "SecretId": name }));
    assert_eq!(status, 200, "{versions}");
    (value, versions["Versions"].as_array().map_or(0, Vec::len))
}

fn unique_name(name: &str) -> String {
    format!("cs-{}-{name}", std::process::id())
}

/// The tool against `awssm://REGION/NAME` on the moto server, with test credentials.
fn run_against<'a>(project: &'a Project, name: &str, args: &[&str]) -> Run<'a> {
    let remote = format!("awssm://{REGION}/{name}");
    let mut all = args.to_vec();
    all.extend(["--remote", remote.as_str()]);
    project
        .cmd(&all)
        .env("AWS_ACCESS_KEY_ID", "AKIDCANARY")
        .env("AWS_SECRET_ACCESS_KEY", "CANARY-aws-secret-key")
        .env("AWS_ENDPOINT_URL", &server())
}

#[test]
fn plan_apply_plan_against_secrets_manager() {
    let name = unique_name("round-trip");
    let initial = serde_json::json!({
        "OPENAI_API_KEY": "sk-CANARY-sm-old", "LEGACY": "CANARY-sm-legacy",
        "FLY_APP_NAME": "CANARY-sm-fly", "SIGNING_KEY_PEM": "CANARY-sm-pem"
    });
    let (status, answer) =
        call("CreateSecret", serde_json::json!({ "Name": name, "SecretString": initial.to_string() }));
    assert_eq!(status, 200, "{answer}");
    let project = Project::fixture("fresh");
    let plan = run_against(&project, &name, &["plan", "--detailed-exitcode", "-q"]).run();
    assert_eq!(plan.code, 2, "{}", plan.transcript());
    assert_eq!(
        plan.stdout,
        "Plan: 5 to add, 1 to change, 1 to remove, 1 to clean up.\n",
        "{}",
        plan.transcript()
    );
    let apply = run_against(&project, &name, &["apply", "--yes", "-q"]).run();
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    let (value, versions) = read_secret(&name);
    assert_eq!(versions, 2, "one write: the whole change set at once");
    assert_eq!(value["OPENAI_API_KEY"], "sk-CANARY-openai-93d1");
    assert_eq!(value["SIGNING_KEY_PEM"], "CANARY-sm-pem", "deploy-owned: left alone");
    assert!(value.get("LEGACY").is_none() && value.get("FLY_APP_NAME").is_none());
    let again = run_against(&project, &name, &["plan", "--detailed-exitcode"]).run();
    assert_eq!(again.code, 0, "{}", again.transcript());
}

#[test]
fn a_missing_secret_is_created_on_first_apply() {
    let name = unique_name("missing");
    let project = Project::fixture("fresh");
    let plan = run_against(&project, &name, &["plan", "-q"]).run();
    assert_eq!(
        plan.stdout,
        "Plan: 6 to add, 0 to change, 0 to remove, 0 to clean up.\n",
        "{}",
        plan.transcript()
    );
    let apply = run_against(&project, &name, &["apply", "--yes", "-q"]).run();
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    let (value, versions) = read_secret(&name);
    assert_eq!(versions, 1);
    assert_eq!(value.as_object().unwrap().len(), 6);
}

#[test]
fn a_concurrent_write_stops_the_apply_with_nothing_written() {
    let name = unique_name("concurrent");
    let (status, _) = call("CreateSecret", serde_json::json!({ "Name": name, "SecretString": "{}" }));
    assert_eq!(status, 200);
    let project = Project::fixture("fresh");
    let out = run_against(&project, &name, &["apply"]).run_answering("y\n", || {
        let body =
            serde_json::json!({ "SecretId": name, "SecretString": r#"{"MEANWHILE": "CANARY-meanwhile"}"# });
        assert_eq!(call("PutSecretValue", body).0, 200);
    });
    assert_eq!(out.code, 3, "{}", out.transcript());
    let (value, versions) = read_secret(&name);
    assert_eq!(versions, 2, "only the concurrent write happened");
    assert_eq!(value, serde_json::json!({"MEANWHILE": "CANARY-meanwhile"}));
}

#[test]
fn rollback_returns_to_the_previous_secrets_manager_version() {
    let name = unique_name("rollback");
    let project = Project::fixture("fresh");
    let first = run_against(&project, &name, &["rollback", "--yes"]).run();
    assert_eq!(first.code, 1, "{}", first.transcript());
    let v1 =
        serde_json::json!({ "OPENAI_API_KEY": "sk-CANARY-v1", "ANTHROPIC_API_KEY": "CANARY-v1-anthropic" });
    assert_eq!(
        call("CreateSecret", serde_json::json!({ "Name": name, "SecretString": v1.to_string() })).0,
        200
    );
    assert_eq!(run_against(&project, &name, &["apply", "--yes", "-q"]).run().code, 0);
    let out = run_against(&project, &name, &["rollback", "--yes", "--allow-mass-removal"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stderr.contains("Rolling back to version AWSPREVIOUS ("), "{}", out.stderr);
    assert_eq!(read_secret(&name).0, v1);
}

#[test]
fn a_secret_that_is_not_an_object_and_missing_credentials_are_explained() {
    let name = unique_name("not-object");
    assert_eq!(
        call("CreateSecret", serde_json::json!({ "Name": name, "SecretString": "CANARY-plain" })).0,
        200
    );
    let project = Project::fixture("fresh");
    let out = run_against(&project, &name, &["plan"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("does not hold a JSON object"), "{}", out.stderr);

    let remote = format!("awssm://{REGION}/{name}");
    let none = project.cmd(&["plan", "--remote", &remote]).run();
    assert_eq!(none.code, 1, "{}", none.transcript());
    assert!(none.stderr.contains("AWS_ACCESS_KEY_ID"), "{}", none.stderr);
    let bad = project.cmd(&["plan", "--remote", "awssm://US_EAST/x"]).run();
    assert_eq!(bad.code, 64, "{}", bad.transcript());
}

#[test]
fn credentials_come_from_the_named_profile_of_the_credentials_file() {
    let name = unique_name("profile-file");
    let project = Project::fixture("fresh");
    // Outside the project, whose files are checked for canaries after every run.
    let aws_dir = tempfile::tempdir().unwrap();
    let file = aws_dir.path().join("credentials");
    std::fs::write(
        &file,
        "[default]\naws_access_key_id = AKIDDEFAULT\n\n[deploy]\naws_access_key_id = AKIDDEPLOY\n\
         aws_secret_access_key = CANARY-aws-file-secret\n",
    )
    .unwrap();
    let remote = format!("awssm://{REGION}/{name}");
    let with_file = |profile: &str| {
        project
            .cmd(&["apply", "--yes", "-q", "--remote", &remote])
            .env("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap())
            .env("AWS_PROFILE", profile)
            .env("AWS_ENDPOINT_URL", &server())
            .run()
    };
    let incomplete = with_file("default");
    assert_eq!(incomplete.code, 1, "{}", incomplete.transcript());
    assert!(
        incomplete.stderr.contains("no AWS credentials (environment, or profile `default`"),
        "{}",
        incomplete.stderr
    );
    let out = with_file("deploy");
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(read_secret(&name).1, 1);
}
