//! The bad-input corpus: malformed secrets.json, profile.yaml, cloud-secrets.yaml, `.env`,
//! sessions/index.json and credentials.json files, files that are not what they should be (a
//! directory, a FIFO, a symlink loop, an unreadable or huge file) and bad command-line arguments.
//!
//! Every case must end with exit 1 (a bad file) or 64 (a usage error), print nothing on stdout
//! (no plan), name the file (with `line:column` where the format has lines) or the offending
//! argument on stderr, and offer the fix on a `hint:` line. Every secret value in an input is a
//! canary, and the harness fails a run that panics or lets a canary out. Each case's transcript is
//! snapshotted as `snapshots/corpus_<name>.snap`.
//!
//! All cases run, and the test then fails listing every case that broke a rule, so one run shows
//! the whole state of the corpus.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::support::{Outcome, Project, snapshot};

const SECRETS: &str = ".systemprompt/profiles/dev/secrets.json";
const PROFILE: &str = ".systemprompt/profiles/dev/profile.yaml";
const SETTINGS: &str = ".systemprompt/cloud-secrets.yaml";
const INDEX: &str = ".systemprompt/sessions/index.json";
const DOTENV: &str = ".env";
const CREDENTIALS: &str = ".systemprompt/credentials.json";

/// A local profile.yaml as the platform accepts it (as far as cloud-secrets reads it: no warning
/// about it is printed), its secrets file beside it.
const LOCAL: &str =
    "target: local\nsecrets:\n  secrets_path: ./secrets.json\n  validation: warn\n  source: file\n";
/// cloud-secrets' settings naming the local store in profile dev's folder as its remote.
const SETTINGS_LOCAL: &str = "profiles:\n  dev:\n    remote: file:profiles/dev/store.json\n";
/// The same, also opting in to the project's `.env` (which is otherwise not read).
const SETTINGS_DOTENV: &str =
    "profiles:\n  dev:\n    remote: file:profiles/dev/store.json\n    dotenv: ../.env\n";
/// A profile of the systemprompt cloud. Cases that use it pass `--remote http://127.0.0.1:1`:
/// credentials are read before any request, so nothing listens there and nothing is sent.
const CLOUD: &str = "target: cloud\ncloud:\n  tenant_id: t\nsecrets:\n  secrets_path: ./secrets.json\n  \
                     validation: warn\n  source: file\n";
/// cloud-secrets' settings for the cloud profile: no remote (`target: cloud` names the API).
const SETTINGS_CLOUD: &str = "profiles:\n  dev:\n    validation: warn\n";
const NOWHERE: &str = "http://127.0.0.1:1";

/// A desired state that passes every validation rule (the platform's required keys, a pepper of
/// 32 characters or more, a well-formed database URL), so that a case shows only its own error.
const GOOD: &str = "{\n  \"oauth_at_rest_pepper\": \"CANARY-pepper-0123456789abcdef0123456789abcdef\",\n  \
                    \"database_url\": \"postgres://app:CANARY-pw@db.internal:5432/app\"\n}\n";

/// One malformed input and what the tool must say about it.
struct Case {
    /// The snapshot is `corpus_<name>`.
    name: &'static str,
    /// Builds the project the binary runs in.
    project: fn() -> Project,
    /// The command line.
    args: &'static [&'static str],
    /// 1 for a bad file, 64 for a usage error.
    code: i32,
    /// What stderr must contain: the file, with `line:column` where the format has lines, or the
    /// offending argument.
    names: &'static str,
    /// Further text stderr must contain (a suggestion, the gist of the message).
    says: &'static [&'static str],
    /// A file made unreadable with chmod 000 (see [`check`] for when the test runs as root).
    unreadable: Option<&'static str>,
    /// A further check on the project after the run; returns a problem, if any.
    also: fn(&Project) -> Option<String>,
}

/// The defaults: `plan` in a project whose profile and desired state are fine, failing as a bad
/// file.
const CASE: Case = Case {
    name: "",
    project: good_project,
    args: &["plan"],
    code: 1,
    names: "",
    says: &[],
    unreadable: None,
    also: |_| None,
};

fn good_project() -> Project {
    local(GOOD)
}

/// A one-profile project planning against the local store (named in cloud-secrets.yaml), with
/// this secrets.json.
fn local(secrets: &str) -> Project {
    Project::empty().write(PROFILE, LOCAL).write(SETTINGS, SETTINGS_LOCAL).write(SECRETS, secrets)
}

/// A one-profile cloud project (tenant `t`) with a valid secrets.json.
fn cloud() -> Project {
    Project::empty().write(PROFILE, CLOUD).write(SETTINGS, SETTINGS_CLOUD).write(SECRETS, GOOD)
}

