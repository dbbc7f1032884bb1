//! Streaming upload of an object of unknown length, published atomically with its sidecar.
//!
//! See the [module documentation](super) for the publication protocol.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};
use serde::Serialize;
use tracing::Instrument;

use super::download::head_object;
use super::error::{classify, BoxError, Operation, S3Error, Target};
use super::part_size::{part_size, DEFAULT_INITIAL_PART_SIZE, MAX_PARTS};
use super::retry::{with_retries, TaskHandle};
use super::settings::S3Client;
use super::sidecar::{sidecar_key, Sidecar, SIDECAR_VERSION};

/// How long a cleanup that failed while the upload ended keeps retrying in the background.
const BACKGROUND_CLEANUP_WINDOW: Duration = Duration::from_secs(300);

/// Tuning of one upload.
#[derive(Clone, Debug)]
pub struct UploadOptions {
    /// Parts uploaded at the same time (at least 1). Memory use is about
    /// `(concurrency + 1) × part size`.
    pub concurrency: usize,
    /// The size of the first part; later parts grow (see [`super::part_size`]). A stream shorter
    /// than this is sent with a single PutObject.
    pub initial_part_size: u64,
    /// The `Content-Type` of the data object.
    pub content_type: String,
    /// Write the sidecar `<key>.meta.json` before publishing the object.
    pub sidecar: bool,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            concurrency: 4,
            initial_part_size: DEFAULT_INITIAL_PART_SIZE,
            content_type: "application/octet-stream".to_owned(),
            sidecar: true,
        }
    }
}

/// What a successful upload did.
#[derive(Clone, Debug)]
pub struct UploadSummary {
    pub bucket: String,
    pub key: String,
    /// Bytes in the object.
    pub bytes: u64,
    /// Parts of the multipart upload; 1 when the object was sent with a single PutObject.
    pub parts: u32,
    /// Whether a multipart upload was used.
    pub multipart: bool,
    /// From the first byte read to the object's publication.
    pub duration: Duration,
    /// The ETag of the published object, as the store returned it.
    pub etag: Option<String>,
    /// The key of the sidecar, when one was written.
    pub sidecar_key: Option<String>,
}

impl UploadSummary {
    /// Average rate over the whole upload, in bytes per second.
    pub fn bytes_per_second(&self) -> f64 {
        self.bytes as f64 / self.duration.as_secs_f64().max(1e-9)
    }
}

/// Uploads the byte chunks of `chunks` to `s3://bucket/key` and publishes the object once the
/// stream has ended and `metadata` has resolved.
///
/// - The object is sent as a multipart upload of growing parts, `options.concurrency` parts at a
///   time; memory stays bounded by a few parts whatever the length of the stream.
/// - `metadata` is awaited only after the stream has ended; its value (anything serializable,
///   such as a checksum, a size and a key count) goes into the sidecar `<key>.meta.json`, written
///   before the object becomes visible. The end of the stream counts as complete only when
///   `metadata` resolves `Ok`: a producer that dies drops its sender, and the upload is aborted.
/// - On any failure (an error of the stream or of `metadata`, an S3 error after retries) the
///   multipart upload is aborted and the sidecar deleted before the error is returned, so nothing
///   appears under `key`. If the returned future is dropped before it completes, the same cleanup
///   runs in a background task.
///
/// A `tokio::sync::mpsc::Receiver<Result<Bytes, E>>` fed by the producer becomes such a stream
/// with `futures::stream::poll_fn(move |context| receiver.poll_recv(context))`, and a
/// `tokio::sync::oneshot::Receiver<M>` is a valid `metadata`.
pub async fn upload_stream<S, E, F, M, ME>(
    client: &S3Client,
    bucket: &str,
    key: &str,
    chunks: S,
    metadata: F,
    options: &UploadOptions,
) -> Result<UploadSummary, S3Error>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Into<BoxError>,
    F: Future<Output = Result<M, ME>>,
    M: Serialize,
    ME: Into<BoxError>,
{
    let span = tracing::info_span!("s3_upload", bucket = %bucket, key = %key);
    let mut upload = Upload {
        client: client.clone(),
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        options: options.clone(),
        started: Instant::now(),
        cleanup: Cleanup::new(client, bucket, key),
        in_flight: FuturesUnordered::new(),
        completed: Vec::new(),
        next_part: 1,
        bytes_read: 0,
    };
    async move {
        match upload.run(chunks, metadata).await {
            Ok(summary) => {
                tracing::info!(
                    bytes = summary.bytes,
                    parts = summary.parts,
                    duration_ms = summary.duration.as_millis() as u64,
                    mib_per_second = summary.bytes_per_second() / (1024.0 * 1024.0),
                    "uploaded"
                );
                Ok(summary)
            }
            Err(error) => {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    bytes_read = upload.bytes_read,
                    "upload failed"
                );
                // Stop the parts still in flight before aborting the upload they belong to.
                let in_flight = std::mem::take(&mut upload.in_flight);
                for mut task in in_flight {
                    task.abort_and_wait().await;
                }
                if matches!(error, S3Error::Unreachable { .. }) {
                    // Retrying inline would only delay the error: clean up once the store is back.
                    upload.cleanup.run_in_background();
                } else {
                    upload.cleanup.run_now().await;
                }
                Err(error)
            }
        }
    }
    .instrument(span)
    .await
}

