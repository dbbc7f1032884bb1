//! The S3 transport against a real S3 server: a single-node Garage started by the testbed scripts
//! (see `garage/mod.rs`). Each test uses a bucket of its own; the test that kills Garage has a
//! Garage of its own.

mod garage;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrocache_node::s3::{
    abort_incomplete_uploads, delete_object, download_stream, get_small_object, head_object, list_incomplete_uploads,
    list_objects, put_small_object, read_sidecar, upload_stream, DownloadOptions, Operation, S3Client, S3Error,
    S3Settings, Sidecar, StaticCredentials, UploadOptions, UploadSummary,
};
use futures::{stream, Stream, StreamExt, TryStreamExt};
use garage::Garage;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

const MIB: usize = 1024 * 1024;
const KEY: &str = "cluster-a/node-0/dump.rdb";

static CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

/// What the snapshot code records at the end of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SnapshotMetadata {
    crc64: String,
    size: u64,
    keys: u64,
}

fn random_bytes(length: usize, seed: u64) -> Bytes {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut data = vec![0u8; length];
    rng.fill(&mut data);
    Bytes::from(data)
}

/// `data` cut into chunks of odd sizes between 1 byte and about 300 KiB.
fn odd_chunks(data: &Bytes, seed: u64) -> Vec<Bytes> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut chunks = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        let length = (rng.usize(0..300_000) | 1).min(data.len() - offset);
        chunks.push(data.slice(offset..offset + length));
        offset += length;
    }
    chunks
}

fn ok_stream(chunks: Vec<Bytes>) -> impl Stream<Item = Result<Bytes, io::Error>> + Send {
    stream::iter(chunks.into_iter().map(Ok))
}

fn metadata_of(data: &[u8]) -> SnapshotMetadata {
    SnapshotMetadata { crc64: format!("{:016x}", CRC64.checksum(data)), size: data.len() as u64, keys: 42 }
}

fn ready_metadata(data: &[u8]) -> impl std::future::Future<Output = Result<SnapshotMetadata, io::Error>> {
    std::future::ready(Ok(metadata_of(data)))
}

fn options_with_parts_of(part_size: usize) -> UploadOptions {
    UploadOptions { initial_part_size: part_size as u64, ..UploadOptions::default() }
}

async fn download_all(client: &S3Client, bucket: &str, key: &str, options: &DownloadOptions) -> Vec<u8> {
    let mut download = download_stream(client, bucket, key, options).await.expect("start the download");
    let mut received = Vec::with_capacity(download.info().size as usize);
    while let Some(chunk) = download.try_next().await.expect("download a chunk") {
        assert!(chunk.len() as u64 <= options.range_size, "chunks are at most one range");
        received.extend_from_slice(&chunk);
    }
    received
}

fn assert_same_bytes(received: &[u8], expected: &[u8]) {
    assert_eq!(received.len(), expected.len(), "downloaded length");
    if let Some(offset) = received.iter().zip(expected).position(|(a, b)| a != b) {
        panic!("downloaded bytes differ from byte {offset} on");
    }
}

/// Asserts that nothing is left under `key`: no object, no sidecar, no upload in progress.
async fn assert_nothing_under(client: &S3Client, bucket: &str, key: &str) {
    match head_object(client, bucket, key).await {
        Err(S3Error::NoSuchKey { .. }) => {}
        other => panic!("expected no object under {key}, got {other:?}"),
    }
    let sidecar = read_sidecar::<serde_json::Value>(client, bucket, key).await.expect("look for the sidecar");
    assert!(sidecar.is_none(), "a sidecar is left: {sidecar:?}");
    let objects = list_objects(client, bucket, "").await.expect("list objects");
    assert!(objects.is_empty(), "objects are left: {objects:?}");
    let uploads = list_incomplete_uploads(client, bucket, "").await.expect("list uploads");
    assert!(uploads.is_empty(), "multipart uploads are left: {uploads:?}");
}

