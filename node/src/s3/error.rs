//! Errors of the S3 transport, classified so the node can say exactly what is wrong.
//!
//! Every variant names the operation and the object (`s3://bucket/key`) it concerns. Errors of
//! the AWS SDK are mapped in one place, `classify`, from the service error code and the raw
//! HTTP status (S3-compatible stores such as Garage answer like AWS does), or from the kind of
//! connection failure.

use std::error::Error as StdError;
use std::fmt;
use std::io;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// A boxed error from outside the transport (the input stream, the metadata provider).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The S3 operation that failed, as shown in error messages and traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    HeadBucket,
    HeadObject,
    GetObject,
    PutObject,
    DeleteObject,
    ListObjects,
    CreateMultipartUpload,
    UploadPart(u32),
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListMultipartUploads,
    PutSidecar,
    GetSidecar,
    DeleteSidecar,
}

impl Operation {
    /// The S3 API name of the operation (PascalCase), for logs and metrics.
    pub fn api_name(self) -> &'static str {
        match self {
            Operation::HeadBucket => "HeadBucket",
            Operation::HeadObject => "HeadObject",
            Operation::GetObject | Operation::GetSidecar => "GetObject",
            Operation::PutObject | Operation::PutSidecar => "PutObject",
            Operation::DeleteObject | Operation::DeleteSidecar => "DeleteObject",
            Operation::ListObjects => "ListObjectsV2",
            Operation::CreateMultipartUpload => "CreateMultipartUpload",
            Operation::UploadPart(_) => "UploadPart",
            Operation::CompleteMultipartUpload => "CompleteMultipartUpload",
            Operation::AbortMultipartUpload => "AbortMultipartUpload",
            Operation::ListMultipartUploads => "ListMultipartUploads",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::HeadBucket => formatter.write_str("check bucket of"),
            Operation::HeadObject => formatter.write_str("look up"),
            Operation::GetObject => formatter.write_str("download"),
            Operation::PutObject => formatter.write_str("upload"),
            Operation::DeleteObject => formatter.write_str("delete"),
            Operation::ListObjects => formatter.write_str("list objects under"),
            Operation::CreateMultipartUpload => formatter.write_str("start the multipart upload of"),
            Operation::UploadPart(part_number) => write!(formatter, "upload part {part_number} of"),
            Operation::CompleteMultipartUpload => formatter.write_str("complete the multipart upload of"),
            Operation::AbortMultipartUpload => formatter.write_str("abort the multipart upload of"),
            Operation::ListMultipartUploads => formatter.write_str("list the multipart uploads under"),
            Operation::PutSidecar => formatter.write_str("write the sidecar"),
            Operation::GetSidecar => formatter.write_str("read the sidecar"),
            Operation::DeleteSidecar => formatter.write_str("delete the sidecar"),
        }
    }
}

