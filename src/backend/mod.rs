//! Remote secret stores behind one small trait. The engine never knows which store it talks to.

mod aws;
mod awssm;
mod cloud;
mod file;
mod http;
mod ssm;
mod vault;

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

pub use aws::AwsCredentials;
pub use cloud::{is_plain_name, resolve_target as resolve_cloud_target};

use std::sync::Arc;

use crate::error::Result;
use crate::project::Profile;
use crate::remote::{ChangeSet, Remote};
use crate::secret::SecretValue;
use crate::trust;

/// Every kind of remote cloud-secrets knows, in the order an address is tried against them.
/// A new remote is a module with a [`Kind`] and a [`Spec`], and one line here.
pub const KINDS: [&dyn Kind; 5] = [&file::KIND, &cloud::KIND, &vault::KIND, &awssm::KIND, &ssm::KIND];

/// The systemprompt cloud's address when neither the credentials nor the environment name one.
pub const DEFAULT_API_URL: &str = "https://api.systemprompt.io";

/// A remote secret store.
pub trait Backend {
    /// Reads every variable the store holds for this profile.
    fn fetch(&mut self) -> Result<Remote>;

    /// Carries out a whole change set, but only if the store still matches `base`, the state the
    /// plan was computed from; otherwise it writes nothing and returns [`crate::Error::Stale`].
    ///
    /// An error means nothing was written (or, for an unknown outcome, says so). A store that
    /// cannot write everything at once reports the steps that failed in [`Applied::failed`].
    fn apply(&mut self, base: &Remote, changes: &ChangeSet<'_>) -> Result<Applied>;

    /// The version before the current one (named as the store names it), with its values, for
    /// `rollback`; `None` when there is none. A store that keeps no versions says so with an
    /// error.
    fn previous(&mut self) -> Result<Option<(String, std::collections::BTreeMap<String, SecretValue>)>> {
        Err(crate::Error::config(
            "this remote keeps no earlier versions to roll back to",
            format!("rollback works with {}", rollback_kinds()),
        ))
    }
}

/// What a backend reports after an apply that wrote at least part of the change set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The store's revision after the write, if it has revisions.
    pub revision: Option<u64>,
    /// Deletions that failed (or were not sent), with the reason; every other change was made.
    pub failed: Vec<(String, String)>,
    /// Whether a signal stopped the apply before every request was sent.
    pub interrupted: bool,
}

/// Whether a backend is opened to read or to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Plan only.
    Read,
    /// Plan and apply: the store is locked until the backend is dropped.
    Write {
        /// How long to wait for another process's lock.
        lock_timeout: Duration,
    },
}

/// How a network remote is reached.
#[derive(Clone)]
pub struct Connection {
    /// The limit on each request.
    pub timeout: Duration,
    /// How many times a transient failure is retried.
    pub retries: u32,
    /// How many deletions are in flight at once.
    pub parallelism: usize,
    /// Set by SIGINT or SIGTERM while an apply writes: no new request is sent.
    pub interrupted: crate::interrupt::Flag,
    /// Where the request log (`-vv`) and the progress of an apply go.
    pub diagnostics: std::sync::Arc<dyn crate::diagnostics::Diagnostics>,
    /// Writes per second to a remote that limits them (Parameter Store).
    pub write_rate: f64,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("parallelism", &self.parallelism)
            .field("write_rate", &self.write_rate)
            .finish_non_exhaustive()
    }
}

/// A kind of remote: its address, how the address is resolved against the environment (the
/// endpoint, the credentials, where they may be sent), and what it can do.
pub trait Kind: Sync {
    /// What it is called in messages: "Vault/OpenBao".
    fn name(&self) -> &'static str;
    /// Its address as a user writes it: `vault+https://HOST/MOUNT/PATH`.
    fn form(&self) -> &'static str;
    /// Whether `rollback` works with it.
    fn rolls_back(&self) -> bool {
        false
    }
    /// Whether its address is a path (relative to the directory of the place it is written).
    fn is_path(&self) -> bool {
        false
    }
    /// Resolves `text` when it is this kind's address; `None` when it is not.
    fn resolve(
        &self,
        text: &str,
        context: &Resolving<'_>,
    ) -> Option<std::result::Result<Arc<dyn Spec>, Refusal>>;
}

/// A remote, resolved: where it is and with which credentials. Shown as its address.
pub trait Spec: fmt::Display + fmt::Debug + Send + Sync {
    /// Opens the store.
    fn open(&self, access: Access, connection: &Connection) -> Result<Box<dyn Backend>>;
    /// What identifies the remote wherever the command runs (an absolute path, an API URL and
    /// tenant). A saved plan records it.
    fn identity(&self) -> String {
        self.to_string()
    }
    /// The key of this remote in the last-applied record, for remotes whose values cannot all be
    /// read back; `None` for the stores that return values.
    fn record_key(&self) -> Option<String> {
        None
    }
    /// Whether the store is a file on this machine, read in about the time a thread takes to
    /// start: a plan then reads it in turn rather than on a thread of its own.
    fn is_local_file(&self) -> bool {
        false
    }
}

