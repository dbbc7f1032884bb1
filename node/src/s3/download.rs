//! Download of an object as an ordered stream of chunks, fetched with parallel ranged GETs.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::error::{classify, error_chain, Failure, Operation, S3Error, Target, TransientFailure};
use super::part_size::MIB;
use super::retry::{attempt_timed_out, with_retries, Retrier, TaskHandle};
use super::settings::S3Client;
use super::sidecar::{sidecar_key, Sidecar};

/// The largest sidecar [`read_sidecar`] accepts.
const MAX_SIDECAR_SIZE: u64 = MIB;

/// Tuning of one download.
#[derive(Clone, Debug)]
pub struct DownloadOptions {
    /// Ranges fetched at the same time (at least 1). Memory use is about
    /// `(concurrency + 1) × range_size`.
    pub concurrency: usize,
    /// Bytes per ranged GET; a multiple of the upload's part size keeps ranges aligned with parts.
    pub range_size: u64,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions { concurrency: 6, range_size: 8 * MIB }
    }
}

/// What HEAD tells about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: Option<SystemTime>,
}

/// An object being downloaded: its [`ObjectInfo`] and a stream of its bytes, in order, as chunks
/// of at most `range_size` bytes. The stream ends after the first error. Dropping it cancels the
/// requests in flight.
pub struct ObjectDownload {
    info: ObjectInfo,
    chunks: BoxStream<'static, Result<Bytes, S3Error>>,
    received: u64,
    started: Instant,
    finished: bool,
    span: tracing::Span,
}

impl ObjectDownload {
    pub fn info(&self) -> &ObjectInfo {
        &self.info
    }

    /// Bytes yielded so far.
    pub fn received(&self) -> u64 {
        self.received
    }
}

impl std::fmt::Debug for ObjectDownload {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ObjectDownload")
            .field("info", &self.info)
            .field("received", &self.received)
            .field("finished", &self.finished)
            .finish()
    }
}

impl Stream for ObjectDownload {
    type Item = Result<Bytes, S3Error>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        match this.chunks.poll_next_unpin(context) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                this.received += chunk.len() as u64;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.finished = true;
                this.span.in_scope(|| {
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        received = this.received,
                        "download failed"
                    )
                });
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => {
                this.finished = true;
                let duration = this.started.elapsed();
                this.span.in_scope(|| {
                    tracing::info!(
                        bytes = this.received,
                        duration_ms = duration.as_millis() as u64,
                        mib_per_second = this.received as f64 / duration.as_secs_f64().max(1e-9) / (1024.0 * 1024.0),
                        "downloaded"
                    )
                });
                Poll::Ready(None)
            }
        }
    }
}

/// Looks up `s3://bucket/key`; tells a missing bucket from a missing key.
pub async fn head_object(client: &S3Client, bucket: &str, key: &str) -> Result<ObjectInfo, S3Error> {
    let target = Target::new(Operation::HeadObject, bucket, key);
    let result = with_retries(client, &target, Duration::ZERO, |_| {
        let request = client.sdk.head_object().bucket(bucket).key(key);
        let target = &target;
        async move { request.send().await.map_err(|error| classify(error, target)) }
    })
    .await;
    let output = match result {
        Ok(output) => output,
        // HEAD answers have no body, so a missing bucket looks like a missing key.
        Err(S3Error::NoSuchKey { .. }) => {
            return match check_bucket(client, bucket).await {
                Err(S3Error::NoSuchBucket { .. }) => Err(target.no_such_bucket()),
                _ => Err(target.no_such_key()),
            }
        }
        Err(error) => return Err(error),
    };
    let size = output
        .content_length()
        .and_then(|length| u64::try_from(length).ok())
        .ok_or_else(|| target.request("the answer has no valid Content-Length"))?;
    Ok(ObjectInfo {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        size,
        etag: output.e_tag().map(str::to_owned),
        last_modified: output.last_modified().and_then(|time| SystemTime::try_from(*time).ok()),
    })
}

/// Checks that `bucket` exists and the credentials may use it (HeadBucket).
pub async fn check_bucket(client: &S3Client, bucket: &str) -> Result<(), S3Error> {
    let target = Target::new(Operation::HeadBucket, bucket, "");
    with_retries(client, &target, Duration::ZERO, |_| {
        let request = client.sdk.head_bucket().bucket(bucket);
        let target = &target;
        async move { request.send().await.map(|_| ()).map_err(|error| classify(error, target)) }
    })
    .await
}

