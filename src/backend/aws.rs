//! Talking to AWS JSON APIs (Secrets Manager, SSM): credentials as the AWS tools take them,
//! SigV4 signing with `aws-sigv4`, and retries of throttling and transient failures.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use serde_json::Value;
use zeroize::Zeroizing;

use super::http::{Call, Delivery, Transport};
use crate::error::{Error, Result};
use crate::secret::SecretValue;

const MAX_BODY: usize = 64 * 1024 * 1024;

/// AWS credentials: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, else
/// the `AWS_PROFILE` (or `default`) section of the shared credentials file.
#[derive(Clone)]
pub struct AwsCredentials {
    access_key: String,
    secret_key: SecretValue,
    session_token: Option<SecretValue>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AwsCredentials(<redacted>)")
    }
}

impl AwsCredentials {
    /// Reads the credentials from the environment (`vars`) or the shared credentials file.
    pub fn from_env(
        vars: &std::collections::BTreeMap<String, SecretValue>,
        home: Option<&std::path::Path>,
    ) -> Result<Self> {
        let var = |name: &str| vars.get(name).cloned();
        match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(access), Some(secret)) => {
                return Self::checked(
                    access.expose().to_owned(),
                    secret,
                    var("AWS_SESSION_TOKEN"),
                    "the environment",
                );
            }
            // Half a pair is a mistake, not a reason to sign as whoever the credentials file names.
            (Some(_), None) | (None, Some(_)) => {
                return Err(Error::config(
                    "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set",
                    "set both, or neither to use AWS_PROFILE and the shared credentials file",
                ));
            }
            (None, None) => {}
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
        let session = section.get("aws_session_token").map(SecretValue::new);
        Self::checked(access.to_owned(), SecretValue::new(secret), session, "the credentials file")
    }

    /// Refuses values that cannot go in a header (a pasted newline, say) before any request.
    fn checked(
        access_key: String,
        secret_key: SecretValue,
        session_token: Option<SecretValue>,
        from: &str,
    ) -> Result<Self> {
        let fits = |v: &str| !v.is_empty() && v.chars().all(|c| c.is_ascii_graphic());
        if !fits(&access_key)
            || !fits(secret_key.expose())
            || session_token.as_ref().is_some_and(|t| !fits(t.expose()))
        {
            return Err(Error::config(
                format!("the AWS credentials from {from} hold spaces or characters that cannot be sent"),
                "check for a stray newline or quote around the key, secret or session token",
            ));
        }
        Ok(Self { access_key, secret_key, session_token })
    }
}

/// A client of one AWS JSON 1.1 service in one region.
pub struct AwsClient {
    transport: Transport,
    endpoint: Url,
    region: String,
    service: &'static str,
    target_prefix: &'static str,
    credentials: AwsCredentials,
}

/// An AWS error: its type (`ResourceNotFoundException`...) and HTTP status. The message is not
/// kept: it can quote request data.
#[derive(Debug)]
pub struct AwsError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The exception's name, without its namespace.
    pub kind: String,
    /// For a write: an earlier attempt may have been carried out, its answer lost.
    pub unknown: bool,
}