/// What a remote's address is resolved against.
#[derive(Debug, Clone, Copy)]
pub struct Resolving<'a> {
    /// The process environment (credentials, endpoints).
    pub vars: &'a std::collections::BTreeMap<String, SecretValue>,
    /// `HOME` (the AWS shared credentials file).
    pub home: Option<&'a Path>,
    /// What a relative `file:` path is relative to.
    pub base: &'a Path,
    /// Where the address came from, for [`trust::check`].
    pub from: trust::From,
    /// The selected profile (the cloud's tenant).
    pub profile: &'a Profile,
    /// The project root (`.systemprompt/credentials.json`).
    pub root: Option<&'a Path>,
}

/// Why an address could not be resolved.
#[derive(Debug)]
pub enum Refusal {
    /// The address itself is malformed: said where it was written.
    Address(String),
    /// Anything else (an endpoint, a credential, where it may go).
    Error(crate::Error),
}

impl From<crate::Error> for Refusal {
    fn from(error: crate::Error) -> Self {
        Refusal::Error(error)
    }
}

/// Resolves an address with the kind it belongs to.
pub fn resolve(text: &str, context: &Resolving<'_>) -> std::result::Result<Arc<dyn Spec>, Refusal> {
    KINDS.iter().find_map(|kind| kind.resolve(text, context)).unwrap_or_else(|| {
        Err(Refusal::Address(format!("`{}` is not a remote cloud-secrets knows", redact_address(text))))
    })
}

/// The address forms, for hints: "file:PATH (note), an https:// API URL, ... or
/// ssm://REGION/PREFIX", with `path_note` after the form that is a path.
pub fn forms(path_note: &str) -> String {
    let forms: Vec<String> = KINDS
        .iter()
        .map(
            |kind| {
                if kind.is_path() { format!("{}{path_note}", kind.form()) } else { kind.form().to_owned() }
            },
        )
        .collect();
    match forms.split_last() {
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The remotes `rollback` works with: "the local store, Vault/OpenBao and AWS Secrets Manager".
pub fn rollback_kinds() -> String {
    let names: Vec<&str> = KINDS.iter().filter(|kind| kind.rolls_back()).map(|kind| kind.name()).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => (*last).to_owned(),
        None => "no remote".to_owned(),
    }
}

/// Refuses to send a credential where [`trust::check`] says it may not go.
fn check_destination(destination: &trust::Destination<'_>) -> Result<()> {
    trust::check(destination)
        .map_err(|refusal| crate::Error::Config { message: refusal.message, hint: Some(refusal.hint) })
}

/// Parses and checks a systemprompt cloud API URL: HTTPS, or plain HTTP to a loopback address
/// only, so that a token never crosses a network in clear. Nothing is sent before this passes.
pub fn api_url(text: &str) -> std::result::Result<reqwest::Url, String> {
    let shown = redact_address(text);
    let url = reqwest::Url::parse(text).map_err(|e| format!("`{shown}` is not a valid URL ({e})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "`{shown}`: credentials do not belong in the URL; use credentials.json or SYSTEMPROMPT_API_TOKEN"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{shown}`: the API URL takes no query or fragment"));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "`{shown}`: plain http:// is refused for an address that is not loopback, because the API token \
             would cross the network unencrypted; use https://"
        )),
        other => Err(format!("`{shown}`: unsupported scheme `{other}`; use https://")),
    }
}