/// An error of the S3 transport.
///
/// Messages start with "failed" when retrying the same request will not help and with "unable"
/// when the cause may go away by itself ([`S3Error::is_transient`]).
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("invalid S3 URI {uri:?}: {reason}")]
    InvalidUri { uri: String, reason: &'static str },

    #[error("failed to configure the S3 client: {detail}")]
    Settings { detail: String },

    #[error("failed to {operation} s3://{bucket}/{key}: bucket {bucket:?} does not exist")]
    NoSuchBucket { operation: Operation, bucket: String, key: String },

    #[error("failed to {operation} s3://{bucket}/{key}: the object does not exist")]
    NoSuchKey { operation: Operation, bucket: String, key: String },

    #[error(
        "failed to {operation} s3://{bucket}/{key}: access denied ({detail}); check the access key id, \
         the secret key and the key's permissions on bucket {bucket:?}"
    )]
    AccessDenied { operation: Operation, bucket: String, key: String, detail: String },

    #[error(
        "failed to {operation} s3://{bucket}/{key}: no usable credentials ({detail}); set AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY, a credentials file or static credentials in the settings"
    )]
    Credentials { operation: Operation, bucket: String, key: String, detail: String },

    #[error("unable to {operation} s3://{bucket}/{key}: endpoint {endpoint} is unreachable after {attempts} attempts ({detail})")]
    Unreachable { operation: Operation, bucket: String, key: String, endpoint: String, attempts: u32, detail: String },

    #[error("unable to {operation} s3://{bucket}/{key}: still failing after {attempts} attempts ({detail})")]
    Transient { operation: Operation, bucket: String, key: String, attempts: u32, detail: String },

    #[error("failed to {operation} s3://{bucket}/{key}: HTTP {status} {code}: {message}")]
    Service { operation: Operation, bucket: String, key: String, status: u16, code: String, message: String },

    #[error("failed to {operation} s3://{bucket}/{key}: {detail}")]
    Request { operation: Operation, bucket: String, key: String, detail: String },

    #[error("failed to upload s3://{bucket}/{key}: the input stream failed after {bytes} bytes")]
    InputStream {
        bucket: String,
        key: String,
        bytes: u64,
        #[source]
        source: BoxError,
    },

    #[error("failed to upload s3://{bucket}/{key}: the end-of-stream metadata could not be obtained")]
    Metadata {
        bucket: String,
        key: String,
        #[source]
        source: BoxError,
    },

    #[error("failed to upload s3://{bucket}/{key}: the stream exceeds the S3 limit of {max_parts} parts ({bytes} bytes read)")]
    TooManyParts { bucket: String, key: String, bytes: u64, max_parts: u32 },

    #[error(
        "failed to download s3://{bucket}/{key}: the object changed during the download (it no longer has ETag {etag})"
    )]
    ObjectChanged { bucket: String, key: String, etag: String },

    #[error("failed to {operation} s3://{bucket}/{key}: invalid sidecar")]
    Sidecar {
        operation: Operation,
        bucket: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("failed to {operation} s3://{bucket}/{key}: a transfer task ended abnormally ({detail})")]
    Task { operation: Operation, bucket: String, key: String, detail: String },
}

impl S3Error {
    /// Whether the same request may succeed later without a change of configuration
    /// (the endpoint was unreachable or kept failing with retryable errors).
    pub fn is_transient(&self) -> bool {
        matches!(self, S3Error::Unreachable { .. } | S3Error::Transient { .. })
    }

    /// A PascalCase word naming the kind of error, for conditions, events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            S3Error::InvalidUri { .. } => "InvalidUri",
            S3Error::Settings { .. } => "InvalidSettings",
            S3Error::NoSuchBucket { .. } => "NoSuchBucket",
            S3Error::NoSuchKey { .. } => "NoSuchKey",
            S3Error::AccessDenied { .. } => "AccessDenied",
            S3Error::Credentials { .. } => "MissingCredentials",
            S3Error::Unreachable { .. } => "Unreachable",
            S3Error::Transient { .. } => "Transient",
            S3Error::Service { .. } => "ServiceError",
            S3Error::Request { .. } => "RequestFailed",
            S3Error::InputStream { .. } => "InputStreamFailed",
            S3Error::Metadata { .. } => "MetadataFailed",
            S3Error::TooManyParts { .. } => "TooManyParts",
            S3Error::ObjectChanged { .. } => "ObjectChanged",
            S3Error::Sidecar { .. } => "InvalidSidecar",
            S3Error::Task { .. } => "TaskFailed",
        }
    }
}

/// What an error concerns: the operation and the object.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub operation: Operation,
    pub bucket: String,
    pub key: String,
}

impl Target {
    pub fn new(operation: Operation, bucket: &str, key: &str) -> Self {
        Target { operation, bucket: bucket.to_owned(), key: key.to_owned() }
    }

    pub fn no_such_bucket(&self) -> S3Error {
        S3Error::NoSuchBucket { operation: self.operation, bucket: self.bucket.clone(), key: self.key.clone() }
    }

    pub fn no_such_key(&self) -> S3Error {
        S3Error::NoSuchKey { operation: self.operation, bucket: self.bucket.clone(), key: self.key.clone() }
    }