/// Waits until the single multipart upload in `bucket` has at least `parts` parts stored.
async fn wait_for_parts(client: &S3Client, bucket: &str, parts: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let uploads = list_incomplete_uploads(client, bucket, "").await.expect("list uploads");
        if let [upload] = uploads.as_slice() {
            let listed = client
                .sdk()
                .list_parts()
                .bucket(bucket)
                .key(&upload.key)
                .upload_id(&upload.upload_id)
                .send()
                .await
                .expect("list parts");
            if listed.parts().len() >= parts {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the upload never had {parts} parts stored: {uploads:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until no multipart upload is left in `bucket`.
async fn wait_for_no_uploads(client: &S3Client, bucket: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let uploads = list_incomplete_uploads(client, bucket, "").await.expect("list uploads");
        if uploads.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "uploads still in progress after {within:?}: {uploads:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A stream fed through a channel, as the snapshot code feeds bytes read from its pipe.
fn channel_stream(
    mut receiver: mpsc::Receiver<Result<Bytes, io::Error>>,
) -> impl Stream<Item = Result<Bytes, io::Error>> {
    stream::poll_fn(move |context| receiver.poll_recv(context))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_odd_chunks_round_trips_through_parallel_ranged_gets() {
    let garage = Garage::shared();
    let client = garage.client().await;
    let bucket = garage.bucket(&client, "round-trip").await;
    let data = random_bytes(50 * MIB + 12_345, 1);

    // The checksum is computed while the stream is read and is ready when it ends.
    let digest = Arc::new(Mutex::new(CRC64.digest()));
    let chunks = {
        let digest = Arc::clone(&digest);
        ok_stream(odd_chunks(&data, 2)).inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                digest.lock().expect("digest lock").update(chunk);
            }
        })
    };
    let metadata = {
        let digest = Arc::clone(&digest);
        let size = data.len() as u64;
        async move {
            let crc64 = digest.lock().expect("digest lock").clone().finalize();
            Ok::<_, io::Error>(SnapshotMetadata { crc64: format!("{crc64:016x}"), size, keys: 42 })
        }
    };
    let options = UploadOptions { initial_part_size: 5 * MIB as u64, concurrency: 4, ..UploadOptions::default() };
    let summary = upload_stream(&client, &bucket, KEY, chunks, metadata, &options).await.expect("upload");
    assert_eq!(summary.bytes, data.len() as u64);
    assert_eq!(summary.parts, 11, "50 MiB and a bit in 5 MiB parts");
    assert!(summary.multipart);
    assert!(summary.etag.is_some());
    assert_eq!(summary.sidecar_key.as_deref(), Some("cluster-a/node-0/dump.rdb.meta.json"));

    let info = head_object(&client, &bucket, KEY).await.expect("head");
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(info.etag, summary.etag);

    // Many small ranges, many in flight.
    let small_ranges = DownloadOptions { concurrency: 8, range_size: MIB as u64 };
    assert_same_bytes(&download_all(&client, &bucket, KEY, &small_ranges).await, &data);
    // The defaults.
    assert_same_bytes(&download_all(&client, &bucket, KEY, &DownloadOptions::default()).await, &data);
    // A range size that is not aligned with the parts, one at a time.
    let unaligned = DownloadOptions { concurrency: 1, range_size: 3 * MIB as u64 + 7 };
    assert_same_bytes(&download_all(&client, &bucket, KEY, &unaligned).await, &data);

    let sidecar: Sidecar<SnapshotMetadata> =
        read_sidecar(&client, &bucket, KEY).await.expect("read the sidecar").expect("a sidecar was written");
    assert_eq!(sidecar.object_key, KEY);
    assert_eq!(sidecar.size, data.len() as u64);
    assert_eq!(sidecar.parts, 11);
    assert_eq!(sidecar.metadata, metadata_of(&data));
    wait_for_no_uploads(&client, &bucket, Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_object_and_its_sidecar_appear_only_when_the_upload_completes() {
    let garage = Garage::shared();
    // Unsigned payloads (CRC32 checksums only) take the same path.
    let client = S3Client::connect(&S3Settings { sign_payload: false, ..garage.settings() }).await.expect("client");
    let bucket = garage.bucket(&client, "visibility").await;
    let data = random_bytes(23 * MIB + 5, 3);

    let (sender, receiver) = mpsc::channel(4);
    let (metadata_sender, metadata_receiver) = oneshot::channel::<SnapshotMetadata>();
    let upload = {
        let (client, bucket) = (client.clone(), bucket.clone());
        tokio::spawn(async move {
            let options = options_with_parts_of(5 * MIB);
            upload_stream(&client, &bucket, KEY, channel_stream(receiver), metadata_receiver, &options).await
        })
    };

    // Three parts' worth: at least two parts are stored while the object stays invisible.
    let chunks = odd_chunks(&data, 4);
    let mut sent = 0;
    let mut chunks = chunks.into_iter();
    while sent < 15 * MIB {
        let chunk = chunks.next().expect("more data");
        sent += chunk.len();
        sender.send(Ok(chunk)).await.expect("the uploader reads");
    }
    wait_for_parts(&client, &bucket, 2).await;
    assert!(matches!(head_object(&client, &bucket, KEY).await, Err(S3Error::NoSuchKey { .. })));
    assert!(list_objects(&client, &bucket, "").await.expect("list").is_empty(), "nothing visible during the upload");

    // The stream ends, but the upload waits for the end-of-stream metadata.
    for chunk in chunks {
        sender.send(Ok(chunk)).await.expect("the uploader reads");
    }
    drop(sender);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!upload.is_finished(), "the upload cannot complete before its metadata");
    assert!(matches!(head_object(&client, &bucket, KEY).await, Err(S3Error::NoSuchKey { .. })));
    assert!(read_sidecar::<SnapshotMetadata>(&client, &bucket, KEY).await.expect("read").is_none());

    metadata_sender.send(metadata_of(&data)).expect("the uploader waits for metadata");
    let summary = upload.await.expect("upload task").expect("upload");
    assert_eq!(summary.bytes, data.len() as u64);
    assert_eq!(summary.parts, 5);
    assert_eq!(head_object(&client, &bucket, KEY).await.expect("head").size, data.len() as u64);
    let sidecar = read_sidecar::<SnapshotMetadata>(&client, &bucket, KEY).await.expect("read").expect("sidecar");
    assert_eq!(sidecar.metadata, metadata_of(&data));
    assert_same_bytes(&download_all(&client, &bucket, KEY, &DownloadOptions::default()).await, &data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_shorter_than_a_part_are_published_with_a_single_put() {
    let garage = Garage::shared();
    let client = garage.client().await;
    let bucket = garage.bucket(&client, "small").await;

    let data = random_bytes(1_000_003, 5);
    let summary: UploadSummary = upload_stream(
        &client,
        &bucket,
        KEY,
        ok_stream(odd_chunks(&data, 6)),
        ready_metadata(&data),
        &UploadOptions::default(),
    )
    .await
    .expect("upload");
    assert!(!summary.multipart);
    assert_eq!((summary.bytes, summary.parts), (data.len() as u64, 1));
    assert_same_bytes(&download_all(&client, &bucket, KEY, &DownloadOptions::default()).await, &data);
    let sidecar = read_sidecar::<SnapshotMetadata>(&client, &bucket, KEY).await.expect("read").expect("sidecar");
    assert_eq!((sidecar.size, sidecar.parts), (data.len() as u64, 1));

    // An empty stream is an empty object.
    let empty_key = "empty.rdb";
    let summary =
        upload_stream(&client, &bucket, empty_key, ok_stream(vec![]), ready_metadata(b""), &UploadOptions::default())
            .await
            .expect("upload an empty stream");
    assert_eq!(summary.bytes, 0);
    let mut download =
        download_stream(&client, &bucket, empty_key, &DownloadOptions::default()).await.expect("download");
    assert_eq!(download.info().size, 0);
    assert!(download.next().await.is_none(), "no chunk for an empty object");

    // Deleting removes the object and its sidecar.
    delete_object(&client, &bucket, KEY).await.expect("delete");
    delete_object(&client, &bucket, empty_key).await.expect("delete");
    assert_nothing_under(&client, &bucket, KEY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_stream_error_aborts_the_upload_and_leaves_nothing() {
    let garage = Garage::shared();
    let client = garage.client().await;
    let bucket = garage.bucket(&client, "input-error").await;

    let data = random_bytes(16 * MIB, 7);
    let chunks = ok_stream(odd_chunks(&data, 8))
        .chain(stream::once(async { Err(io::Error::other("the snapshot producer crashed")) }))
        .chain(ok_stream(vec![Bytes::from_static(b"never read")]));
    let error = upload_stream(&client, &bucket, KEY, chunks, ready_metadata(&data), &options_with_parts_of(5 * MIB))
        .await
        .expect_err("the upload must fail");
    match &error {
        S3Error::InputStream { bucket: failed_bucket, key, bytes, source } => {
            assert_eq!((failed_bucket.as_str(), key.as_str(), *bytes), (bucket.as_str(), KEY, data.len() as u64));
            assert_eq!(source.to_string(), "the snapshot producer crashed");
        }
        other => panic!("expected InputStream, got {other:?}"),
    }
    assert_eq!(error.reason(), "InputStreamFailed");
    assert_nothing_under(&client, &bucket, KEY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_ends_without_its_metadata_is_aborted() {
    let garage = Garage::shared();
    let client = garage.client().await;
    let bucket = garage.bucket(&client, "no-metadata").await;

    // The producer ends the stream but dies before sending the metadata: its sender is dropped.
    let data = random_bytes(12 * MIB, 9);
    let (metadata_sender, metadata_receiver) = oneshot::channel::<SnapshotMetadata>();
    drop(metadata_sender);
    let error = upload_stream(
        &client,
        &bucket,
        KEY,
        ok_stream(odd_chunks(&data, 10)),
        metadata_receiver,
        &options_with_parts_of(5 * MIB),
    )
    .await
    .expect_err("the upload must fail");
    assert!(matches!(error, S3Error::Metadata { .. }), "expected Metadata, got {error:?}");
    assert_nothing_under(&client, &bucket, KEY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_replaced_during_a_download_is_detected() {
    let garage = Garage::shared();
    let client = garage.client().await;
    let bucket = garage.bucket(&client, "replaced").await;
    let first = random_bytes(4 * MIB, 23);
    let second = random_bytes(4 * MIB, 24);
    upload_stream(
        &client,
        &bucket,
        KEY,
        ok_stream(vec![first.clone()]),
        ready_metadata(&first),
        &UploadOptions::default(),
    )
    .await
    .expect("upload the first version");

    // One range in flight: the second range is requested only after the first is taken.
    let options = DownloadOptions { concurrency: 1, range_size: MIB as u64 };
    let mut download = download_stream(&client, &bucket, KEY, &options).await.expect("download");
    let chunk = download.try_next().await.expect("first range").expect("a chunk");
    assert_eq!(chunk, first.slice(..MIB));
    upload_stream(
        &client,
        &bucket,
        KEY,
        ok_stream(vec![second.clone()]),
        ready_metadata(&second),
        &UploadOptions::default(),
    )
    .await
    .expect("replace the object");
    let mut error = None;
    while let Some(result) = download.next().await {
        if let Err(failure) = result {
            error = Some(failure);
        }
    }
    let error = error.expect("mixing two versions of the object must fail");
    assert!(matches!(error, S3Error::ObjectChanged { .. }), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_completion_removes_the_sidecar() {
    let garage = Garage::shared();
    let client = garage.client().await;
    let bucket = garage.bucket(&client, "failed-completion").await;
    let data = random_bytes(11 * MIB, 21);

    let (sender, receiver) = mpsc::channel(4);
    let (metadata_sender, metadata_receiver) = oneshot::channel::<SnapshotMetadata>();
    let upload = {
        let (client, bucket) = (client.clone(), bucket.clone());
        tokio::spawn(async move {
            let options = options_with_parts_of(5 * MIB);
            upload_stream(&client, &bucket, KEY, channel_stream(receiver), metadata_receiver, &options).await
        })
    };
    for chunk in odd_chunks(&data, 22) {
        sender.send(Ok(chunk)).await.expect("the uploader reads");
    }
    drop(sender);
    wait_for_parts(&client, &bucket, 3).await;

    // Someone else aborts the upload while it waits for its metadata: the completion fails after
    // the sidecar was written.
    let uploads = list_incomplete_uploads(&client, &bucket, "").await.expect("list uploads");
    let [upload_in_progress] = uploads.as_slice() else { panic!("one upload expected: {uploads:?}") };
    client
        .sdk()
        .abort_multipart_upload()
        .bucket(&bucket)
        .key(KEY)
        .upload_id(&upload_in_progress.upload_id)
        .send()
        .await
        .expect("abort from outside");
    metadata_sender.send(metadata_of(&data)).expect("the uploader waits for metadata");
    let error = upload.await.expect("upload task").expect_err("the completion must fail");
    assert!(
        matches!(&error, S3Error::Service { operation: Operation::CompleteMultipartUpload, code, .. } if code == "NoSuchUpload"),
        "{error:?}"
    );
    assert_nothing_under(&client, &bucket, KEY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_upload_midway_aborts_it() {
    let garage = Garage::shared();
    let client = garage.client().await;
    let bucket = garage.bucket(&client, "dropped").await;

    // An endless, slow stream: 1 MiB every 20 ms.
    let chunk = random_bytes(MIB, 11);
    let endless = stream::unfold(chunk, |chunk| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Some((Ok::<_, io::Error>(chunk.clone()), chunk))
    });
    let options = options_with_parts_of(5 * MIB);
    let upload = upload_stream(&client, &bucket, KEY, endless, ready_metadata(b""), &options);
    tokio::select! {
        result = upload => panic!("an endless stream cannot complete: {result:?}"),
        () = wait_for_parts(&client, &bucket, 2) => {}
    }
    // The upload future is dropped here; its cleanup aborts the multipart upload.
    wait_for_no_uploads(&client, &bucket, Duration::from_secs(15)).await;
    assert_nothing_under(&client, &bucket, KEY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_reported_as_access_denied_quickly() {
    let garage = Garage::shared();
    let client = garage.client().await;
    let bucket = garage.bucket(&client, "credentials").await;
    let data = random_bytes(100_000, 12);
    upload_stream(
        &client,
        &bucket,
        KEY,
        ok_stream(vec![data.clone()]),
        ready_metadata(&data),
        &UploadOptions::default(),
    )
    .await
    .expect("upload with the right key");

    let wrong_secret = S3Settings {
        credentials: Some(StaticCredentials::new(&garage.access_key_id, "0".repeat(64))),
        ..garage.settings()
    };
    let unknown_key = S3Settings {
        credentials: Some(StaticCredentials::new("GK0123456789abcdef01234567", "0".repeat(64))),
        ..garage.settings()
    };
    for settings in [wrong_secret, unknown_key] {
        let client = S3Client::connect(&settings).await.expect("client");
        let started = Instant::now();
        let error = upload_stream(
            &client,
            &bucket,
            "other.rdb",
            ok_stream(vec![data.clone()]),
            ready_metadata(&data),
            &UploadOptions::default(),
        )
        .await
        .expect_err("upload with a wrong key");
        assert!(matches!(&error, S3Error::AccessDenied { bucket: denied, .. } if *denied == bucket), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("access denied") && message.contains(&bucket), "{message}");

        let error = download_stream(&client, &bucket, KEY, &DownloadOptions::default()).await.expect_err("download");
        assert!(matches!(error, S3Error::AccessDenied { .. }), "{error:?}");
        let error = client.check_bucket(&bucket).await.expect_err("check the bucket");
        assert!(matches!(error, S3Error::AccessDenied { .. }), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    }
    assert!(list_incomplete_uploads(&client, &bucket, "").await.expect("list").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_reported_as_no_such_bucket() {
    let garage = Garage::shared();
    let client = garage.client().await;
    let bucket = "ferrocache-no-such-bucket";
    let started = Instant::now();

    let data = random_bytes(6 * MIB, 13);
    let error = upload_stream(
        &client,
        bucket,
        KEY,
        ok_stream(vec![data.clone()]),
        ready_metadata(&data),
        &options_with_parts_of(5 * MIB),
    )
    .await
    .expect_err("upload to a missing bucket");
    assert!(matches!(&error, S3Error::NoSuchBucket { bucket: missing, .. } if missing == bucket), "{error:?}");
    assert!(error.to_string().contains("bucket \"ferrocache-no-such-bucket\" does not exist"), "{error}");

    let error = download_stream(&client, bucket, KEY, &DownloadOptions::default()).await.expect_err("download");
    assert!(matches!(error, S3Error::NoSuchBucket { .. }), "{error:?}");
    let error = read_sidecar::<serde_json::Value>(&client, bucket, KEY).await.expect_err("read the sidecar");
    assert!(matches!(error, S3Error::NoSuchBucket { .. }), "{error:?}");
    let error = client.check_bucket(bucket).await.expect_err("check the bucket");
    assert!(matches!(error, S3Error::NoSuchBucket { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_is_reported_as_no_such_key() {
    let garage = Garage::shared();
    let client = garage.client().await;
    let bucket = garage.bucket(&client, "missing-key").await;
    let started = Instant::now();

    let error = download_stream(&client, &bucket, "no/such/dump.rdb", &DownloadOptions::default())
        .await
        .expect_err("download a missing key");
    match &error {
        S3Error::NoSuchKey { bucket: in_bucket, key, .. } => {
            assert_eq!((in_bucket.as_str(), key.as_str()), (bucket.as_str(), "no/such/dump.rdb"))
        }
        other => panic!("expected NoSuchKey, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        format!("failed to look up s3://{bucket}/no/such/dump.rdb: the object does not exist")
    );
    assert!(read_sidecar::<serde_json::Value>(&client, &bucket, "no/such/dump.rdb").await.expect("read").is_none());
    client.check_bucket(&bucket).await.expect("the bucket exists");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_object_is_read_whole_a_missing_one_is_none_and_an_oversize_one_is_refused() {
    let garage = Garage::shared();
    let client = garage.client().await;
    let bucket = garage.bucket(&client, "small-objects").await;
    let body = Bytes::from_static(br#"{"kind":"manifest"}"#);
    put_small_object(&client, &bucket, "a/manifest.json", body.clone(), "application/json").await.expect("put");

    let read = get_small_object(&client, &bucket, "a/manifest.json", 1024).await.expect("read");
    assert_eq!(read.as_deref(), Some(&body[..]));
    assert_eq!(get_small_object(&client, &bucket, "a/none.json", 1024).await.expect("read"), None);
    let error = get_small_object(&client, &bucket, "a/manifest.json", 4).await.expect_err("larger than 4 bytes");
    assert!(!error.is_transient(), "{error:?}");
    assert!(error.to_string().contains("larger than 4 bytes"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_down_answer_to_a_small_read_is_retried() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Answers the first request 503 SlowDown, as S3 does under load, and the next with the object.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move {
        let mut answered = 0;
        while let Ok((mut connection, _)) = listener.accept().await {
            let mut request = vec![0u8; 64 * 1024];
            let _ = connection.read(&mut request).await;
            let reply = if answered == 0 {
                let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                format!("HTTP/1.1 503 Slow Down\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
            } else {
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
                    .to_owned()
            };
            answered += 1;
            let _ = connection.write_all(reply.as_bytes()).await;
            let _ = connection.shutdown().await;
        }
    });
    let settings = S3Settings {
        endpoint: Some(format!("http://{address}")),
        region: Some("garage".into()),
        credentials: Some(StaticCredentials::new("GK0123456789abcdef01234567", "0".repeat(64))),
        ..S3Settings::default()
    };
    let client = S3Client::connect(&settings).await.expect("client");
    let read = get_small_object(&client, "backups", "a/manifest.json", 1024).await.expect("read after a retry");
    assert_eq!(read.as_deref(), Some(&b"{}"[..]));
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_fails_quickly() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port();
    let endpoint = format!("http://127.0.0.1:{closed_port}");
    let settings = S3Settings {
        endpoint: Some(endpoint.clone()),
        region: Some("garage".into()),
        credentials: Some(StaticCredentials::new("GK0123456789abcdef01234567", "0".repeat(64))),
        ..S3Settings::default()
    };
    let client = S3Client::connect(&settings).await.expect("client");

    let started = Instant::now();
    let error = client.check_bucket("snapshots").await.expect_err("nothing listens there");
    assert!(matches!(&error, S3Error::Unreachable { endpoint: shown, .. } if *shown == endpoint), "{error:?}");
    assert!(error.is_transient());
    assert!(error.to_string().contains(&format!("endpoint {endpoint} is unreachable")), "{error}");

    let data = random_bytes(6 * MIB, 14);
    let error = upload_stream(
        &client,
        "snapshots",
        KEY,
        ok_stream(vec![data.clone()]),
        ready_metadata(&data),
        &options_with_parts_of(5 * MIB),
    )
    .await
    .expect_err("upload");
    assert!(matches!(error, S3Error::Unreachable { .. }), "{error:?}");
    let error = download_stream(&client, "snapshots", KEY, &DownloadOptions::default()).await.expect_err("download");
    assert!(matches!(error, S3Error::Unreachable { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(15), "three operations took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out() {
    // Accepts connections and reads requests, but never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let silent = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            connections.push(connection);
        }
    });
    let settings = S3Settings {
        endpoint: Some(format!("http://{address}")),
        region: Some("garage".into()),
        credentials: Some(StaticCredentials::new("GK0123456789abcdef01234567", "0".repeat(64))),
        attempt_timeout: Duration::from_secs(1),
        operation_timeout: Duration::from_secs(3),
        ..S3Settings::default()
    };
    let client = S3Client::connect(&settings).await.expect("client");
    let started = Instant::now();
    let error = client.check_bucket("snapshots").await.expect_err("no answer");
    let elapsed = started.elapsed();
    assert!(matches!(&error, S3Error::Transient { detail, .. } if detail.contains("no complete answer")), "{error:?}");
    assert!(elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(6), "took {elapsed:?}");
    silent.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_garage_mid_upload_fails_the_upload_and_publishes_nothing() {
    let garage = Garage::start("killed");
    let client = garage.client().await;
    let bucket = garage.bucket(&client, "killed").await;

    // A producer that keeps sending 1 MiB chunks until the uploader stops reading (at most 1 GiB).
    let (sender, receiver) = mpsc::channel(4);
    let producer = tokio::spawn(async move {
        let chunk = random_bytes(MIB, 15);
        for _ in 0..1024 {
            if sender.send(Ok(chunk.clone())).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let upload = {
        let (client, bucket) = (client.clone(), bucket.clone());
        tokio::spawn(async move {
            let options = options_with_parts_of(5 * MIB);
            upload_stream(&client, &bucket, KEY, channel_stream(receiver), ready_metadata(b""), &options).await
        })
    };
    wait_for_parts(&client, &bucket, 2).await;

    garage.kill();
    let killed = Instant::now();
    let error = tokio::time::timeout(Duration::from_secs(60), upload)
        .await
        .expect("the upload must not hang after Garage died")
        .expect("upload task")
        .expect_err("the upload must fail");
    let elapsed = killed.elapsed();
    eprintln!("upload failed {elapsed:?} after Garage was killed: {error}");
    assert!(error.is_transient(), "expected an unreachable or transient error, got {error:?}");
    assert!(elapsed < Duration::from_secs(30), "failing took {elapsed:?}");
    tokio::time::timeout(Duration::from_secs(5), producer).await.expect("the producer stops").expect("producer");

    garage.restart().await;
    assert!(matches!(head_object(&client, &bucket, KEY).await, Err(S3Error::NoSuchKey { .. })));
    assert!(read_sidecar::<serde_json::Value>(&client, &bucket, KEY).await.expect("read").is_none());
    assert!(list_objects(&client, &bucket, "").await.expect("list").is_empty());
    // The abort could not reach Garage while it was down; whatever upload is left is invisible and
    // can be cleaned up (the background cleanup may get there first).
    abort_incomplete_uploads(&client, &bucket, "", Duration::ZERO).await.expect("abort leftovers");
    wait_for_no_uploads(&client, &bucket, Duration::from_secs(5)).await;

    // A new upload to the same key succeeds.
    let data = random_bytes(12 * MIB + 1, 16);
    let summary = upload_stream(
        &client,
        &bucket,
        KEY,
        ok_stream(odd_chunks(&data, 17)),
        ready_metadata(&data),
        &options_with_parts_of(5 * MIB),
    )
    .await
    .expect("upload after the restart");
    assert_eq!(summary.parts, 3);
    assert_same_bytes(&download_all(&client, &bucket, KEY, &DownloadOptions::default()).await, &data);
    garage.stop();
}

/// Runs [`child_uploads_with_settings_from_the_environment`] in a child process with `env` (and no
/// other AWS variable), so the process environment of the other tests is left alone.
fn run_child_with_env(env: &[(&str, &str)], bucket: &str, key: &str) {
    let mut command = std::process::Command::new(std::env::current_exe().expect("test binary"));
    command.args([
        "--exact",
        "child_uploads_with_settings_from_the_environment",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    let home = std::env::temp_dir().join(format!("ferrocache-s3-home-{}", std::process::id()));
    command
        .env("HOME", &home)
        .envs(env.iter().copied())
        .env("FERROCACHE_S3_CHILD_BUCKET", bucket)
        .env("FERROCACHE_S3_CHILD_KEY", key);
    let output = command.output().expect("run the child test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the child failed with {env:?}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_falls_back_to_aws_environment_variables_and_files() {
    let garage = Garage::shared();
    let client = garage.client().await;
    let bucket = garage.bucket(&client, "environment").await;

    // As a Kubernetes Secret mapped to environment variables would provide them.
    run_child_with_env(
        &[
            ("AWS_ENDPOINT_URL", &garage.endpoint),
            ("AWS_REGION", &garage.region),
            ("AWS_ACCESS_KEY_ID", &garage.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", &garage.secret_access_key),
        ],
        &bucket,
        "from-env.rdb",
    );
    // The region from AWS_DEFAULT_REGION.
    run_child_with_env(
        &[
            ("AWS_ENDPOINT_URL", &garage.endpoint),
            ("AWS_DEFAULT_REGION", &garage.region),
            ("AWS_ACCESS_KEY_ID", &garage.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", &garage.secret_access_key),
        ],
        &bucket,
        "from-default-region.rdb",
    );
    // As a Secret mounted as AWS credentials and config files would provide them.
    let directory = garage.root.join("aws-files");
    std::fs::create_dir_all(&directory).expect("create the files directory");
    let credentials = directory.join("credentials");
    let config = directory.join("config");
    std::fs::write(
        &credentials,
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            garage.access_key_id, garage.secret_access_key
        ),
    )
    .expect("write credentials");
    std::fs::write(&config, format!("[default]\nregion = {}\nendpoint_url = {}\n", garage.region, garage.endpoint))
        .expect("write config");
    run_child_with_env(
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().expect("utf-8 path")),
            ("AWS_CONFIG_FILE", config.to_str().expect("utf-8 path")),
        ],
        &bucket,
        "from-files.rdb",
    );

    // Nothing configured: a clear error, at once (the EC2 metadata service is not asked).
    run_child_with_env(
        &[
            ("AWS_ENDPOINT_URL", &garage.endpoint),
            ("AWS_REGION", &garage.region),
            ("FERROCACHE_S3_CHILD_EXPECT", "MissingCredentials"),
        ],
        &bucket,
        "no-credentials.rdb",
    );
    assert!(matches!(head_object(&client, &bucket, "no-credentials.rdb").await, Err(S3Error::NoSuchKey { .. })));

    for key in ["from-env.rdb", "from-default-region.rdb", "from-files.rdb"] {
        assert_eq!(head_object(&client, &bucket, key).await.expect("uploaded by the child").size, 6 * MIB as u64 + 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run in a child process by the_client_falls_back_to_aws_environment_variables_and_files"]
async fn child_uploads_with_settings_from_the_environment() {
    let (Ok(bucket), Ok(key)) = (std::env::var("FERROCACHE_S3_CHILD_BUCKET"), std::env::var("FERROCACHE_S3_CHILD_KEY"))
    else {
        return;
    };
    let client = S3Client::connect(&S3Settings::default()).await.expect("client from the environment");
    let data = random_bytes(6 * MIB + 3, 18);
    if std::env::var("FERROCACHE_S3_CHILD_EXPECT").as_deref() == Ok("MissingCredentials") {
        let started = Instant::now();
        let error = upload_stream(
            &client,
            &bucket,
            &key,
            ok_stream(vec![data.clone()]),
            ready_metadata(&data),
            &options_with_parts_of(5 * MIB),
        )
        .await
        .expect_err("no credentials anywhere");
        eprintln!("without credentials: {error}");
        assert_eq!(error.reason(), "MissingCredentials", "{error:?}");
        assert!(error.to_string().contains("no usable credentials"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        return;
    }
    upload_stream(
        &client,
        &bucket,
        &key,
        ok_stream(odd_chunks(&data, 19)),
        ready_metadata(&data),
        &options_with_parts_of(5 * MIB),
    )
    .await
    .expect("upload with settings from the environment");
    assert_same_bytes(&download_all(&client, &bucket, &key, &DownloadOptions::default()).await, &data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --release -p ferrocache-node --test s3_transport -- --ignored --nocapture throughput"]
async fn throughput_of_a_320_mib_object() {
    let garage = Garage::shared();
    let client = garage.client().await;
    let bucket = garage.bucket(&client, "throughput").await;
    let size = 320 * MIB;
    let data = random_bytes(size, 20);
    let chunks: Vec<Bytes> =
        (0..size).step_by(64 * 1024).map(|start| data.slice(start..(start + 64 * 1024).min(size))).collect();

    for sign_payload in [true, false] {
        let client = S3Client::connect(&S3Settings { sign_payload, ..garage.settings() }).await.expect("client");
        let options = UploadOptions::default();
        let summary = upload_stream(&client, &bucket, KEY, ok_stream(chunks.clone()), ready_metadata(&data), &options)
            .await
            .expect("upload");
        eprintln!(
            "upload (sign_payload: {sign_payload}): {} MiB in {} parts, {:.2} s, {:.0} MiB/s",
            size / MIB,
            summary.parts,
            summary.duration.as_secs_f64(),
            summary.bytes_per_second() / MIB as f64
        );
    }
    for (concurrency, range_mib) in [(1, 8), (4, 8), (6, 8), (8, 8), (4, 16), (8, 16)] {
        let options = DownloadOptions { concurrency, range_size: (range_mib * MIB) as u64 };
        let started = Instant::now();
        let mut download = download_stream(&client, &bucket, KEY, &options).await.expect("download");
        let mut received = 0usize;
        while let Some(chunk) = download.try_next().await.expect("chunk") {
            received += chunk.len();
        }
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(received, size);
        eprintln!(
            "download ({concurrency} × {range_mib} MiB ranges): {seconds:.2} s, {:.0} MiB/s",
            size as f64 / MIB as f64 / seconds
        );
    }
}
