//! Copying an available Backup to another bucket, prefix or store: each data
//! object is streamed from the source to a multipart upload at the
//! destination while its CRC64 is recomputed; a copy whose checksum differs
//! from the source's manifest is aborted before it is published. The sidecar
//! and then the manifest follow, as for a snapshot.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferrocache_node::s3::{self, DownloadOptions, UploadOptions};
use ferrocache_node::snapshot::CommitInfo;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, Resource, ResourceExt};

use super::manifest;
use super::{check_destination, complete, BackupError, Step};
use crate::condition::State;
use crate::context::{error_chain, Context};
use crate::crd::{Backup, BackupStatus};
use crate::store;

/// CRC64 with Redis's polynomial, as RDB trailers and sidecars hold it.
static CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

/// The running check of a copied RDB: the CRC64 of everything, the size, the last 8 bytes.
struct CopyCheck {
    digest: crc::Digest<'static, u64>,
    bytes: u64,
    tail: Vec<u8>,
}

impl CopyCheck {
    fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
        self.bytes += bytes.len() as u64;
        self.tail.extend_from_slice(&bytes[bytes.len().saturating_sub(8)..]);
        let excess = self.tail.len().saturating_sub(8);
        self.tail.drain(..excess);
    }

    /// The CRC64 of the whole stream (zero when the data matches its trailer), the trailer as
    /// a number, and the size.
    fn finish(&mut self) -> (u64, u64, u64) {
        let digest = std::mem::replace(&mut self.digest, CRC64.digest());
        let mut trailer = [0u8; 8];
        if self.tail.len() == 8 {
            trailer.copy_from_slice(&self.tail);
        }
        (digest.finalize(), u64::from_le_bytes(trailer), self.bytes)
    }
}