    pub fn request(&self, detail: impl Into<String>) -> S3Error {
        S3Error::Request {
            operation: self.operation,
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            detail: detail.into(),
        }
    }

    pub fn task(&self, detail: impl Into<String>) -> S3Error {
        S3Error::Task {
            operation: self.operation,
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            detail: detail.into(),
        }
    }
}

/// A failed attempt: retry it, or give up with a final error.
#[derive(Debug)]
pub(crate) enum Failure {
    Transient(TransientFailure),
    Permanent(S3Error),
}

/// Why an attempt failed in a way worth retrying.
#[derive(Debug)]
pub(crate) struct TransientFailure {
    pub detail: String,
    /// The connection could not be established (refused, DNS, connect timeout).
    pub connect: bool,
}

impl Failure {
    pub fn transient(detail: impl Into<String>) -> Self {
        Failure::Transient(TransientFailure { detail: detail.into(), connect: false })
    }
}

impl From<S3Error> for Failure {
    fn from(error: S3Error) -> Self {
        Failure::Permanent(error)
    }
}

/// Service error codes that mean "try again later".
const TRANSIENT_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
    "PriorRequestNotComplete",
];

/// Service error codes that mean the credentials are wrong or lack permissions.
const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "Forbidden",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "AllAccessDisabled",
    "AccountProblem",
    "InvalidSecurity",
];

/// Maps an SDK error to a retryable or final failure of `target`.
pub(crate) fn classify<E>(error: SdkError<E, HttpResponse>, target: &Target) -> Failure
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    match &error {
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            let code = context.err().code().map(str::to_owned);
            let message = context.err().message().map(str::to_owned);
            classify_service(status, code, message, target)
        }
        SdkError::TimeoutError(_) => Failure::transient(error_chain(&error)),
        SdkError::ResponseError(_) => Failure::transient(error_chain(&error)),
        SdkError::DispatchFailure(failure) => {
            let detail = error_chain(&error);
            if has_credentials_error(&error) {
                return Failure::Permanent(S3Error::Credentials {
                    operation: target.operation,
                    bucket: target.bucket.clone(),
                    key: target.key.clone(),
                    detail,
                });
            }
            if failure.is_user() {
                return Failure::Permanent(target.request(detail));
            }
            let connect = is_connect_failure(&error, &detail);
            Failure::Transient(TransientFailure { detail, connect })
        }
        SdkError::ConstructionFailure(_) => {
            let detail = error_chain(&error);
            if has_credentials_error(&error) {
                Failure::Permanent(S3Error::Credentials {
                    operation: target.operation,
                    bucket: target.bucket.clone(),
                    key: target.key.clone(),
                    detail,
                })
            } else {
                Failure::Permanent(target.request(detail))
            }
        }
        _ => Failure::Permanent(target.request(error_chain(&error))),
    }
}

/// Maps a service answer (status, error code, message) to a retryable or final failure.
pub(crate) fn classify_service(status: u16, code: Option<String>, message: Option<String>, target: &Target) -> Failure {
    let code_str = code.as_deref().unwrap_or("");
    let detail = match (&code, &message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.clone(),
        (None, Some(message)) => format!("HTTP {status}: {message}"),
        (None, None) => format!("HTTP {status}"),
    };
    if status >= 500 || status == 429 || TRANSIENT_CODES.contains(&code_str) {
        return Failure::transient(format!("service answered {detail}"));
    }
    if code_str == "NoSuchBucket" || (target.operation == Operation::HeadBucket && status == 404) {
        return Failure::Permanent(target.no_such_bucket());
    }
    if code_str == "NoSuchKey" || (status == 404 && (code_str.is_empty() || code_str == "NotFound")) {
        return Failure::Permanent(target.no_such_key());
    }
    if status == 403 || ACCESS_DENIED_CODES.contains(&code_str) {
        return Failure::Permanent(S3Error::AccessDenied {
            operation: target.operation,
            bucket: target.bucket.clone(),
            key: target.key.clone(),
            detail,
        });
    }
    Failure::Permanent(S3Error::Service {
        operation: target.operation,
        bucket: target.bucket.clone(),
        key: target.key.clone(),
        status,
        code: code.unwrap_or_else(|| "Unknown".to_owned()),
        message: message.unwrap_or_default(),
    })
}

