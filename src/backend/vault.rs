//! Vault (or OpenBao) KV version 2 as a remote: a profile's variables are one secret at
//! `MOUNT/PATH`, read whole and written whole in one request with check-and-set against the
//! version the plan was made from. A concurrent write makes the check fail: exit 3, nothing
//! written. A missing secret is an empty remote (version 0).

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::http::{Answer, Call, Delivery, Failure, Transport};
use super::{Access, Applied, Backend, Connection, Refusal, Resolving};
use crate::error::{Error, Result};
use crate::remote::{ChangeSet, Remote};
use crate::secret::SecretValue;

const MAX_BODY: usize = 64 * 1024 * 1024;

/// The kind of Vault and OpenBao: `vault+https://HOST[:PORT]/MOUNT/PATH`.
pub(super) struct VaultKind;

/// Vault and OpenBao, registered in [`super::KINDS`].
pub(super) static KIND: VaultKind = VaultKind;

impl super::Kind for VaultKind {
    fn name(&self) -> &'static str {
        "Vault/OpenBao"
    }

    fn form(&self) -> &'static str {
        "vault+https://HOST/MOUNT/PATH"
    }

    fn rolls_back(&self) -> bool {
        true
    }

    fn resolve(
        &self,
        text: &str,
        context: &Resolving<'_>,
    ) -> Option<std::result::Result<std::sync::Arc<dyn super::Spec>, Refusal>> {
        let rest = text.strip_prefix("vault+")?;
        Some(parse(text, rest).and_then(|(address, mount, path)| {
            let spec = VaultSpec::with_credentials(address, mount, path, context)?;
            Ok(std::sync::Arc::new(spec) as std::sync::Arc<dyn super::Spec>)
        }))
    }
}

/// `vault+https://HOST/MOUNT/PATH` (`rest` is what follows `vault+`): the server's address, the
/// mount and the path.
pub(super) fn parse(text: &str, rest: &str) -> std::result::Result<(Url, String, String), Refusal> {
    let shown = super::redact_address(text);
    // Dot segments are refused before the URL parser resolves them away.
    let raw_path = rest.split_once("://").map_or("", |(_, r)| r).split_once('/').map_or("", |(_, p)| p);
    if raw_path.split('/').any(|s| s == "." || s == ".." || s.eq_ignore_ascii_case("%2e%2e")) {
        return Err(Refusal::Address(format!(
            "`{shown}`: `.` and `..` are not allowed in the mount or path"
        )));
    }
    let url = super::api_url(rest).map_err(Refusal::Address)?;
    let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    let [mount, path @ ..] = segments.as_slice() else {
        return Err(Refusal::Address(format!(
            "`{shown}` names no KV mount and path: use vault+https://HOST/MOUNT/PATH"
        )));
    };
    if path.is_empty() || segments.iter().any(|s| !super::is_plain_name(s)) {
        return Err(Refusal::Address(format!(
            "`{shown}` needs a mount and a path of plain names: vault+https://HOST/MOUNT/PATH"
        )));
    }
    let mut address = url.clone();
    address.set_path("");
    Ok((address, (*mount).to_owned(), path.join("/")))
}

/// One secret: where it is, and the token (`VAULT_TOKEN` or `BAO_TOKEN`) and namespace
/// (`VAULT_NAMESPACE`) from the environment.
#[derive(Debug)]
pub(super) struct VaultSpec {
    address: Url,
    mount: String,
    path: String,
    namespace: Option<String>,
    token: Option<SecretValue>,
}

impl VaultSpec {
    /// The token goes only to the server `VAULT_ADDR` (or `BAO_ADDR`) names, unless the address
    /// itself came from the owner (the command line or the environment).
    fn with_credentials(address: Url, mount: String, path: String, context: &Resolving<'_>) -> Result<Self> {
        let vars = context.vars;
        let token = vars.get("VAULT_TOKEN").or_else(|| vars.get("BAO_TOKEN")).cloned();
        let namespace = vars.get("VAULT_NAMESPACE").map(|n| n.expose().to_owned());
        let printable = |text: &str| text.chars().all(|c| c.is_ascii_graphic());
        if token.as_ref().is_some_and(|t| !printable(t.expose())) {
            return Err(Error::config(
                "VAULT_TOKEN (or BAO_TOKEN) holds characters a token cannot have (spaces, line breaks...)",
                "set it to the token alone",
            ));
        }
        if namespace.as_deref().is_some_and(|n| !printable(n)) {
            return Err(Error::config(
                "VAULT_NAMESPACE holds spaces or control characters",
                "set it to the namespace's path",
            ));
        }
        if token.is_some() {
            let paired = ["VAULT_ADDR", "BAO_ADDR"]
                .iter()
                .find_map(|name| vars.get(*name))
                .and_then(|text| Url::parse(text.expose()).ok());
            super::check_destination(&crate::trust::Destination {
                credential: "VAULT_TOKEN",
                credential_from: crate::trust::From::Environment,
                address: &address,
                address_from: context.from,
                paired: paired.as_ref(),
                default: None,
            })?;
        }
        Ok(Self { address, mount, path, namespace, token })
    }
}

