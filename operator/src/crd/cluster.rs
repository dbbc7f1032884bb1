//! `RedisCluster`: a cache cluster of ferrocache nodes.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{conditions_schema, S3Object, SecretKeyReference, SnapshotMethod};

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
