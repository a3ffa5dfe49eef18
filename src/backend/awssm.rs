//! AWS Secrets Manager as a remote: one secret whose value is a JSON object of variable to
//! value. Apply reads the secret again and writes nothing if its version moved since the plan;
//! the write (`PutSecretValue`, or `CreateSecret` on the first apply) carries a client request
//! token, so a retry of a write whose answer was lost does not make a second version.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::aws::{AwsClient, AwsCredentials, Written};
use super::{Access, Applied, Backend, Connection, Refusal, Resolving};
use crate::error::{Error, Result};
use crate::remote::{ChangeSet, Remote, RemoteValue};
use crate::secret::SecretValue;

/// The largest `SecretString` Secrets Manager keeps.
const MAX_SECRET_BYTES: usize = 65_536;

/// The kind of AWS Secrets Manager: `awssm://REGION/SECRET_NAME`.
pub(super) struct SecretsManagerKind;

/// AWS Secrets Manager, registered in [`super::KINDS`].
pub(super) static KIND: SecretsManagerKind = SecretsManagerKind;

impl super::Kind for SecretsManagerKind {
    fn name(&self) -> &'static str {
        "AWS Secrets Manager"
    }

    fn form(&self) -> &'static str {
        "awssm://REGION/NAME"
    }

    fn rolls_back(&self) -> bool {
        true
    }

    fn resolve(
        &self,
        text: &str,
        context: &Resolving<'_>,
    ) -> Option<std::result::Result<std::sync::Arc<dyn super::Spec>, Refusal>> {
        let rest = text.strip_prefix("awssm://")?;
        Some(parse(text, rest).and_then(|(region, name)| {
            let endpoint = super::aws::endpoint(
                context.vars,
                "AWS_ENDPOINT_URL_SECRETS_MANAGER",
                "secretsmanager",
                &region,
            )?;
            let credentials = AwsCredentials::from_env(context.vars, context.home)?;
            Ok(std::sync::Arc::new(SecretsManagerSpec { endpoint, region, name, credentials })
                as std::sync::Arc<dyn super::Spec>)
        }))
    }
}

/// `awssm://REGION/NAME` (`rest` is what follows the scheme): the region and the secret's name.
pub(super) fn parse(text: &str, rest: &str) -> std::result::Result<(String, String), Refusal> {
    let (region, name) = rest.split_once('/').unwrap_or((rest, ""));
    let name_ok = !name.is_empty()
        && name.len() <= 512
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
    if !super::region_ok(region) || !name_ok {
        return Err(Refusal::Address(format!(
            "`{}` is not awssm://REGION/SECRET_NAME (a name of letters, digits and /_+=.@-)",
            super::redact_address(text)
        )));
    }
    Ok((region.to_owned(), name.to_owned()))
}

/// One secret: where it is and the credentials to reach it.
#[derive(Debug)]
pub(super) struct SecretsManagerSpec {
    endpoint: reqwest::Url,
    region: String,
    name: String,
    credentials: AwsCredentials,
}

impl std::fmt::Display for SecretsManagerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "awssm://{}/{}", self.region, self.name)
    }
}

impl super::Spec for SecretsManagerSpec {
    fn open(&self, _: Access, connection: &Connection) -> Result<Box<dyn Backend>> {
        let backend = SecretsManagerBackend::new(
            self.endpoint.clone(),
            self.region.clone(),
            self.name.clone(),
            self.credentials.clone(),
            connection,
        )?;
        Ok(Box::new(backend))
    }

    fn identity(&self) -> String {
        format!("{self} at {}", self.endpoint.as_str().trim_end_matches('/'))
    }
}

/// One Secrets Manager secret.
pub struct SecretsManagerBackend {
    client: AwsClient,
    name: String,
}

impl SecretsManagerBackend {
    /// A client for the secret `name` in `region`.
    pub fn new(
        endpoint: reqwest::Url,
        region: String,
        name: String,
        credentials: AwsCredentials,
        connection: &Connection,
    ) -> Result<Self> {
        let client =
            AwsClient::new(endpoint, region, "secretsmanager", "secretsmanager", credentials, connection)?;
        Ok(Self { client, name })
    }