/// A good project whose cloud-secrets.yaml opts in to the root `.env`, which holds this text.
fn with_dotenv(text: &str) -> Project {
    local(GOOD).write(SETTINGS, SETTINGS_DOTENV).write(DOTENV, text)
}

/// A good project whose cloud-secrets.yaml holds this text.
fn settings(text: &str) -> Project {
    local(GOOD).write(SETTINGS, text)
}

/// A good project whose profile.yaml holds this text.
fn profile(text: &str) -> Project {
    local(GOOD).write(PROFILE, text)
}

/// A good project with a second profile, `prod`, and so no profile to take by default.
fn two_profiles() -> Project {
    good_project()
        .write(".systemprompt/profiles/prod/profile.yaml", LOCAL)
        .write(".systemprompt/profiles/prod/secrets.json", GOOD)
}

/// Writes bytes that are not necessarily UTF-8 (the harness writes text only), mode 0600, and
/// declares the file as one that holds values by design.
fn raw(project: Project, rel: &str, bytes: &[u8]) -> Project {
    let path = project.path(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    project.value_file(rel)
}

/// Replaces the file `rel` of the project with a symbolic link to `target`.
fn link(project: Project, rel: &str, target: &str) -> Project {
    let path = project.path(rel);
    let _ = std::fs::remove_file(&path);
    symlink(target, &path).unwrap();
    project
}

/// Replaces the file `rel` of the project with a named pipe, which would block a reader forever.
fn fifo(project: Project, rel: &str) -> Project {
    let path = project.path(rel);
    let _ = std::fs::remove_file(&path);
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
    project
}

/// Replaces the file `rel` of the project with a directory.
fn directory(project: Project, rel: &str) -> Project {
    let path = project.path(rel);
    let _ = std::fs::remove_file(&path);
    std::fs::create_dir_all(&path).unwrap();
    project
}

/// A secrets.json of 50 MiB of canary entries, five times the most the tool reads.
fn fifty_megabytes() -> Project {
    use std::fmt::Write;
    let project = Project::empty().write(PROFILE, LOCAL).write(SETTINGS, SETTINGS_LOCAL);
    let mut text = String::with_capacity(51 << 20);
    text.push_str("{\n");
    let mut i = 0;
    while text.len() < 50 << 20 {
        writeln!(text, "  \"key_{i:08}\": \"CANARY-value-{i:08}\",").unwrap();
        i += 1;
    }
    text.push_str("  \"jwt_secret\": \"CANARY-jwt-0123456789abcdef0123456789abcdef\"\n}\n");
    raw(project, SECRETS, text.as_bytes())
}

/// A value nested in 10 000 arrays: a recursive parser without a depth limit overflows its stack.
fn deeply_nested() -> Project {
    let text = format!(
        "{{\n  \"jwt_secret\": \"CANARY-1\",\n  \"deep\": {}\"CANARY-2\"{}\n}}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    local(&text)
}

fn cases() -> Vec<Case> {
    vec![
        // ---- secrets.json: syntax ----
        Case { name: "secrets_empty_file", project: || local(""), names: SECRETS, ..CASE },
        Case { name: "secrets_only_whitespace", project: || local("  \n\t\n"), names: SECRETS, ..CASE },
        Case {
            name: "secrets_truncated_after_a_value",
            project: || local("{\n  \"jwt_secret\": \"CANARY-1\""),
            names: "secrets.json:2:26",
            ..CASE
        },
        Case {
            name: "secrets_truncated_inside_a_string",
            project: || local("{\n  \"jwt_secret\": \"CANARY-1"),
            names: "secrets.json:2:25",
            ..CASE
        },
        Case {
            name: "secrets_byte_order_mark",
            project: || local("\u{feff}{\n  \"jwt_secret\": \"CANARY-1\"\n}\n"),
            names: "secrets.json:1:1",
            ..CASE
        },
        Case {
            name: "secrets_invalid_utf8",
            project: || raw(local(GOOD), SECRETS, b"{\n  \"jwt_secret\": \"CANARY-\xff-1\"\n}\n"),
            names: "secrets.json:2:25",
            ..CASE
        },
        Case {
            name: "secrets_trailing_comma",
            project: || local("{\n  \"jwt_secret\": \"CANARY-1\",\n}\n"),
            names: "secrets.json:2:27",
            ..CASE
        },
        Case {
            name: "secrets_comment",
            project: || local("{\n  // production\n  \"jwt_secret\": \"CANARY-1\"\n}\n"),
            names: "secrets.json:2:3",
            ..CASE
        },
        Case {
            name: "secrets_two_objects",
            project: || local("{\"jwt_secret\": \"CANARY-1\"}\n{\"openai\": \"sk-CANARY-2\"}\n"),
            names: "secrets.json:2:1",
            ..CASE
        },
        Case {
            name: "secrets_raw_newline_in_a_value",
            project: || local("{\n  \"jwt_secret\": \"CANARY-1\nCANARY-2\"\n}\n"),
            names: "secrets.json:2:",
            ..CASE
        },
        Case {
            name: "secrets_bad_escape",
            project: || local("{\n  \"jwt_secret\": \"CANARY-\\q\"\n}\n"),
            names: "secrets.json:2:26",
            ..CASE
        },
        Case {
            name: "secrets_lone_surrogate_escape",
            project: || local("{\n  \"jwt_secret\": \"CANARY-\\ud800-1\"\n}\n"),
            names: "secrets.json:2:",
            ..CASE
        },
        Case {
            name: "secrets_top_level_array",
            project: || local("[\n  \"CANARY-1\"\n]\n"),
            names: "secrets.json:1:1",
            ..CASE
        },
        Case { name: "secrets_deep_nesting", project: deeply_nested, names: "secrets.json:3:11", ..CASE },
        Case { name: "secrets_50_megabytes", project: fifty_megabytes, names: SECRETS, ..CASE },
        // ---- secrets.json: well-formed JSON that breaks the rules ----
        Case {
            name: "secrets_duplicate_key",
            project: || {
                local(
                    "{\n  \"openai\": \"sk-CANARY-1\",\n  \"jwt_secret\": \"CANARY-2\",\n  \
                     \"openai\": \"sk-CANARY-3\"\n}\n",
                )
            },
            names: "secrets.json:4:3",
            ..CASE
        },
        Case {
            name: "secrets_number_value",
            project: || local("{\n  \"jwt_secret\": \"CANARY-1\",\n  \"port\": 5432\n}\n"),
            names: "secrets.json:3:11",
            ..CASE
        },
        Case {
            name: "secrets_boolean_value",
            project: || local("{\n  \"jwt_secret\": \"CANARY-1\",\n  \"debug\": true\n}\n"),
            names: "secrets.json:3:12",
            ..CASE
        },
        Case {
            name: "secrets_nested_object_value",
            project: || local("{\n  \"database\": {\n    \"url\": \"postgres://u:CANARY-1@h/db\"\n  }\n}\n"),
            names: "secrets.json:2:15",
            ..CASE
        },
        Case {
            name: "secrets_array_value",
            project: || local("{\n  \"jwt_secret\": [\"CANARY-1\", \"CANARY-2\"]\n}\n"),
            names: "secrets.json:2:17",
            ..CASE
        },
        Case {
            name: "secrets_key_with_a_space",
            project: || local("{\n  \"jwt secret\": \"CANARY-1\"\n}\n"),
            names: "secrets.json:2:3",
            ..CASE
        },
        Case {
            name: "secrets_key_starting_with_a_digit",
            project: || local("{\n  \"jwt_secret\": \"CANARY-1\",\n  \"1password\": \"CANARY-2\"\n}\n"),
            names: "secrets.json:3:3",
            ..CASE
        },
        Case {
            // `MixedCase` can name a variable and is neither snake_case nor UPPER_CASE, so only
            // the key-case rule catches it: an error under cloud-secrets.yaml's strict validation.
            name: "secrets_key_case_strict",
            project: || {
                local(
                    "{\n  \"oauth_at_rest_pepper\": \"CANARY-pepper-0123456789abcdef0123456789abcdef\",\n  \
                     \"database_url\": \"postgres://app:CANARY-pw@db.internal:5432/app\",\n  \
                     \"MixedCase\": \"CANARY-3\"\n}\n",
                )
                .write(
                    SETTINGS,
                    "profiles:\n  dev:\n    remote: file:profiles/dev/store.json\n    validation: strict\n",
                )
            },
            names: "secrets.json:4:3",
            says: &["[key-case]"],
            ..CASE
        },
        Case {
            name: "secrets_two_keys_one_variable",
            project: || {
                local(
                    "{\n  \"oauth_at_rest_pepper\": \"CANARY-pepper-0123456789abcdef0123456789abcdef\",\n  \
                     \"database_url\": \"postgres://app:CANARY-pw@db.internal:5432/app\",\n  \
                     \"openai\": \"sk-CANARY-1\",\n  \"openai_api_key\": \"sk-CANARY-2\"\n}\n",
                )
            },
            names: "secrets.json:5:3",
            ..CASE
        },
        Case {
            // A short pepper is always an error, whatever the validation mode.
            name: "secrets_pepper_too_short",
            project: || {
                local(
                    "{\n  \"oauth_at_rest_pepper\": \"CANARY-short\",\n  \
                     \"database_url\": \"postgres://app:CANARY-pw@db.internal:5432/app\"\n}\n",
                )
                .write(
                    SETTINGS,
                    "profiles:\n  dev:\n    remote: file:profiles/dev/store.json\n    validation: skip\n",
                )
            },
            names: "secrets.json:2:3",
            says: &["[pepper-length]"],
            ..CASE
        },
        Case {
            name: "secrets_duplicate_key_validate",
            project: || local("{\n  \"jwt_secret\": \"CANARY-1\",\n  \"jwt_secret\": \"CANARY-2\"\n}\n"),
            args: &["validate"],
            names: "secrets.json:3:3",
            ..CASE
        },
        // ---- secrets.json: not a readable regular file ----
        Case {
            name: "secrets_symlink_to_itself",
            project: || link(good_project(), SECRETS, "secrets.json"),
            names: SECRETS,
            ..CASE
        },
        Case {
            name: "secrets_symlink_loop",
            project: || {
                link(
                    link(good_project(), SECRETS, "loop.json"),
                    ".systemprompt/profiles/dev/loop.json",
                    "secrets.json",
                )
            },
            names: SECRETS,
            ..CASE
        },
        Case {
            name: "secrets_dangling_symlink",
            project: || link(good_project(), SECRETS, "moved-away.json"),
            names: SECRETS,
            ..CASE
        },
        Case {
            name: "secrets_unreadable",
            project: || {
                let project = good_project();
                let path = project.path(SECRETS);
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o000)).unwrap();
                project
            },
            names: SECRETS,
            unreadable: Some(SECRETS),
            ..CASE
        },
        Case {
            name: "secrets_is_a_directory",
            project: || directory(local(GOOD), SECRETS),
            names: SECRETS,
            ..CASE
        },
        Case { name: "secrets_is_a_fifo", project: || fifo(local(GOOD), SECRETS), names: SECRETS, ..CASE },
        // ---- profiles and profile.yaml ----
        Case {
            name: "profile_unknown",
            project: good_project,
            args: &["plan", "--profile", "prod"],
            names: "`prod`",
            ..CASE
        },
        Case {
            name: "profile_path_missing",
            project: good_project,
            args: &["plan", "--profile", "./profiles/prod"],
            names: "profiles/prod",
            ..CASE
        },
        Case {
            // A folder without profile.yaml is not a profile, even when it holds a secrets file.
            name: "profile_path_without_profile_yaml",
            project: || good_project().write(".systemprompt/profiles/prod/secrets.json", GOOD),
            args: &["plan", "--profile", "./.systemprompt/profiles/prod"],
            names: ".systemprompt/profiles/prod",
            says: &["holds no profile.yaml"],
            ..CASE
        },
        Case {
            name: "profile_name_without_profile_yaml",
            project: || good_project().write(".systemprompt/profiles/prod/secrets.json", GOOD),
            args: &["plan", "--profile", "prod"],
            names: "`prod`",
            says: &["available profiles: dev;"],
            ..CASE
        },
        Case { name: "profile_several_none_chosen", project: two_profiles, names: "dev, prod", ..CASE },
        Case {
            // The session index is consulted only when neither --profile nor SYSTEMPROMPT_PROFILE
            // chooses; with two profiles it is what decides.
            name: "profile_session_index_not_json",
            project: || {
                two_profiles().write(INDEX, "{\n  \"version\": 1,\n  active_profile_name: \"prod\"\n}\n")
            },
            names: "index.json:3:3",
            ..CASE
        },
        Case {
            name: "profile_session_index_active_profile_gone",
            project: || {
                two_profiles()
                    .write(INDEX, "{\n  \"version\": 1,\n  \"active_profile_name\": \"staging\"\n}\n")
            },
            names: "index.json:3:3",
            says: &["`staging`"],
            ..CASE
        },
        Case {
            name: "profile_cloud_without_tenant",
            project: || {
                cloud().write(
                    PROFILE,
                    "target: cloud\nsecrets:\n  secrets_path: ./secrets.json\n  source: file\n",
                )
            },
            // The tenant is missing, so there is no line of it; the file has lines, and the
            // message should point at the `target: cloud` that needs it.
            names: "profile.yaml:1:",
            ..CASE
        },
        Case {
            name: "profile_yaml_unterminated_quote",
            project: || {
                profile("target: local\nsecrets:\n  secrets_path: \"./secrets.json\n  source: file\n")
            },
            names: "profile.yaml:3:17",
            ..CASE
        },
        Case {
            name: "profile_yaml_tab_indentation",
            project: || profile("target: local\nsecrets:\n\tsecrets_path: ./secrets.json\n\tsource: file\n"),
            names: "profile.yaml:3:",
            says: &["tabs"],
            ..CASE
        },
        Case {
            name: "profile_yaml_duplicate_field",
            project: || {
                profile(
                    "target: local\nsecrets:\n  secrets_path: ./secrets.json\n  source: file\ntarget: cloud\n",
                )
            },
            names: "profile.yaml:5:1",
            says: &["duplicate field `target`"],
            ..CASE
        },
        Case {
            name: "profile_yaml_unknown_target",
            project: || profile("target: moon\nsecrets:\n  secrets_path: ./secrets.json\n  source: file\n"),
            names: "profile.yaml:1:9",
            says: &["expected `local` or `cloud`"],
            ..CASE
        },
        Case {
            name: "profile_yaml_unknown_source",
            project: || {
                profile("target: local\nsecrets:\n  secrets_path: ./secrets.json\n  source: sideways\n")
            },
            names: "profile.yaml:4:11",
            says: &["expected `file` or `env`"],
            ..CASE
        },
        Case {
            // `${VAR}` is substituted as the platform does: an unset variable without a default
            // stays as written, which is no target.
            name: "profile_yaml_unset_variable",
            project: || {
                profile(
                    "target: ${NOPE}\nsecrets:\n  secrets_path: ${SECRETS_PATH:-./secrets.json}\n  \
                     source: file\n",
                )
            },
            names: "profile.yaml:1:9",
            ..CASE
        },
        Case {
            name: "profile_yaml_secrets_not_a_mapping",
            project: || profile("target: local\nsecrets: [./secrets.json]\n"),
            names: "profile.yaml:2:10",
            ..CASE
        },
        Case {
            name: "profile_yaml_secrets_path_with_an_unset_variable",
            project: || {
                profile("target: local\nsecrets:\n  secrets_path: ${NOPE}/secrets.json\n  source: file\n")
            },
            names: "profile.yaml:3:3",
            says: &["not set in the environment"],
            ..CASE
        },
        Case {
            name: "profile_flat_without_a_secrets_path",
            project: || local(GOOD).write(".systemprompt/profiles/old.profile.yaml", "target: local\n"),
            args: &["plan", "--profile", "old"],
            names: "old.profile.yaml",
            says: &["must name its secrets file"],
            ..CASE
        },
        Case {
            name: "profile_yaml_empty_secrets_path",
            project: || profile("target: local\nsecrets:\n  secrets_path: \"\"\n  source: file\n"),
            names: "profile.yaml:3:3",
            says: &["secrets_path is empty"],
            ..CASE
        },
        Case {
            name: "profile_yaml_invalid_utf8",
            project: || {
                raw(
                    local(GOOD),
                    PROFILE,
                    b"target: local\nsecrets:\n  secrets_path: ./secr\xffets.json\n  source: file\n",
                )
            },
            names: "profile.yaml:3:",
            ..CASE
        },
        Case {
            // A folder whose profile.yaml is not a file is not a profile: the project has none.
            name: "profile_yaml_is_a_directory",
            project: || directory(local(GOOD), PROFILE),
            names: "profile.yaml: profile.yaml is a directory",
            ..CASE
        },
        // ---- .systemprompt/cloud-secrets.yaml ----
        Case {
            name: "settings_misspelt_field",
            project: || settings("profiles:\n  dev:\n    remtoe: file:profiles/dev/store.json\n"),
            names: "cloud-secrets.yaml:3:5",
            says: &["did you mean `remote`"],
            ..CASE
        },
        Case {
            name: "settings_unknown_top_level_key",
            project: || settings("profile:\n  dev:\n    remote: file:profiles/dev/store.json\n"),
            names: "cloud-secrets.yaml:1:1",
            says: &["did you mean `profiles`"],
            ..CASE
        },
        Case {
            name: "settings_unknown_validation",
            project: || {
                settings(
                    "profiles:\n  dev:\n    remote: file:profiles/dev/store.json\n    validation: paranoid\n",
                )
            },
            names: "cloud-secrets.yaml:4:17",
            says: &["`strict`"],
            ..CASE
        },
        Case {
            name: "settings_threshold_out_of_range",
            project: || {
                settings(
                    "profiles:\n  dev:\n    remote: file:profiles/dev/store.json\n    mass_removal_threshold: 2\n",
                )
            },
            names: "cloud-secrets.yaml:4:5",
            says: &["between 0 and 1"],
            ..CASE
        },
        Case {
            name: "settings_remote_is_a_list",
            project: || settings("profiles:\n  dev:\n    remote: [file:x]\n"),
            names: "cloud-secrets.yaml:3:13",
            ..CASE
        },
        Case {
            name: "settings_tab_indentation",
            project: || settings("profiles:\n  dev:\n\tremote: file:profiles/dev/store.json\n"),
            names: "cloud-secrets.yaml:3:",
            ..CASE
        },
        Case {
            // libyaml notices at the end of the stream (4:1) that the quote opened at 3:13 was
            // never closed.
            name: "settings_unterminated_quote",
            project: || settings("profiles:\n  dev:\n    remote: \"file:profiles/dev/store.json\n"),
            names: "cloud-secrets.yaml:3:13",
            says: &["quoted scalar"],
            ..CASE
        },
        Case {
            name: "settings_remote_plain_http",
            project: || settings("profiles:\n  dev:\n    remote: http://example.com\n"),
            names: "cloud-secrets.yaml:3:5",
            ..CASE
        },
        Case {
            // The opt-in names a file that is not there: an error, not a silent skip.
            name: "settings_dotenv_missing",
            project: || {
                settings(
                    "profiles:\n  dev:\n    remote: file:profiles/dev/store.json\n    dotenv: ../missing.env\n",
                )
            },
            names: "missing.env",
            says: &["does not exist", "cloud-secrets.yaml"],
            ..CASE
        },
        Case {
            name: "settings_dotenv_empty",
            project: || {
                settings("profiles:\n  dev:\n    remote: file:profiles/dev/store.json\n    dotenv: \"\"\n")
            },
            names: "cloud-secrets.yaml:4:5",
            ..CASE
        },
        Case {
            name: "settings_invalid_utf8",
            project: || raw(local(GOOD), SETTINGS, b"profiles:\n  dev:\n    remote: file:st\xffore.json\n"),
            names: "cloud-secrets.yaml:3:20",
            ..CASE
        },
        Case {
            name: "settings_is_a_directory",
            project: || directory(local(GOOD), SETTINGS),
            names: SETTINGS,
            ..CASE
        },
        // ---- .env at the project root, read where cloud-secrets.yaml opts in ----
        Case {
            name: "dotenv_unterminated_double_quote",
            project: || {
                with_dotenv("# local overrides\nOPENAI_API_KEY=\"sk-CANARY-1\nGEMINI_API_KEY=AIza-CANARY-2\n")
            },
            names: ".env:2:",
            ..CASE
        },
        Case {
            name: "dotenv_unterminated_single_quote_on_the_last_line",
            project: || with_dotenv("GEMINI_API_KEY=AIza-CANARY-1\nOPENAI_API_KEY='sk-CANARY-2\n"),
            names: ".env:2:",
            ..CASE
        },
        Case {
            name: "dotenv_line_without_equals",
            project: || with_dotenv("GEMINI_API_KEY=AIza-CANARY-1\nOPENAI_API_KEY sk-CANARY-2\n"),
            names: ".env:2:",
            ..CASE
        },
        Case {
            name: "dotenv_space_in_an_unquoted_value",
            project: || {
                with_dotenv("# local overrides\nGEMINI_API_KEY=AIza-CANARY-1\nJWT_SECRET=CANARY-2 CANARY-3\n")
            },
            names: ".env:3:",
            ..CASE
        },
        Case {
            name: "dotenv_name_with_dashes",
            project: || with_dotenv("# local overrides\nOPENAI-API-KEY=sk-CANARY-1\n"),
            names: ".env:2:",
            ..CASE
        },
        Case {
            name: "dotenv_unclosed_substitution",
            project: || with_dotenv("PREFIX=CANARY-1\nJWT_SECRET=\"${PREFIX-CANARY-2\"\n"),
            names: ".env:2:",
            ..CASE
        },
        Case {
            name: "dotenv_invalid_utf8",
            project: || raw(with_dotenv(""), DOTENV, b"# local overrides\nOPENAI_API_KEY=sk-CANARY-\xff\n"),
            names: ".env:2:26",
            ..CASE
        },
        Case {
            name: "dotenv_is_a_directory",
            project: || directory(with_dotenv(""), DOTENV),
            names: DOTENV,
            ..CASE
        },
        Case { name: "dotenv_is_a_fifo", project: || fifo(with_dotenv(""), DOTENV), names: DOTENV, ..CASE },
        // ---- .systemprompt/credentials.json ----
        Case {
            name: "credentials_not_json",
            project: || cloud().write(CREDENTIALS, "api_token = CANARY-token\n"),
            args: &["plan", "--remote", NOWHERE],
            names: "credentials.json:1:1",
            ..CASE
        },
        Case {
            name: "credentials_empty_file",
            project: || cloud().write(CREDENTIALS, ""),
            args: &["plan", "--remote", NOWHERE],
            names: CREDENTIALS,
            ..CASE
        },
        Case {
            name: "credentials_truncated",
            project: || cloud().write(CREDENTIALS, "{\n  \"api_token\": \"CANARY-token"),
            args: &["plan", "--remote", NOWHERE],
            names: "credentials.json:2:28",
            ..CASE
        },
        Case {
            name: "credentials_token_is_a_number",
            project: || {
                cloud().write(CREDENTIALS, "{\n  \"user_email\": \"a@b.c\",\n  \"api_token\": 12345\n}\n")
            },
            args: &["plan", "--remote", NOWHERE],
            names: "credentials.json:3:",
            ..CASE
        },
        Case {
            name: "credentials_token_is_an_object",
            project: || cloud().write(CREDENTIALS, "{\n  \"api_token\": {\"value\": \"CANARY-token\"}\n}\n"),
            args: &["plan", "--remote", NOWHERE],
            names: "credentials.json:2:",
            ..CASE
        },
        Case {
            name: "credentials_byte_order_mark",
            project: || cloud().write(CREDENTIALS, "\u{feff}{\"api_token\": \"CANARY-token\"}\n"),
            args: &["plan", "--remote", NOWHERE],
            names: "credentials.json:1:1",
            ..CASE
        },
        Case {
            name: "credentials_is_a_directory",
            project: || directory(cloud(), CREDENTIALS),
            args: &["plan", "--remote", NOWHERE],
            names: CREDENTIALS,
            ..CASE
        },
        Case {
            // No --remote: the API URL comes from the file, and plain http off loopback is refused
            // before the token goes anywhere.
            name: "credentials_api_url_plain_http",
            project: || {
                cloud().write(
                    CREDENTIALS,
                    "{\n  \"api_token\": \"CANARY-token\",\n  \"api_url\": \"http://api.example.com\"\n}\n",
                )
            },
            names: "credentials.json:3:",
            ..CASE
        },
        // ---- the command line ----
        Case {
            name: "args_unknown_flag",
            args: &["plan", "--frobnicate"],
            code: 64,
            names: "--frobnicate",
            ..CASE
        },
        Case {
            name: "args_set_without_equals",
            args: &["set", "OPENAI_API_KEY"],
            code: 64,
            names: "argument 1 of set",
            ..CASE
        },
        Case {
            name: "args_set_empty_value",
            args: &["set", "OPENAI_API_KEY="],
            code: 64,
            names: "OPENAI_API_KEY",
            ..CASE
        },
        Case {
            name: "args_set_key_that_cannot_name_a_variable",
            args: &["set", "openai key=sk-CANARY-1"],
            code: 64,
            names: "argument 1",
            ..CASE
        },
        Case {
            // A value pasted where the name goes is never shown nor made into a variable.
            name: "args_set_pasted_value_as_the_name",
            args: &["set", "sk-ant-CANARY-pasted-9f3e=x"],
            code: 64,
            names: "argument 1",
            says: &["not shown, in case it is a value"],
            ..CASE
        },
        Case {
            name: "args_set_mixed_case_token_as_the_name",
            args: &["set", "dGhpc0lzQ0FOQVJZcGFzdGVk=x"],
            code: 64,
            names: "argument 1",
            ..CASE
        },
        Case {
            name: "args_timeout_zero",
            args: &["plan", "--timeout", "0"],
            code: 64,
            names: "--timeout",
            ..CASE
        },
        Case {
            name: "args_timeout_not_a_number",
            args: &["plan", "--timeout", "soon"],
            code: 64,
            names: "--timeout",
            ..CASE
        },
        Case {
            name: "args_parallelism_zero",
            args: &["apply", "--parallelism", "0"],
            code: 64,
            names: "--parallelism",
            ..CASE
        },
        Case {
            name: "args_lock_timeout_negative",
            args: &["apply", "--lock-timeout", "-1"],
            code: 64,
            names: "--lock-timeout",
            ..CASE
        },
        Case {
            name: "args_color_rainbow",
            args: &["plan", "--color", "rainbow"],
            code: 64,
            names: "--color",
            ..CASE
        },
        Case {
            name: "args_directory_missing",
            args: &["plan", "-C", "no/such/dir"],
            code: 64,
            names: "no/such/dir",
            ..CASE
        },
        Case {
            name: "args_remote_unknown_scheme",
            args: &["plan", "--remote", "gopher://example.com"],
            code: 64,
            names: "--remote",
            ..CASE
        },
        Case {
            name: "args_remote_plain_http_off_loopback",
            project: cloud,
            args: &["plan", "--remote", "http://example.com"],
            code: 64,
            names: "--remote",
            ..CASE
        },
        Case {
            name: "args_remote_with_a_token_in_the_url",
            project: cloud,
            args: &["plan", "--remote", "https://admin:CANARY-token@api.example.com"],
            code: 64,
            names: "--remote",
            ..CASE
        },
        Case {
            name: "args_generate_into_a_bad_key",
            args: &["generate", "jwt-secret", "--into", "Not-A-Key"],
            code: 64,
            // The key as typed: the message must not quote a rewritten form of it.
            names: "`Not-A-Key`",
            also: |project| {
                let text = project.read(SECRETS);
                (text != GOOD).then(|| "secrets.json was changed".to_owned())
            },
            ..CASE
        },
        Case {
            name: "args_init_profile_outside_the_project",
            args: &["init", "--profile", "../x"],
            code: 64,
            names: "../x",
            also: |project| {
                let escaped = project.path(".systemprompt/x");
                escaped.exists().then(|| format!("init created {}", escaped.display()))
            },
            ..CASE
        },
        Case {
            name: "args_empty_profile",
            args: &["plan", "--profile", ""],
            code: 64,
            names: "--profile",
            ..CASE
        },
    ]
}

