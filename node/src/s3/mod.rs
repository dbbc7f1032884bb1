//! S3 transport: streams bytes to and from any S3-compatible object store.
//!
//! The module knows nothing about RDB or the store. It uploads a stream of byte chunks of unknown
//! length to an object and downloads an object as an ordered stream of byte chunks.
//!
//! - [`settings`]: [`S3Settings`] (endpoint, region, credentials, timeouts, retries) with
//!   fallback to the standard AWS environment variables and files, the [`S3Client`], and
//!   `s3://bucket/key` URIs ([`S3Uri`]).
//! - [`upload`]: [`upload_stream`], a multipart upload with parts of growing size
//!   ([`part_size`]), a few in flight, retried, and aborted on any failure.
//! - [`download`]: [`download_stream`], parallel ranged GETs yielded in order;
//!   [`read_sidecar`], [`head_object`], [`list_objects`].
//! - [`sidecar`]: the `<key>.meta.json` object written with each upload.
//! - [`error`]: [`S3Error`], which names the operation and the object and classifies the cause
//!   (missing bucket or key, access denied, unreachable endpoint, still failing after retries).
//!
//! # Publication protocol
//!
//! An object under its final key is always complete, and its metadata is always recorded:
//!
//! 1. The data is sent as the parts of a multipart upload. S3 shows nothing under the key while
//!    the upload is in progress.
//! 2. When the input stream has ended, the caller's end-of-stream metadata (for a snapshot:
//!    checksum, size, key count) is awaited. An input error, or metadata that fails (for example
//!    because the producer died and dropped its sender), aborts the upload.
//! 3. Once every part is stored, the sidecar `<key>.meta.json` is written with a single
//!    PutObject: the object's size, part count and the caller's metadata ([`Sidecar`]).
//! 4. CompleteMultipartUpload makes the object visible, atomically.
//! 5. If anything fails before the object is visible, the sidecar is deleted and the multipart
//!    upload aborted, so nothing is left under the key. If the upload future is dropped midway
//!    (cancellation), the same cleanup runs in a background task. A cleanup that fails because
//!    the store is unreachable keeps retrying in the background for a while; leftovers of a
//!    process that died can be removed with [`abort_incomplete_uploads`] (or a bucket lifecycle
//!    rule `AbortIncompleteMultipartUpload`).
//!
//! A stream shorter than one part is sent with a single PutObject, after its sidecar, with the
//! same guarantees.
//!
//! Readers therefore treat the data object as the commit point: a data object always has its
//! sidecar next to it, while a sidecar without a data object is the trace of an upload that did not
//! complete (or whose cleanup could not reach the store) and is ignored. [`delete_object`]
//! deletes the object before its sidecar to keep this rule.
//!
//! Give every upload a key of its own (for snapshots: a timestamp or sequence number in the key).
//! Uploading again to an existing key replaces the sidecar before the object, and a failed
//! replacement deletes the sidecar of the object that stays.
//!
//! # Example
//!
//! ```no_run
//! use bytes::Bytes;
//! use ferrocache_node::s3::{download_stream, upload_stream, DownloadOptions, S3Client, S3Settings, S3Uri, UploadOptions};
//! use futures::TryStreamExt;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = S3Client::connect(&S3Settings::default()).await?;
//! let uri: S3Uri = "s3://snapshots/node-0/dump.rdb".parse()?;
//! let chunks = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"REDIS0010..."))]);
//! let metadata = async { Ok::<_, std::io::Error>(serde_json::json!({ "crc64": "0123456789abcdef" })) };
//! let summary = upload_stream(&client, &uri.bucket, &uri.key, chunks, metadata, &UploadOptions::default()).await?;
//! println!("{} bytes in {} parts", summary.bytes, summary.parts);
//!
//! let mut download = download_stream(&client, &uri.bucket, &uri.key, &DownloadOptions::default()).await?;
//! while let Some(chunk) = download.try_next().await? {
//!     // feed chunk to the loader
//! #   let _ = chunk;
//! }
//! # Ok(())
//! # }
//! ```

pub mod download;
pub mod error;
pub mod part_size;
mod retry;
pub mod settings;
pub mod sidecar;
pub mod upload;

pub use download::{
    check_bucket, download_stream, get_small_object, head_object, list_objects, read_sidecar, DownloadOptions,
    ObjectDownload, ObjectInfo, ObjectSummary,
};
pub use error::{BoxError, Operation, S3Error};
pub use settings::{RetryPolicy, S3Client, S3Settings, S3Uri, StaticCredentials};
pub use sidecar::{sidecar_key, Sidecar};
pub use upload::{
    abort_incomplete_uploads, delete_object, delete_single_object, list_incomplete_uploads, put_small_object,
    upload_stream, IncompleteUpload, UploadOptions, UploadSummary,
};
