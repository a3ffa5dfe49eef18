//! Talking to AWS JSON APIs (Secrets Manager, SSM): credentials as the AWS tools take them,
//! SigV4 signing with `aws-sigv4`, and retries of throttling and transient failures.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use reqwest::{StatusCode, Url};
use serde_json::Value;
use zeroize::Zeroizing;

use super::cloud::{backoff, read_body, retry_after};
use crate::error::{Error, Result};
use crate::secret::SecretValue;

const MAX_BODY: usize = 64 * 1024 * 1024;

/// AWS credentials: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, else
/// the `AWS_PROFILE` (or `default`) section of the shared credentials file.
#[derive(Debug, Clone)]
pub struct AwsCredentials {
    access_key: String,
    secret_key: SecretValue,
    session_token: Option<SecretValue>,
}

impl AwsCredentials {
    /// Reads the credentials from the environment (`vars`) or the shared credentials file.
    pub fn from_env(
        vars: &std::collections::BTreeMap<String, SecretValue>,
        home: Option<&std::path::Path>,
    ) -> Result<Self> {
        let var = |name: &str| vars.get(name).cloned();
        if let (Some(access), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            return Ok(Self {
                access_key: access.expose().to_owned(),
                secret_key: secret,
                session_token: var("AWS_SESSION_TOKEN"),
            });
        }
        let profile = var("AWS_PROFILE").map_or_else(|| "default".to_owned(), |p| p.expose().to_owned());
        let file = match var("AWS_SHARED_CREDENTIALS_FILE") {
            Some(path) => std::path::PathBuf::from(path.expose()),
            None => home.map(|h| h.join(".aws").join("credentials")).unwrap_or_default(),
        };
        let missing = || {
            Error::config(
                format!("no AWS credentials (environment, or profile `{profile}` of {})", file.display()),
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming a profile with keys",
            )
        };
        let bytes = crate::files::read_limited(&file, 1024 * 1024, "the AWS credentials file")?
            .ok_or_else(missing)?;
        let text = Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
        let ini = ini::Ini::load_from_str(&text).map_err(|_| {
            Error::config(
                format!("{} cannot be read as an AWS credentials file", file.display()),
                "check its [profile] sections and key = value lines",
            )
        })?;
        let section = ini.section(Some(profile.as_str())).ok_or_else(missing)?;
        let (Some(access), Some(secret)) =
            (section.get("aws_access_key_id"), section.get("aws_secret_access_key"))
        else {
            return Err(missing());
        };
        Ok(Self {
            access_key: access.to_owned(),
            secret_key: SecretValue::new(secret),
            session_token: section.get("aws_session_token").map(SecretValue::new),
        })
    }
}

/// A client of one AWS JSON 1.1 service in one region.
pub struct AwsClient {
    client: reqwest::Client,
    endpoint: Url,
    region: String,
    service: &'static str,
    target_prefix: &'static str,
    credentials: AwsCredentials,
    retries: u32,
}

/// An AWS error: its type (`ResourceNotFoundException`...) and HTTP status. The message is not
/// kept: it can quote request data.
#[derive(Debug)]
pub struct AwsError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The exception's name, without its namespace.
    pub kind: String,
}

