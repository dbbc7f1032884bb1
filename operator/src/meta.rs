//! Names, labels and owner references of the objects the operator creates,
//! set in one place.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

/// The field manager of every server-side apply, and the `managed-by` label.
pub const MANAGER: &str = "ferrocache-operator";
/// The label naming the RedisCluster a node pod belongs to.
pub const CLUSTER_LABEL: &str = "ferrocache.io/cluster";
/// The label marking a Backup made by a schedule or a final backup.
pub const BACKUP_KIND_LABEL: &str = "ferrocache.io/backup-kind";

/// Labels that select a cluster's node pods.
pub fn selector_labels(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "ferrocache".to_owned()),
        ("app.kubernetes.io/instance".to_owned(), cluster.to_owned()),
        ("app.kubernetes.io/component".to_owned(), "node".to_owned()),
    ])
}

/// The recommended labels of every object of a cluster.
pub fn cluster_labels(cluster: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(cluster);
    labels.insert("app.kubernetes.io/managed-by".to_owned(), MANAGER.to_owned());
    labels.insert("app.kubernetes.io/part-of".to_owned(), "ferrocache".to_owned());
    labels.insert(CLUSTER_LABEL.to_owned(), cluster.to_owned());
    labels
}

/// A controller owner reference to `owner`, so deleting it collects the object.
pub fn owner_reference<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.name_any(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Metadata of an object named `name` owned by `owner`, in its namespace.
pub fn owned_meta<K: Resource<DynamicType = ()>>(
    owner: &K,
    name: String,
    labels: BTreeMap<String, String>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: owner.meta().namespace.clone(),
        labels: Some(labels),
        owner_references: Some(vec![owner_reference(owner)]),
        ..ObjectMeta::default()
    }
}
