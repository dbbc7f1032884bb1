//! The RedisCluster controller: dereference → validate → build → apply →
//! status, once per change of a cluster or of anything it owns.

mod backups;
pub mod build;
pub mod schedule;
pub mod status;
pub mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::{field, instrument, Span};

use self::status::Observation;
use self::validate::{InvalidCluster, Preload, ValidatedCluster};
use crate::condition::{self, Observed, State};
use crate::context::{error_chain, object_key, Context};
use crate::crd::{Backup, RedisCluster, RedisClusterStatus};
use crate::meta::MANAGER;
use crate::node_client::{NodeConnection, NodeError, NODE_PORT};

/// The controller's name in metrics and logs.
pub const CONTROLLER: &str = "rediscluster";
/// Holds a deleted cluster until its final backup (if any) is taken.
pub const FINALIZER: &str = "redisclusters.ferrocache.io/final-backup";

/// Why a reconcile of a cluster stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("invalid spec: {0}")]
    Invalid(#[from] InvalidCluster),
    #[error("unable to read {kind} {name}")]
    Read {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("unable to apply {kind} {name}")]
    Apply {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("unable to update the status of RedisCluster {name}")]
    UpdateStatus {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("unable to apply settings to node {pod}")]
    NodeSettings {
        pod: String,
        #[source]
        source: NodeError,
    },
    #[error("failed to read the password: {0}")]
    Password(String),
    #[error("waiting for the final Backup {0} before removing the cluster's pods")]
    FinalBackupPending(String),
    #[error("finalizer failed")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<ClusterError>>),
}

impl ClusterError {
    /// The PascalCase reason used in Events, conditions and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ClusterError::Invalid(invalid) => invalid.reason(),
            ClusterError::Read { .. } => "ReadFailed",
            ClusterError::Apply { .. } => "ApplyFailed",
            ClusterError::UpdateStatus { .. } => "StatusUpdateFailed",
            ClusterError::NodeSettings { .. } => "NodeUnreachable",
            ClusterError::Password(_) => "PasswordUnavailable",
            ClusterError::FinalBackupPending(_) => "FinalBackupPending",
            ClusterError::Finalizer(_) => "FinalizerFailed",
        }
    }
}

/// Reconciles one RedisCluster.
#[instrument(skip_all, fields(object = %cluster.name_any(), namespace = field::Empty, trace_id = field::Empty))]
pub async fn reconcile(cluster: Arc<RedisCluster>, context: Arc<Context>) -> Result<Action, ClusterError> {
    let started = Instant::now();
    let namespace = cluster.namespace().unwrap_or_default();
    Span::current().record("namespace", namespace.as_str());
    let api: Api<RedisCluster> = Api::namespaced(context.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, Arc::clone(&cluster), |event| async {
        match event {
            FinalizerEvent::Apply(cluster) => reconcile_inner(&cluster, &context, &namespace).await,
            FinalizerEvent::Cleanup(cluster) => {
                backups::final_backup(&cluster, &context, &namespace).await.map(|()| Action::await_change())
            }
        }
    })
    .await
    .map_err(|error| match error {
        kube::runtime::finalizer::Error::ApplyFailed(error) | kube::runtime::finalizer::Error::CleanupFailed(error) => {
            error
        }
        other => ClusterError::Finalizer(Box::new(other)),
    });
    context.metrics.reconciled(CONTROLLER, started.elapsed().as_secs_f64());
    if result.is_ok() {
        context.reconciled(&object_key(cluster.as_ref()));
    }
    if let Err(error) = &result {
        context.metrics.failed(CONTROLLER, error.reason());
        tracing::warn!(error = error as &dyn std::error::Error, reason = error.reason(), "reconcile failed");
        if let ClusterError::Password(_) = error {
            // The user must fix the Secret: say so in status, keep what serves.
            let available =
                condition::is_true(cluster.status.as_ref().map_or(&[], |s| &s.conditions), condition::AVAILABLE);
            let observed = condition::for_state(State::Failed, available, error.reason(), &error_chain(error));
            if let Err(status_error) = write_status(&cluster, &context, &observed, |_| {}).await {
                tracing::warn!(
                    error = &status_error as &dyn std::error::Error,
                    "unable to record the failure in status"
                );
            }
        }
    }
    result
}