    /// The secret at a version stage: its version id and variables, or `None` if there is no
    /// such secret (or stage).
    async fn read(&self, stage: Option<&str>) -> Result<Option<(String, BTreeMap<String, SecretValue>)>> {
        let mut request = json!({ "SecretId": self.name });
        if let Some(stage) = stage {
            request["VersionStage"] = json!(stage);
        }
        let answer = match self.client.call("GetSecretValue", &request).await? {
            Ok(answer) => answer,
            Err(e) if e.kind == "ResourceNotFoundException" => return Ok(None),
            Err(e) => return Err(self.client.error(&format!("read the secret {}", self.name), &e)),
        };
        let not_an_object = || Error::Remote {
            message: format!("the secret {} does not hold a JSON object of names to strings", self.name),
            hint: Some(
                "cloud-secrets keeps a profile's variables as one JSON object; use another secret".to_owned(),
            ),
        };
        let version =
            answer["VersionId"].as_str().filter(|v| !v.is_empty()).ok_or_else(|| Error::Remote {
                message: format!(
                    "AWS Secrets Manager answered without a version id for the secret {}",
                    self.name
                ),
                hint: Some("check AWS_ENDPOINT_URL: it must name Secrets Manager itself".to_owned()),
            })?;
        let version = version.to_owned();
        // A binary secret, or none at all, is not taken for an empty one: an apply would replace it.
        let text = Zeroizing::new(answer["SecretString"].as_str().ok_or_else(not_an_object)?.to_owned());
        let parsed: Value = serde_json::from_str(&text).map_err(|_| not_an_object())?;
        let object = parsed.as_object().ok_or_else(not_an_object)?;
        let mut vars = BTreeMap::new();
        for (name, value) in object {
            vars.insert(name.clone(), SecretValue::new(value.as_str().ok_or_else(not_an_object)?));
        }
        Ok(Some((version, vars)))
    }

    async fn current(&self) -> Result<Remote> {
        Ok(match self.read(None).await? {
            Some((version, vars)) => Remote { etag: Some(version), ..Remote::with_values(vars, None) },
            // A secret that exists with no value yet is written with PutSecretValue, not created.
            None if self.exists().await? => Remote { etag: Some(NO_VALUE.to_owned()), ..Remote::default() },
            None => Remote::default(),
        })
    }

    /// The secret's current version id, if it has one.
    async fn current_version(&self) -> Result<Option<String>> {
        Ok(self.read(None).await?.map(|(version, _)| version))
    }

    /// After a write whose outcome is unknown: the new version carries the request token as its
    /// id, so the secret's current version says whether it landed.
    async fn settle(&self, base: &Remote, token: &str, error: Error) -> Result<Applied> {
        let current = self.current_version().await;
        match current {
            Ok(Some(version)) if version == token => self.check_replaced(base).await,
            // Still the planned version (a secret without a value has none to read).
            Ok(version)
                if version.as_deref().unwrap_or(NO_VALUE) == base.etag.as_deref().unwrap_or(NO_VALUE) =>
            {
                Err(error.nothing_written())
            }
            Ok(_) => Err(Error::Remote {
                message: format!(
                    "the outcome of the write to the secret {} is unknown ({error}): its current version is neither \
                     the one planned from nor this apply's",
                    self.name
                ),
                hint: Some("run cloud-secrets plan to see where things stand, then apply again".to_owned()),
            }),
            Err(read) => Err(Error::Remote {
                message: format!(
                    "the outcome of the write to the secret {} is unknown ({error}), and reading it back failed: {read}",
                    self.name
                ),
                hint: Some("run cloud-secrets plan once AWS answers, then apply again".to_owned()),
            }),
        }
    }

    /// After a write of a new version: the version it replaced (now AWSPREVIOUS) must be the one
    /// the plan was made from. Secrets Manager has no conditional write, so a version someone
    /// wrote between the check and the write was replaced: that is said, with where it is kept.
    async fn check_replaced(&self, base: &Remote) -> Result<Applied> {
        let Some(planned) = base.etag.as_deref().filter(|v| *v != NO_VALUE) else {
            return Ok(Applied::default());
        };
        let previous = self.read(Some("AWSPREVIOUS")).await?.map(|(version, _)| version);
        if previous.as_deref() == Some(planned) {
            return Ok(Applied::default());
        }
        Err(Error::Stale {
            message: format!(
                "the secret {} was written by someone else between this apply's check and its write (version {}), \
                 and this apply's write replaced that version; it is kept as AWSPREVIOUS",
                self.name,
                previous.as_deref().unwrap_or("unknown")
            ),
        })
    }