impl std::fmt::Display for VaultSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "vault+{}/{}/{}", self.address.as_str().trim_end_matches('/'), self.mount, self.path)
    }
}

impl super::Spec for VaultSpec {
    fn open(&self, _: Access, connection: &Connection) -> Result<Box<dyn Backend>> {
        let backend = VaultBackend::new(
            self.address.clone(),
            self.mount.clone(),
            self.path.clone(),
            self.namespace.clone(),
            self.token.clone(),
            connection,
        )?;
        Ok(Box::new(backend))
    }

    fn identity(&self) -> String {
        match &self.namespace {
            Some(namespace) => format!("{self} namespace {namespace}"),
            None => self.to_string(),
        }
    }
}

/// One KV v2 secret.
pub struct VaultBackend {
    transport: Transport,
    address: Url,
    mount: String,
    path: String,
    token: SecretValue,
    namespace: Option<String>,
    /// A version to read instead of the latest (for `rollback`).
    version: Option<u64>,
}

#[derive(Deserialize)]
struct ReadBody {
    data: Option<ReadData>,
}

#[derive(Deserialize)]
struct ReadData {
    data: Option<BTreeMap<String, serde_json::Value>>,
    metadata: Option<Metadata>,
}

#[derive(Deserialize)]
struct Metadata {
    version: u64,
}

#[derive(Deserialize)]
struct WriteBody {
    data: Metadata,
}

#[derive(Deserialize)]
struct Errors {
    #[serde(default)]
    errors: Vec<String>,
}

impl VaultBackend {
    /// A client for the secret at `mount/path` of the server at `address`.
    pub fn new(
        address: Url,
        mount: String,
        path: String,
        namespace: Option<String>,
        token: Option<SecretValue>,
        connection: &Connection,
    ) -> Result<Self> {
        let token = token.ok_or_else(|| {
            Error::config(
                "no Vault token",
                "set VAULT_TOKEN (or BAO_TOKEN) to a token that may read and write the secret",
            )
        })?;
        Ok(Self {
            transport: Transport::new(&address, connection)?,
            address,
            mount,
            path,
            token,
            namespace,
            version: None,
        })
    }

    fn describe(&self) -> String {
        format!("{}/{} at {}", self.mount, self.path, self.address.as_str().trim_end_matches('/'))
    }

