//! AWS Systems Manager Parameter Store as a remote: one `SecureString` parameter per variable,
//! directly under a path prefix. Reads are paginated; writes are paced (`--write-rate`) and
//! retried on throttling; removals go in batches of ten. Parameter Store cannot write several
//! parameters at once, so an apply reads the prefix again first and writes nothing if any
//! parameter's version moved since the plan.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use super::aws::{AwsClient, AwsCredentials, AwsError, Written};
use super::{Access, Applied, Backend, Connection, Refusal, Resolving};
use crate::error::{Error, Result};
use crate::remote::{ChangeSet, Remote};
use crate::secret::SecretValue;

/// The longest value a standard parameter holds.
const MAX_VALUE_BYTES: usize = 4096;

/// The most names `DeleteParameters` takes at once.
const DELETE_BATCH: usize = 10;

/// The kind of SSM Parameter Store: `ssm://REGION/PATH_PREFIX`.
pub(super) struct ParameterStoreKind;

/// SSM Parameter Store, registered in [`super::KINDS`].
pub(super) static KIND: ParameterStoreKind = ParameterStoreKind;

impl super::Kind for ParameterStoreKind {
    fn name(&self) -> &'static str {
        "SSM Parameter Store"
    }

    fn form(&self) -> &'static str {
        "ssm://REGION/PREFIX"
    }

    fn resolve(
        &self,
        text: &str,
        context: &Resolving<'_>,
    ) -> Option<std::result::Result<std::sync::Arc<dyn super::Spec>, Refusal>> {
        let rest = text.strip_prefix("ssm://")?;
        Some(parse(text, rest).and_then(|(region, prefix)| {
            let endpoint = super::aws::endpoint(context.vars, "AWS_ENDPOINT_URL_SSM", "ssm", &region)?;
            let credentials = AwsCredentials::from_env(context.vars, context.home)?;
            Ok(std::sync::Arc::new(ParameterStoreSpec { endpoint, region, prefix, credentials })
                as std::sync::Arc<dyn super::Spec>)
        }))
    }
}

/// `ssm://REGION/PATH_PREFIX` (`rest` is what follows the scheme): the region and the prefix,
/// without leading or trailing slashes.
pub(super) fn parse(text: &str, rest: &str) -> std::result::Result<(String, String), Refusal> {
    let (region, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = prefix.trim_end_matches('/');
    let segment_ok =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !super::region_ok(region) || prefix.len() > 900 || !prefix.split('/').all(segment_ok) {
        return Err(Refusal::Address(format!(
            "`{}` is not ssm://REGION/PATH_PREFIX (a prefix of names of letters, digits and _.- joined by /)",
            super::redact_address(text)
        )));
    }
    Ok((region.to_owned(), prefix.to_owned()))
}

/// The parameters under a prefix: where they are and the credentials to reach them.
#[derive(Debug)]
pub(super) struct ParameterStoreSpec {
    endpoint: reqwest::Url,
    region: String,
    prefix: String,
    credentials: AwsCredentials,
}

impl std::fmt::Display for ParameterStoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ssm://{}/{}", self.region, self.prefix)
    }
}

impl super::Spec for ParameterStoreSpec {
    fn open(&self, _: Access, connection: &Connection) -> Result<Box<dyn Backend>> {
        let backend = ParameterStoreBackend::new(
            self.endpoint.clone(),
            self.region.clone(),
            &self.prefix,
            self.credentials.clone(),
            connection,
        )?;
        Ok(Box::new(backend))
    }

    fn identity(&self) -> String {
        format!("{self} at {}", self.endpoint.as_str().trim_end_matches('/'))
    }
}

