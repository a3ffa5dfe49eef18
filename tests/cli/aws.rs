//! AWS Secrets Manager and SSM Parameter Store as remotes, against a real moto server on
//! 127.0.0.1 (started by scripts/test; its absence fails these tests).

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::fault_proxy::{Fault, FaultProxy};
use crate::support::{Project, Run};

const REGION: &str = "us-east-1";

/// The server scripts/test started.
pub(crate) fn server() -> String {
    std::env::var("CLOUD_SECRETS_MOTO_ADDR").unwrap_or_else(|_| {
        panic!("moto is not running: run ./scripts/test, which installs and starts it (CLOUD_SECRETS_MOTO_ADDR is not set)")
    })
}

/// One Secrets Manager call, made without the tool's client.
pub(crate) fn call(operation: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    call_in(REGION, operation, body)
}

/// One Secrets Manager call in `region`, made without the tool's client.
pub(crate) fn call_in(region: &str, operation: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    aws_call(region, "secretsmanager", &format!("secretsmanager.{operation}"), body)
}

/// One SSM call, made without the tool's client.
pub(crate) fn ssm(operation: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    ssm_in(REGION, operation, body)
}

/// One SSM call in `region`, made without the tool's client.
pub(crate) fn ssm_in(region: &str, operation: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    aws_call(region, "ssm", &format!("AmazonSSM.{operation}"), body)
}

/// One AWS JSON call (moto does not check signatures, but reads the region from the scope).
fn aws_call(region: &str, service: &str, target: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let addr = server();
    let host = addr.trim_start_matches("http://");
    let body = body.to_string();
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {host}\r\nX-Amz-Target: {target}\r\n\
         Content-Type: application/x-amz-json-1.1\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/{service}/aws4_request, \
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
    run_remote(project, &format!("awssm://{REGION}/{name}"), args)
}