async fn reconcile_inner(cluster: &RedisCluster, context: &Context, namespace: &str) -> Result<Action, ClusterError> {
    let name = cluster.name_any();
    // Dereference: the Backup a new cluster restores from.
    let (preload, waiting) = match dereference_restore_source(cluster, context, namespace).await? {
        RestoreState::None => (None, None),
        RestoreState::Ready(preload) => (Some(preload), None),
        RestoreState::Waiting(reason) => (None, Some(reason)),
    };
    let validated = match validate::validate(cluster, preload, &context.settings.node_image) {
        Ok(validated) => validated,
        Err(invalid) => {
            let message = format!("{invalid}; fix the spec");
            let observed = condition::for_state(State::Failed, false, invalid.reason(), &message);
            write_status(cluster, context, &observed, |_| {}).await?;
            return Ok(Action::await_change());
        }
    };
    let sets: Api<StatefulSet> = Api::namespaced(context.client.clone(), namespace);
    let mut observation = Observation { desired_nodes: 1, waiting, ..Observation::default() };
    if observation.waiting.is_none() || sets.get_opt(&build::statefulset_name(&name)).await.ok().flatten().is_some() {
        apply(context, namespace, &build::config_map(cluster, &validated)).await?;
        apply(context, namespace, &build::headless_service(cluster, &validated)).await?;
        apply(context, namespace, &build::client_service(cluster, &validated)).await?;
    }
    let set = if observation.waiting.is_none() {
        Some(apply(context, namespace, &build::statefulset(cluster, &validated)).await?)
    } else {
        sets.get_opt(&build::statefulset_name(&name)).await.map_err(|source| ClusterError::Read {
            kind: "StatefulSet",
            name: name.clone(),
            source,
        })?
    };
    if let Some(set) = &set {
        let generation = set.metadata.generation.unwrap_or(0);
        observation.rollout_pending =
            set.status.as_ref().and_then(|status| status.observed_generation).unwrap_or(0) < generation;
        let pods: Api<Pod> = Api::namespaced(context.client.clone(), namespace);
        let selector = crate::meta::selector_labels(&name)
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(",");
        let list = pods.list(&ListParams::default().labels(&selector)).await.map_err(|source| ClusterError::Read {
            kind: "Pod",
            name: selector.clone(),
            source,
        })?;
        observation.pods = list.items.iter().map(|pod| status::observe_pod(pod, Some(set))).collect();
        observation.pods.sort_by(|a, b| a.name.cmp(&b.name));
        observation.settings_pending = apply_live_settings(context, namespace, &validated, &observation).await?;
    }
    let observed = status::conditions(cluster.status.as_ref().map_or(&[], |s| &s.conditions), &observation);
    let (nodes, ready_nodes) = status::nodes(&observation);
    let endpoint = format!("{}.{namespace}.svc:{NODE_PORT}", build::client_service_name(&name));
    let maxmemory = validated.maxmemory_bytes;
    let state = State::of(&observed_to_conditions(&observed));
    let schedule = match &cluster.spec.backup {
        Some(policy) => Some(backups::run_schedule(cluster, policy, context, namespace).await?),
        None => None,
    };
    let schedule_requeue = schedule.as_ref().and_then(|outcome| outcome.requeue);
    write_status(cluster, context, &observed, |status| {
        status.endpoint = Some(endpoint);
        status.ready_nodes = Some(ready_nodes);
        status.nodes = nodes;
        status.maxmemory_bytes = Some(maxmemory);
        match schedule {
            Some(outcome) => backups::fill_status(status, outcome),
            None => backups::fill_status(status, Default::default()),
        }
    })
    .await?;
    let requeue = match state {
        Some(State::Available) => Duration::from_secs(300),
        Some(State::Failed) => Duration::from_secs(30),
        _ => Duration::from_secs(5),
    };
    Ok(Action::requeue(schedule_requeue.map_or(requeue, |schedule| schedule.min(requeue))))
}

fn observed_to_conditions(observed: &[Observed]) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    condition::merge(&[], observed, None, k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}

enum RestoreState {
    None,
    Ready(Preload),
    Waiting(String),
}

/// Resolves `restoreFrom`: an S3 object as given, or the data object of an available Backup.
async fn dereference_restore_source(
    cluster: &RedisCluster,
    context: &Context,
    namespace: &str,
) -> Result<RestoreState, ClusterError> {
    let Some(source) = &cluster.spec.restore_from else {
        return Ok(RestoreState::None);
    };
    if let Some(object) = &source.s3 {
        return Ok(RestoreState::Ready(Preload { uri: object.uri(), connection: object.connection.clone() }));
    }
    let Some(backup_name) = &source.backup else {
        return Ok(RestoreState::None);
    };
    let backups: Api<Backup> = Api::namespaced(context.client.clone(), namespace);
    let backup = backups.get_opt(backup_name).await.map_err(|source| ClusterError::Read {
        kind: "Backup",
        name: backup_name.clone(),
        source,
    })?;
    let Some(backup) = backup else {
        return Ok(RestoreState::Waiting(format!("Backup {backup_name} does not exist")));
    };
    let status = backup.status.clone().unwrap_or_default();
    if !condition::is_true(&status.conditions, condition::AVAILABLE) {
        return Ok(RestoreState::Waiting(format!("Backup {backup_name} is not available yet")));
    }
    match status.shards.first() {
        Some(shard) => Ok(RestoreState::Ready(Preload {
            uri: shard.object.clone(),
            connection: backup.spec.destination.connection.clone(),
        })),
        None => Ok(RestoreState::Waiting(format!("Backup {backup_name} lists no data object"))),
    }
}

