//! The operator's view of S3: clients built from a resource's connection and
//! credentials Secret, and the few object operations backups need. The
//! transport itself (retries, error classification) is the node's.

use std::time::Duration;

use ferrocache_node::s3::{self, S3Client, S3Error, S3Settings, StaticCredentials};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::crd::{S3Connection, CREDENTIALS_ACCESS_KEY, CREDENTIALS_SECRET_KEY, CREDENTIALS_SESSION_TOKEN};
use crate::node_client::JobS3;

/// Why the credentials of a connection could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("credentials Secret {0} does not exist")]
    Missing(String),
    #[error("credentials Secret {secret} has no key {key}")]
    MissingKey { secret: String, key: &'static str },
    #[error("unable to read credentials Secret {secret}")]
    Read {
        secret: String,
        #[source]
        source: kube::Error,
    },
}

/// Reads the connection's credentials Secret into the settings a backup job passes to a node.
pub async fn job_settings(
    client: &Client,
    namespace: &str,
    connection: &S3Connection,
) -> Result<JobS3, CredentialsError> {
    let mut job = JobS3 { connection: connection.clone(), ..JobS3::default() };
    let Some(name) = &connection.credentials_secret else {
        return Ok(job);
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = secrets
        .get_opt(name)
        .await
        .map_err(|source| CredentialsError::Read { secret: name.clone(), source })?
        .ok_or_else(|| CredentialsError::Missing(name.clone()))?;
    let value =
        |key: &str| secret.data.as_ref()?.get(key).map(|bytes| String::from_utf8_lossy(&bytes.0).trim().to_owned());
    job.access_key_id = Some(
        value(CREDENTIALS_ACCESS_KEY)
            .ok_or(CredentialsError::MissingKey { secret: name.clone(), key: CREDENTIALS_ACCESS_KEY })?,
    );
    job.secret_access_key = Some(
        value(CREDENTIALS_SECRET_KEY)
            .ok_or(CredentialsError::MissingKey { secret: name.clone(), key: CREDENTIALS_SECRET_KEY })?,
    );
    job.session_token = value(CREDENTIALS_SESSION_TOKEN).filter(|token| !token.is_empty());
    Ok(job)
}

/// An S3 client for `job`'s endpoint and credentials, with short timeouts: a reconcile must
/// not hang on an unreachable store.
pub async fn client(job: &JobS3) -> Result<S3Client, S3Error> {
    let settings = S3Settings {
        endpoint: job.connection.endpoint.clone(),
        region: job.connection.region.clone(),
        force_path_style: job.connection.force_path_style,
        credentials: match (&job.access_key_id, &job.secret_access_key) {
            (Some(id), Some(secret)) => Some(StaticCredentials {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: job.session_token.clone(),
            }),
            _ => None,
        },
        connect_timeout: Duration::from_secs(2),
        attempt_timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(15),
        retry: s3::RetryPolicy { max_attempts: 3, ..s3::RetryPolicy::default() },
        ..S3Settings::default()
    };
    S3Client::connect(&settings).await
}

/// Why no S3 client could be built for a resource's connection.
#[derive(Debug)]
pub enum ClientFailure {
    /// The user must fix something (a missing Secret or key, invalid settings): reason, message.
    Unusable(&'static str, String),
    /// The Secret could not be read right now; worth retrying.
    Unreadable(CredentialsError),
}

/// An S3 client for `connection`, with the credentials of its Secret in `namespace`.
pub async fn client_for(
    client: &Client,
    namespace: &str,
    connection: &S3Connection,
) -> Result<S3Client, ClientFailure> {
    let job = match job_settings(client, namespace, connection).await {
        Ok(job) => job,
        Err(error @ (CredentialsError::Missing(_) | CredentialsError::MissingKey { .. })) => {
            return Err(ClientFailure::Unusable("CredentialsNotFound", error.to_string()));
        }
        Err(error) => return Err(ClientFailure::Unreadable(error)),
    };
    self::client(&job)
        .await
        .map_err(|error| ClientFailure::Unusable(error.reason(), crate::context::error_chain(&error)))
}
