//! The systemprompt cloud as a remote: the real binary against the emulator, a real HTTP server
//! on 127.0.0.1, in both listing modes, with faults injected at every request of an apply.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cloud_secrets_emulator::{Emulator, Fault, Listing};

use crate::support::{Input, Outcome, Project, Run, snapshot};

const TOKEN: &str = "sp-CANARY-api-token-4f2a9c71";
const TENANT: &str = "acme";
const SECRETS: &str = ".systemprompt/profiles/prod/secrets.json";
const RECORD: &str = ".systemprompt/profiles/prod/last-applied.json";

/// What the tenant holds before the first apply.
pub(crate) const BEFORE: [(&str, &str); 9] = [
    ("JWT_SECRET", "CANARY-jwt-prod-8e1f0a3b5c7d9e2f4a6b8c0d1e3f5a7b"),
    ("OPENAI_API_KEY", "sk-CANARY-openai-prod-old-1c6b"),
    ("LEGACY_KEY", "CANARY-legacy-prod-3a8d"),
    ("OLD_CUSTOM", "CANARY-old-custom-prod-9f2e"),
    ("GITHUB_TOKEN", "CANARY-github-remote-prod-6d1c"),
    ("FLY_APP_NAME", "CANARY-fly-remote-prod-0b7a"),
    ("SYSTEMPROMPT_API_URL", "CANARY-stale-remote-prod-4e9f"),
    ("SYSTEMPROMPT_API_TOKEN", "CANARY-deploy-token-prod-8c3d"),
    ("SIGNING_KEY_PEM", "CANARY-signing-prod-2f5b"),
];

