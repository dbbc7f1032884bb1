//! Settings of the S3 client, `s3://bucket/key` URIs, and the client built from them.
//!
//! Every setting left unset falls back to the standard AWS configuration sources, as a Kubernetes
//! Secret or ConfigMap would provide them, and nothing is hard-wired to AWS:
//!
//! | setting | fallback, in order |
//! | --- | --- |
//! | `endpoint` | `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, `endpoint_url` in the profile, else AWS's own |
//! | `region` | `AWS_REGION`, `AWS_DEFAULT_REGION`, `region` in the profile, else `us-east-1` |
//! | `credentials` | `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, the profile in `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE` (`AWS_PROFILE`), a web identity token (`AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN`: EKS IRSA), a container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`: EKS Pod Identity, ECS) |
//!
//! The EC2 instance metadata service is asked (for region and credentials) only when
//! [`S3Settings::instance_metadata`] is set, so a node outside AWS never waits on it.
//!
//! Retries are the transport's own (see [`RetryPolicy`]); the SDK's are disabled. Every request
//! is bounded: connecting by [`S3Settings::connect_timeout`], each attempt by
//! [`S3Settings::attempt_timeout`] and all attempts of one request by
//! [`S3Settings::operation_timeout`], both extended for requests with a body by the time the body
//! takes at [`S3Settings::min_throughput`].

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use aws_config::environment::{EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider};
use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::imds::region::ImdsRegionProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::{ProfileFileCredentialsProvider, ProfileFileRegionProvider};
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::web_identity_token::WebIdentityTokenCredentialsProvider;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;

use super::error::S3Error;

/// The region used when none is configured anywhere (what S3-compatible stores usually expect).
pub const FALLBACK_REGION: &str = "us-east-1";

/// Static credentials given in the settings (they take precedence over every other source).
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl StaticCredentials {
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        StaticCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// `message` with the secret access key and the session token replaced, for text that may
    /// quote what a store was sent (a store sees the session token, never the secret key).
    pub fn redact(&self, message: &str) -> String {
        let mut redacted = message.to_owned();
        for secret in [Some(&self.secret_access_key), self.session_token.as_ref()].into_iter().flatten() {
            if !secret.is_empty() && redacted.contains(secret.as_str()) {
                redacted = redacted.replace(secret.as_str(), "** redacted **");
            }
        }
        redacted
    }
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("session_token", &self.session_token.as_ref().map(|_| "** redacted **"))
            .finish()
    }
}

/// How failed attempts are retried: exponential backoff with jitter.
///
/// Retried are server errors (5xx), throttling (`SlowDown`, 429), timeouts, connection failures
/// and resets, and truncated responses; never client errors such as `AccessDenied` or
/// `NoSuchBucket`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included (at least 1).
    pub max_attempts: u32,
    /// The backoff after the first failed attempt; it doubles after each further failure.
    pub initial_backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The pause after `failed_attempts` failures: half of the exponential delay fixed, half random
    /// ("equal jitter"), so clients that failed together do not retry together.
    pub fn backoff(&self, failed_attempts: u32) -> Duration {
        let exponent = failed_attempts.saturating_sub(1).min(30);
        let delay = self.initial_backoff.saturating_mul(1u32 << exponent).min(self.max_backoff);
        let half = delay / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// Settings of the S3 client. `Default` leaves everything to the environment (see the module
/// documentation) and sets bounded timeouts.
#[derive(Clone, Debug)]
pub struct S3Settings {
    /// The endpoint URL, such as `http://garage.storage:3900`.
    pub endpoint: Option<String>,
    /// The region the requests are signed for (S3-compatible stores check it, Garage included).
    pub region: Option<String>,
    /// Address buckets as `endpoint/bucket/key` instead of `bucket.endpoint/key`. Needed by most
    /// S3-compatible stores; AWS accepts both.
    pub force_path_style: bool,
    /// Credentials that take precedence over the environment.
    pub credentials: Option<StaticCredentials>,
    /// Ask the EC2 instance metadata service for the region and credentials when nothing else
    /// provides them (only useful on EC2 nodes).
    pub instance_metadata: bool,
    /// The longest wait to establish a connection.
    pub connect_timeout: Duration,
    /// The longest wait for one attempt of a request without a body (plus the body allowance).
    pub attempt_timeout: Duration,
    /// The longest time for all attempts of one request together (plus the body allowance).
    pub operation_timeout: Duration,
    /// The slowest transfer rate tolerated for request and response bodies, in bytes per second:
    /// a request with a body gets `body size / min_throughput` more time.
    pub min_throughput: u64,
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
    /// Sign the SHA-256 of request bodies (SigV4). Without it bodies are sent as
    /// `UNSIGNED-PAYLOAD` and protected only by their CRC32 checksum header (and TLS): less CPU
    /// for the node and the store (uploads about 25% faster against a local Garage).
    pub sign_payload: bool,
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            endpoint: None,
            region: None,
            force_path_style: true,
            credentials: None,
            instance_metadata: false,
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(30),
            operation_timeout: Duration::from_secs(120),
            min_throughput: 1024 * 1024,
            retry: RetryPolicy::default(),
            sign_payload: true,
        }
    }
}

