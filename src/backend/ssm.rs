//! AWS Systems Manager Parameter Store as a remote: one `SecureString` parameter per variable,
//! directly under a path prefix. Reads are paginated; writes are paced (`--write-rate`) and
//! retried on throttling; removals go in batches of ten. Parameter Store cannot write several
//! parameters at once, so an apply reads the prefix again first and writes nothing if any
//! parameter's version moved since the plan.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use super::aws::{AwsClient, AwsCredentials};
use super::{Applied, Backend, Connection};
use crate::error::{Error, Result};
use crate::plan::{ChangeSet, Remote};
use crate::secret::SecretValue;

/// The most names `DeleteParameters` takes at once.
const DELETE_BATCH: usize = 10;

/// The parameters under one path prefix.
pub struct ParameterStoreBackend {
    client: AwsClient,
    runtime: tokio::runtime::Runtime,
    /// `/a/b`, without a trailing slash.
    prefix: String,
    /// Writes per second.
    write_rate: f64,
    interrupted: crate::interrupt::Flag,
}

impl ParameterStoreBackend {
    /// A client for the parameters under `prefix` (`a/b`) in `region`.
    pub fn new(
        endpoint: reqwest::Url,
        region: String,
        prefix: &str,
        credentials: AwsCredentials,
        connection: &Connection,
    ) -> Result<Self> {
        let client = AwsClient::new(endpoint, region, "ssm", "AmazonSSM", credentials, connection)?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
            Error::config(format!("cannot start the async runtime: {e}"), "this is a bug; please report it")
        })?;
        Ok(Self {
            client,
            runtime,
            prefix: format!("/{}", prefix.trim_matches('/')),
            write_rate: connection.write_rate,
            interrupted: connection.interrupted.clone(),
        })
    }

    fn name_of(&self, var: &str) -> String {
        format!("{}/{var}", self.prefix)
    }

    /// Every parameter directly under the prefix, page by page, with a digest of their versions.
    async fn current(&self) -> Result<Remote> {
        let mut vars = BTreeMap::new();
        let mut versions = ring::digest::Context::new(&ring::digest::SHA256);
        let mut next: Option<String> = None;
        loop {
            let mut request = json!({
                "Path": self.prefix, "Recursive": false, "WithDecryption": true, "MaxResults": 10
            });
            if let Some(token) = &next {
                request["NextToken"] = json!(token);
            }
            let answer = match self.client.call("GetParametersByPath", &request).await? {
                Ok(answer) => answer,
                Err(e) => {
                    return Err(self.client.error(&format!("list the parameters under {}", self.prefix), &e));
                }
            };
            for parameter in answer["Parameters"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let (Some(name), Some(value)) = (parameter["Name"].as_str(), parameter["Value"].as_str())
                else {
                    continue;
                };
                let var = name.rsplit('/').next().unwrap_or(name).to_owned();
                let version = parameter["Version"].as_u64().unwrap_or(0);
                versions.update(format!("{var}\0{version}\0").as_bytes());
                vars.insert(var, SecretValue::new(value));
            }
            match answer["NextToken"].as_str() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => break,
            }
        }
        let digest: String = versions.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect();
        Ok(Remote { etag: Some(digest), ..Remote::with_values(vars, None) })
    }

    /// Writes the upserts one by one, paced; an error says how many were made.
    async fn put_all(&self, changes: &ChangeSet<'_>) -> Result<()> {
        let gap = Duration::from_secs_f64(1.0 / self.write_rate);
        let total = changes.upserts.len();
        let mut last: Option<Instant> = None;
        for (done, (var, value)) in changes.upserts.iter().enumerate() {
            if self.interrupted.is_set() {
                return Err(Error::Interrupted {
                    message: format!(
                        "interrupted: {done} of {total} writes to {} were made, no removals; run apply again \
                         to finish",
                        self.prefix
                    ),
                });
            }
            if let Some(at) = last {
                tokio::time::sleep(gap.saturating_sub(at.elapsed())).await;
            }
            last = Some(Instant::now());
            let request = json!({
                "Name": self.name_of(var), "Value": value.expose(), "Type": "SecureString", "Overwrite": true
            });
            if let Err(e) = self.client.call("PutParameter", &request).await? {
                let cause = self.client.error(&format!("write {}", self.name_of(var)), &e);
                return Err(Error::Remote {
                    message: format!("{cause}; {done} of {total} writes were made before it, no removals"),
                    hint: Some(match e.kind.as_str() {
                        "ValidationException" => {
                            "a standard parameter holds at most 4 KB: shorten the value; run apply again to finish"
                        }
                        _ => "fix the cause, then run apply again: it plans from what the remote holds now",
                    }
                    .to_owned()),
                });
            }
        }
        Ok(())
    }

    /// Deletes in batches of ten; what could not be deleted is returned with the reason.
    async fn delete_all(&self, changes: &ChangeSet<'_>) -> Result<Vec<(String, String)>> {
        let mut failed = Vec::new();
        for batch in changes.deletes.chunks(DELETE_BATCH) {
            if self.interrupted.is_set() {
                failed.extend(batch.iter().map(|v| ((*v).to_owned(), NOT_SENT.to_owned())));
                continue;
            }
            let names: Vec<String> = batch.iter().map(|v| self.name_of(v)).collect();
            match self.client.call("DeleteParameters", &json!({ "Names": names })).await? {
                // Names reported invalid are already gone: what the plan wanted.
                Ok(_) => {}
                Err(e) => {
                    let why = format!(
                        "{} ({})",
                        e.status,
                        if e.kind.is_empty() { "no reason given" } else { &e.kind }
                    );
                    failed.extend(batch.iter().map(|v| ((*v).to_owned(), why.clone())));
                }
            }
        }
        Ok(failed)
    }
}

/// Why a removal was not made when a signal stopped the apply.
const NOT_SENT: &str = "not sent: the apply was interrupted";

impl Backend for ParameterStoreBackend {
    fn fetch(&mut self) -> Result<Remote> {
        self.runtime.block_on(self.current())
    }

    fn apply(&mut self, base: &Remote, changes: &ChangeSet<'_>) -> Result<Applied> {
        self.runtime.block_on(async {
            if self.current().await? != *base {
                return Err(Error::Stale {
                    message: format!(
                        "the parameters under {} changed since the plan was made; nothing was written",
                        self.prefix
                    ),
                });
            }
            self.put_all(changes).await?;
            let failed = self.delete_all(changes).await?;
            let interrupted = failed.iter().any(|(_, why)| why == NOT_SENT);
            Ok(Applied { revision: None, failed, interrupted })
        })
    }
}