impl S3Client {
    /// Checks that `bucket` exists and the credentials may use it: a quick way to report a wrong
    /// endpoint, wrong credentials or a missing bucket at startup.
    pub async fn check_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        check_bucket(self, bucket).await
    }
}

/// Downloads `s3://bucket/key`: a HEAD (errors such as a missing key are returned here), then
/// ranged GETs of `options.range_size` bytes, `options.concurrency` at a time in background
/// tasks, yielded strictly in order. Each range is retried on transient errors, resuming after
/// the bytes already received, and pinned to the object's ETag so a replaced object is detected.
pub async fn download_stream(
    client: &S3Client,
    bucket: &str,
    key: &str,
    options: &DownloadOptions,
) -> Result<ObjectDownload, S3Error> {
    let span = tracing::info_span!("s3_download", bucket = %bucket, key = %key);
    let info = head_object(client, bucket, key).instrument(span.clone()).await?;
    span.in_scope(|| tracing::debug!(size = info.size, etag = ?info.etag, "object found"));
    let range_size = options.range_size.max(1);
    let ranges = (0..info.size.div_ceil(range_size))
        .map(move |index| index * range_size)
        .map(move |start| (start, range_size.min(info.size - start)));
    let source = Arc::new(RangeSource {
        client: client.clone(),
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        etag: info.etag.clone(),
    });
    let parent = span.clone();
    let chunks = stream::iter(ranges)
        .map(move |(start, length)| {
            let source = Arc::clone(&source);
            let target = Target::new(Operation::GetObject, &source.bucket, &source.key);
            let range_span = tracing::debug_span!(parent: &parent, "s3_get_range", start, length);
            TaskHandle::spawn(target, async move { source.fetch(start, length).await }.instrument(range_span))
        })
        .buffered(options.concurrency.max(1))
        .boxed();
    Ok(ObjectDownload { info, chunks, received: 0, started: Instant::now(), finished: false, span })
}

/// The object the ranges of one download come from.
struct RangeSource {
    client: S3Client,
    bucket: String,
    key: String,
    etag: Option<String>,
}

impl RangeSource {
    /// Fetches `length` bytes from `start`, retrying and resuming on transient errors.
    async fn fetch(&self, start: u64, length: u64) -> Result<Bytes, S3Error> {
        let target = Target::new(Operation::GetObject, &self.bucket, &self.key);
        let started = Instant::now();
        let mut buffer = BytesMut::with_capacity(length as usize);
        let mut retrier = Retrier::new(&self.client, &target, self.client.body_allowance(length));
        loop {
            let (_, timeout) = retrier.begin();
            let failure =
                match tokio::time::timeout(timeout, self.fetch_into(&target, start, length, &mut buffer)).await {
                    Ok(Ok(())) => {
                        tracing::debug!(duration_ms = started.elapsed().as_millis() as u64, "range downloaded");
                        return Ok(buffer.freeze());
                    }
                    Ok(Err(Failure::Permanent(error))) => return Err(error),
                    Ok(Err(Failure::Transient(failure))) => failure,
                    Err(_) => attempt_timed_out(timeout),
                };
            retrier.pause(failure).await?;
        }
    }

    /// One attempt: GETs the bytes of the range not yet in `buffer` and appends them.
    async fn fetch_into(&self, target: &Target, start: u64, length: u64, buffer: &mut BytesMut) -> Result<(), Failure> {
        let first = start + buffer.len() as u64;
        let last = start + length - 1;
        let output = self
            .client
            .sdk
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .range(format!("bytes={first}-{last}"))
            .set_if_match(self.etag.clone())
            .send()
            .await
            .map_err(|error| match classify(error, target) {
                Failure::Permanent(S3Error::Service { status: 412, .. }) => {
                    Failure::Permanent(S3Error::ObjectChanged {
                        bucket: self.bucket.clone(),
                        key: self.key.clone(),
                        etag: self.etag.clone().unwrap_or_default(),
                    })
                }
                failure => failure,
            })?;
        let expected = last - first + 1;
        if let Some(answered) = output.content_length() {
            if u64::try_from(answered).ok() != Some(expected) {
                return Err(Failure::Permanent(target.request(format!(
                    "asked for bytes {first}-{last} ({expected} bytes), the store answered {answered} bytes \
                     (does it support ranged GETs?)"
                ))));
            }
        }
        let mut body = output.body;
        loop {
            match body.try_next().await {
                Ok(Some(chunk)) => {
                    if buffer.len() + chunk.len() > length as usize {
                        return Err(Failure::Permanent(
                            target.request(format!("the store sent more than the {expected} bytes asked for")),
                        ));
                    }
                    buffer.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) => {
                    return Err(Failure::Transient(TransientFailure {
                        detail: format!(
                            "reading bytes {first}-{last} failed after {} bytes: {}",
                            buffer.len() as u64 + start - first,
                            error_chain(&error)
                        ),
                        connect: false,
                    }))
                }
            }
        }
        if (buffer.len() as u64) < length {
            return Err(Failure::transient(format!(
                "the answer for bytes {first}-{last} ended after {} bytes",
                start + buffer.len() as u64 - first
            )));
        }
        Ok(())
    }
}