/// A client of one S3 endpoint, cheap to clone.
#[derive(Clone, Debug)]
pub struct S3Client {
    pub(crate) sdk: aws_sdk_s3::Client,
    pub(crate) shared: Arc<ClientShared>,
}

#[derive(Debug)]
pub(crate) struct ClientShared {
    /// The endpoint as shown in errors.
    pub endpoint: String,
    pub attempt_timeout: Duration,
    pub operation_timeout: Duration,
    pub min_throughput: u64,
    pub retry: RetryPolicy,
    pub sign_payload: bool,
    /// The static credentials, if any, whose secrets [`S3Client::redact`] removes.
    pub credentials: Option<StaticCredentials>,
}

impl S3Client {
    /// Builds a client from `settings`, falling back to the environment for what they leave unset.
    ///
    /// Nothing is contacted yet; [`S3Client::check_bucket`] tells whether the bucket is reachable.
    pub async fn connect(settings: &S3Settings) -> Result<S3Client, S3Error> {
        if let Some(endpoint) = &settings.endpoint {
            validate_endpoint(endpoint)?;
        }
        if settings.retry.max_attempts == 0 {
            return Err(S3Error::Settings { detail: "retry.max_attempts must be at least 1".to_owned() });
        }
        let region = resolve_region(settings).await;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(region.clone())
            .retry_config(RetryConfig::disabled())
            .timeout_config(TimeoutConfig::builder().connect_timeout(settings.connect_timeout).build());
        loader = match &settings.credentials {
            Some(credentials) => loader.credentials_provider(Credentials::new(
                credentials.access_key_id.clone(),
                credentials.secret_access_key.clone(),
                credentials.session_token.clone(),
                None,
                "ferrocache-settings",
            )),
            None => loader.credentials_provider(credentials_chain(settings, &region)),
        };
        if let Some(endpoint) = &settings.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        let sdk_config = loader.load().await;
        let endpoint = settings
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
            .or_else(|| sdk_config.endpoint_url().map(str::to_owned))
            .unwrap_or_else(|| format!("AWS S3 ({region})"));
        let config = aws_sdk_s3::config::Builder::from(&sdk_config).force_path_style(settings.force_path_style).build();
        tracing::debug!(%endpoint, %region, path_style = settings.force_path_style, "S3 client configured");
        Ok(S3Client {
            sdk: aws_sdk_s3::Client::from_conf(config),
            shared: Arc::new(ClientShared {
                endpoint,
                attempt_timeout: settings.attempt_timeout,
                operation_timeout: settings.operation_timeout,
                min_throughput: settings.min_throughput.max(1),
                retry: settings.retry.clone(),
                sign_payload: settings.sign_payload,
                credentials: settings.credentials.clone(),
            }),
        })
    }

    /// The SDK client, for operations the transport does not wrap.
    pub fn sdk(&self) -> &aws_sdk_s3::Client {
        &self.sdk
    }

    /// The endpoint, as shown in errors.
    pub fn endpoint(&self) -> &str {
        &self.shared.endpoint
    }

    /// `message` without the secrets of the static credentials the client was given (see
    /// [`StaticCredentials::redact`]).
    pub fn redact(&self, message: &str) -> String {
        match &self.shared.credentials {
            Some(credentials) => credentials.redact(message),
            None => message.to_owned(),
        }
    }
}

/// Checks that `endpoint` is an `http://` or `https://` URL with a host (and no spaces or control
/// characters), as [`S3Client::connect`] does.
pub fn validate_endpoint(endpoint: &str) -> Result<(), S3Error> {
    let rest = endpoint.strip_prefix("http://").or_else(|| endpoint.strip_prefix("https://"));
    match rest {
        Some(host)
            if !host.is_empty()
                && !host.starts_with('/')
                && !host.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(())
        }
        _ => Err(S3Error::Settings {
            detail: format!("endpoint {endpoint:?} must be an http:// or https:// URL with a host"),
        }),
    }
}

async fn resolve_region(settings: &S3Settings) -> Region {
    if let Some(region) = &settings.region {
        return Region::new(region.clone());
    }
    let mut chain = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(ProfileFileRegionProvider::new());
    if settings.instance_metadata {
        chain = chain.or_else(ImdsRegionProvider::builder().build());
    }
    match chain.region().await {
        Some(region) => region,
        None => {
            tracing::info!(region = FALLBACK_REGION, "no S3 region configured; using the fallback region");
            Region::new(FALLBACK_REGION)
        }
    }
}

fn credentials_chain(settings: &S3Settings, region: &Region) -> CredentialsProviderChain {
    let provider_config = ProviderConfig::default().with_region(Some(region.clone()));
    let mut chain = CredentialsProviderChain::first_try("Environment", EnvironmentVariableCredentialsProvider::new())
        .or_else("Profile", ProfileFileCredentialsProvider::builder().configure(&provider_config).build())
        .or_else("WebIdentityToken", WebIdentityTokenCredentialsProvider::builder().configure(&provider_config).build())
        .or_else("Container", aws_config::ecs::EcsCredentialsProvider::builder().configure(&provider_config).build());
    if settings.instance_metadata {
        chain =
            chain.or_else("InstanceMetadata", ImdsCredentialsProvider::builder().configure(&provider_config).build());
    }
    chain
}