/// Runs one case; returns what it got wrong.
fn check(case: &Case) -> Vec<String> {
    let project = (case.project)();
    let out = project.cmd(case.args).run();
    if let Some(rel) = case.unreadable
        && std::fs::read(project.path(rel)).is_ok()
    {
        // chmod 000 does not stop root (CAP_DAC_OVERRIDE): the tool read the file like any
        // other, so the permission error this case is about cannot happen here. Only the
        // assertions on that error (and its snapshot) are skipped; the harness has still checked
        // the run for a panic and for leaked canaries.
        return Vec::new();
    }
    snapshot(&project, &format!("corpus_{}", case.name), &out);
    let mut problems = rules(case, &out);
    problems.extend((case.also)(&project));
    problems
}

/// The rules every case must follow.
fn rules(case: &Case, out: &Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    if out.code != case.code {
        problems.push(format!("exit {} instead of {}", out.code, case.code));
    }
    if !out.stdout.is_empty() {
        problems.push("something on stdout".to_owned());
    }
    for text in std::iter::once(&case.names).chain(case.says) {
        if !out.stderr.contains(text) {
            problems.push(format!("stderr does not contain {text:?}"));
        }
    }
    if !out.stderr.lines().any(|line| line.trim_start().starts_with("hint:")) {
        problems.push("no `hint:` line".to_owned());
    }
    problems
}

