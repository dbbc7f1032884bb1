//! Where a backup's objects live and the manifest that completes it.
//!
//! A backup named `nightly` in namespace `shop` with destination
//! `s3://backups/prod/` is the folder `s3://backups/prod/shop/nightly/`:
//!
//! - `shard-0.rdb`: the node's RDB file, a plain Redis RDB v10 that
//!   `redis-server` loads;
//! - `shard-0.rdb.meta.json`: the node's sidecar (CRC64, size, keys);
//! - `manifest.json`: the cluster's metadata, written last. A backup is
//!   complete exactly when its manifest exists.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crd::{RedisClusterSpec, S3Destination};

/// The manifest's file name in a backup's folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// What the manifest's `kind` says, so a reader knows what it holds.
pub const MANIFEST_KIND: &str = "ferrocache.io/BackupManifest";
/// The layout version of the manifest.
pub const MANIFEST_VERSION: u32 = 1;

/// The key prefix of a backup's folder (ending in `/`).
pub fn folder(destination: &S3Destination, namespace: &str, backup: &str) -> String {
    let prefix = destination.prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("{namespace}/{backup}/")
    } else {
        format!("{prefix}/{namespace}/{backup}/")
    }
}

/// The key of a shard's RDB object in the folder.
pub fn shard_key(folder: &str, shard: i32) -> String {
    format!("{folder}shard-{shard}.rdb")
}

/// The key of the manifest in the folder.
pub fn manifest_key(folder: &str) -> String {
    format!("{folder}{MANIFEST_FILE}")
}

/// Everything needed to understand and restore a backup without the Kubernetes objects that
/// made it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub kind: String,
    pub version: u32,
    pub backup: BackupIdentity,
    pub cluster: ClusterMetadata,
    pub shards: Vec<ShardManifest>,
    /// Bytes of RDB data, all shards together.
    pub size_bytes: i64,
    pub keys: i64,
    /// `fork`, `forkless`, or `mixed` when shards differ.
    pub method: String,
    /// For a copy: the manifest it was copied from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied_from: Option<String>,
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadManifestError {
    #[error("unable to read the manifest s3://{bucket}/{key}")]
    Read {
        bucket: String,
        key: String,
        #[source]
        source: ferrocache_node::s3::S3Error,
    },
    #[error("s3://{bucket}/{key} is not a backup manifest")]
    Invalid {
        bucket: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

impl ReadManifestError {
    /// The reason for a condition when reading fails for good.
    pub fn reason(&self) -> &'static str {
        match self {
            ReadManifestError::Read { source, .. } => source.reason(),
            ReadManifestError::Invalid { .. } => "ManifestInvalid",
        }
    }
}

/// The largest manifest read (a manifest is a few kilobytes).
const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// Reads the manifest `s3://bucket/key`; `Ok(None)` when there is none.
pub async fn read(
    client: &ferrocache_node::s3::S3Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Manifest>, ReadManifestError> {
    let body = ferrocache_node::s3::get_small_object(client, bucket, key, MAX_MANIFEST_BYTES)
        .await
        .map_err(|source| ReadManifestError::Read { bucket: bucket.to_owned(), key: key.to_owned(), source })?;
    let Some(body) = body else {
        return Ok(None);
    };
    serde_json::from_slice(&body).map(Some).map_err(|source| ReadManifestError::Invalid {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        source,
    })
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupIdentity {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// RFC 3339.
    pub started_at: String,
    pub completed_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterMetadata {
    pub name: String,
    pub uid: String,
    /// The RedisCluster's spec when the backup was taken.
    pub spec: RedisClusterSpec,
    /// The node image the cluster ran.
    pub image: String,
    /// `ferrocache_version` and `redis_version` from the node's INFO.
    pub node_version: String,
    pub redis_version: String,
    /// The node settings in effect (CONFIG GET), such as maxmemory.
    pub settings: BTreeMap<String, String>,
    /// One entry per shard: a cluster is one shard today.
    pub shard_count: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardManifest {
    pub shard: i32,
    pub pod: String,
    /// `s3://bucket/key` of the RDB object.
    pub object: String,
    pub size_bytes: i64,
    pub keys: i64,
    /// CRC64 (Jones) of the RDB file, hex, as its trailer holds it.
    pub crc64: String,
    pub method: String,
    /// Why the node chose the method.
    pub method_reason: String,
    pub duration_ms: i64,
    pub peak_extra_memory_bytes: i64,
    /// The node's `used_memory` when the backup started.
    pub used_memory_bytes: i64,
}

/// The method of a backup whose shards used `methods`.
pub fn overall_method<'a>(methods: impl IntoIterator<Item = &'a str>) -> String {
    let mut distinct: Vec<&str> = methods.into_iter().collect();
    distinct.sort_unstable();
    distinct.dedup();
    match distinct.as_slice() {
        [one] => (*one).to_owned(),
        [] => String::new(),
        _ => "mixed".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_folder_is_prefix_namespace_and_name() {
        let mut destination = S3Destination { bucket: "backups".into(), ..S3Destination::default() };
        assert_eq!(folder(&destination, "shop", "nightly"), "shop/nightly/");
        destination.prefix = "/prod/".into();
        let folder = folder(&destination, "shop", "nightly");
        assert_eq!(folder, "prod/shop/nightly/");
        assert_eq!(shard_key(&folder, 0), "prod/shop/nightly/shard-0.rdb");
        assert_eq!(manifest_key(&folder), "prod/shop/nightly/manifest.json");
    }

    #[test]
    fn shards_of_different_methods_make_a_mixed_backup() {
        assert_eq!(overall_method(["fork"]), "fork");
        assert_eq!(overall_method(["fork", "fork"]), "fork");
        assert_eq!(overall_method(["fork", "forkless"]), "mixed");
    }
}
