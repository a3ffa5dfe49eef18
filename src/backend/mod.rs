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
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use aws::{AwsCredentials, endpoint as aws_endpoint};
pub use awssm::SecretsManagerBackend;
pub use cloud::{CloudBackend, is_plain_name};
pub use file::FileStore;
pub use ssm::ParameterStoreBackend;
pub use vault::VaultBackend;

use crate::error::Result;
use crate::remote::{ChangeSet, Remote};
use crate::secret::SecretValue;

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
            "rollback works with the local store, Vault/OpenBao and AWS Secrets Manager",
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
    /// The API token (for the systemprompt cloud).
    pub token: Option<SecretValue>,
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
    /// AWS credentials, for AWS remotes.
    pub aws: Option<std::sync::Arc<AwsCredentials>>,
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

/// Where the remote is, as named by `--remote`, `secrets.remote` or the profile's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteSpec {
    /// The embedded local store: a JSON file.
    File(PathBuf),
    /// A tenant of the systemprompt cloud.
    Cloud {
        /// The API's base URL.
        api_url: reqwest::Url,
        /// The tenant.
        tenant: String,
    },
    /// One AWS Secrets Manager secret holding a JSON object.
    SecretsManager {
        /// The service endpoint.
        endpoint: reqwest::Url,
        /// The region.
        region: String,
        /// The secret's name.
        name: String,
    },
    /// SSM Parameter Store: one parameter per variable under a path prefix.
    ParameterStore {
        /// The service endpoint.
        endpoint: reqwest::Url,
        /// The region.
        region: String,
        /// The path prefix, without leading or trailing slashes.
        prefix: String,
    },
    /// One Vault (or OpenBao) KV version 2 secret.
    Vault {
        /// The server's address (`https://HOST:PORT`).
        address: reqwest::Url,
        /// The KV v2 mount.
        mount: String,
        /// The secret's path under the mount.
        path: String,
        /// `VAULT_NAMESPACE`, if set.
        namespace: Option<String>,
    },
}

/// A remote address before the tenant and credentials are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `file:PATH`.
    File(PathBuf),
    /// An `https://` (or loopback `http://`) API URL.
    Api(reqwest::Url),
    /// `awssm://REGION/SECRET_NAME`.
    SecretsManager {
        /// The region.
        region: String,
        /// The secret's name.
        name: String,
    },
    /// `ssm://REGION/PATH_PREFIX`.
    ParameterStore {
        /// The region.
        region: String,
        /// The path prefix.
        prefix: String,
    },
    /// `vault+https://HOST[:PORT]/MOUNT/PATH`.
    Vault {
        /// The server's address.
        address: reqwest::Url,
        /// The KV v2 mount.
        mount: String,
        /// The secret's path under the mount.
        path: String,
    },
}