#[test]
fn every_malformed_input_is_refused_with_its_location_and_a_fix() {
    let cases = cases();
    assert!(cases.len() >= 40, "the corpus has only {} cases", cases.len());
    for (i, case) in cases.iter().enumerate() {
        assert!(cases[..i].iter().all(|c| c.name != case.name), "two cases are named {}", case.name);
        assert!(!case.names.is_empty(), "{}: say what stderr must name", case.name);
    }
    let mut failures = Vec::new();
    for case in &cases {
        let problems = match catch_unwind(AssertUnwindSafe(|| check(case))) {
            Ok(problems) => problems,
            Err(_) => vec!["panicked (the message is printed above)".to_owned()],
        };
        if !problems.is_empty() {
            failures.push(format!("{}: {}", case.name, problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases break the rules:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// A profile.yaml of earlier versions, still naming its remote in `secrets.remote` (relative to
/// the profile's folder) and with no cloud-secrets.yaml, still plans. Not a corpus case, since it
/// succeeds; errors.rs checks the warning's every line.
#[test]
fn a_legacy_profile_yaml_still_plans() {
    let project = Project::empty()
        .write(
            PROFILE,
            "target: local\nsecrets:\n  secrets_path: ./secrets.json\n  source: file\n  remote: file:store.json\n",
        )
        .write(SECRETS, GOOD);
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stdout.contains("--- remote   file:.systemprompt/profiles/dev/store.json"), "{}", out.stdout);
    assert!(out.stdout.contains("Plan: 2 to add, 0 to change, 0 to remove"), "{}", out.stdout);
    assert!(out.stderr.contains("warning: .systemprompt/profiles/dev/profile.yaml:"), "{}", out.stderr);
    assert!(out.stderr.contains("secrets.remote belongs to cloud-secrets"), "{}", out.stderr);
    assert!(!out.stderr.contains("error"), "{}", out.stderr);
}

/// The `.env` cases above opt in with `dotenv:`; without it the project's `.env` is not read at
/// all, so even one that cannot be parsed (and would override a key) changes nothing.
#[test]
fn a_dotenv_that_is_not_opted_in_is_not_read() {
    let project = local(GOOD).write(DOTENV, "DATABASE_URL=\"postgres://x:CANARY-dot@h/db\nOPENAI-API-KEY\n");
    let out = project.cmd(&["plan"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout.contains("+ DATABASE_URL          add       from secrets.json `database_url`"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains(".env") && !out.stderr.contains(".env"), "{}", out.transcript());
}