/// The parameters under one path prefix.
pub struct ParameterStoreBackend {
    client: AwsClient,
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
        Ok(Self {
            client,
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
        Ok(self.listing().await?.0)
    }

    /// The parameters under the prefix, and each one's version.
    async fn listing(&self) -> Result<(Remote, BTreeMap<String, u64>)> {
        let mut vars = BTreeMap::new();
        let mut versions = BTreeMap::new();
        let mut next: Option<String> = None;
        let mut seen_tokens = std::collections::HashSet::new();
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
            let malformed = || Error::Remote {
                message: format!(
                    "AWS SSM listed the parameters under {} in a form it does not document",
                    self.prefix
                ),
                hint: Some("check AWS_ENDPOINT_URL: it must name SSM itself".to_owned()),
            };
            for parameter in answer["Parameters"].as_array().ok_or_else(malformed)? {
                let (Some(name), Some(value), Some(version)) =
                    (parameter["Name"].as_str(), parameter["Value"].as_str(), parameter["Version"].as_u64())
                else {
                    return Err(malformed());
                };
                let var = name.rsplit('/').next().unwrap_or(name).to_owned();
                versions.insert(var.clone(), version);
                vars.insert(var, SecretValue::new(value));
            }
            match answer["NextToken"].as_str() {
                Some(token) if !token.is_empty() => {
                    if !seen_tokens.insert(token.to_owned()) {
                        return Err(malformed());
                    }
                    next = Some(token.to_owned());
                }
                _ => break,
            }
        }
        // Every parameter's version, in name order: any write anyone makes changes it.
        let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
        for (var, version) in &versions {
            digest.update(format!("{var}\0{version}\0").as_bytes());
        }
        let digest = hex::encode(digest.finish());
        Ok((Remote { etag: Some(digest), ..Remote::with_values(vars, None) }, versions))
    }