/// The state of one upload.
struct Upload {
    client: S3Client,
    bucket: String,
    key: String,
    options: UploadOptions,
    started: Instant,
    /// What must be undone if the upload does not complete; declared before `in_flight` so that
    /// when the upload is dropped midway the cleanup is scheduled and the part tasks aborted.
    cleanup: Cleanup,
    in_flight: FuturesUnordered<TaskHandle<CompletedPart>>,
    completed: Vec<CompletedPart>,
    next_part: u32,
    bytes_read: u64,
}

impl Upload {
    async fn run<S, E, F, M, ME>(&mut self, chunks: S, metadata: F) -> Result<UploadSummary, S3Error>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: Into<BoxError>,
        F: Future<Output = Result<M, ME>>,
        M: Serialize,
        ME: Into<BoxError>,
    {
        let mut chunks = std::pin::pin!(chunks);
        let mut buffer = BytesMut::new();
        loop {
            let item = if self.in_flight.is_empty() {
                chunks.next().await
            } else {
                // Watch the parts in flight while reading, so a failed part stops the upload early.
                tokio::select! {
                    biased;
                    Some(done) = self.in_flight.next() => {
                        self.completed.push(done?);
                        continue;
                    }
                    item = chunks.next() => item,
                }
            };
            match item {
                None => break,
                Some(Err(error)) => {
                    return Err(S3Error::InputStream {
                        bucket: self.bucket.clone(),
                        key: self.key.clone(),
                        bytes: self.bytes_read,
                        source: error.into(),
                    })
                }
                Some(Ok(chunk)) => {
                    self.bytes_read += chunk.len() as u64;
                    if buffer.is_empty() {
                        buffer.reserve(self.current_part_size());
                    }
                    buffer.extend_from_slice(&chunk);
                    while buffer.len() >= self.current_part_size() {
                        let part = buffer.split_to(self.current_part_size()).freeze();
                        self.send_part(part).await?;
                    }
                }
            }
        }

        // The last part goes out while the metadata is awaited.
        let multipart = self.cleanup.upload_id.is_some();
        if multipart && !buffer.is_empty() {
            self.send_part(buffer.split().freeze()).await?;
        }
        let metadata = metadata.await.map_err(|error| S3Error::Metadata {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            source: error.into(),
        })?;
        if !multipart {
            return self.put_single(buffer.freeze(), &metadata).await;
        }
        let parts = self.next_part - 1;
        let sidecar = self.sidecar_body(parts, &metadata)?;
        while let Some(done) = self.in_flight.next().await {
            self.completed.push(done?);
        }
        self.completed.sort_by_key(|part| part.part_number());
        if let Some(body) = sidecar {
            self.put_sidecar(body).await?;
        }
        let etag = self.complete().await?;
        self.cleanup.disarm();
        Ok(self.summary(parts, true, etag))
    }