impl Address {
    /// Parses a remote address; a relative file path is taken relative to `base`.
    pub fn parse(text: &str, base: &Path) -> std::result::Result<Self, String> {
        if let Some(path) = text.strip_prefix("file:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() || path.ends_with('/') {
                return Err("`file:` needs the path of a file, as in file:store.json".to_owned());
            }
            return Ok(Address::File(base.join(path)));
        }
        if text.starts_with("https://") || text.starts_with("http://") {
            return api_url(text).map(Address::Api);
        }
        if let Some(rest) = text.strip_prefix("awssm://") {
            let shown = redact_address(text);
            let (region, name) = rest.split_once('/').unwrap_or((rest, ""));
            let name_ok = !name.is_empty()
                && name.len() <= 512
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
            if !region_ok(region) || !name_ok {
                return Err(format!(
                    "`{shown}` is not awssm://REGION/SECRET_NAME (a name of letters, digits and /_+=.@-)"
                ));
            }
            return Ok(Address::SecretsManager { region: region.to_owned(), name: name.to_owned() });
        }
        if let Some(rest) = text.strip_prefix("ssm://") {
            let (region, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let prefix = prefix.trim_end_matches('/');
            let segment_ok =
                |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !region_ok(region) || prefix.len() > 900 || !prefix.split('/').all(segment_ok) {
                return Err(format!(
                    "`{}` is not ssm://REGION/PATH_PREFIX (a prefix of names of letters, digits and _.- joined by /)",
                    redact_address(text)
                ));
            }
            return Ok(Address::ParameterStore { region: region.to_owned(), prefix: prefix.to_owned() });
        }
        if let Some(rest) = text.strip_prefix("vault+") {
            // Dot segments are refused before the URL parser resolves them away.
            let raw_path =
                rest.split_once("://").map_or("", |(_, r)| r).split_once('/').map_or("", |(_, p)| p);
            if raw_path.split('/').any(|s| s == "." || s == ".." || s.eq_ignore_ascii_case("%2e%2e")) {
                return Err(format!(
                    "`{}`: `.` and `..` are not allowed in the mount or path",
                    redact_address(text)
                ));
            }
            let url = api_url(rest)?;
            let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
            let shown = redact_address(text);
            let [mount, path @ ..] = segments.as_slice() else {
                return Err(format!(
                    "`{shown}` names no KV mount and path: use vault+https://HOST/MOUNT/PATH"
                ));
            };
            if path.is_empty() || segments.iter().any(|s| !is_plain_name(s)) {
                return Err(format!(
                    "`{shown}` needs a mount and a path of plain names: vault+https://HOST/MOUNT/PATH"
                ));
            }
            let mut address = url.clone();
            address.set_path("");
            return Ok(Address::Vault { address, mount: (*mount).to_owned(), path: path.join("/") });
        }
        Err(format!("`{}` is not a remote cloud-secrets knows", redact_address(text)))
    }
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
fn region_ok(region: &str) -> bool {
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

impl RemoteSpec {
    /// Opens the store.
    pub fn open(&self, access: Access, connection: &Connection) -> Result<Box<dyn Backend>> {
        match self {
            RemoteSpec::File(path) => Ok(Box::new(FileStore::open(path, access)?)),
            RemoteSpec::Cloud { api_url, tenant } => {
                Ok(Box::new(CloudBackend::new(api_url.clone(), tenant.clone(), connection)?))
            }
            RemoteSpec::SecretsManager { endpoint, region, name } => {
                let credentials = connection.aws.as_deref().cloned().ok_or_else(|| {
                    crate::Error::config(
                        "no AWS credentials",
                        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
                    )
                })?;
                Ok(Box::new(SecretsManagerBackend::new(
                    endpoint.clone(),
                    region.clone(),
                    name.clone(),
                    credentials,
                    connection,
                )?))
            }
            RemoteSpec::ParameterStore { endpoint, region, prefix } => {
                let credentials = connection.aws.as_deref().cloned().ok_or_else(|| {
                    crate::Error::config(
                        "no AWS credentials",
                        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
                    )
                })?;
                Ok(Box::new(ParameterStoreBackend::new(
                    endpoint.clone(),
                    region.clone(),
                    prefix,
                    credentials,
                    connection,
                )?))
            }
            RemoteSpec::Vault { address, mount, path, namespace } => Ok(Box::new(VaultBackend::new(
                address.clone(),
                mount.clone(),
                path.clone(),
                namespace.clone(),
                connection,
            )?)),
        }
    }

    /// What identifies the remote wherever the command runs: an absolute path, or the API URL
    /// and tenant. A saved plan records it.
    pub fn identity(&self) -> String {
        match self {
            RemoteSpec::File(path) => {
                let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| {
                    let dir = path.parent().and_then(|d| std::fs::canonicalize(d).ok());
                    match (dir, path.file_name()) {
                        (Some(dir), Some(name)) => dir.join(name),
                        _ => path.clone(),
                    }
                });
                format!("file:{}", absolute.display())
            }
            RemoteSpec::Cloud { api_url, tenant } => {
                format!("{} tenant {tenant}", api_url.as_str().trim_end_matches('/'))
            }
            RemoteSpec::SecretsManager { endpoint, .. } | RemoteSpec::ParameterStore { endpoint, .. } => {
                format!("{self} at {}", endpoint.as_str().trim_end_matches('/'))
            }
            RemoteSpec::Vault { namespace, .. } => match namespace {
                Some(namespace) => format!("{self} namespace {namespace}"),
                None => self.to_string(),
            },
        }
    }

    /// The key of this remote in the last-applied record, for remotes whose values cannot all
    /// be read back; `None` for the stores that return values.
    pub fn record_key(&self) -> Option<String> {
        match self {
            RemoteSpec::File(_)
            | RemoteSpec::Vault { .. }
            | RemoteSpec::SecretsManager { .. }
            | RemoteSpec::ParameterStore { .. } => None,
            RemoteSpec::Cloud { api_url, tenant } => Some(format!("systemprompt-cloud {api_url} {tenant}")),
        }
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

impl fmt::Display for RemoteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteSpec::File(path) => write!(f, "file:{}", crate::error::display_path(path)),
            RemoteSpec::Cloud { api_url, tenant } => {
                write!(f, "{} tenant {tenant}", api_url.as_str().trim_end_matches('/'))
            }
            RemoteSpec::Vault { address, mount, path, .. } => {
                write!(f, "vault+{}/{mount}/{path}", address.as_str().trim_end_matches('/'))
            }
            RemoteSpec::SecretsManager { region, name, .. } => write!(f, "awssm://{region}/{name}"),
            RemoteSpec::ParameterStore { region, prefix, .. } => write!(f, "ssm://{region}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_remotes_relative_to_base() {
        let base = Path::new("/project/profile");
        assert_eq!(Address::parse("file:s.json", base), Ok(Address::File(base.join("s.json"))));
        assert_eq!(Address::parse("file:///tmp/s.json", base), Ok(Address::File("/tmp/s.json".into())));
        assert!(Address::parse("file:", base).is_err());
        assert!(Address::parse("ftp://x", base).unwrap_err().contains("is not a remote cloud-secrets knows"));
        assert!(Address::parse("file:/", base).is_err());
    }

    #[test]
    fn parses_secrets_manager_remotes() {
        let base = Path::new("/");
        assert_eq!(
            Address::parse("awssm://eu-west-1/team/app@prod", base),
            Ok(Address::SecretsManager { region: "eu-west-1".to_owned(), name: "team/app@prod".to_owned() })
        );
        for bad in [
            "awssm://eu-west-1",
            "awssm://eu-west-1/",
            "awssm:///name",
            "awssm://EU/x",
            "awssm://eu-west-1/a b",
        ] {
            assert!(Address::parse(bad, base).unwrap_err().contains("awssm://REGION/SECRET_NAME"), "{bad}");
        }
    }

    #[test]
    fn parses_parameter_store_remotes() {
        let base = Path::new("/");
        assert_eq!(
            Address::parse("ssm://us-east-2/myapp/prod/", base),
            Ok(Address::ParameterStore { region: "us-east-2".to_owned(), prefix: "myapp/prod".to_owned() })
        );
        for bad in
            ["ssm://us-east-2", "ssm://us-east-2/", "ssm://us-east-2/a//b", "ssm://us-east-2/a b", "ssm:///x"]
        {
            assert!(Address::parse(bad, base).unwrap_err().contains("ssm://REGION/PATH_PREFIX"), "{bad}");
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
        let e = Address::parse("https://u:CANARY@h", Path::new("/")).unwrap_err();
        assert!(!e.contains("CANARY"), "{e}");
    }
}