    /// Writes the upserts one by one, paced; an error says how many were made. A variable the
    /// plan adds is created without overwriting, so that one someone created meanwhile stops it.
    async fn put_all(&self, versions: &BTreeMap<String, u64>, changes: &ChangeSet<'_>) -> Result<()> {
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
            let before = versions.get(*var).copied();
            let overwrite = before.is_some();
            let request = json!({
                "Name": self.name_of(var), "Value": value.expose(), "Type": "SecureString", "Overwrite": overwrite
            });
            let expected = before.map_or(1, |b| b + 1);
            let after = match self.client.write("PutParameter", &request).await {
                Written::Done { answer, unknown } => {
                    let after = answer["Version"].as_u64();
                    // An earlier attempt whose answer was lost may be the version skipped.
                    if unknown && after == Some(expected + 1) && self.holds(var, value, expected).await {
                        continue;
                    }
                    after
                }
                // A create whose earlier attempt landed meets its own parameter.
                Written::Refused(e)
                    if e.kind == "ParameterAlreadyExists" && e.unknown && self.holds(var, value, 1).await =>
                {
                    continue;
                }
                Written::Refused(e) if !e.unknown => return Err(self.write_refused(var, &e, done, total)),
                // Refused after an attempt that may have landed: settled like no answer.
                Written::Refused(e) => {
                    let error = self.client.error(&format!("write {}", self.name_of(var)), &e);
                    self.settle_write(var, value, (before, expected), error, (done, total)).await?;
                    continue;
                }
                Written::Unanswered { error, unknown: true } => {
                    self.settle_write(var, value, (before, expected), error, (done, total)).await?;
                    continue;
                }
                Written::Unanswered { error, unknown: false } => {
                    return Err(Error::Remote {
                        message: format!(
                            "{error}; {done} of {total} writes were made before it, the write of {} was not made, \
                             no removals",
                            self.name_of(var)
                        ),
                        hint: Some(
                            "run apply again when AWS answers: it plans from what is there now".to_owned(),
                        ),
                    });
                }
            };
            // A change someone made since the re-read shows as a version that skipped one. It
            // was overwritten by this write: stop and say so rather than go on.
            if let (Some(before), Some(after)) = (before, after)
                && after != before + 1
            {
                return Err(Error::Stale {
                    message: format!(
                        "{} was changed by someone else during the apply (version {before} became {after}, not \
                             {}), and this apply's write replaced that change; {} of {total} writes were made, no \
                             removals",
                        self.name_of(var),
                        before + 1,
                        done + 1
                    ),
                });
            }
        }
        Ok(())
    }

    /// Whether version `version` of the parameter of `var` holds `value`: a write whose answer
    /// was lost is recognised by it. A read that fails says no.
    async fn holds(&self, var: &str, value: &SecretValue, version: u64) -> bool {
        let request = json!({ "Name": format!("{}:{version}", self.name_of(var)), "WithDecryption": true });
        match self.client.call("GetParameter", &request).await {
            Ok(Ok(answer)) => {
                answer["Parameter"]["Value"].as_str() == Some(value.expose())
                    && answer["Parameter"]["Version"].as_u64() == Some(version)
            }
            _ => false,
        }
    }

    /// Whether the parameter of `var` is still at version `before` (absent, for `None`): a write
    /// whose outcome was unknown was then not made.
    async fn unchanged(&self, var: &str, before: Option<u64>) -> bool {
        let request = json!({ "Name": self.name_of(var), "WithDecryption": false });
        match self.client.call("GetParameter", &request).await {
            Ok(Ok(answer)) => before.is_some() && answer["Parameter"]["Version"].as_u64() == before,
            Ok(Err(e)) => before.is_none() && e.kind == "ParameterNotFound",
            Err(_) => false,
        }
    }

    /// After a write with no answer to act on: goes on when the parameter holds `value` in the
    /// `expected` version (the write landed), else says whether it was not made (the parameter
    /// is still at `before`) or its outcome is unknown.
    async fn settle_write(
        &self,
        var: &str,
        value: &SecretValue,
        (before, expected): (Option<u64>, u64),
        error: Error,
        (done, total): (usize, usize),
    ) -> Result<()> {
        if self.holds(var, value, expected).await {
            return Ok(());
        }
        let made = if self.unchanged(var, before).await {
            format!("the write of {} was not made", self.name_of(var))
        } else {
            format!("the outcome of the write of {} is unknown", self.name_of(var))
        };
        Err(Error::Remote {
            message: format!("{error}; {done} of {total} writes were made before it, {made}, no removals"),
            hint: Some("run apply again when AWS answers: it plans from what is there now".to_owned()),
        })
    }

    /// What a refused write means, with how far the apply got.
    fn write_refused(&self, var: &str, e: &AwsError, done: usize, total: usize) -> Error {
        if e.kind == "ParameterAlreadyExists" {
            return Error::Stale {
                message: format!(
                    "{} was created by someone else during the apply; {done} of {total} writes were made before it, \
                     no removals",
                    self.name_of(var)
                ),
            };
        }
        let cause = self.client.error(&format!("write {}", self.name_of(var)), e);
        Error::Remote {
            message: format!("{cause}; {done} of {total} writes were made before it, no removals"),
            hint: Some(
                "fix the cause, then run apply again: it plans from what the remote holds now".to_owned(),
            ),
        }
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
            match self.client.write("DeleteParameters", &json!({ "Names": names })).await {
                // Names reported invalid are already gone: what the plan wanted. A name in
                // neither list was not deleted.
                Written::Done { answer, .. } => {
                    let listed = |key: &str, name: &str| {
                        answer[key].as_array().is_some_and(|a| a.iter().any(|n| n.as_str() == Some(name)))
                    };
                    for (var, name) in batch.iter().zip(&names) {
                        if !listed("DeletedParameters", name) && !listed("InvalidParameters", name) {
                            failed.push(((*var).to_owned(), "not confirmed deleted by SSM".to_owned()));
                        }
                    }
                }
                Written::Unanswered { error, unknown } => {
                    let why = if unknown {
                        format!("outcome unknown: {error}")
                    } else {
                        format!("not made: {error}")
                    };
                    failed.extend(batch.iter().map(|v| ((*v).to_owned(), why.clone())));
                }
                Written::Refused(e) => {
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
        self.client.block_on(self.current())
    }

    fn apply(&mut self, base: &Remote, changes: &ChangeSet<'_>) -> Result<Applied> {
        self.client.block_on(async {
            // Parameter Store cannot write several parameters at once: what it refuses is refused
            // before the first write.
            if let Some((var, _)) = changes.upserts.iter().find(|(_, v)| v.expose().len() > MAX_VALUE_BYTES) {
                return Err(Error::Remote {
                    message: format!(
                        "the value of {var} is longer than the {MAX_VALUE_BYTES} bytes a standard parameter holds; \
                         nothing was written"
                    ),
                    hint: Some("shorten the value, or keep this variable in another remote".to_owned()),
                });
            }
            let (now, versions) = self.listing().await?;
            if now != *base {
                return Err(Error::Stale {
                    message: format!(
                        "the parameters under {} changed since the plan was made; nothing was written",
                        self.prefix
                    ),
                });
            }
            self.put_all(&versions, changes).await?;
            let failed = self.delete_all(changes).await?;
            let interrupted = failed.iter().any(|(_, why)| why == NOT_SENT);
            Ok(Applied { revision: None, failed, interrupted })
        })
    }
}