    fn current_part_size(&self) -> usize {
        part_size(self.options.initial_part_size, self.next_part) as usize
    }

    fn target(&self, operation: Operation) -> Target {
        Target::new(operation, &self.bucket, &self.key)
    }

    /// Starts the upload of the next part once fewer than `concurrency` parts are in flight.
    async fn send_part(&mut self, body: Bytes) -> Result<(), S3Error> {
        if self.next_part > MAX_PARTS {
            return Err(S3Error::TooManyParts {
                bucket: self.bucket.clone(),
                key: self.key.clone(),
                bytes: self.bytes_read,
                max_parts: MAX_PARTS,
            });
        }
        let upload_id = match &self.cleanup.upload_id {
            Some(upload_id) => upload_id.clone(),
            None => self.create().await?,
        };
        while self.in_flight.len() >= self.options.concurrency.max(1) {
            if let Some(done) = self.in_flight.next().await {
                self.completed.push(done?);
            }
        }
        let part_number = self.next_part;
        self.next_part += 1;
        let span = tracing::debug_span!("s3_upload_part", part_number, size = body.len());
        let task =
            upload_part(self.client.clone(), self.bucket.clone(), self.key.clone(), upload_id, part_number, body);
        self.in_flight.push(TaskHandle::spawn(self.target(Operation::UploadPart(part_number)), task.instrument(span)));
        Ok(())
    }

    async fn create(&mut self) -> Result<String, S3Error> {
        let target = self.target(Operation::CreateMultipartUpload);
        let output = with_retries(&self.client, &target, Duration::ZERO, |_| {
            let request = self
                .client
                .sdk
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type(&self.options.content_type);
            let target = &target;
            async move { request.send().await.map_err(|error| classify(error, target)) }
        })
        .await?;
        let upload_id = output.upload_id.ok_or_else(|| target.request("the answer has no upload id"))?;
        tracing::debug!(upload_id = %upload_id, "multipart upload started");
        self.cleanup.upload_id = Some(upload_id.clone());
        Ok(upload_id)
    }

    fn sidecar_body<M: Serialize>(&self, parts: u32, metadata: &M) -> Result<Option<Bytes>, S3Error> {
        if !self.options.sidecar {
            return Ok(None);
        }
        let sidecar =
            Sidecar { version: SIDECAR_VERSION, object_key: self.key.clone(), size: self.bytes_read, parts, metadata };
        serde_json::to_vec_pretty(&sidecar).map(|body| Some(Bytes::from(body))).map_err(|source| S3Error::Sidecar {
            operation: Operation::PutSidecar,
            bucket: self.bucket.clone(),
            key: sidecar_key(&self.key),
            source,
        })
    }

    async fn put_sidecar(&mut self, body: Bytes) -> Result<(), S3Error> {
        let key = sidecar_key(&self.key);
        // From here on a failure must also delete the sidecar (it may exist after a timeout).
        self.cleanup.sidecar_key = Some(key.clone());
        put_object(&self.client, &Target::new(Operation::PutSidecar, &self.bucket, &key), body, "application/json")
            .await?;
        tracing::debug!(sidecar = %key, "sidecar written");
        Ok(())
    }

    /// A stream shorter than one part: the sidecar, then the object with one PutObject.
    async fn put_single<M: Serialize>(&mut self, body: Bytes, metadata: &M) -> Result<UploadSummary, S3Error> {
        if let Some(sidecar) = self.sidecar_body(1, metadata)? {
            self.put_sidecar(sidecar).await?;
        }
        let etag =
            put_object(&self.client, &self.target(Operation::PutObject), body, &self.options.content_type).await?;
        self.cleanup.disarm();
        Ok(self.summary(1, false, etag))
    }

