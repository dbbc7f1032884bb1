//! Types shared by the custom resources: S3 locations and credentials,
//! snapshot methods, and the schema of status conditions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The key of the access key id in a credentials Secret (the name the AWS
/// tools use, so the Secret can also feed `envFrom`).
pub const CREDENTIALS_ACCESS_KEY: &str = "AWS_ACCESS_KEY_ID";
/// The key of the secret access key in a credentials Secret.
pub const CREDENTIALS_SECRET_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// The optional key of a session token in a credentials Secret.
pub const CREDENTIALS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";

/// How a node produces a point-in-time snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum SnapshotMethod {
    /// Fork when the copy-on-write fits in reserved and free memory, otherwise forkless (the
    /// rule ElastiCache applies).
    #[default]
    Auto,
    /// A forked child writes the snapshot; copy-on-write spends reserved memory.
    Fork,
    /// A cooperative background walk inside the node: little extra memory, some latency.
    Forkless,
}

impl SnapshotMethod {
    /// The value of the node's `snapshot-method` setting.
    pub fn node_setting(self) -> &'static str {
        match self {
            SnapshotMethod::Auto => "auto",
            SnapshotMethod::Fork => "fork",
            SnapshotMethod::Forkless => "forkless",
        }
    }
}

/// A key of a Secret in the resource's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyReference {
    /// The Secret's name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The key within the Secret.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// How to reach an S3-compatible object store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Connection {
    /// The endpoint URL (`http://garage.storage:3900`); AWS S3 when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^/]+"))]
    pub endpoint: Option<String>,
    /// The region requests are signed for; `us-east-1` when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Address buckets as `endpoint/bucket` (most S3-compatible stores need it). Default true.
    #[serde(default = "default_true")]
    pub force_path_style: bool,
    /// A Secret in the same namespace holding `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// optionally `AWS_SESSION_TOKEN`. When omitted, nodes use their own environment (for
    /// instance an IAM role for service accounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
}

fn default_true() -> bool {
    true
}

/// Where a Backup's objects go: `s3://bucket/prefix/<namespace>/<backup>/`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Destination {
    /// The bucket; it must exist.
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    /// A key prefix inside the bucket, such as `backups/`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    #[serde(flatten)]
    pub connection: S3Connection,
}

/// One object in S3, such as an RDB file written by Redis or ElastiCache.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Object {
    /// The bucket.
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    /// The object's key.
    #[schemars(length(min = 1, max = 1024))]
    pub key: String,
    #[serde(flatten)]
    pub connection: S3Connection,
}

impl S3Object {
    /// The object as an `s3://bucket/key` URI.
    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// The schema of a `conditions` list: upstream `Condition`s merged by `type` under server-side
/// apply.
pub fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>();
    if let Some(object) = schema.as_object_mut() {
        object.insert("x-kubernetes-list-type".into(), "map".into());
        object.insert("x-kubernetes-list-map-keys".into(), serde_json::json!(["type"]));
    }
    schema
}