/// One step of a copy: it runs to the end (or to a failure) within the step.
pub(super) async fn step(
    backup: &Backup,
    context: &Context,
    status: &mut BackupStatus,
    namespace: &str,
    folder: &str,
    source_name: &str,
) -> Result<Step, BackupError> {
    let backups: Api<Backup> = Api::namespaced(context.client.clone(), namespace);
    let source = backups.get_opt(source_name).await.map_err(|error| BackupError::Read {
        kind: "Backup",
        name: source_name.to_owned(),
        source: error,
    })?;
    let Some(source) = source else {
        return Ok(Step::Fail(
            "SourceNotFound",
            format!("Backup {source_name} does not exist in namespace {namespace}"),
        ));
    };
    match State::of(&source.status.clone().unwrap_or_default().conditions) {
        Some(State::Available) => {}
        Some(State::Failed) => {
            return Ok(Step::Fail("SourceFailed", format!("Backup {source_name} failed; nothing to copy")))
        }
        _ => {
            return Ok(Step::Wait(
                std::time::Duration::from_secs(3),
                format!("waiting for Backup {source_name} to be available"),
            ))
        }
    }
    let source_client = match client_for(context, namespace, &source).await? {
        Ok(client) => client,
        Err(step) => return Ok(step),
    };
    let destination_client = match client_for(context, namespace, backup).await? {
        Ok(client) => client,
        Err(step) => return Ok(step),
    };
    let manifest_key = manifest::manifest_key(folder);
    if let Some(step) = check_destination(backup, context, status, &destination_client, &manifest_key).await? {
        return Ok(step);
    }
    let source_bucket = &source.spec.destination.bucket;
    let source_manifest_key =
        manifest::manifest_key(&manifest::folder(&source.spec.destination, namespace, source_name));
    let original = match manifest::read(&source_client, source_bucket, &source_manifest_key).await {
        Ok(Some(original)) => original,
        Ok(None) => {
            return Ok(Step::Fail(
                "SourceIncomplete",
                format!("s3://{source_bucket}/{source_manifest_key} does not exist"),
            ));
        }
        Err(manifest::ReadManifestError::Read { source, .. }) if source.is_transient() => {
            return Err(BackupError::Store(source));
        }
        Err(error) => return Ok(Step::Fail("SourceUnreadable", error_chain(&error))),
    };
    let bucket = &backup.spec.destination.bucket;
    let mut document = original;
    for shard in &mut document.shards {
        let prefix = format!("s3://{source_bucket}/");
        let Some(source_key) = shard.object.strip_prefix(&prefix).map(str::to_owned) else {
            return Ok(Step::Fail("SourceUnreadable", format!("{} is not in bucket {source_bucket}", shard.object)));
        };
        let key = manifest::shard_key(folder, shard.shard);
        let download =
            match s3::download_stream(&source_client, source_bucket, &source_key, &DownloadOptions::default()).await {
                Ok(download) => download,
                Err(error) => return Ok(Step::Fail(error.reason(), error_chain(&error))),
            };
        // An RDB file ends with the CRC64 of what precedes it (little-endian), so the CRC64 of
        // the whole copy is zero exactly when the data matches its trailer; the trailer must
        // also be the source's checksum.
        let digest = Arc::new(Mutex::new(CopyCheck { digest: CRC64.digest(), bytes: 0, tail: Vec::new() }));
        let counted = Arc::clone(&digest);
        let chunks = download.map(move |chunk: Result<Bytes, s3::S3Error>| {
            if let Ok(bytes) = &chunk {
                let mut check = counted.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                check.update(bytes);
            }
            chunk
        });
        let expected = shard.crc64.clone();
        let (keys, method) = (shard.keys.max(0) as u64, shard.method.clone());
        let verified = Arc::clone(&digest);
        let metadata = async move {
            let (residue, trailer, bytes) = {
                let mut check = verified.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                check.finish()
            };
            let crc64 = format!("{trailer:016x}");
            if residue != 0 || crc64 != expected {
                let damaged = if residue != 0 { " and the data does not match its trailer" } else { "" };
                return Err(std::io::Error::other(format!(
                    "the copy does not match the source: its trailer says {crc64}, the source's manifest {expected}{damaged}"
                )));
            }
            Ok(CommitInfo { crc64, bytes, keys, method, format: "rdb-v10".to_owned() })
        };
        if let Err(error) =
            s3::upload_stream(&destination_client, bucket, &key, chunks, metadata, &UploadOptions::default()).await
        {
            return Ok(if error.is_transient() {
                Step::Wait(
                    std::time::Duration::from_secs(5),
                    format!("the copy will be retried: {}", error_chain(&error)),
                )
            } else {
                Step::Fail(
                    "CopyFailed",
                    format!("failed to copy {} to s3://{bucket}/{key}: {}", shard.object, error_chain(&error)),
                )
            });
        }
        shard.object = format!("s3://{bucket}/{key}");
    }
    let completed = context.now();
    document.backup = manifest::BackupIdentity {
        name: backup.name_any(),
        namespace: namespace.to_owned(),
        uid: backup.meta().uid.clone().unwrap_or_default(),
        started_at: status.start_time.as_ref().map(|time| time.0.to_string()).unwrap_or_default(),
        completed_at: completed.to_string(),
    };
    document.copied_from = Some(format!("s3://{source_bucket}/{source_manifest_key}"));
    let body = serde_json::to_vec_pretty(&document).unwrap_or_default();
    if let Err(error) =
        s3::put_small_object(&destination_client, bucket, &manifest_key, body.into(), "application/json").await
    {
        return Ok(Step::Fail(error.reason(), error_chain(&error)));
    }
    complete(status, &document, format!("s3://{bucket}/{manifest_key}"), Time(completed));
    Ok(Step::Complete)
}

/// An S3 client for `backup`'s destination, or the step that ends the copy.
async fn client_for(
    context: &Context,
    namespace: &str,
    backup: &Backup,
) -> Result<Result<s3::S3Client, Step>, BackupError> {
    match store::client_for(&context.client, namespace, &backup.spec.destination.connection).await {
        Ok(client) => Ok(Ok(client)),
        Err(store::ClientFailure::Unusable(reason, message)) => Ok(Err(Step::Fail(reason, message))),
        Err(store::ClientFailure::Unreadable(error)) => Err(BackupError::Credentials(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdb_like(body: &[u8]) -> Vec<u8> {
        let mut file = body.to_vec();
        file.extend_from_slice(&CRC64.checksum(body).to_le_bytes());
        file
    }

    #[test]
    fn a_faithful_copy_checks_out_with_its_trailer() {
        let file = rdb_like(b"REDIS0010 some keys and values");
        let mut check = CopyCheck { digest: CRC64.digest(), bytes: 0, tail: Vec::new() };
        for chunk in file.chunks(3) {
            check.update(chunk);
        }
        let (residue, trailer, bytes) = check.finish();
        assert_eq!(residue, 0);
        assert_eq!(trailer, CRC64.checksum(b"REDIS0010 some keys and values"));
        assert_eq!(bytes, file.len() as u64);
    }

    #[test]
    fn a_damaged_copy_does_not_match_its_trailer() {
        let mut file = rdb_like(b"REDIS0010 some keys and values");
        file[12] ^= 0x40;
        let mut check = CopyCheck { digest: CRC64.digest(), bytes: 0, tail: Vec::new() };
        check.update(&file);
        assert_ne!(check.finish().0, 0);
    }
}