    /// CompleteMultipartUpload. When an attempt failed in a way that leaves its outcome unknown
    /// and the retry finds the upload gone, the first attempt did complete it: the object is
    /// checked (size) and taken as published.
    async fn complete(&mut self) -> Result<Option<String>, S3Error> {
        let target = self.target(Operation::CompleteMultipartUpload);
        let upload_id = self.cleanup.upload_id.clone().unwrap_or_default();
        let parts = CompletedMultipartUpload::builder().set_parts(Some(self.completed.clone())).build();
        // Completing takes longer for more parts.
        let allowance = Duration::from_millis(50) * self.completed.len() as u32;
        let outcome = with_retries(&self.client, &target, allowance, |attempt| {
            let request = self
                .client
                .sdk
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(&upload_id)
                .multipart_upload(parts.clone());
            let target = &target;
            async move {
                match request.send().await {
                    Ok(output) => Ok(Some(output.e_tag)),
                    Err(error) => {
                        let gone = error.as_service_error().and_then(|service| {
                            aws_sdk_s3::error::ProvideErrorMetadata::code(service).map(|code| code == "NoSuchUpload")
                        });
                        if attempt > 1 && gone == Some(true) {
                            Ok(None)
                        } else {
                            Err(classify(error, target))
                        }
                    }
                }
            }
        })
        .await?;
        match outcome {
            Some(etag) => Ok(etag),
            None => {
                let info = head_object(&self.client, &self.bucket, &self.key).await?;
                if info.size != self.bytes_read {
                    return Err(target.request(format!(
                        "the upload vanished and the object under the key has {} bytes instead of {}",
                        info.size, self.bytes_read
                    )));
                }
                tracing::debug!("an earlier attempt completed the upload");
                Ok(info.etag)
            }
        }
    }

    fn summary(&self, parts: u32, multipart: bool, etag: Option<String>) -> UploadSummary {
        UploadSummary {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            bytes: self.bytes_read,
            parts,
            multipart,
            duration: self.started.elapsed(),
            etag,
            sidecar_key: self.options.sidecar.then(|| sidecar_key(&self.key)),
        }
    }
}

async fn upload_part(
    client: S3Client,
    bucket: String,
    key: String,
    upload_id: String,
    part_number: u32,
    body: Bytes,
) -> Result<CompletedPart, S3Error> {
    let target = Target::new(Operation::UploadPart(part_number), &bucket, &key);
    let started = Instant::now();
    let size = body.len();
    let output = with_retries(&client, &target, client.body_allowance(size as u64), |_| {
        let request = client
            .sdk
            .upload_part()
            .bucket(&bucket)
            .key(&key)
            .upload_id(&upload_id)
            .part_number(part_number as i32)
            .content_length(size as i64)
            .body(ByteStream::from(body.clone()));
        let target = &target;
        let sign_payload = client.shared.sign_payload;
        async move {
            let request = request.customize();
            let request = if sign_payload { request } else { request.disable_payload_signing() };
            request.send().await.map_err(|error| classify(error, target))
        }
    })
    .await?;
    tracing::debug!(size, duration_ms = started.elapsed().as_millis() as u64, "part uploaded");
    Ok(CompletedPart::builder().part_number(part_number as i32).set_e_tag(output.e_tag).build())
}

/// PutObject of a small body; returns the ETag.
async fn put_object(
    client: &S3Client,
    target: &Target,
    body: Bytes,
    content_type: &str,
) -> Result<Option<String>, S3Error> {
    let size = body.len();
    let output = with_retries(client, target, client.body_allowance(size as u64), |_| {
        let request = client
            .sdk
            .put_object()
            .bucket(&target.bucket)
            .key(&target.key)
            .content_type(content_type)
            .content_length(size as i64)
            .body(ByteStream::from(body.clone()));
        let sign_payload = client.shared.sign_payload;
        async move {
            let request = request.customize();
            let request = if sign_payload { request } else { request.disable_payload_signing() };
            request.send().await.map_err(|error| classify(error, target))
        }
    })
    .await?;
    Ok(output.e_tag)
}

/// What must be undone when an upload does not complete: the multipart upload to abort and the
/// sidecar to delete. Armed until the object is published; if dropped armed (the upload future
/// was cancelled), the cleanup runs in a background task.
struct Cleanup {
    client: S3Client,
    bucket: String,
    key: String,
    upload_id: Option<String>,
    sidecar_key: Option<String>,
    armed: bool,
}

