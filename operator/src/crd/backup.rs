//! `Backup`: a point-in-time snapshot of a RedisCluster, kept in S3.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{conditions_schema, S3Destination, SnapshotMethod};

/// A backup of a RedisCluster: every node snapshots its data as a Redis RDB file
/// straight into S3, and a manifest with the cluster's metadata is written next
/// to the data, last, so a backup is complete exactly when its manifest exists.
#[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "ferrocache.io",
    version = "v1alpha1",
    kind = "Backup",
    namespaced,
    status = "BackupStatus",
    shortname = "rcbackup",
    category = "ferrocache",
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.conditions[?(@.type==\"Progressing\")].reason","description":"Creating, Available or Failed"}"#,
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".spec.cluster"}"#,
    printcolumn = r#"{"name":"Kind","type":"string","jsonPath":".metadata.labels.ferrocache\\.io/backup-kind","description":"automatic, final or copy; empty for manual"}"#,
    printcolumn = r#"{"name":"Size","type":"integer","format":"int64","jsonPath":".status.sizeBytes","description":"Bytes of RDB data"}"#,
    printcolumn = r#"{"name":"Keys","type":"integer","format":"int64","jsonPath":".status.keys"}"#,
    printcolumn = r#"{"name":"Method","type":"string","jsonPath":".status.method","description":"Snapshot method the nodes used"}"#,
    printcolumn = r#"{"name":"Location","type":"string","jsonPath":".status.location","priority":1}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.conditions[?(@.type==\"Available\")].message","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// The RedisCluster to back up, in the same namespace. Exactly one of `cluster` and
    /// `copyFrom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub cluster: Option<String>,
    /// Copy an available Backup of the same namespace (to another bucket, prefix or store)
    /// instead of snapshotting a cluster; the copy's checksum is verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub copy_from: Option<String>,
    /// Where the backup's objects go: under `prefix/<namespace>/<backup name>/` in the bucket.
    pub destination: S3Destination,
    /// Override the cluster's snapshot method for this backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_method: Option<SnapshotMethod>,
    /// What happens to the objects in S3 when the Backup is deleted.
    #[serde(default)]
    pub retain_policy: RetainPolicy,
}

/// Whether deleting a Backup deletes its objects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum RetainPolicy {
    /// Delete the backup's objects with the Backup.
    #[default]
    Delete,
    /// Keep the objects in S3 after the Backup is deleted.
    Retain,
}

/// What the operator observed of a backup.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    /// `Available` (complete and restorable) and `Progressing` (its reason is the state:
    /// Creating, Available, Failed).
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the nodes were asked to snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the manifest was written (or the backup failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// The backup's folder, `s3://bucket/prefix/<namespace>/<name>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The manifest's URI; present exactly when the backup is complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// Bytes of RDB data, all shards together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// Keys, all shards together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<i64>,
    /// The snapshot method the nodes used (`fork`, `forkless`, or `mixed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The node-side job id, stable across operator restarts so a repeated request never starts
    /// a second snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// One entry per shard.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<BackupShardStatus>,
}

/// The snapshot of one shard.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BackupShardStatus {
    /// The shard's index.
    pub shard: i32,
    /// The node pod that wrote it.
    pub pod: String,
    /// The RDB object's URI.
    pub object: String,
    /// Bytes of the RDB object.
    #[serde(default)]
    pub size_bytes: i64,
    /// Keys in it.
    #[serde(default)]
    pub keys: i64,
    /// CRC64 (Redis's Jones polynomial) of the RDB file, in hex.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub crc64: String,
    /// The method the node used and why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
}