impl AwsClient {
    /// A client for `service` (signing name, e.g. `secretsmanager`) whose operations are named
    /// `target_prefix.Operation`.
    pub fn new(
        endpoint: Url,
        region: String,
        service: &'static str,
        target_prefix: &'static str,
        credentials: AwsCredentials,
        connection: &super::Connection,
    ) -> Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder();
        if endpoint.scheme() == "http" {
            builder = builder.no_proxy();
        }
        let client = builder
            .timeout(connection.timeout)
            .connect_timeout(connection.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cloud-secrets/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Error::config(
                    format!("cannot set up the HTTP client: {e}"),
                    "this is a bug; please report it",
                )
            })?;
        Ok(Self {
            client,
            endpoint,
            region,
            service,
            target_prefix,
            credentials,
            retries: connection.retries,
        })
    }

    /// Calls `operation` with a JSON body; retries throttling, 5xx and connection failures.
    pub async fn call(&self, operation: &str, body: &Value) -> Result<std::result::Result<Value, AwsError>> {
        let payload = Zeroizing::new(serde_json::to_vec(body).expect("JSON serializes"));
        let target = format!("{}.{operation}", self.target_prefix);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt > self.retries;
            let request = self.signed(&target, &payload)?;
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let wait = retry_after(&response);
                    let answer = Zeroizing::new(read_body(response, MAX_BODY).await.unwrap_or_default());
                    let parsed: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
                    if status.is_success() {
                        return Ok(Ok(parsed));
                    }
                    let kind = parsed["__type"].as_str().unwrap_or_default();
                    let kind = kind.rsplit('#').next().unwrap_or(kind).to_owned();
                    let throttled = kind.contains("Throttl") || kind == "TooManyRequestsException";
                    if (throttled || status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS)
                        && !last
                    {
                        tokio::time::sleep(wait.unwrap_or_else(|| backoff(attempt))).await;
                        continue;
                    }
                    return Ok(Err(AwsError { status, kind }));
                }
                Err(_) if !last => tokio::time::sleep(backoff(attempt)).await,
                Err(e) => {
                    let what = if e.is_timeout() { "did not answer in time" } else { "could not be reached" };
                    return Err(Error::Remote {
                        message: format!(
                            "AWS {} at {} {what} after {attempt} attempt(s)",
                            self.service, self.endpoint
                        ),
                        hint: Some(
                            "check the region, AWS_ENDPOINT_URL and the network, then try again".to_owned(),
                        ),
                    });
                }
            }
        }
    }

    fn signed(&self, target: &str, payload: &[u8]) -> Result<reqwest::RequestBuilder> {
        let identity = Credentials::new(
            &self.credentials.access_key,
            self.credentials.secret_key.expose(),
            self.credentials.session_token.as_ref().map(|t| t.expose().to_owned()),
            None,
            "cloud-secrets",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| Error::config(format!("cannot sign the AWS request: {e}"), "check the region"))?
            .into();
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target)];
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(payload),
        )
        .map_err(|e| Error::config(format!("cannot sign the AWS request: {e}"), "check AWS_ENDPOINT_URL"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| Error::config(format!("cannot sign the AWS request: {e}"), "check the credentials"))?
            .into_parts();
        let mut request = self.client.post(self.endpoint.clone()).body(payload.to_vec());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        Ok(request)
    }

    /// What an AWS error means for the reader.
    pub fn error(&self, what: &str, error: &AwsError) -> Error {
        let hint = match error.kind.as_str() {
            "AccessDeniedException" | "UnrecognizedClientException" | "InvalidSignatureException" => {
                "check the AWS credentials and their IAM permissions"
            }
            _ => "check the region, the secret's name and AWS_ENDPOINT_URL",
        };
        let kind = if error.kind.is_empty() { String::new() } else { format!(", {}", error.kind) };
        Error::Remote {
            message: format!("AWS {} refused to {what} ({}{kind})", self.service, error.status),
            hint: Some(hint.to_owned()),
        }
    }
}

/// The endpoint of `service` in `region`: `AWS_ENDPOINT_URL_<SERVICE>` or `AWS_ENDPOINT_URL`
/// (checked like any API URL: HTTPS, or HTTP to loopback), else the public one.
pub fn endpoint(
    vars: &std::collections::BTreeMap<String, SecretValue>,
    service_var: &str,
    host: &str,
    region: &str,
) -> std::result::Result<Url, String> {
    match vars.get(service_var).or_else(|| vars.get("AWS_ENDPOINT_URL")) {
        Some(url) => super::api_url(url.expose()),
        None => super::api_url(&format!("https://{host}.{region}.amazonaws.com")),
    }
}