impl Cleanup {
    fn new(client: &S3Client, bucket: &str, key: &str) -> Self {
        Cleanup {
            client: client.clone(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id: None,
            sidecar_key: None,
            armed: true,
        }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }

    fn take_work(&mut self) -> Option<CleanupWork> {
        if !self.armed || (self.upload_id.is_none() && self.sidecar_key.is_none()) {
            self.armed = false;
            return None;
        }
        self.armed = false;
        Some(CleanupWork {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            upload_id: self.upload_id.take(),
            sidecar_key: self.sidecar_key.take(),
        })
    }

    /// Undoes the upload in a background task.
    fn run_in_background(&mut self) {
        if let Some(work) = self.take_work() {
            work.spawn_retries();
        }
    }

    /// Undoes the upload now (with the usual retries); what still fails is retried in the
    /// background.
    async fn run_now(&mut self) {
        if let Some(mut work) = self.take_work() {
            if !work.run().await {
                work.spawn_retries();
            }
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(work) = self.take_work() {
            tracing::info!(
                bucket = %work.bucket,
                key = %work.key,
                "upload dropped before completion; aborting it in the background"
            );
            work.spawn_retries();
        }
    }
}

struct CleanupWork {
    client: S3Client,
    bucket: String,
    key: String,
    upload_id: Option<String>,
    sidecar_key: Option<String>,
}

impl CleanupWork {
    /// One round of cleanup; returns whether everything is undone. What succeeded is forgotten.
    async fn run(&mut self) -> bool {
        if let Some(sidecar) = &self.sidecar_key {
            let target = Target::new(Operation::DeleteSidecar, &self.bucket, sidecar);
            match delete_object_once(&self.client, &target).await {
                Ok(()) => self.sidecar_key = None,
                Err(error) => tracing::warn!(error = &error as &dyn std::error::Error, "unable to delete the sidecar"),
            }
        }
        if let Some(upload_id) = &self.upload_id {
            let target = Target::new(Operation::AbortMultipartUpload, &self.bucket, &self.key);
            match abort_upload(&self.client, &target, upload_id).await {
                Ok(()) => {
                    tracing::debug!(upload_id = %upload_id, "multipart upload aborted");
                    self.upload_id = None;
                }
                Err(error) => tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    upload_id = %upload_id,
                    "unable to abort the multipart upload; its parts stay invisible until it is aborted \
                     (abort_incomplete_uploads or a lifecycle rule)"
                ),
            }
        }
        self.sidecar_key.is_none() && self.upload_id.is_none()
    }

    /// Retries the cleanup in a background task for a while (the endpoint may come back).
    fn spawn_retries(mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(bucket = %self.bucket, key = %self.key, upload_id = ?self.upload_id, "no runtime to abort the upload");
            return;
        };
        runtime.spawn(async move {
            let deadline = Instant::now() + BACKGROUND_CLEANUP_WINDOW;
            let mut pause = Duration::from_millis(500);
            loop {
                if self.run().await {
                    return;
                }
                if Instant::now() + pause > deadline {
                    tracing::warn!(bucket = %self.bucket, key = %self.key, upload_id = ?self.upload_id, "gave up cleaning up the upload");
                    return;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(30));
            }
        });
    }
}

async fn abort_upload(client: &S3Client, target: &Target, upload_id: &str) -> Result<(), S3Error> {
    let result = with_retries(client, target, Duration::ZERO, |_| {
        let request = client.sdk.abort_multipart_upload().bucket(&target.bucket).key(&target.key).upload_id(upload_id);
        async move { request.send().await.map(|_| ()).map_err(|error| classify(error, target)) }
    })
    .await;
    match result {
        // Already gone (aborted by an earlier round whose answer was lost).
        Err(S3Error::Service { code, .. }) if code == "NoSuchUpload" => Ok(()),
        Err(S3Error::NoSuchKey { .. }) => Ok(()),
        other => other,
    }
}

async fn delete_object_once(client: &S3Client, target: &Target) -> Result<(), S3Error> {
    with_retries(client, target, Duration::ZERO, |_| {
        let request = client.sdk.delete_object().bucket(&target.bucket).key(&target.key);
        async move { request.send().await.map(|_| ()).map_err(|error| classify(error, target)) }
    })
    .await
}