/// An object (or a prefix) named `s3://bucket/key`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct S3Uri {
    pub bucket: String,
    /// The key; empty for a URI that names only the bucket.
    pub key: String,
}

impl S3Uri {
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        S3Uri { bucket: bucket.into(), key: key.into() }
    }

    /// Parses `s3://bucket` or `s3://bucket/key`.
    pub fn parse(uri: &str) -> Result<S3Uri, S3Error> {
        let invalid = |reason| S3Error::InvalidUri { uri: uri.to_owned(), reason };
        let rest = uri.strip_prefix("s3://").ok_or_else(|| invalid("it must start with s3://"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid("the bucket name is empty"));
        }
        if bucket.len() > 255 || bucket.chars().any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#') {
            return Err(invalid("the bucket name has invalid characters"));
        }
        if key.len() > 1024 {
            return Err(invalid("the key is longer than 1024 bytes"));
        }
        Ok(S3Uri::new(bucket, key))
    }

    /// This URI with `name` appended to the key (a `/` is added unless the key is empty or ends
    /// with one).
    pub fn join(&self, name: &str) -> S3Uri {
        let key = if self.key.is_empty() || self.key.ends_with('/') {
            format!("{}{name}", self.key)
        } else {
            format!("{}/{name}", self.key)
        };
        S3Uri::new(self.bucket.clone(), key)
    }
}

impl FromStr for S3Uri {
    type Err = S3Error;

    fn from_str(uri: &str) -> Result<Self, Self::Err> {
        S3Uri::parse(uri)
    }
}

impl fmt::Display for S3Uri {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "s3://{}/{}", self.bucket, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_a_bucket_and_a_key() {
        let uri: S3Uri = "s3://snapshots/cluster-a/node-0/dump.rdb".parse().expect("valid uri");
        assert_eq!(uri, S3Uri::new("snapshots", "cluster-a/node-0/dump.rdb"));
        assert_eq!(uri.to_string(), "s3://snapshots/cluster-a/node-0/dump.rdb");
        assert_eq!(S3Uri::parse("s3://snapshots").expect("bucket only"), S3Uri::new("snapshots", ""));
        assert_eq!(S3Uri::parse("s3://snapshots/").expect("bucket only"), S3Uri::new("snapshots", ""));
        assert_eq!(S3Uri::parse("s3://b/prefix").expect("valid").join("x.rdb"), S3Uri::new("b", "prefix/x.rdb"));
        assert_eq!(S3Uri::parse("s3://b/prefix/").expect("valid").join("x.rdb"), S3Uri::new("b", "prefix/x.rdb"));
        assert_eq!(S3Uri::parse("s3://b").expect("valid").join("x.rdb"), S3Uri::new("b", "x.rdb"));
    }

    #[test]
    fn malformed_uris_are_refused_with_a_reason() {
        for (uri, reason) in [
            ("http://bucket/key", "it must start with s3://"),
            ("s3://", "the bucket name is empty"),
            ("s3:///key", "the bucket name is empty"),
            ("s3://my bucket/key", "the bucket name has invalid characters"),
        ] {
            match S3Uri::parse(uri) {
                Err(S3Error::InvalidUri { reason: got, .. }) => assert_eq!(got, reason, "{uri}"),
                other => panic!("{uri}: expected InvalidUri, got {other:?}"),
            }
        }
    }

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        for _ in 0..100 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
            let third = policy.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400), "{third:?}");
            let late = policy.backoff(40);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_secs(1), "{late:?}");
        }
    }

    #[test]
    fn secrets_are_not_printed() {
        let credentials = StaticCredentials {
            access_key_id: "GK123".into(),
            secret_access_key: "very-secret".into(),
            session_token: Some("token-secret".into()),
        };
        let printed = format!("{credentials:?}");
        assert!(printed.contains("GK123") && !printed.contains("very-secret") && !printed.contains("token-secret"));
        let echoed = credentials.redact("InvalidToken: token-secret is expired (key GK123, very-secret)");
        assert_eq!(echoed, "InvalidToken: ** redacted ** is expired (key GK123, ** redacted **)");
    }

    #[test]
    fn endpoints_must_be_http_urls() {
        assert!(validate_endpoint("http://127.0.0.1:3900").is_ok());
        assert!(validate_endpoint("https://s3.example.com").is_ok());
        assert!(matches!(validate_endpoint("127.0.0.1:3900"), Err(S3Error::Settings { .. })));
        assert!(matches!(validate_endpoint("http://"), Err(S3Error::Settings { .. })));
        assert!(matches!(validate_endpoint("http://garage :3900"), Err(S3Error::Settings { .. })));
    }
}