/// The messages of an error and its sources, joined by ": " (without repeats).
pub(crate) fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut messages: Vec<String> = Vec::new();
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(error) = current {
        let message = error.to_string();
        if !message.is_empty() && !messages.last().is_some_and(|last| last.contains(&message)) {
            messages.push(message);
        }
        current = error.source();
    }
    messages.join(": ")
}

/// Whether the source chain holds a failure to load credentials.
fn has_credentials_error(error: &(dyn StdError + 'static)) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(error) = current {
        if error.is::<aws_credential_types::provider::error::CredentialsError>() {
            return true;
        }
        current = error.source();
    }
    false
}

/// Whether the source chain says no connection could be made.
fn is_connect_failure(error: &(dyn StdError + 'static), detail: &str) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(io_error) = error.downcast_ref::<io::Error>() {
            if matches!(
                io_error.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::HostUnreachable
                    | io::ErrorKind::NetworkUnreachable
                    | io::ErrorKind::AddrNotAvailable
            ) {
                return true;
            }
        }
        current = error.source();
    }
    let detail = detail.to_ascii_lowercase();
    detail.contains("connect") || detail.contains("dns error") || detail.contains("failed to lookup address")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(operation: Operation) -> Target {
        Target::new(operation, "snapshots", "node-0/dump.rdb")
    }

    fn permanent(failure: Failure) -> S3Error {
        match failure {
            Failure::Permanent(error) => error,
            Failure::Transient(transient) => panic!("expected a permanent failure, got {transient:?}"),
        }
    }

    #[test]
    fn server_errors_and_throttling_are_transient() {
        for (status, code) in [(500, "InternalError"), (503, "SlowDown"), (429, ""), (400, "RequestTimeout")] {
            let failure = classify_service(
                status,
                Some(code.to_owned()).filter(|c| !c.is_empty()),
                None,
                &target(Operation::GetObject),
            );
            assert!(matches!(failure, Failure::Transient(_)), "{status} {code} should be retried");
        }
    }

    #[test]
    fn missing_bucket_and_key_are_named() {
        let error = permanent(classify_service(
            404,
            Some("NoSuchBucket".into()),
            Some("Bucket not found".into()),
            &target(Operation::PutObject),
        ));
        assert!(matches!(&error, S3Error::NoSuchBucket { bucket, .. } if bucket == "snapshots"));
        assert_eq!(
            error.to_string(),
            "failed to upload s3://snapshots/node-0/dump.rdb: bucket \"snapshots\" does not exist"
        );

        let error = permanent(classify_service(404, None, None, &target(Operation::HeadObject)));
        assert!(matches!(error, S3Error::NoSuchKey { .. }));
        let error = permanent(classify_service(404, None, None, &target(Operation::HeadBucket)));
        assert!(matches!(error, S3Error::NoSuchBucket { .. }));
    }

    #[test]
    fn credential_errors_are_access_denied() {
        for code in ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden"] {
            let error = permanent(classify_service(403, Some(code.into()), None, &target(Operation::UploadPart(3))));
            assert!(matches!(&error, S3Error::AccessDenied { detail, .. } if detail.contains(code)));
            assert!(error.to_string().starts_with("failed to upload part 3 of s3://snapshots/node-0/dump.rdb"));
        }
        let error = permanent(classify_service(403, None, None, &target(Operation::HeadObject)));
        assert_eq!(error.reason(), "AccessDenied");
    }

    #[test]
    fn other_client_errors_are_final_service_errors() {
        let error = permanent(classify_service(
            400,
            Some("EntityTooSmall".into()),
            Some("part too small".into()),
            &target(Operation::CompleteMultipartUpload),
        ));
        assert!(matches!(&error, S3Error::Service { status: 400, code, .. } if code == "EntityTooSmall"));
        assert!(!error.is_transient());
    }
}