/// What became of a write. Not `Debug`: a read's answer holds values.
pub enum Written {
    /// Carried out. `unknown`: an earlier attempt may have been carried out too.
    Done {
        /// The service's answer.
        answer: Value,
        /// An earlier attempt may have been carried out, its answer lost.
        unknown: bool,
    },
    /// Refused by the service.
    Refused(AwsError),
    /// No answer to act on (or a server error): carried out or not, as `unknown` says.
    Unanswered {
        /// What went wrong.
        error: Error,
        /// Whether it may have been carried out; when false, it was not.
        unknown: bool,
    },
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
        Ok(Self {
            transport: Transport::new(&endpoint, connection)?,
            endpoint,
            region,
            service,
            target_prefix,
            credentials,
        })
    }

    /// Runs `future` to completion on the client's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.transport.block_on(future)
    }

    /// Calls a reading `operation` with a JSON body; retries throttling, 5xx and connection
    /// failures. An error answer is the service's [`AwsError`]; no answer at all is an [`Error`].
    pub async fn call(&self, operation: &str, body: &Value) -> Result<std::result::Result<Value, AwsError>> {
        match self.send(operation, body, Delivery::Read).await {
            Written::Done { answer, .. } => Ok(Ok(answer)),
            Written::Refused(error) => Ok(Err(error)),
            Written::Unanswered { error, .. } => Err(error),
        }
    }

    /// Calls an `operation` that changes the remote, saying whether its outcome is known.
    pub async fn write(&self, operation: &str, body: &Value) -> Written {
        self.send(operation, body, Delivery::Write).await
    }

    async fn send(&self, operation: &str, body: &Value, delivery: Delivery) -> Written {
        let payload = Zeroizing::new(serde_json::to_vec(body).expect("JSON serializes"));
        let target = format!("{}.{operation}", self.target_prefix);
        // The operation stands in for the path in the log, which is always `/`.
        let label = format!("/ {target}");
        let call = Call { delivery, label: Some(&label), limit: MAX_BODY };
        // Signed once: retries within seconds are well inside the signature's validity.
        let signed = match self.signed(&target, &payload) {
            Ok(request) => request,
            Err(error) => return Written::Unanswered { error, unknown: false },
        };
        let build = || signed.try_clone().expect("a request with a byte body can be copied");
        // Only an error answer is read for its type: a success may be a large answer with values.
        let throttled = |status: StatusCode, headers: &HeaderMap, body: &[u8]| {
            status.is_client_error() && is_throttling(&kind_of(body, headers))
        };
        let answer = match self.transport.send(call, build, throttled).await {
            Ok(answer) => answer,
            Err(failure) => {
                let error = Error::Remote {
                    message: format!(
                        "AWS {} at {} {} after {} attempt(s)",
                        self.service, self.endpoint, failure.cause, failure.attempts
                    ),
                    hint: Some(
                        "check the region, AWS_ENDPOINT_URL and the network, then try again".to_owned(),
                    ),
                };
                return Written::Unanswered { error, unknown: failure.unknown };
            }
        };
        if answer.status.is_success() {
            // An answer that cannot be read is never taken for an empty store.
            return match serde_json::from_slice::<Value>(&answer.body) {
                Ok(value) if value.is_object() => Written::Done { answer: value, unknown: answer.unknown },
                _ => Written::Unanswered {
                    error: Error::Remote {
                        message: format!(
                            "AWS {} at {} answered {operation} with something that is not its JSON",
                            self.service, self.endpoint
                        ),
                        hint: Some(
                            "check AWS_ENDPOINT_URL: it must name the service itself, not a proxy or web page"
                                .to_owned(),
                        ),
                    },
                    // A write answered with success was carried out, whatever the answer says.
                    unknown: answer.unknown || delivery == Delivery::Write,
                },
            };
        }
        let error = AwsError {
            status: answer.status,
            kind: kind_of(&answer.body, &answer.headers),
            unknown: answer.unknown,
        };
        // A server error's write may have been carried out: its outcome is not an answer.
        if delivery == Delivery::Write && answer.status.is_server_error() {
            let message = format!("AWS {} answered {operation} with {}", self.service, answer.status);
            let hint = Some(
                "the service is failing: run plan to see where things stand, then apply again".to_owned(),
            );
            return Written::Unanswered { error: Error::Remote { message, hint }, unknown: true };
        }
        Written::Refused(error)
    }

    fn signed(&self, target: &str, payload: &[u8]) -> Result<reqwest::RequestBuilder> {
        self.signed_at(target, payload, SystemTime::now())
    }

    fn signed_at(&self, target: &str, payload: &[u8], time: SystemTime) -> Result<reqwest::RequestBuilder> {
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
            .time(time)
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
        let mut request = self.transport.client().post(self.endpoint.clone()).body(payload.to_vec());
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
            "AccessDeniedException" | "UnrecognizedClientException" => {
                "check the AWS credentials and their IAM permissions"
            }
            "ExpiredTokenException" => "the session credentials expired: get fresh ones and try again",
            "InvalidSignatureException" | "SignatureDoesNotMatch"
                if error.status == StatusCode::FORBIDDEN =>
            {
                "check the secret access key and that this machine's clock is right"
            }
            k if k.contains("KMS") || k.contains("Decryption") => {
                "the KMS key refused: check the key's policy and kms:Decrypt/kms:Encrypt permissions"
            }
            k if k.contains("Throttl") || k == "TooManyRequestsException" => {
                "AWS kept throttling after retries: try again later, or lower --write-rate"
            }
            _ => "check the region, the name in the remote's address and AWS_ENDPOINT_URL",
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
pub(super) fn endpoint(
    vars: &std::collections::BTreeMap<String, SecretValue>,
    service_var: &str,
    host: &str,
    region: &str,
) -> Result<Url> {
    let url = match vars.get(service_var).or_else(|| vars.get("AWS_ENDPOINT_URL")) {
        Some(url) => super::api_url(url.expose()),
        None => super::api_url(&format!("https://{host}.{region}.amazonaws.com")),
    };
    url.map_err(|message| {
        Error::config(format!("AWS endpoint: {message}"), "set AWS_ENDPOINT_URL to an https:// URL")
    })
}

/// The error type an AWS error answer names (`__type` in the body).
fn kind_of(body: &[u8], headers: &HeaderMap) -> String {
    let parsed = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    let header = headers.get("x-amzn-errortype").and_then(|v| v.to_str().ok());
    error_kind(parsed["__type"].as_str().or(header).unwrap_or_default())
}

/// Whether an error type is AWS throttling a request it did not carry out.
fn is_throttling(kind: &str) -> bool {
    kind.contains("Throttl") || kind == "TooManyRequestsException"
}

/// An AWS error type without its namespace (`aws.x#Kind`) or suffix (`Kind:http://...`), kept
/// to plain characters so that a server cannot put control characters on the terminal.
fn error_kind(raw: &str) -> String {
    let kind = raw.split(':').next().unwrap_or(raw);
    let kind = kind.rsplit('#').next().unwrap_or(kind);
    kind.chars().filter(char::is_ascii_alphanumeric).take(100).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, SecretValue> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), SecretValue::new(*v))).collect()
    }

    /// Signatures computed independently (Python's hmac and hashlib, following the SigV4
    /// specification) for a fixed request and time: moto does not check signatures.
    #[test]
    fn requests_are_signed_as_sigv4_specifies() {
        let connection = crate::backend::Connection {
            timeout: Duration::from_secs(5),
            retries: 0,
            parallelism: 1,
            interrupted: crate::interrupt::Flag::default(),
            diagnostics: std::sync::Arc::new(crate::diagnostics::Silent),
            write_rate: 1.0,
        };
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_323_045); // 2026-01-02T03:04:05Z
        let endpoint = Url::parse("https://secretsmanager.us-east-1.amazonaws.com").unwrap();
        let cases = [
            (
                None,
                "content-type;host;x-amz-date;x-amz-target",
                "f2d88f43bebba821c4d228489c3d160e541f583b4d5df71f40dcd94e21dede07",
            ),
            (
                Some("SESSIONTOKEN"),
                "content-type;host;x-amz-date;x-amz-security-token;x-amz-target",
                "3f9a92074883b61682c57344e64ce125e229e1679c56afb3c72ec7e59a58d77e",
            ),
        ];
        for (session, signed_headers, signature) in cases {
            let credentials = AwsCredentials {
                access_key: "AKIDEXAMPLE".to_owned(),
                secret_key: SecretValue::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                session_token: session.map(SecretValue::new),
            };
            let client = AwsClient::new(
                endpoint.clone(),
                "us-east-1".to_owned(),
                "secretsmanager",
                "secretsmanager",
                credentials,
                &connection,
            )
            .unwrap();
            let request = client
                .signed_at("secretsmanager.GetSecretValue", br#"{"SecretId":"app"}"#, time)
                .unwrap()
                .build()
                .unwrap();
            let authorization = request.headers()["authorization"].to_str().unwrap();
            assert_eq!(
                authorization,
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/secretsmanager/aws4_request, \
                     SignedHeaders={signed_headers}, Signature={signature}"
                )
            );
            assert_eq!(request.headers()["x-amz-date"], "20260102T030405Z");
            assert_eq!(request.url().as_str(), "https://secretsmanager.us-east-1.amazonaws.com/");
        }
    }

    #[test]
    fn error_kinds_lose_namespace_suffix_and_control_characters() {
        assert_eq!(
            error_kind("com.amazonaws.secretsmanager#ResourceNotFoundException"),
            "ResourceNotFoundException"
        );
        assert_eq!(
            error_kind("ResourceNotFoundException:http://internal.amazon.com/"),
            "ResourceNotFoundException"
        );
        assert_eq!(error_kind("Bad\u{1b}[31mKind\n"), "Bad31mKind");
    }

    #[test]
    fn half_a_key_pair_or_a_stray_newline_is_refused() {
        let half = AwsCredentials::from_env(&vars(&[("AWS_ACCESS_KEY_ID", "AKID")]), None).unwrap_err();
        assert!(half.to_string().contains("only one of"), "{half}");
        let newline = AwsCredentials::from_env(
            &vars(&[("AWS_ACCESS_KEY_ID", "AKID\n"), ("AWS_SECRET_ACCESS_KEY", "s")]),
            None,
        )
        .unwrap_err();
        assert!(newline.to_string().contains("cannot be sent"), "{newline}");
        let ok = AwsCredentials::from_env(
            &vars(&[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "s3cr3t")]),
            None,
        )
        .unwrap();
        assert_eq!(format!("{ok:?}"), "AwsCredentials(<redacted>)");
    }
}
