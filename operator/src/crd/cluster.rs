//! `RedisCluster`: a cache cluster of ferrocache nodes.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::common::{conditions_schema, S3Destination, S3Object, SecretKeyReference, SnapshotMethod};

/// A Redis-compatible cache cluster: one ferrocache node (a single shard
/// without replicas), its Services and settings, optionally seeded from a
/// backup before it serves.
#[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "ferrocache.io",
    version = "v1alpha1",
    kind = "RedisCluster",
    namespaced,
    status = "RedisClusterStatus",
    shortname = "rc",
    shortname = "redis",
    category = "ferrocache",
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.conditions[?(@.type==\"Progressing\")].reason","description":"Creating, Modifying, Available or Failed"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.readyNodes","description":"Nodes ready out of desired"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".status.endpoint"}"#,
    printcolumn = r#"{"name":"Method","type":"string","jsonPath":".spec.snapshotMethod","description":"Snapshot method"}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.conditions[?(@.type==\"Available\")].message","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RedisClusterSpec {
    /// The node image; it must hold `/usr/local/bin/ferrocache-node`. Defaults to the
    /// operator's `--node-image` (the image the operator itself runs from, when installed with
    /// the Helm chart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The memory limit of each node's container (a Kubernetes quantity such as `1Gi`).
    #[serde(default = "default_memory_limit")]
    pub memory_limit: Quantity,
    /// The most memory the node's data may use, in bytes or with a unit as Redis writes it
    /// (`768mb`, `1gb`). Defaults to the memory limit less the reserved share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+([kKmMgG][bB]?)?$"))]
    pub maxmemory: Option<String>,
    /// What the node evicts when data reaches maxmemory (Redis's `maxmemory-policy`).
    #[serde(default = "default_eviction_policy")]
    #[schemars(extend("enum" = ["noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"]))]
    pub maxmemory_policy: String,
    /// The share of the memory limit kept free of data for snapshots and overhead, as
    /// ElastiCache's `reserved-memory-percent`. A fork snapshot is chosen only when its
    /// copy-on-write fits in it.
    #[serde(default = "default_reserved_memory_percent")]
    #[schemars(range(min = 0, max = 100))]
    pub reserved_memory_percent: i32,
    /// How nodes take snapshots: `Auto` picks by available memory.
    #[serde(default)]
    pub snapshot_method: SnapshotMethod,
    /// CPU and other resources of the node container; the memory limit comes from
    /// `memoryLimit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// A Secret key holding the password clients must give with AUTH; none when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretKeyReference>,
    /// Seed the cluster's data from a backup before it serves. Read when pods start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<RestoreSource>,
    /// Automatic backups: a schedule, a retention limit and where they go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupPolicy>,
    /// Take a last Backup when the cluster is deleted; its pods go only once that Backup is
    /// available (or has failed, which an Event reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_backup: Option<FinalBackup>,
}

/// When automatic backups are taken and how long they are kept. Automatic Backups are
/// labelled `ferrocache.io/backup-kind: automatic` and owned by the cluster; manual Backups are
/// never expired.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupPolicy {
    /// A cron expression in UTC (`minute hour day-of-month month day-of-week`), such as
    /// `0 4 * * *`, or with a seconds field first, such as `*/30 * * * * *`. A scheduled time
    /// that comes while the previous automatic backup still runs is skipped (a `BackupSkipped`
    /// Event says so). Exactly one of `schedule` and `window`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// A daily backup window in UTC, `HH:MM-HH:MM` (as ElastiCache's snapshot window); the
    /// backup starts when the window opens. Exactly one of `schedule` and `window`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub window: Option<String>,
    /// Delete automatic backups older than this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3650))]
    pub retention_days: Option<i32>,
    /// Keep at most this many automatic backups (the newest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub retention_count: Option<i32>,
    /// Where automatic backups go.
    pub destination: S3Destination,
    /// Override the cluster's snapshot method for automatic backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_method: Option<SnapshotMethod>,
}

/// The Backup taken when the cluster is deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FinalBackup {
    /// The name of the Backup to create (it outlives the cluster).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Where it goes; defaults to `backup.destination`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<S3Destination>,
}

/// Where a cluster's data comes from: exactly one of `backup` and `s3`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSource {
    /// The name of an available Backup in the same namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// An RDB object in S3, such as one exported from Redis or ElastiCache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Object>,
}

fn default_memory_limit() -> Quantity {
    Quantity("1Gi".to_owned())
}

fn default_eviction_policy() -> String {
    "noeviction".to_owned()
}

fn default_reserved_memory_percent() -> i32 {
    25
}

impl Default for RedisClusterSpec {
    fn default() -> Self {
        RedisClusterSpec {
            image: None,
            memory_limit: default_memory_limit(),
            maxmemory: None,
            maxmemory_policy: default_eviction_policy(),
            reserved_memory_percent: default_reserved_memory_percent(),
            snapshot_method: SnapshotMethod::Auto,
            resources: None,
            password_secret: None,
            restore_from: None,
            backup: None,
            final_backup: None,
        }
    }
}

/// What the operator observed of a cluster.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RedisClusterStatus {
    /// `Available` (the cluster serves) and `Progressing` (its reason is the state at a glance:
    /// Creating, Modifying, Available, Failed).
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where clients connect: the client Service's `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Ready nodes out of desired, as `1/1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_nodes: Option<String>,
    /// The maxmemory the nodes run with, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxmemory_bytes: Option<i64>,
    /// Node pods and their addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeStatus>,
    /// The scheduled time of the latest automatic backup (or when the schedule was first
    /// seen); a missed schedule is caught up once from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scheduled_backup_time: Option<Time>,
    /// The latest automatic Backup's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scheduled_backup: Option<String>,
    /// When the next automatic backup is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_scheduled_backup_time: Option<Time>,
}

/// One node of a cluster.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// The pod's name.
    pub pod: String,
    /// The pod's IP address, once it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Whether the node serves (its pod is ready).
    pub ready: bool,
}
