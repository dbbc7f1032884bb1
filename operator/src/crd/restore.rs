//! `Restore`: a new RedisCluster seeded from a Backup or an RDB object.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cluster::RestoreSource;
use super::common::{conditions_schema, SecretKeyReference, SnapshotMethod};

/// Restores a backup into a new RedisCluster, whose node preloads the data
/// before it serves. The new cluster takes the backed-up cluster's spec (for a
/// Backup) or the defaults (for a raw RDB object), with the overrides applied.
/// It outlives the Restore.
#[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "ferrocache.io",
    version = "v1alpha1",
    kind = "Restore",
    namespaced,
    status = "RestoreStatus",
    shortname = "rcrestore",
    category = "ferrocache",
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.conditions[?(@.type==\"Progressing\")].reason","description":"Creating, Available or Failed"}"#,
    printcolumn = r#"{"name":"Backup","type":"string","jsonPath":".spec.source.backup"}"#,
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".spec.clusterName","description":"The new cluster"}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.conditions[?(@.type==\"Available\")].message","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSpec {
    /// What to restore: exactly one of a Backup's name and an S3 object.
    pub source: RestoreSource,
    /// The name of the RedisCluster to create; it must not exist yet.
    #[schemars(length(min = 1, max = 52), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub cluster_name: String,
    /// Settings of the new cluster that differ from the source's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<ClusterOverrides>,
}

/// Settings a Restore may change; each omitted one is kept from the source.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterOverrides {
    /// The node image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The memory limit of each node's container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<Quantity>,
    /// The most memory the data may use (`768mb`, `1gb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+([kKmMgG][bB]?)?$"))]
    pub maxmemory: Option<String>,
    /// The share of the memory limit kept free of data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub reserved_memory_percent: Option<i32>,
    /// How the new cluster's nodes take snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_method: Option<SnapshotMethod>,
    /// CPU and other resources of the node container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// The password Secret of the new cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretKeyReference>,
}

/// What the operator observed of a restore.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStatus {
    /// `Available` and `Progressing`, mirroring the new cluster's (Creating, Available,
    /// Failed).
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The RDB object(s) the new cluster preloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_object: Option<String>,
}