    fn url(&self) -> Url {
        let mut url = self.address.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(["v1", &self.mount, "data"]).extend(self.path.split('/'));
        }
        if let Some(version) = self.version {
            url.query_pairs_mut().append_pair("version", &version.to_string());
        }
        url
    }

    /// Reads: sends a GET, retrying connection failures, timeouts, 429 and 5xx with backoff.
    async fn get(&self) -> Result<(StatusCode, Zeroizing<Vec<u8>>)> {
        let answer = self.send(self.url(), Method::GET, None).await.map_err(|f| self.unreachable(&f))?;
        Ok((answer.status, answer.body))
    }

    /// Sends a request on the transport; any final answer is returned.
    async fn send(
        &self,
        url: Url,
        method: Method,
        body: Option<&[u8]>,
    ) -> std::result::Result<Answer, Failure> {
        let delivery = if method == Method::GET { Delivery::Read } else { Delivery::Write };
        let build = || {
            let mut request = self
                .transport
                .client()
                .request(method.clone(), url.clone())
                .header("X-Vault-Token", self.token.expose());
            if let Some(namespace) = &self.namespace {
                request = request.header("X-Vault-Namespace", namespace);
            }
            match body {
                Some(body) => {
                    request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_vec())
                }
                None => request,
            }
        };
        self.transport.send(Call { delivery, label: None, limit: MAX_BODY }, build, |_, _, _| false).await
    }

    /// The error for a request that got no answer.
    fn unreachable(&self, failure: &Failure) -> Error {
        Error::Remote {
            message: format!(
                "Vault at {} {} after {} attempt(s)",
                self.describe(),
                failure.cause,
                failure.attempts
            ),
            hint: Some("check the address and the network, then try again".to_owned()),
        }
    }

    /// After a write whose outcome is unknown: reads the secret to learn it. The write landed
    /// when the secret holds exactly `vars` in the version after `version`; nothing was written
    /// when it is still at `version`; anything else is said as it is, never guessed.
    async fn settle(
        &self,
        version: u64,
        vars: &BTreeMap<String, SecretValue>,
        error: Error,
    ) -> Result<Applied> {
        let intended = Remote::with_values(vars.clone(), None).vars;
        match self.read().await {
            Ok(now) if now.revision == Some(version + 1) && now.vars == intended => {
                Ok(Applied { revision: now.revision, ..Applied::default() })
            }
            Ok(now) if now.revision == Some(version) => Err(error.nothing_written()),
            Ok(now) => Err(Error::Remote {
                message: format!(
                    "the outcome of the write to {} is unknown (an attempt's answer was lost, or was a server \
                     error): the secret is now at version {}, which does not hold exactly what was sent",
                    self.describe(),
                    now.revision.unwrap_or(0)
                ),
                hint: Some("run cloud-secrets plan to see where things stand, then apply again".to_owned()),
            }),
            Err(read) => Err(Error::Remote {
                message: format!(
                    "the outcome of the write to {} is unknown (an attempt's answer was lost, or was a server \
                     error), and reading it back failed: {read}",
                    self.describe()
                ),
                hint: Some("run cloud-secrets plan once the server answers, then apply again".to_owned()),
            }),
        }
    }

    fn failure(&self, status: StatusCode, body: &[u8], doing: &str) -> Error {
        let first = serde_json::from_slice::<Errors>(body).ok().and_then(|e| e.errors.into_iter().next());
        // Vault's own words, kept only when they are plain and short (they quote no values).
        let said = first
            .filter(|m| m.len() <= 200 && m.chars().all(|c| c.is_ascii_graphic() || c == ' '))
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        let hint = match status {
            StatusCode::FORBIDDEN => {
                "the token may not do this: check VAULT_TOKEN (or BAO_TOKEN) and its policy"
            }
            StatusCode::UNAUTHORIZED => "set VAULT_TOKEN (or BAO_TOKEN) to a valid token",
            // The listener's max_request_json_strings (default 1000): about 500 variables.
            StatusCode::BAD_REQUEST if said.contains("complexity") => {
                "the server limits the JSON a request may hold (max_request_json_strings and \
                 max_request_json_memory of its listener, about 500 variables by default): raise the limits, \
                 or split the variables across profiles"
            }
            _ => "check the address, the mount and the path",
        };
        Error::Remote {
            message: format!("Vault refused to {doing} {} ({status}{said})", self.describe()),
            hint: Some(hint.to_owned()),
        }
    }

    /// The secret's version and values; `None` for the values when there are none to read (no
    /// secret yet, or the version deleted or destroyed).
    async fn read_raw(&self) -> Result<(u64, Option<BTreeMap<String, SecretValue>>)> {
        let (status, body) = self.get().await?;
        let parsed = serde_json::from_slice::<ReadBody>(&body).ok();
        match status {
            StatusCode::OK => {}
            // A 404 with no error is a secret that is not there (or whose version is deleted);
            // one with an error is a wrong route, such as a mount that does not exist.
            StatusCode::NOT_FOUND
                if serde_json::from_slice::<Errors>(&body).map(|e| e.errors.is_empty()).unwrap_or(true) =>
            {
                let version = parsed.and_then(|b| b.data).and_then(|d| d.metadata).map_or(0, |m| m.version);
                return Ok((version, None));
            }
            other => return Err(self.failure(other, &body, "read")),
        }
        let data = parsed.and_then(|b| b.data).ok_or_else(|| Error::Remote {
            message: format!(
                "Vault sent an answer for {} that is not a KV version 2 secret",
                self.describe()
            ),
            hint: Some("check that the mount is a KV version 2 engine".to_owned()),
        })?;
        let version = data.metadata.map_or(0, |m| m.version);
        let Some(values) = data.data else { return Ok((version, None)) };
        let mut vars = BTreeMap::new();
        for (name, value) in values {
            match value {
                serde_json::Value::String(text) => {
                    vars.insert(name, SecretValue::new(text));
                }
                _ => {
                    return Err(Error::Remote {
                        message: format!(
                            "{} holds `{}` as something other than a string",
                            self.describe(),
                            crate::render::text::safe(&name)
                        ),
                        hint: Some("cloud-secrets manages secrets whose values are all strings".to_owned()),
                    });
                }
            }
        }
        Ok((version, Some(vars)))
    }

    /// The latest version: a missing or deleted secret is an empty remote at that version.
    async fn read(&self) -> Result<Remote> {
        let (version, vars) = self.read_raw().await?;
        Ok(Remote::with_values(vars.unwrap_or_default(), Some(version)))
    }

    /// Refuses a mount that is not a KV version 2 engine (a KV v1 mount would take the write as
    /// a secret named `data/...`).
    async fn check_kv2(&self) -> Result<()> {
        let mut url = self.address.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(["v1", "sys", "internal", "ui", "mounts", &self.mount]);
        }
        let Ok(answer) = self.send(url, Method::GET, None).await else { return Ok(()) };
        if !answer.status.is_success() {
            // Not allowed to look: the read itself will tell.
            return Ok(());
        }
        let mount: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        let data = &mount["data"];
        let version = data["options"]["version"].as_str().unwrap_or_default();
        if data["type"] == "kv" && version != "2" {
            return Err(Error::Remote {
                message: format!("the mount `{}` is a KV version 1 engine, not version 2", self.mount),
                hint: Some("cloud-secrets needs KV version 2 (versions and check-and-set)".to_owned()),
            });
        }
        Ok(())
    }
}