/// Reads the sidecar `<key>.meta.json` of the data object `s3://bucket/key`; `None` when there
/// is none.
pub async fn read_sidecar<M: DeserializeOwned>(
    client: &S3Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Sidecar<M>>, S3Error> {
    let sidecar = sidecar_key(key);
    let Some(body) = get_whole(client, &Target::new(Operation::GetSidecar, bucket, &sidecar), MAX_SIDECAR_SIZE).await?
    else {
        return Ok(None);
    };
    serde_json::from_slice(&body).map(Some).map_err(|source| S3Error::Sidecar {
        operation: Operation::GetSidecar,
        bucket: bucket.to_owned(),
        key: sidecar,
        source,
    })
}

/// Reads the whole of a small object `s3://bucket/key` (a manifest, say), retried as every
/// request is: a `503 SlowDown` or a reset is not the answer. `None` when there is none; an
/// object larger than `max_bytes` is refused.
pub async fn get_small_object(
    client: &S3Client,
    bucket: &str,
    key: &str,
    max_bytes: u64,
) -> Result<Option<Bytes>, S3Error> {
    get_whole(client, &Target::new(Operation::GetObject, bucket, key), max_bytes).await
}

async fn get_whole(client: &S3Client, target: &Target, max_bytes: u64) -> Result<Option<Bytes>, S3Error> {
    let result = with_retries(client, target, client.body_allowance(max_bytes), |_| {
        let request = client.sdk.get_object().bucket(&target.bucket).key(&target.key);
        async move {
            let output = request.send().await.map_err(|error| classify(error, target))?;
            if output.content_length().is_some_and(|length| length as u64 > max_bytes) {
                return Err(Failure::Permanent(target.request(format!("the object is larger than {max_bytes} bytes"))));
            }
            let body =
                output.body.collect().await.map_err(|error| {
                    Failure::transient(format!("reading the object failed: {}", error_chain(&error)))
                })?;
            Ok(body.into_bytes())
        }
    })
    .await;
    match result {
        Ok(body) => Ok(Some(body)),
        Err(S3Error::NoSuchKey { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// An object listed under a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    pub size: u64,
    pub last_modified: Option<SystemTime>,
    pub etag: Option<String>,
}

/// Lists the objects whose keys start with `prefix` (sidecars included), in key order.
pub async fn list_objects(client: &S3Client, bucket: &str, prefix: &str) -> Result<Vec<ObjectSummary>, S3Error> {
    let target = Target::new(Operation::ListObjects, bucket, prefix);
    let mut objects = Vec::new();
    let mut continuation: Option<String> = None;
    loop {
        let page = with_retries(client, &target, Duration::ZERO, |_| {
            let request =
                client.sdk.list_objects_v2().bucket(bucket).prefix(prefix).set_continuation_token(continuation.clone());
            let target = &target;
            async move { request.send().await.map_err(|error| classify(error, target)) }
        })
        .await?;
        for object in page.contents() {
            if let Some(key) = object.key() {
                objects.push(ObjectSummary {
                    key: key.to_owned(),
                    size: object.size().and_then(|size| u64::try_from(size).ok()).unwrap_or(0),
                    last_modified: object.last_modified().and_then(|time| SystemTime::try_from(*time).ok()),
                    etag: object.e_tag().map(str::to_owned),
                });
            }
        }
        continuation = page.next_continuation_token().map(str::to_owned);
        if page.is_truncated() != Some(true) || continuation.is_none() {
            return Ok(objects);
        }
    }
}