    /// Whether the secret exists (with or without a value).
    async fn exists(&self) -> Result<bool> {
        match self.client.call("DescribeSecret", &json!({ "SecretId": self.name })).await? {
            Ok(_) => Ok(true),
            Err(e) if e.kind == "ResourceNotFoundException" => Ok(false),
            Err(e) => Err(self.client.error(&format!("describe the secret {}", self.name), &e)),
        }
    }
}

impl Backend for SecretsManagerBackend {
    fn fetch(&mut self) -> Result<Remote> {
        self.client.block_on(self.current())
    }

    fn apply(&mut self, base: &Remote, changes: &ChangeSet<'_>) -> Result<Applied> {
        self.client.block_on(async {
            if self.current().await? != *base {
                return Err(Error::Stale {
                    message: format!(
                        "the secret {} changed since the plan was made (a new version); nothing was written",
                        self.name
                    ),
                });
            }
            let mut vars: BTreeMap<String, SecretValue> = base
                .vars
                .iter()
                .filter_map(|(k, v)| match v {
                    RemoteValue::Value(v) => Some((k.clone(), v.clone())),
                    _ => None,
                })
                .collect();
            changes.apply_to(&mut vars);
            let object: BTreeMap<&str, &str> = vars.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
            let text = Zeroizing::new(serde_json::to_string(&object).expect("a map of strings serializes"));
            if text.len() > MAX_SECRET_BYTES {
                return Err(Error::Remote {
                    message: format!(
                        "the secret {} would hold {} bytes; Secrets Manager keeps at most {MAX_SECRET_BYTES}; \
                         nothing was written",
                        self.name,
                        text.len()
                    ),
                    hint: Some("use ssm://REGION/PREFIX (one parameter per variable), or split the variables across profiles".to_owned()),
                });
            }
            let token = request_token()?;
            let (operation, request) = match &base.etag {
                None => ("CreateSecret", json!({ "Name": self.name, "SecretString": text.as_str(), "ClientRequestToken": token })),
                Some(_) => (
                    "PutSecretValue",
                    json!({ "SecretId": self.name, "SecretString": text.as_str(), "ClientRequestToken": token }),
                ),
            };
            match self.client.write(operation, &request).await {
                Written::Done { .. } => self.check_replaced(base).await,
                // A retried create whose first attempt landed: the version id is the token sent.
                Written::Refused(e)
                    if e.kind == "ResourceExistsException" && self.current_version().await?.as_deref() == Some(token.as_str()) =>
                {
                    Ok(Applied::default())
                }
                Written::Refused(e) if e.kind == "ResourceExistsException" => Err(Error::Stale {
                    message: format!("the secret {} was created by someone else meanwhile; nothing was written", self.name),
                }),
                // Refused after an attempt that may have landed: the current version tells.
                Written::Refused(e) if e.unknown => {
                    let error = self.client.error(&format!("write the secret {}", self.name), &e);
                    self.settle(base, &token, error).await
                }
                Written::Refused(e) => Err(self.client.error(&format!("write the secret {}", self.name), &e)),
                Written::Unanswered { error, unknown: false } => Err(error.nothing_written()),
                Written::Unanswered { error, unknown: true } => self.settle(base, &token, error).await,
            }
        })
    }

    fn previous(&mut self) -> Result<Option<(String, BTreeMap<String, SecretValue>)>> {
        let previous = self.client.block_on(self.read(Some("AWSPREVIOUS")))?;
        Ok(previous.map(|(id, vars)| (format!("AWSPREVIOUS ({id})"), vars)))
    }
}

/// The version recorded for a secret that exists without a value.
const NO_VALUE: &str = "(no value)";

/// A fresh idempotency token for a write (Secrets Manager wants 32 to 64 characters).
fn request_token() -> Result<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| Error::Config {
        message: "the system's random number generator failed".to_owned(),
        hint: None,
    })?;
    Ok(hex::encode(bytes))
}
