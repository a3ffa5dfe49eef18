//! Leak-proofing: every command, every format and verbosity, error paths, `-vv` request logs
//! and a deliberate panic, with canary values and a canary API token. The harness fails any run
//! whose stdout, stderr or written files hold a canary; here every path is walked once more in
//! one place, so a new output cannot skip the check.

use cloud_secrets_emulator::{Emulator, Fault, Listing};

use crate::support::{Input, Project};

const FORMATS: [&str; 3] = ["text", "json", "markdown"];
const VERBOSITY: [&[&str]; 3] = [&[], &["-v"], &["-vv"]];

fn with(base: &[&str], extra: &[&str]) -> Vec<String> {
    base.iter().chain(extra).map(|s| (*s).to_owned()).collect()
}

#[test]
fn no_canary_leaves_through_any_command_on_the_local_store() {
    for format in FORMATS {
        for verbose in VERBOSITY {
            let flags = with(&["--format", format], verbose);
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            let project = Project::fixture("drift");
            for args in [
                &["plan"][..],
                &["plan", "--detailed-exitcode", "--out", "plan.json"],
                &["apply"],
                &["set", "openai=sk-CANARY-leak-set", "--yes"],
                &["set", "github", "--stdin", "--yes"],
                &["unset", "LEGACY_WEBHOOK_SECRET", "--yes"],
                &["cleanup", "--yes"],
                &["apply", "plan.json"],
                &["sync", "--yes"],
            ] {
                let input = if args.contains(&"--stdin") {
                    Input::Pipe("CANARY-leak-stdin\n".into())
                } else {
                    Input::Null
                };
                let out = project
                    .cmd(&with(args, &flags).iter().map(String::as_str).collect::<Vec<_>>())
                    .input(input)
                    .run();
                assert!(matches!(out.code, 0 | 2 | 3 | 4), "{args:?} {flags:?}: {}", out.transcript());
            }
            let shown = project
                .cmd(
                    &with(&["show", "plan.json", "--format", format], verbose)
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>(),
                )
                .run();
            assert_eq!(shown.code, 0);
        }
    }
    let project = Project::fixture("drift");
    for args in [
        &["validate"][..],
        &["profiles"],
        &["generate", "jwt-secret", "--into", "jwt_secret"],
        &["generate", "pepper", "--into", "oauth_at_rest_pepper", "--force"],
        &["set", "openai=sk-CANARY-x", "--save", "--yes"],
    ] {
        assert_eq!(project.cmd(args).run().code, 0, "{args:?}");
    }
    let declined = Project::fixture("drift");
    assert_eq!(declined.cmd(&["apply", "-vv"]).input(Input::Tty("n\n".into())).run().code, 4);
}

#[test]
fn no_canary_or_token_leaves_through_the_cloud_paths() {
    for listing in [Listing::NamesOnly, Listing::Digests] {
        for verbose in VERBOSITY {
            let emulator = Emulator::start();
            emulator.set_listing(listing);
            emulator.grant("sp-CANARY-api-token-4f2a9c71", &["acme"]);
            emulator
                .set_secrets("acme", &[("JWT_SECRET", "CANARY-remote-jwt"), ("OLD", "CANARY-remote-old")]);
            let project = Project::fixture("cloud");
            let url = emulator.url();
            for format in FORMATS {
                let args = with(&["plan", "--format", format], verbose);
                let out = project
                    .cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
                    .env("SYSTEMPROMPT_API_URL", &url)
                    .run();
                assert_eq!(out.code, 0, "{}", out.transcript());
                if verbose == ["-vv"] {
                    assert!(
                        out.stderr.contains("http: GET /api/v1/tenants/acme/secrets -> 200"),
                        "{}",
                        out.stderr
                    );
                }
            }
            // Faults on the way, then the apply.
            emulator
                .inject(emulator.request_count() + 2, Fault::Status { status: 503, retry_after: Some(0) });
            let args = with(&["apply", "--yes", "--format", "json"], verbose);
            let out = project
                .cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
                .env("SYSTEMPROMPT_API_URL", &url)
                .run();
            assert_eq!(out.code, 0, "{}", out.transcript());
            // Error paths: a wrong token, an unknown tenant, a server that keeps failing.
            let wrong = project
                .cmd(&with(&["plan"], verbose).iter().map(String::as_str).collect::<Vec<_>>())
                .env("SYSTEMPROMPT_API_URL", &url)
                .env("SYSTEMPROMPT_API_TOKEN", "sp-CANARY-wrong-token-1234")
                .run();
            assert_eq!(wrong.code, 1);
            for n in 0..6 {
                emulator.inject(
                    emulator.request_count() + 1 + n,
                    Fault::Status { status: 500, retry_after: Some(0) },
                );
            }
            let failing = project
                .cmd(&with(&["plan"], verbose).iter().map(String::as_str).collect::<Vec<_>>())
                .env("SYSTEMPROMPT_API_URL", &url)
                .run();
            assert_eq!(failing.code, 1, "{}", failing.transcript());
            // No access token in any output or file either.
            for token in emulator.log().iter().filter_map(|r| r.header("authorization").map(str::to_owned)) {
                let token = token.trim_start_matches("Bearer ");
                for out in [&wrong, &failing] {
                    assert!(!out.stdout.contains(token) && !out.stderr.contains(token));
                }
                for file in crate::support::files(project.root()) {
                    assert!(
                        !std::fs::read_to_string(&file).unwrap_or_default().contains(token),
                        "{}",
                        file.display()
                    );
                }
            }
        }
    }
}

#[test]
fn a_panic_never_shows_its_message() {
    let project = Project::fixture("drift");
    let out = project
        .cmd(&["plan", "-vv"])
        .env("CLOUD_SECRETS_DEBUG_PANIC", "CANARY-in-a-panic-7a1e")
        .expect_panic()
        .run();
    assert!(out.stderr.contains("internal error at src/"), "{}", out.stderr);
    assert!(out.stderr.contains("The panic message is withheld"), "{}", out.stderr);
    let with_backtrace = project
        .cmd(&["plan"])
        .env("CLOUD_SECRETS_DEBUG_PANIC", "CANARY-in-a-panic-7a1e")
        .env("RUST_BACKTRACE", "full")
        .expect_panic()
        .run();
    assert!(!with_backtrace.stderr.contains("CANARY"));
}