/// Writes a small object (a manifest) in one PutObject, retried on transient errors. A single
/// PUT is atomic: the object exists whole or not at all.
pub async fn put_small_object(
    client: &S3Client,
    bucket: &str,
    key: &str,
    body: Bytes,
    content_type: &str,
) -> Result<(), S3Error> {
    let target = Target::new(Operation::PutObject, bucket, key);
    let allowance = client.body_allowance(body.len() as u64);
    with_retries(client, &target, allowance, |_| {
        let request = client
            .sdk
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body.clone()));
        let target = &target;
        async move { request.send().await.map(|_| ()).map_err(|error| classify(error, target)) }
    })
    .await
}

/// Deletes one object; a missing object is not an error.
pub async fn delete_single_object(client: &S3Client, bucket: &str, key: &str) -> Result<(), S3Error> {
    delete_object_once(client, &Target::new(Operation::DeleteObject, bucket, key)).await
}

/// Deletes the data object `s3://bucket/key` and then its sidecar (so a data object never
/// exists without its sidecar). Missing objects are not an error.
pub async fn delete_object(client: &S3Client, bucket: &str, key: &str) -> Result<(), S3Error> {
    delete_object_once(client, &Target::new(Operation::DeleteObject, bucket, key)).await?;
    delete_object_once(client, &Target::new(Operation::DeleteSidecar, bucket, &sidecar_key(key))).await
}

/// A multipart upload that was never completed nor aborted.
#[derive(Clone, Debug)]
pub struct IncompleteUpload {
    pub key: String,
    pub upload_id: String,
    pub initiated: Option<std::time::SystemTime>,
}

/// Lists the multipart uploads in progress under `prefix` (for example the leftovers of a node
/// that crashed while uploading).
pub async fn list_incomplete_uploads(
    client: &S3Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<IncompleteUpload>, S3Error> {
    let target = Target::new(Operation::ListMultipartUploads, bucket, prefix);
    let mut uploads = Vec::new();
    let mut key_marker: Option<String> = None;
    let mut upload_id_marker: Option<String> = None;
    loop {
        let page = with_retries(client, &target, Duration::ZERO, |_| {
            let request = client
                .sdk
                .list_multipart_uploads()
                .bucket(bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(upload_id_marker.clone());
            let target = &target;
            async move { request.send().await.map_err(|error| classify(error, target)) }
        })
        .await?;
        for upload in page.uploads() {
            if let (Some(key), Some(upload_id)) = (upload.key(), upload.upload_id()) {
                uploads.push(IncompleteUpload {
                    key: key.to_owned(),
                    upload_id: upload_id.to_owned(),
                    initiated: upload.initiated().and_then(|time| std::time::SystemTime::try_from(*time).ok()),
                });
            }
        }
        if page.is_truncated() != Some(true) {
            return Ok(uploads);
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        upload_id_marker = page.next_upload_id_marker().map(str::to_owned);
        if key_marker.is_none() && upload_id_marker.is_none() {
            return Ok(uploads);
        }
    }
}

/// Aborts the multipart uploads under `prefix` that were started more than `older_than` ago;
/// returns how many were aborted. Uploads of live writers are younger than `older_than`.
pub async fn abort_incomplete_uploads(
    client: &S3Client,
    bucket: &str,
    prefix: &str,
    older_than: Duration,
) -> Result<usize, S3Error> {
    let now = std::time::SystemTime::now();
    let mut aborted = 0;
    for upload in list_incomplete_uploads(client, bucket, prefix).await? {
        let age = upload.initiated.and_then(|initiated| now.duration_since(initiated).ok()).unwrap_or(Duration::MAX);
        if age < older_than {
            continue;
        }
        let target = Target::new(Operation::AbortMultipartUpload, bucket, &upload.key);
        abort_upload(client, &target, &upload.upload_id).await?;
        tracing::info!(key = %upload.key, upload_id = %upload.upload_id, "aborted an incomplete multipart upload");
        aborted += 1;
    }
    Ok(aborted)
}