/// What the tenant must hold once the fixture's profile is applied.
fn expected() -> BTreeMap<String, String> {
    [
        ("CUSTOM_API_KEY", "CANARY-custom-prod-5b9e"),
        ("DATABASE_URL", "postgres://app:CANARY-dbpass-prod-2c4e@db.internal:5432/app"),
        ("GITHUB_TOKEN", "CANARY-github-remote-prod-6d1c"),
        ("JWT_SECRET", "CANARY-jwt-prod-8e1f0a3b5c7d9e2f4a6b8c0d1e3f5a7b"),
        ("OAUTH_AT_REST_PEPPER", "CANARY-pepper-prod-3e9b1d7f5a2c8e4b6d0f"),
        ("OPENAI_API_KEY", "sk-CANARY-openai-prod-new-7d3a"),
        ("SIGNING_KEY_PEM", "CANARY-signing-prod-2f5b"),
        ("SYSTEMPROMPT_API_TOKEN", "CANARY-deploy-token-prod-8c3d"),
        ("SYSTEMPROMPT_CUSTOM_SECRETS", "CUSTOM_API_KEY,JWT_SECRET"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn before() -> BTreeMap<String, String> {
    BEFORE.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

fn setup(listing: Listing) -> (Project, Emulator) {
    let emulator = Emulator::start();
    emulator.set_listing(listing);
    emulator.grant(TOKEN, &[TENANT]);
    emulator.set_secrets(TENANT, &BEFORE);
    (Project::fixture("cloud"), emulator)
}

/// A run pointed at the emulator through SYSTEMPROMPT_API_URL (which overrides credentials.json).
fn cs<'a>(project: &'a Project, emulator: &Emulator, args: &[&str]) -> Run<'a> {
    project.cmd(args).env("SYSTEMPROMPT_API_URL", &emulator.url())
}

/// Fails if any access token the emulator issued appears in the outputs or the written files,
/// or if a token went anywhere but where it belongs: the API token only as the token
/// exchange's `subject_token`, access tokens only in `Authorization` headers.
fn assert_tokens_kept(project: &Project, emulator: &Emulator, outcomes: &[&Outcome]) {
    let log = emulator.log();
    let access: Vec<String> = log
        .iter()
        .filter_map(|r| r.header("authorization").and_then(|a| a.strip_prefix("Bearer ")).map(str::to_owned))
        .collect();
    for request in &log {
        let exchange = request.path == "/api/v1/core/oauth/token";
        assert!(!request.path.contains(TOKEN), "API token in a path");
        for (name, value) in &request.headers {
            assert!(!value.contains(TOKEN), "API token in header {name}");
            if !name.eq_ignore_ascii_case("authorization") {
                assert!(access.iter().all(|t| !value.contains(t.as_str())), "access token in header {name}");
            }
        }
        if exchange {
            let form: BTreeMap<String, String> = serde_urlencoded::from_str(&request.body).unwrap();
            assert_eq!(form.get("subject_token").map(String::as_str), Some(TOKEN));
            assert_eq!(form.get("client_id").map(String::as_str), Some("sp_web"));
            assert_eq!(form.get("resource").map(String::as_str), Some(emulator.url().as_str()));
            assert_eq!(
                form.get("grant_type").map(String::as_str),
                Some("urn:ietf:params:oauth:grant-type:token-exchange")
            );
            assert_eq!(
                form.get("subject_token_type").map(String::as_str),
                Some("urn:ietf:params:oauth:token-type:access_token")
            );
            assert_eq!(request.header("authorization"), None, "the exchange carries no bearer");
        } else {
            assert!(!request.body.contains(TOKEN), "API token in a {} body", request.method);
            assert!(access.iter().all(|t| !request.body.contains(t.as_str())), "access token in a body");
            assert!(request.header("authorization").is_some_and(|a| a.starts_with("Bearer at_")));
        }
    }
    for outcome in outcomes {
        for token in &access {
            assert!(!outcome.stdout.contains(token.as_str()) && !outcome.stderr.contains(token.as_str()));
        }
    }
    for file in crate::support::files(project.root()) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        for token in &access {
            assert!(!text.contains(token.as_str()), "access token in {}", file.display());
        }
    }
}

#[test]
fn names_only_round_trip_rewrites_what_it_cannot_verify_then_trusts_the_record() {
    let (project, emulator) = setup(Listing::NamesOnly);
    let plan = cs(&project, &emulator, &["plan", "--detailed-exitcode"]).run();
    assert_eq!(plan.code, 2, "{}", plan.transcript());
    snapshot(&project, "cloud_names_only_plan", &plan);

    let apply = cs(&project, &emulator, &["apply", "--yes"]).run();
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    assert_eq!(emulator.secrets(TENANT).unwrap(), expected());

    let again = cs(&project, &emulator, &["plan", "--detailed-exitcode"]).run();
    assert_eq!(again.code, 0, "{}", again.transcript());
    snapshot(&project, "cloud_names_only_plan_after_apply", &again);
    assert!(project.read(RECORD).contains("\"digests\""));
    assert_tokens_kept(&project, &emulator, &[&plan, &apply, &again]);

    // A local edit is seen through the record, though the remote cannot be read.
    let edited = project.read(SECRETS).replace("CANARY-custom-prod-5b9e", "CANARY-custom-prod-edited-0a1b");
    let project = project.write(SECRETS, &edited);
    let changed = cs(&project, &emulator, &["plan", "--detailed-exitcode"]).run();
    assert_eq!(changed.code, 2);
    assert!(
        changed.stdout.contains(
            "~ CUSTOM_API_KEY  change    from secrets.json `custom_api_key`: changed since the last apply"
        ),
        "{}",
        changed.stdout
    );
}

#[test]
fn digests_round_trip_verifies_the_remote_and_reports_drift() {
    let (project, emulator) = setup(Listing::Digests);
    let plan = cs(&project, &emulator, &["plan", "--detailed-exitcode"]).run();
    assert_eq!(plan.code, 2);
    snapshot(&project, "cloud_digests_plan", &plan);
    let apply = cs(&project, &emulator, &["apply", "--yes"]).run();
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    assert_eq!(emulator.secrets(TENANT).unwrap(), expected());
    let again = cs(&project, &emulator, &["plan", "--detailed-exitcode"]).run();
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert!(!again.stdout.contains("Not verified"), "{}", again.stdout);

    // The record keeps the salt of the listing's digests, and the next plan digests the values
    // under it while the listing is read. Under a salt the listing does not bring, those digests
    // are passed over: the same plan.
    let record = project.read(RECORD);
    let (before_salt, rest) =
        record.split_once("\"listing_salt\": \"").expect("the listing's salt is recorded");
    let after_salt = &rest[rest.find('"').unwrap()..];
    let project = project.write(RECORD, &format!("{before_salt}\"listing_salt\": \"00ff{after_salt}"));
    let elsewhere = cs(&project, &emulator, &["plan", "--detailed-exitcode"]).run();
    assert_eq!((elsewhere.code, &elsewhere.stdout), (0, &again.stdout), "{}", elsewhere.transcript());
    let project = project.write(RECORD, &record);

    // Had the service listed names only, the record would vouch for every key, including
    // JWT_SECRET, which was verified equal and never sent.
    emulator.set_listing(Listing::NamesOnly);
    let names_only = cs(&project, &emulator, &["plan", "--detailed-exitcode"]).run();
    assert_eq!(names_only.code, 0, "{}", names_only.transcript());
    assert!(names_only.stdout.contains("    JWT_SECRET\n"), "{}", names_only.stdout);
    emulator.set_listing(Listing::Digests);

    // The PUT carried If-Match with the listing's ETag, and only the planned keys.
    let log = emulator.log();
    let put = log.iter().find(|r| r.method == "PUT").expect("a PUT");
    assert!(put.header("if-match").is_some_and(|e| e.starts_with("\"v")), "{:?}", put.headers);
    let body: serde_json::Value = serde_json::from_str(&put.body).unwrap();
    let sent: Vec<&String> = body["secrets"].as_object().unwrap().keys().collect();
    assert_eq!(
        sent,
        [
            "CUSTOM_API_KEY",
            "DATABASE_URL",
            "OAUTH_AT_REST_PEPPER",
            "OPENAI_API_KEY",
            "SYSTEMPROMPT_CUSTOM_SECRETS"
        ],
        "JWT_SECRET is verified equal and not rewritten"
    );
    let deleted: Vec<&str> = log.iter().filter(|r| r.method == "DELETE").map(|r| r.path.as_str()).collect();
    assert_eq!(deleted.len(), 4);
    assert_tokens_kept(&project, &emulator, &[&plan, &apply, &again]);

    // Someone changes a value behind the tool's back: the plan calls it drift.
    let mut drifted = expected();
    drifted.insert("OPENAI_API_KEY".into(), "sk-CANARY-openai-changed-elsewhere-4b2c".into());
    let pairs: Vec<(&str, &str)> = drifted.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    emulator.set_secrets(TENANT, &pairs);
    let drift = cs(&project, &emulator, &["plan", "--detailed-exitcode"]).run();
    assert_eq!(drift.code, 2);
    assert!(drift.stdout.contains("~ OPENAI_API_KEY  change    from secrets.json `openai`: changed on the remote outside cloud-secrets (drift)"), "{}", drift.stdout);
}

#[test]
fn a_remote_changed_while_the_question_waits_is_not_written() {
    for listing in [Listing::NamesOnly, Listing::Digests] {
        let (project, emulator) = setup(listing);
        let out = cs(&project, &emulator, &["apply"]).run_answering("y\n", || {
            let mut meanwhile = before();
            meanwhile.insert("ADDED_MEANWHILE".into(), "CANARY-meanwhile-7e2a".into());
            let pairs: Vec<(&str, &str)> = meanwhile.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            emulator.set_secrets(TENANT, &pairs);
        });
        assert_eq!(out.code, 3, "{listing:?}: {}", out.transcript());
        assert!(out.stderr.contains("changed since the plan was made"), "{}", out.stderr);
        assert!(
            emulator.log().iter().all(|r| r.method != "PUT" && r.method != "DELETE"),
            "something was written"
        );
        assert!(emulator.secrets(TENANT).unwrap().contains_key("ADDED_MEANWHILE"));
    }
}

#[test]
fn a_412_on_the_write_is_stale_and_nothing_else_is_sent() {
    let (project, emulator) = setup(Listing::Digests);
    // 1 exchange, 2 listing, 3 listing again, 4 the PUT.
    emulator.inject(4, Fault::Status { status: 412, retry_after: None });
    let out = cs(&project, &emulator, &["apply", "--yes"]).run();
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert!(emulator.log().iter().all(|r| r.method != "DELETE"));
    assert_eq!(emulator.secrets(TENANT).unwrap(), before());
}

/// Each key is either as it was or as planned.
fn assert_before_or_planned(actual: &BTreeMap<String, String>, context: &str) {
    let (before, planned) = (before(), expected());
    for key in before.keys().chain(planned.keys()) {
        let now = actual.get(key);
        assert!(
            now == before.get(key) || now == planned.get(key),
            "{context}: {key} is neither as before nor as planned"
        );
    }
    for key in actual.keys() {
        assert!(before.contains_key(key) || planned.contains_key(key), "{context}: unexpected {key}");
    }
}

fn faulty_apply_then_converge(listing: Listing, faults: &[(usize, Fault)], context: &str) {
    let (project, emulator) = setup(listing);
    for (n, fault) in faults {
        emulator.inject(*n, fault.clone());
    }
    let out = cs(&project, &emulator, &["apply", "--yes", "--timeout", "0.5", "--parallelism", "1"]).run();
    assert!(out.code == 0 || out.code == 1, "{context}: {}", out.transcript());
    let after = emulator.secrets(TENANT).unwrap();
    if out.code == 0 {
        assert_eq!(after, expected(), "{context}: success but not converged");
    } else {
        assert!(
            out.stderr.starts_with("error: ") || out.stderr.contains("\nerror: "),
            "{context}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("hint: "), "{context}: no way forward: {}", out.stderr);
        if out.stdout.contains("Applied in part:") {
            assert!(out.stdout.contains("Not removed (still on the remote):"), "{context}: {}", out.stdout);
        }
    }
    // Delayed requests may still land; wait them out before judging.
    std::thread::sleep(Duration::from_millis(if faults.iter().any(|(_, f)| matches!(f, Fault::Delay(_))) {
        900
    } else {
        0
    }));
    assert_before_or_planned(&emulator.secrets(TENANT).unwrap(), context);
    let rerun = cs(&project, &emulator, &["apply", "--yes", "--timeout", "0.5"]).run();
    assert_eq!(rerun.code, 0, "{context}: the re-run did not converge: {}", rerun.transcript());
    assert_eq!(emulator.secrets(TENANT).unwrap(), expected(), "{context}: re-run result");
    let check = cs(&project, &emulator, &["plan", "--detailed-exitcode", "-q"]).run();
    assert_eq!(check.code, 0, "{context}: {}", check.transcript());
    assert_tokens_kept(&project, &emulator, &[&out, &rerun, &check]);
}

/// An apply here makes 8 requests: the token exchange, the listing, the listing again, the PUT,
/// and four DELETEs (two removals, two cleanups), sent one at a time with --parallelism 1.
const APPLY_REQUESTS: usize = 8;

#[test]
fn every_fault_at_every_request_of_an_apply_converges() {
    let single_faults = [
        ("503", Fault::Status { status: 503, retry_after: None }),
        ("429", Fault::Status { status: 429, retry_after: Some(0) }),
        ("500", Fault::Status { status: 500, retry_after: None }),
        ("401", Fault::Status { status: 401, retry_after: None }),
        ("delay", Fault::Delay(Duration::from_millis(1200))),
        ("drop", Fault::Drop),
        ("lost", Fault::Lost),
    ];
    for listing in [Listing::NamesOnly, Listing::Digests] {
        for n in 1..=APPLY_REQUESTS {
            for (name, fault) in &single_faults {
                faulty_apply_then_converge(
                    listing,
                    &[(n, fault.clone())],
                    &format!("{listing:?} {name} at {n}"),
                );
            }
        }
    }
}

#[test]
fn a_persistent_failure_says_what_was_and_was_not_applied() {
    // Every attempt fails (the first try and its 4 retries).
    let persistent = |from: usize| -> Vec<(usize, Fault)> {
        (from..from + 5).map(|n| (n, Fault::Status { status: 503, retry_after: Some(0) })).collect()
    };
    for (from, what) in [(2, "listing"), (4, "PUT"), (5, "first DELETE")] {
        faulty_apply_then_converge(
            Listing::Digests,
            &persistent(from),
            &format!("persistent 503 on the {what}"),
        );
    }
    // The removal case, looked at closely.
    let (project, emulator) = setup(Listing::NamesOnly);
    for (n, fault) in persistent(5) {
        emulator.inject(n, fault);
    }
    let out = cs(&project, &emulator, &["apply", "--yes", "--parallelism", "1"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    snapshot(&project, "cloud_partial_apply", &out);
    let after = emulator.secrets(TENANT).unwrap();
    assert!(after.contains_key("LEGACY_KEY"), "the failed removal");
    assert!(!after.contains_key("OLD_CUSTOM") && !after.contains_key("FLY_APP_NAME"));
    assert_eq!(after["OPENAI_API_KEY"], "sk-CANARY-openai-prod-new-7d3a");
}

#[test]
fn retry_after_is_honoured() {
    let (project, emulator) = setup(Listing::NamesOnly);
    emulator.inject(2, Fault::Status { status: 429, retry_after: Some(1) });
    let started = Instant::now();
    let out = cs(&project, &emulator, &["plan", "-q"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(started.elapsed() >= Duration::from_secs(1), "retried before Retry-After");
    assert_eq!(emulator.request_count(), 3);
}

#[test]
fn an_expired_access_token_is_exchanged_again_once() {
    let (project, emulator) = setup(Listing::NamesOnly);
    emulator.inject(2, Fault::Status { status: 401, retry_after: None });
    let out = cs(&project, &emulator, &["plan", "-q"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let paths: Vec<String> = emulator.log().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(
        paths,
        [
            "POST /api/v1/core/oauth/token",
            "GET /api/v1/tenants/acme/secrets",
            "POST /api/v1/core/oauth/token",
            "GET /api/v1/tenants/acme/secrets"
        ]
    );
    // A second 401 is not retried again.
    let (project, emulator) = setup(Listing::NamesOnly);
    emulator.inject(2, Fault::Status { status: 401, retry_after: None });
    emulator.inject(4, Fault::Status { status: 401, retry_after: None });
    let out = cs(&project, &emulator, &["plan"]).run();
    assert_eq!(out.code, 1);
    assert_eq!(emulator.request_count(), 4);
    assert!(out.stderr.contains("log in again"), "{}", out.stderr);
}

#[test]
fn the_access_token_is_cached_across_the_requests_of_a_run() {
    let (project, emulator) = setup(Listing::NamesOnly);
    let out = cs(&project, &emulator, &["apply", "--yes"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let exchanges = emulator.log().iter().filter(|r| r.path == "/api/v1/core/oauth/token").count();
    assert_eq!(exchanges, 1);
}

#[test]
fn authorization_failures_say_what_to_do() {
    // 401: the API token is not accepted.
    let (project, emulator) = setup(Listing::NamesOnly);
    let out =
        cs(&project, &emulator, &["plan"]).env("SYSTEMPROMPT_API_TOKEN", "sp-CANARY-wrong-token-0000").run();
    assert_eq!(out.code, 1);
    snapshot(&project, "cloud_401", &out);
    // 403: the token may not touch this tenant.
    let (project, emulator) = setup(Listing::NamesOnly);
    emulator.grant(TOKEN, &["someone-else"]);
    let out = cs(&project, &emulator, &["plan"]).run();
    assert_eq!(out.code, 1);
    snapshot(&project, "cloud_403", &out);
    // 404: no such tenant.
    let project = Project::fixture("cloud")
        .write(".systemprompt/profiles/prod/profile.yaml", "target: cloud\ncloud:\n  tenant_id: nobody\n");
    emulator.grant_all(TOKEN);
    let out = cs(&project, &emulator, &["plan"]).run();
    assert_eq!(out.code, 1);
    snapshot(&project, "cloud_404", &out);
}

#[test]
fn plain_http_is_refused_off_loopback_before_any_request() {
    let (project, emulator) = setup(Listing::NamesOnly);
    for url in ["http://api.systemprompt.io", "http://10.11.12.13:8080", "http://127.0.0.1.example.com"] {
        let out = project.cmd(&["plan"]).env("SYSTEMPROMPT_API_URL", url).run();
        assert_eq!(out.code, 1, "{url}: {}", out.transcript());
        assert!(out.stderr.contains("plain http:// is refused"), "{url}: {}", out.stderr);
        let flag = project.cmd(&["plan", "--remote", url]).run();
        assert_eq!(flag.code, 64, "{url}: {}", flag.transcript());
    }
    assert_eq!(emulator.request_count(), 0);
    // The emulator itself, on loopback, is fine by --remote as well.
    let out = project.cmd(&["plan", "-q", "--remote", &emulator.url()]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
}

#[test]
fn missing_tenant_or_token_is_reported_before_any_request() {
    let project =
        Project::fixture("cloud").write(".systemprompt/profiles/prod/profile.yaml", "target: cloud\n");
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 1);
    snapshot(&project, "cloud_no_tenant", &out);
    let project =
        Project::fixture("cloud").write(".systemprompt/credentials.json", "{\"api_url\": \"https://x\"}");
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no API token"), "{}", out.stderr);
}

#[test]
fn removals_go_out_in_parallel_up_to_the_limit() {
    let many: Vec<(String, String)> =
        (0..12).map(|i| (format!("OLD_{i:02}"), format!("CANARY-old-{i}"))).collect();
    for (parallelism, expected_max) in [("1", 1), ("3", 3), ("8", 8)] {
        let (project, emulator) = setup(Listing::NamesOnly);
        let mut state: Vec<(&str, &str)> = BEFORE.to_vec();
        state.extend(many.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        emulator.set_secrets(TENANT, &state);
        emulator.set_latency(Duration::from_millis(60));
        let out = cs(
            &project,
            &emulator,
            &["apply", "--yes", "-q", "--allow-mass-removal", "--parallelism", parallelism],
        )
        .run();
        assert_eq!(out.code, 0, "{}", out.transcript());
        assert_eq!(emulator.max_in_flight(), expected_max, "--parallelism {parallelism}");
        assert_eq!(emulator.secrets(TENANT).unwrap(), expected());
        assert!(!out.stderr.contains("applying"), "a progress bar without a terminal");
    }
}

#[test]
fn the_cloud_is_named_in_the_prompt_and_the_report() {
    let (project, emulator) = setup(Listing::Digests);
    let out = cs(&project, &emulator, &["apply"]).input(Input::Tty("y\n".into())).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stderr.contains("Apply these changes to http://127.0.0.1:"), "{}", out.stderr);
    assert!(out.stderr.contains(" tenant acme (profile prod)? [y/N]"), "{}", out.stderr);
    snapshot(&project, "cloud_apply_confirmed", &out);
}

#[test]
fn a_write_whose_answer_never_comes_is_settled_from_the_listing() {
    // Every attempt of the PUT takes effect on the server, but no answer arrives in time: the
    // digests show the values in place, so the apply goes on with the removals.
    let (project, emulator) = setup(Listing::Digests);
    for n in 4..9 {
        emulator.inject(n, Fault::Delay(Duration::from_millis(1500)));
    }
    let out = cs(&project, &emulator, &["apply", "--yes", "--timeout", "0.4"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(emulator.secrets(TENANT).unwrap(), expected());
    // Names only, and a PUT that adds nothing: the listing cannot show whether it was made.
    let (project, emulator) = setup(Listing::NamesOnly);
    let mut held = expected();
    held.insert("OPENAI_API_KEY".to_owned(), "sk-CANARY-openai-prod-old-1c6b".to_owned());
    let pairs: Vec<(&str, &str)> = held.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    emulator.set_secrets(TENANT, &pairs);
    for n in 4..9 {
        emulator.inject(n, Fault::Delay(Duration::from_millis(1500)));
    }
    let out = cs(&project, &emulator, &["apply", "--yes", "--timeout", "0.4"]).run();
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(out.stderr.contains("the outcome of the write to tenant acme"), "{}", out.stderr);
    assert!(out.stderr.contains("is unknown"), "{}", out.stderr);
    assert!(!out.stderr.to_lowercase().contains("nothing was written"), "{}", out.stderr);
    std::thread::sleep(Duration::from_millis(1600));
    let rerun = cs(&project, &emulator, &["apply", "--yes"]).run();
    assert_eq!(rerun.code, 0, "{}", rerun.transcript());
    assert_eq!(emulator.secrets(TENANT).unwrap(), expected());
}

#[test]
fn a_lost_answer_to_the_write_is_recognised_on_retry() {
    // The PUT takes effect and its answer is lost; the retry meets its own write (412 in the
    // digests mode) and sees the values in place.
    let (project, emulator) = setup(Listing::Digests);
    emulator.inject(4, Fault::Lost);
    let out = cs(&project, &emulator, &["apply", "--yes"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let puts: Vec<u16> = emulator.log().iter().filter(|r| r.method == "PUT").map(|r| r.n as u16).collect();
    assert_eq!(puts.len(), 2, "the PUT was retried");
    assert_eq!(emulator.secrets(TENANT).unwrap(), expected());
    // A removal whose answer is lost is retried, meets a 404, and counts as done.
    let (project, emulator) = setup(Listing::NamesOnly);
    emulator.inject(5, Fault::Lost);
    let out = cs(&project, &emulator, &["apply", "--yes", "--parallelism", "1"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(emulator.secrets(TENANT).unwrap(), expected());
}

#[test]
fn an_access_token_is_replaced_30_seconds_before_it_expires() {
    // Tokens that live 20 s are already inside the margin: each request exchanges anew.
    let (project, emulator) = setup(Listing::NamesOnly);
    emulator.set_expires_in(20);
    let out = cs(&project, &emulator, &["apply", "--yes", "--parallelism", "1"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let log = emulator.log();
    let exchanges = log.iter().filter(|r| r.path == "/api/v1/core/oauth/token").count();
    assert_eq!(exchanges, log.len() - exchanges, "one exchange per tenant request");
    // Tokens that live 31 s are good for the whole run.
    let (project, emulator) = setup(Listing::NamesOnly);
    emulator.set_expires_in(31);
    let out = cs(&project, &emulator, &["apply", "--yes"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(emulator.log().iter().filter(|r| r.path == "/api/v1/core/oauth/token").count(), 1);
}

#[test]
fn a_proxy_never_sees_plain_http() {
    // A second emulator plays an HTTP proxy: a request sent through it would be logged there.
    let proxy = Emulator::start();
    let (project, emulator) = setup(Listing::NamesOnly);
    for var in ["HTTP_PROXY", "http_proxy", "ALL_PROXY"] {
        let out = cs(&project, &emulator, &["plan", "-q"]).env(var, &proxy.url()).run();
        assert_eq!(out.code, 0, "{var}: {}", out.transcript());
        let refused =
            project.cmd(&["plan", "--remote", "http://api.example.com"]).env(var, &proxy.url()).run();
        assert_eq!(refused.code, 64, "{var}: {}", refused.transcript());
    }
    assert_eq!(proxy.request_count(), 0, "a request went through the proxy");
    assert!(emulator.request_count() > 0);
}

/// A small deterministic generator, so that a failing iteration can be replayed.
fn lcg(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *seed >> 33
}

#[test]
fn a_signal_at_any_moment_of_an_apply_leaves_every_key_as_it_was_or_as_planned() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use std::process::{Command, Stdio};

    let many: Vec<(String, String)> =
        (0..10).map(|i| (format!("OLD_{i:02}"), format!("CANARY-old-{i}"))).collect();
    let mut before = before();
    before.extend(many.iter().cloned());
    let mut seed = 0x5eed_u64;
    let (mut interrupted, mut killed, mut finished) = (0, 0, 0);
    for iteration in 0..50_u32 {
        let (project, emulator) =
            setup(if iteration.is_multiple_of(2) { Listing::NamesOnly } else { Listing::Digests });
        let pairs: Vec<(&str, &str)> = before.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        emulator.set_secrets(TENANT, &pairs);
        emulator.set_latency(Duration::from_millis(25));
        let signal = if lcg(&mut seed).is_multiple_of(2) { Signal::SIGINT } else { Signal::SIGTERM };
        let wait = Duration::from_millis(lcg(&mut seed) % 400);
        let child = Command::new(env!("CARGO_BIN_EXE_cloud-secrets"))
            .args(["apply", "--yes", "--allow-mass-removal", "--parallelism", "2"])
            .current_dir(project.root())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", project.root())
            .env("SYSTEMPROMPT_API_URL", emulator.url())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(wait);
        let _ = kill(Pid::from_raw(child.id() as i32), signal);
        let output = child.wait_with_output().unwrap();
        let (stdout, stderr) =
            (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        let context = format!("iteration {iteration}, {signal:?} after {wait:?}");
        project.assert_clean("stdout", &stdout);
        project.assert_clean("stderr", &stderr);
        project.assert_files_clean();
        match output.status.code() {
            Some(0) => finished += 1,
            Some(130) => {
                interrupted += 1;
                assert!(stderr.contains("interrupted"), "{context}: {stderr}");
                assert!(stderr.contains("hint: run the command again"), "{context}: {stderr}");
            }
            None => killed += 1,
            Some(code) => panic!("{context}: exit {code}\n{stdout}\n{stderr}"),
        }
        // Every key as it was or as planned.
        let after = emulator.secrets(TENANT).unwrap();
        let planned = expected();
        for key in before.keys().chain(planned.keys()) {
            let now = after.get(key);
            assert!(now == before.get(key) || now == planned.get(key), "{context}: {key}");
        }
        // And a re-run gets there.
        emulator.set_latency(Duration::ZERO);
        let rerun = cs(&project, &emulator, &["apply", "--yes", "--allow-mass-removal"]).run();
        assert_eq!(rerun.code, 0, "{context}: {}", rerun.transcript());
        assert_eq!(emulator.secrets(TENANT).unwrap(), planned, "{context}");
    }
    // The random moments covered the three outcomes.
    assert!(
        interrupted > 0 && finished > 0,
        "interrupted {interrupted}, killed {killed}, finished {finished}"
    );
}

#[test]
fn two_applies_racing_on_one_tenant_never_lose_an_update() {
    use std::process::{Command, Stdio};
    for round in 0..8_u32 {
        let emulator = Emulator::start();
        emulator.set_listing(Listing::Digests);
        emulator.grant(TOKEN, &[TENANT]);
        emulator.set_secrets(TENANT, &BEFORE);
        emulator.set_latency(Duration::from_millis(30));
        // Two checkouts (two machines) with different desired states for the same tenant.
        let a = Project::fixture("cloud");
        let b = Project::fixture("cloud").write(
            SECRETS,
            "{\n  \"oauth_at_rest_pepper\": \"CANARY-pepper-b-0123456789abcdef0123\",\n  \"jwt_secret\": \"CANARY-jwt-prod-8e1f0a3b5c7d9e2f4a6b8c0d1e3f5a7b\",\n  \"database_url\": \"postgres://b:CANARY-b-db@db/b\",\n  \"openai\": \"sk-CANARY-openai-from-b\",\n  \"b_only\": \"CANARY-b-only\"\n}\n",
        );
        let spawn = |project: &Project| {
            Command::new(env!("CARGO_BIN_EXE_cloud-secrets"))
                .args(["apply", "--yes", "--allow-mass-removal"])
                .current_dir(project.root())
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HOME", project.root())
                .env("SYSTEMPROMPT_API_URL", emulator.url())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (first, second) =
            if round.is_multiple_of(2) { (spawn(&a), spawn(&b)) } else { (spawn(&b), spawn(&a)) };
        let (first, second) = (first.wait_with_output().unwrap(), second.wait_with_output().unwrap());
        let codes = [first.status.code(), second.status.code()];
        for (output, code) in [(&first, codes[0]), (&second, codes[1])] {
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(matches!(code, Some(0) | Some(3)), "round {round}: exit {code:?}: {stderr}");
            a.assert_clean("stderr", &stderr);
        }
        assert!(codes.contains(&Some(0)), "round {round}: nobody won");
        // Whoever wrote last finds nothing to do; the state is wholly one desired state.
        emulator.set_latency(Duration::ZERO);
        let clean = |p: &Project| cs(p, &emulator, &["plan", "--detailed-exitcode", "-q"]).run().code == 0;
        let (a_clean, b_clean) = (clean(&a), clean(&b));
        assert!(
            a_clean != b_clean,
            "round {round}: the remote matches {} desired states",
            if a_clean { 2 } else { 0 }
        );
        let after = emulator.secrets(TENANT).unwrap();
        assert_eq!(after.contains_key("B_ONLY"), b_clean, "round {round}");
        assert_eq!(after.get("SIGNING_KEY_PEM").map(String::as_str), Some("CANARY-signing-prod-2f5b"));
    }
}