/// An AWS region name: `eu-west-1`.
pub(super) fn region_ok(region: &str) -> bool {
    !region.is_empty() && region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A remote address fit to print: credentials (`user:token@`) and the query string are masked.
pub fn redact_address(text: &str) -> String {
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), text),
    };
    // Userinfo may hold `/`, `?`, `#` or `@` (a password is anything): everything up to the last
    // `@` is taken for it, whatever comes between.
    let (userinfo, rest) = match rest.rfind('@') {
        Some(at) => ("<redacted>@", &rest[at + 1..]),
        None => ("", rest),
    };
    let (address, query) = match rest.find(['?', '#']) {
        Some(at) => (&rest[..at], "?<redacted>"),
        None => (rest, ""),
    };
    format!("{scheme}{userinfo}{address}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message of a refused address.
    fn refused<T: fmt::Debug>(parsed: std::result::Result<T, Refusal>) -> String {
        match parsed {
            Err(Refusal::Address(message)) => message,
            other => panic!("not refused as an address: {other:?}"),
        }
    }

    #[test]
    fn parses_file_remotes_relative_to_base() {
        let base = Path::new("/project/profile");
        assert_eq!(file::parse("s.json", base).unwrap(), base.join("s.json"));
        assert_eq!(file::parse("///tmp/s.json", base).unwrap(), Path::new("/tmp/s.json"));
        assert!(refused(file::parse("", base)).contains("needs the path of a file"));
        assert!(refused(file::parse("/", base)).contains("needs the path of a file"));
    }

    #[test]
    fn every_kind_has_a_form_and_the_rollback_list_names_those_that_roll_back() {
        assert_eq!(
            forms(" for the local store"),
            "file:PATH for the local store, an https:// API URL, vault+https://HOST/MOUNT/PATH, awssm://REGION/NAME \
             or ssm://REGION/PREFIX"
        );
        assert_eq!(rollback_kinds(), "the local store, Vault/OpenBao and AWS Secrets Manager");
    }

    #[test]
    fn parses_vault_remotes() {
        let text = "vault+https://vault.example.com:8200/secret/team/app";
        let (address, mount, path) = vault::parse(text, text.strip_prefix("vault+").unwrap()).unwrap();
        assert_eq!(
            (address.as_str(), mount.as_str(), path.as_str()),
            ("https://vault.example.com:8200/", "secret", "team/app")
        );
        for bad in [
            "vault+https://h",
            "vault+https://h/secret",
            "vault+https://h/secret/../x",
            "vault+http://example.com/a/b",
        ] {
            refused(vault::parse(bad, bad.strip_prefix("vault+").unwrap()));
        }
    }

    #[test]
    fn parses_secrets_manager_remotes() {
        let text = "awssm://eu-west-1/team/app@prod";
        assert_eq!(
            awssm::parse(text, text.strip_prefix("awssm://").unwrap()).unwrap(),
            ("eu-west-1".to_owned(), "team/app@prod".to_owned())
        );
        for bad in [
            "awssm://eu-west-1",
            "awssm://eu-west-1/",
            "awssm:///name",
            "awssm://EU/x",
            "awssm://eu-west-1/a b",
        ] {
            let message = refused(awssm::parse(bad, bad.strip_prefix("awssm://").unwrap()));
            assert!(message.contains("awssm://REGION/SECRET_NAME"), "{bad}");
        }
    }

    #[test]
    fn parses_parameter_store_remotes() {
        let text = "ssm://us-east-2/myapp/prod/";
        assert_eq!(
            ssm::parse(text, text.strip_prefix("ssm://").unwrap()).unwrap(),
            ("us-east-2".to_owned(), "myapp/prod".to_owned())
        );
        for bad in
            ["ssm://us-east-2", "ssm://us-east-2/", "ssm://us-east-2/a//b", "ssm://us-east-2/a b", "ssm:///x"]
        {
            let message = refused(ssm::parse(bad, bad.strip_prefix("ssm://").unwrap()));
            assert!(message.contains("ssm://REGION/PATH_PREFIX"), "{bad}");
        }
    }

    #[test]
    fn api_urls_must_be_https_unless_loopback() {
        for ok in
            ["https://api.systemprompt.io", "http://127.0.0.1:8787", "http://localhost:1", "http://[::1]:9"]
        {
            assert!(api_url(ok).is_ok(), "{ok}");
        }
        for bad in ["http://api.systemprompt.io", "http://10.0.0.1", "http://127.example.com", "ftp://x"] {
            assert!(api_url(bad).is_err(), "{bad}");
        }
        let e = api_url("http://example.com").unwrap_err();
        assert!(e.contains("plain http:// is refused"), "{e}");
        let e = api_url("https://u:CANARY@h").unwrap_err();
        assert!(!e.contains("CANARY"), "{e}");
    }

    #[test]
    fn addresses_are_printed_without_credentials_or_query() {
        assert_eq!(
            redact_address("https://admin:CANARY@api.example.com/x"),
            "https://<redacted>@api.example.com/x"
        );
        assert_eq!(redact_address("vault://root:CANARY@h"), "vault://<redacted>@h");
        assert_eq!(redact_address("https://h/p?token=CANARY"), "https://h/p?<redacted>");
        // An `@` after a `/` may end a password holding `/`: it is taken for the end of userinfo.
        assert_eq!(redact_address("https://h/p@x"), "https://<redacted>@x");
        for leaky in [
            "https://admin:ab/cd@host",
            "https://admin:a?b@host/x",
            "https://u:p#q@host",
            "https://u:a@b@host",
        ] {
            let shown = redact_address(leaky);
            assert!(
                shown.starts_with("https://<redacted>@") && !shown.contains("admin") && !shown.contains(":a"),
                "{shown}"
            );
        }
        let e = refused(vault::parse("vault+https://u:CANARY@h/a/b", "https://u:CANARY@h/a/b"));
        assert!(!e.contains("CANARY"), "{e}");
    }
}
