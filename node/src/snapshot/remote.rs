//! Snapshots to and from S3: an upload sink fed by the snapshot producers,
//! and the preload of a snapshot object into an empty node.
//!
//! Upload: the producers hand chunks to a bounded channel; a tokio task
//! streams them into [`crate::s3::upload_stream`] (multipart, parts in
//! parallel, retried, aborted on any failure). The commit metadata (CRC64,
//! size, keys, method) reaches the task at the end and goes into the
//! object's sidecar before the object is published, so an object under its
//! final key is always complete and always has its checksum recorded.
//!
//! Preload: parallel ranged GETs yield the object in order; a reader thread
//! turns them back into a byte stream for the RDB loader, which verifies the
//! file's own CRC64 as it goes; the sidecar's checksum and size, when
//! present, must agree too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::load::{self, LoadError, LoadReport};
use super::sink::{ChannelSink, CommitInfo, Sink};
use crate::s3::{self, S3Client, S3Error, S3Settings, S3Uri};
use crate::storage::SharedStore;

/// S3 settings from the node's configuration; credentials come from the
/// standard AWS environment variables and files.
pub fn settings_from_config(config: &crate::config::Config) -> S3Settings {
    S3Settings {
        endpoint: (!config.s3_endpoint.is_empty()).then(|| config.s3_endpoint.clone()),
        region: (!config.s3_region.is_empty()).then(|| config.s3_region.clone()),
        force_path_style: config.s3_force_path_style,
        attempt_timeout: std::time::Duration::from_millis(config.s3_request_timeout),
        ..S3Settings::default()
    }
}

/// Why a remote snapshot failed before streaming.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error("failed to preload {uri}: {source}")]
    Load {
        uri: String,
        #[source]
        source: LoadError,
    },
    #[error("failed to preload {uri}: the object's checksum {actual} does not match its sidecar's {recorded}")]
    SidecarMismatch { uri: String, recorded: String, actual: String },
}

/// Opens an upload sink for `uri`, checking first that the bucket is
/// reachable and writable enough to exist, so a bad destination fails
/// before any snapshot work.
pub async fn open_upload(client: S3Client, uri: &S3Uri) -> Result<Sink, RemoteError> {
    s3::check_bucket(&client, &uri.bucket).await?;
    let (chunk_sender, mut chunk_receiver) = mpsc::channel::<Vec<u8>>(super::CHANNEL_CHUNKS);
    let (info_sender, info_receiver) = oneshot::channel::<CommitInfo>();
    let (outcome_sender, outcome_receiver) = std::sync::mpsc::channel();
    let abort = Arc::new(AtomicBool::new(false));
    let abort_flag = Arc::clone(&abort);
    let (bucket, key) = (uri.bucket.clone(), uri.key.clone());
    tokio::spawn(async move {
        let chunks = futures::stream::poll_fn(move |context| chunk_receiver.poll_recv(context))
            .map(|chunk| Ok::<Bytes, std::io::Error>(Bytes::from(chunk)))
            .chain(futures::stream::once(async move {
                // The producer gave up: make the upload fail, so it aborts.
                if abort_flag.load(Ordering::Acquire) {
                    Err(std::io::Error::other("the snapshot was abandoned"))
                } else {
                    Ok(Bytes::new())
                }
            }))
            .filter(|chunk| futures::future::ready(!matches!(chunk, Ok(bytes) if bytes.is_empty())));
        let metadata = async move {
            info_receiver.await.map_err(|_| std::io::Error::other("the snapshot ended without a checksum"))
        };
        let result = s3::upload_stream(&client, &bucket, &key, chunks, metadata, &s3::UploadOptions::default()).await;
        let _ = outcome_sender.send(result.map(|_| ()).map_err(|error| client.redact(&error.to_string())));
    });
    Ok(Sink::Channel(ChannelSink {
        description: uri.to_string(),
        chunks: Some(chunk_sender),
        commit_info: Some(info_sender),
        outcome: outcome_receiver,
        abort,
    }))
}

/// A `Read` over chunks arriving from an async download.
struct ChunkReader {
    chunks: std::sync::mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => self.current = chunk,
                Ok(Err(message)) => return Err(std::io::Error::other(message)),
                Err(_) => return Ok(0),
            }
        }
        let count = buffer.len().min(self.current.len());
        buffer[..count].copy_from_slice(&self.current[..count]);
        self.current = self.current.slice(count..);
        Ok(count)
    }
}

/// Loads the snapshot object at `uri` into `store`, verifying it while
/// loading. On failure the store is left empty.
pub async fn preload(store: SharedStore, client: S3Client, uri: S3Uri) -> Result<LoadReport, RemoteError> {
    let download = s3::download_stream(&client, &uri.bucket, &uri.key, &s3::DownloadOptions::default()).await?;
    let size = download.info().size;
    let sidecar: Option<s3::Sidecar<CommitInfo>> =
        s3::read_sidecar(&client, &uri.bucket, &uri.key).await.ok().flatten();
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Result<Bytes, String>>(16);
    let pump = tokio::spawn(async move {
        let mut download = download;
        while let Some(chunk) = download.next().await {
            let failed = chunk.is_err();
            if sender.send(chunk.map_err(|error| error.to_string())).is_err() || failed {
                break;
            }
        }
    });
    let name = uri.to_string();
    let loader_store = Arc::clone(&store);
    let loaded = tokio::task::spawn_blocking(move || {
        let reader = ChunkReader { chunks: receiver, current: Bytes::new() };
        load::load_stream(&loader_store, reader, Some(size), &name)
    })
    .await
    .map_err(|error| RemoteError::Load {
        uri: uri.to_string(),
        source: LoadError::Open { path: uri.to_string(), source: std::io::Error::other(error.to_string()) },
    })?;
    pump.abort();
    let report = loaded.map_err(|source| RemoteError::Load { uri: uri.to_string(), source })?;
    if let (Some(sidecar), Some(actual)) = (sidecar, report.crc64) {
        let actual = format!("{actual:016x}");
        if sidecar.metadata.crc64 != actual || sidecar.size != size {
            store.lock().flush_all();
            return Err(RemoteError::SidecarMismatch {
                uri: uri.to_string(),
                recorded: sidecar.metadata.crc64,
                actual,
            });
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{find_param, Config};

    #[test]
    fn the_s3_settings_follow_the_nodes_configuration() {
        let mut config = Config::default();
        for (name, value) in [("s3-endpoint", "http://127.0.0.1:3900"), ("s3-request-timeout", "2500")] {
            (find_param(name).expect("a known setting").set)(&mut config, value).expect("a valid value");
        }
        let settings = settings_from_config(&config);
        assert_eq!(settings.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!(settings.attempt_timeout, Duration::from_millis(2500));
        assert_eq!(settings_from_config(&Config::default()).attempt_timeout, Duration::from_secs(30));
    }

    #[test]
    fn a_request_timeout_under_100_ms_is_refused() {
        let mut config = Config::default();
        assert!((find_param("s3-request-timeout").expect("a known setting").set)(&mut config, "10").is_err());
    }
}