impl Backend for VaultBackend {
    fn fetch(&mut self) -> Result<Remote> {
        self.transport.block_on(async {
            self.check_kv2().await?;
            self.read().await
        })
    }

    fn apply(&mut self, base: &Remote, changes: &ChangeSet<'_>) -> Result<Applied> {
        self.transport.block_on(async {
            let current = self.read().await?;
            if current != *base {
                return Err(Error::Stale {
                    message: format!("{} changed since the plan was made; nothing was written", self.describe()),
                });
            }
            let mut vars: BTreeMap<String, SecretValue> = BTreeMap::new();
            for (name, value) in &base.vars {
                if let crate::remote::RemoteValue::Value(v) = value {
                    vars.insert(name.clone(), v.clone());
                }
            }
            changes.apply_to(&mut vars);
            let data: BTreeMap<&str, &str> = vars.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
            let version = base.revision.unwrap_or(0);
            let body = Zeroizing::new(
                serde_json::to_vec(&serde_json::json!({ "options": { "cas": version }, "data": data }))
                    .expect("a map of strings serializes"),
            );
            let answer = match self.send(self.url(), Method::POST, Some(&body)).await {
                Ok(answer) => answer,
                Err(failure) if failure.unknown => return self.settle(version, &vars, self.unreachable(&failure)).await,
                Err(failure) => return Err(self.unreachable(&failure).nothing_written()),
            };
            if answer.status.is_success() {
                let revision = serde_json::from_slice::<WriteBody>(&answer.body).ok().map(|b| b.data.version);
                return Ok(Applied { revision, ..Applied::default() });
            }
            let cas_failed = answer.status == StatusCode::BAD_REQUEST
                && String::from_utf8_lossy(&answer.body).contains("check-and-set");
            let error = if cas_failed {
                Error::Stale {
                    message: format!(
                        "{} was written by someone else since version {version} (check-and-set failed); nothing was \
                         written",
                        self.describe()
                    ),
                }
            } else {
                self.failure(answer.status, &answer.body, "write")
            };
            // An attempt whose answer was lost (or a gateway's 5xx) may have written: a retry then
            // meets its own write as a check-and-set failure. What the secret holds now tells.
            if answer.unknown {
                return self.settle(version, &vars, error).await;
            }
            Err(error)
        })
    }

    fn previous(&mut self) -> Result<Option<(String, BTreeMap<String, SecretValue>)>> {
        let current = self.transport.block_on(self.read())?.revision.unwrap_or(0);
        if current <= 1 {
            return Ok(None);
        }
        self.version = Some(current - 1);
        let read = self.transport.block_on(self.read_raw());
        self.version = None;
        match read? {
            (version, Some(vars)) if version == current - 1 => Ok(Some((version.to_string(), vars))),
            // A deleted or destroyed version reads as no data: rolling back to it would remove
            // everything.
            _ => Err(Error::Remote {
                message: format!("version {} of {} is deleted or destroyed", current - 1, self.describe()),
                hint: Some(
                    "undelete it in Vault first (bao kv undelete), or write the values again".to_owned(),
                ),
            }),
        }
    }
}