/// The tool against `remote` on the moto server, with test credentials.
fn run_remote<'a>(project: &'a Project, remote: &str, args: &[&str]) -> Run<'a> {
    let mut all = args.to_vec();
    all.extend(["--remote", remote]);
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
    // The previous version lacks what the platform requires: going back to it is refused.
    let refused = run_against(&project, &name, &["rollback", "--yes", "--allow-mass-removal"]).run();
    assert_eq!(refused.code, 1, "{}", refused.transcript());
    assert!(
        refused.stderr.contains("would hold no OAUTH_AT_REST_PEPPER and no DATABASE_URL"),
        "{}",
        refused.stderr
    );
    assert_eq!(read_secret(&name).1, 2, "nothing was written");
    let v1 = serde_json::json!({
        "OPENAI_API_KEY": "sk-CANARY-v1",
        "OAUTH_AT_REST_PEPPER": "CANARY-v1-pepper-0123456789abcdef0123",
        "DATABASE_URL": "postgres://v1:CANARY-v1@db/v1",
    });
    assert_eq!(
        call("PutSecretValue", serde_json::json!({ "SecretId": name, "SecretString": v1.to_string() })).0,
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

/// The parameters directly under `prefix`, by variable name.
pub(crate) fn parameters(prefix: &str) -> serde_json::Map<String, serde_json::Value> {
    parameters_in(REGION, prefix)
}

/// The parameters directly under `prefix` in `region`, by variable name.
pub(crate) fn parameters_in(region: &str, prefix: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut all = serde_json::Map::new();
    let mut next: Option<String> = None;
    loop {
        let mut body = serde_json::json!({ "Path": prefix, "WithDecryption": true });
        if let Some(token) = &next {
            body["NextToken"] = serde_json::json!(token);
        }
        let (status, answer) = ssm_in(region, "GetParametersByPath", body);
        assert_eq!(status, 200, "{answer}");
        for p in answer["Parameters"].as_array().unwrap() {
            let name = p["Name"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
            all.insert(name, serde_json::json!({ "value": p["Value"], "type": p["Type"] }));
        }
        match answer["NextToken"].as_str() {
            Some(token) => next = Some(token.to_owned()),
            None => return all,
        }
    }
}

fn put_parameter(name: &str, value: &str) {
    let body = serde_json::json!({ "Name": name, "Value": value, "Type": "SecureString", "Overwrite": true });
    let (status, answer) = ssm("PutParameter", body);
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn plan_apply_plan_against_parameter_store() {
    let prefix = format!("/{}", unique_name("ssm-round-trip"));
    put_parameter(&format!("{prefix}/OPENAI_API_KEY"), "sk-CANARY-ssm-old");
    put_parameter(&format!("{prefix}/LEGACY"), "CANARY-ssm-legacy");
    put_parameter(&format!("{prefix}/FLY_APP_NAME"), "CANARY-ssm-fly");
    put_parameter(&format!("{prefix}/SIGNING_KEY_PEM"), "CANARY-ssm-pem");
    put_parameter(&format!("{prefix}/nested/DEEPER"), "CANARY-ssm-deeper");
    let remote = format!("ssm://{REGION}{prefix}");
    let project = Project::fixture("fresh");
    let plan = run_remote(&project, &remote, &["plan", "--detailed-exitcode", "-q"]).run();
    assert_eq!(plan.code, 2, "{}", plan.transcript());
    assert_eq!(
        plan.stdout,
        "Plan: 5 to add, 1 to change, 1 to remove, 1 to clean up.\n",
        "{}",
        plan.transcript()
    );
    let apply = run_remote(&project, &remote, &["apply", "--yes", "-q", "--write-rate", "200"]).run();
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    let now = parameters(&prefix);
    assert_eq!(now["OPENAI_API_KEY"]["value"], "sk-CANARY-openai-93d1");
    assert_eq!(now["OPENAI_API_KEY"]["type"], "SecureString");
    assert_eq!(now["SIGNING_KEY_PEM"]["value"], "CANARY-ssm-pem", "deploy-owned: left alone");
    assert!(!now.contains_key("LEGACY") && !now.contains_key("FLY_APP_NAME"), "{now:?}");
    assert_eq!(now.len(), 7, "six from the profile and the deploy-owned one: {now:?}");
    assert_eq!(parameters(&format!("{prefix}/nested")).len(), 1, "below the prefix's own level: untouched");
    let again = run_remote(&project, &remote, &["plan", "--detailed-exitcode"]).run();
    assert_eq!(again.code, 0, "{}", again.transcript());
}

#[test]
fn parameter_store_reads_every_page_and_removes_in_batches() {
    let prefix = format!("/{}", unique_name("ssm-many"));
    for i in 0..25 {
        put_parameter(&format!("{prefix}/OLD_{i:02}"), &format!("CANARY-ssm-old-{i}"));
    }
    let remote = format!("ssm://{REGION}{prefix}");
    let project = Project::fixture("fresh");
    let plan = run_remote(&project, &remote, &["plan", "-q"]).run();
    assert_eq!(
        plan.stdout,
        "Plan: 6 to add, 0 to change, 25 to remove, 0 to clean up.\n",
        "{}",
        plan.transcript()
    );
    let args = ["apply", "--yes", "-q", "--allow-mass-removal", "--write-rate", "200"];
    let apply = run_remote(&project, &remote, &args).run();
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    let now = parameters(&prefix);
    assert_eq!(now.len(), 6, "{now:?}");
    assert!(now.keys().all(|k| !k.starts_with("OLD_")), "{now:?}");
}

#[test]
fn parameter_store_writes_are_paced_and_a_concurrent_write_stops_the_apply() {
    let prefix = format!("/{}", unique_name("ssm-paced"));
    let remote = format!("ssm://{REGION}{prefix}");
    let project = Project::fixture("fresh");
    let out = run_remote(&project, &remote, &["apply", "--write-rate", "4"]).run_answering("y\n", || {
        put_parameter(&format!("{prefix}/MEANWHILE"), "CANARY-ssm-meanwhile");
    });
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert_eq!(parameters(&prefix).keys().collect::<Vec<_>>(), ["MEANWHILE"], "nothing written");

    let started = std::time::Instant::now();
    let out =
        run_remote(&project, &remote, &["apply", "--yes", "-q", "--allow-mass-removal", "--write-rate", "4"])
            .run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    // Six writes at four a second: at least five gaps of a quarter of a second.
    assert!(started.elapsed() >= std::time::Duration::from_millis(1250), "{:?}", started.elapsed());
    assert_eq!(
        parameters(&prefix).len(),
        6,
        "five added, MEANWHILE (unknown) removed: {:?}",
        parameters(&prefix)
    );
}

/// Gives the fixture's `moltbook_builder` a canary value of more than `len` bytes.
fn lengthen_moltbook_builder(project: &Project, len: usize) {
    let secrets = project.root().join(".systemprompt/profiles/production/secrets.json");
    let big = format!("CANARY-{}", "x".repeat(len));
    let text = std::fs::read_to_string(&secrets)
        .unwrap()
        .replace("\"moltbook_sk_CANARY-moltbook-6a0c\"", &format!("\"{big}\""));
    std::fs::write(&secrets, text).unwrap();
}

#[test]
fn a_secret_larger_than_secrets_manager_keeps_is_refused_before_writing() {
    let name = unique_name("too-large");
    let project = Project::fixture("fresh");
    lengthen_moltbook_builder(&project, 70_000);
    let out = run_against(&project, &name, &["apply", "--yes"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("Secrets Manager keeps at most 65536"), "{}", out.stderr);
    let (status, _) = call("DescribeSecret", serde_json::json!({ "SecretId": name }));
    assert_eq!(status, 404, "nothing created");
}

#[test]
fn a_binary_secret_is_refused_and_a_secret_without_a_value_is_written() {
    let project = Project::fixture("fresh");
    let binary = unique_name("binary");
    let body = serde_json::json!({ "Name": binary, "SecretBinary": "Q0FOQVJZLWJpbmFyeQ==" });
    assert_eq!(call("CreateSecret", body).0, 200);
    let out = run_against(&project, &binary, &["apply", "--yes"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("does not hold a JSON object"), "{}", out.stderr);

    let empty = unique_name("no-value");
    assert_eq!(call("CreateSecret", serde_json::json!({ "Name": empty })).0, 200);
    let out = run_against(&project, &empty, &["apply", "--yes", "-q"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(read_secret(&empty).0.as_object().unwrap().len(), 6);
}

#[test]
fn a_value_too_long_for_a_parameter_is_refused_before_any_write() {
    let prefix = format!("/{}", unique_name("ssm-too-long"));
    let project = Project::fixture("fresh");
    lengthen_moltbook_builder(&project, 5_000);
    let out =
        run_remote(&project, &format!("ssm://{REGION}{prefix}"), &["apply", "--yes", "--write-rate", "200"])
            .run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("MOLTBOOK_BUILDER is longer than the 4096 bytes"), "{}", out.stderr);
    assert!(parameters(&prefix).is_empty(), "nothing written");
}

#[test]
fn requests_to_aws_are_logged_with_vv_and_nothing_secret() {
    let prefix = format!("/{}", unique_name("ssm-logged"));
    put_parameter(&format!("{prefix}/OPENAI_API_KEY"), "sk-CANARY-ssm-logged");
    let project = Project::fixture("fresh");
    let out = run_remote(&project, &format!("ssm://{REGION}{prefix}"), &["plan", "-vv"])
        .env("AWS_SESSION_TOKEN", "CANARY-aws-session")
        .run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stderr.contains("http: POST / AmazonSSM.GetParametersByPath -> 200"), "{}", out.stderr);
}

#[test]
fn a_parameter_changed_during_a_paced_apply_stops_it_and_says_so() {
    let prefix = format!("/{}", unique_name("ssm-overtaken"));
    let openai = format!("{prefix}/OPENAI_API_KEY");
    put_parameter(&openai, "sk-CANARY-ssm-before");
    let project = Project::fixture("fresh");
    // Writes go one a second, additions first: OPENAI_API_KEY, the one change, about 5 s in.
    let meanwhile = {
        let openai = openai.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(2_000));
            put_parameter(&openai, "sk-CANARY-ssm-meanwhile");
        })
    };
    let out =
        run_remote(&project, &format!("ssm://{REGION}{prefix}"), &["apply", "--yes", "--write-rate", "1"])
            .run();
    meanwhile.join().unwrap();
    assert_eq!(out.code, 3, "{}", out.transcript());
    let said = "OPENAI_API_KEY was changed by someone else during the apply (version 1 became 3, not 2)";
    assert!(out.stderr.contains(said), "{}", out.stderr);
    assert!(out.stderr.contains("6 of 6 writes were made"), "{}", out.stderr);
    assert_eq!(
        parameters(&prefix)["OPENAI_API_KEY"]["value"],
        "sk-CANARY-openai-93d1",
        "the apply's write came last"
    );
}

#[test]
fn throttled_requests_are_retried_until_they_pass() {
    // Each request is throttled twice, as AWS does it (400, ThrottlingException), then passed
    // on: the client sends one request at a time, so its attempts follow one another.
    let proxy = FaultProxy::start(&server(), 1.5);
    let throttles: Vec<(usize, Fault)> = (0..30)
        .flat_map(|i| [(3 * i + 1, Fault::TooManyRequests), (3 * i + 2, Fault::TooManyRequests)])
        .collect();
    proxy.program(&throttles);
    let name = unique_name("throttled");
    let project = Project::fixture("fresh");
    let out = project
        .cmd(&["apply", "--yes", "-vv", "--remote", &format!("awssm://{REGION}/{name}")])
        .env("AWS_ACCESS_KEY_ID", "AKIDCANARY")
        .env("AWS_SECRET_ACCESS_KEY", "CANARY-aws-secret-key")
        .env("AWS_ENDPOINT_URL", &proxy.url())
        .run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stderr.contains("http: POST / secretsmanager.GetSecretValue -> 400"), "{}", out.stderr);
    assert!(out.stderr.contains("http: POST / secretsmanager.CreateSecret -> 200 ("), "{}", out.stderr);
    assert!(out.stderr.contains("attempt 3)"), "{}", out.stderr);
    let creates: Vec<bool> = proxy
        .log()
        .iter()
        .filter(|r| r.target.as_deref() == Some("secretsmanager.CreateSecret"))
        .map(|r| r.forwarded)
        .collect();
    assert_eq!(creates, [false, false, true], "throttled twice, then passed on");
    let (value, versions) = read_secret(&name);
    assert_eq!((value.as_object().unwrap().len(), versions), (6, 1), "created once, despite the retries");
}