/// Server-side applies `object` with the operator's field manager, taking ownership of
/// every field it sets.
pub async fn apply<K>(context: &Context, namespace: &str, object: &K) -> Result<K, ClusterError>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(context.client.clone(), namespace);
    let name = object.meta().name.clone().unwrap_or_default();
    api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(object))
        .await
        .map_err(|source| ClusterError::Apply { kind: kind_name::<K>(), name, source })
}

fn kind_name<K: Resource<DynamicType = ()>>() -> &'static str {
    match K::kind(&()).as_ref() {
        "ConfigMap" => "ConfigMap",
        "Service" => "Service",
        "StatefulSet" => "StatefulSet",
        _ => "object",
    }
}

/// The cluster's password, read from its Secret.
pub async fn read_password(
    context: &Context,
    namespace: &str,
    reference: &crate::crd::SecretKeyReference,
) -> Result<String, String> {
    let secrets: Api<Secret> = Api::namespaced(context.client.clone(), namespace);
    let secret = secrets
        .get_opt(&reference.name)
        .await
        .map_err(|error| format!("unable to read Secret {}: {}", reference.name, error_chain(&error)))?
        .ok_or_else(|| format!("Secret {} does not exist", reference.name))?;
    secret
        .data
        .as_ref()
        .and_then(|data| data.get(&reference.key))
        .map(|value| String::from_utf8_lossy(&value.0).into_owned())
        .ok_or_else(|| format!("Secret {} has no key {}", reference.name, reference.key))
}

/// Sets on each ready node the live settings that differ from the spec. Returns what was
/// changed (the cluster is modifying while some change is still being applied).
async fn apply_live_settings(
    context: &Context,
    namespace: &str,
    cluster: &ValidatedCluster,
    observation: &Observation,
) -> Result<Option<String>, ClusterError> {
    let password = match &cluster.password {
        Some(reference) => Some(read_password(context, namespace, reference).await.map_err(ClusterError::Password)?),
        None => None,
    };
    let wanted: BTreeMap<&str, String> = build::live_settings(cluster).into_iter().collect();
    let names: Vec<&str> = wanted.keys().copied().collect();
    let mut changed = Vec::new();
    for pod in observation.pods.iter().filter(|pod| pod.ready && pod.updated) {
        let Some(address) = pod.address.as_ref().and_then(|ip| ip.parse().ok()) else {
            continue;
        };
        let node_error = |source| ClusterError::NodeSettings { pod: pod.name.clone(), source };
        let mut node = NodeConnection::connect(SocketAddr::new(address, NODE_PORT), password.as_deref())
            .await
            .map_err(node_error)?;
        let actual = node.config_get(&names).await.map_err(node_error)?;
        for (name, value) in &wanted {
            if actual.get(*name) != Some(value) {
                node.config_set(name, value).await.map_err(node_error)?;
                changed.push(format!("{name} {value} on {}", pod.name));
            }
        }
    }
    if !changed.is_empty() {
        tracing::info!(changes = %changed.join(", "), "applied live settings");
        context
            .event(
                &cluster_reference(namespace, &cluster.name),
                false,
                "SettingsApplied",
                "ApplySettings",
                format!("set {}", changed.join(", ")),
            )
            .await;
    }
    Ok((!changed.is_empty()).then(|| format!("applied {}", changed.join(", "))))
}

fn cluster_reference(namespace: &str, name: &str) -> k8s_openapi::api::core::v1::ObjectReference {
    k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some(RedisCluster::api_version(&()).into_owned()),
        kind: Some(RedisCluster::kind(&()).into_owned()),
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        ..Default::default()
    }
}

/// Merges `observed` into the cluster's conditions, lets `fill` set the other fields, and
/// writes the status (see [`crate::status::write`]).
async fn write_status(
    cluster: &RedisCluster,
    context: &Context,
    observed: &[Observed],
    fill: impl FnOnce(&mut RedisClusterStatus),
) -> Result<(), ClusterError> {
    let previous = cluster.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    fill(&mut status);
    crate::status::write(context, cluster, &previous, status, observed, "Reconcile")
        .await
        .map_err(|source| ClusterError::UpdateStatus { name: cluster.name_any(), source })
}

/// What to do after a failed reconcile: retry soon, with the reason recorded.
pub fn error_policy(cluster: Arc<RedisCluster>, error: &ClusterError, context: Arc<Context>) -> Action {
    match error {
        ClusterError::Invalid(_) => Action::await_change(),
        ClusterError::FinalBackupPending(_) => Action::requeue(Duration::from_secs(3)),
        _ => Action::requeue(context.retry_after_failure(&object_key(cluster.as_ref()), error)),
    }
}
