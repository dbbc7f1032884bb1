//! The Restore controller: resolves the source (a Backup's manifest and data
//! object, or a raw RDB object), checks the data fits the new cluster, creates
//! the RedisCluster whose node preloads it, and mirrors that cluster's state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrocache_node::s3::{self, S3Error};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use tracing::{field, instrument, Span};

use crate::backup::manifest;
use crate::cluster::validate;
use crate::condition::{self, State};
use crate::context::{error_chain, object_key, Context};
use crate::crd::{Backup, RedisCluster, RedisClusterSpec, Restore, RestoreSource, RestoreStatus, S3Object};
use crate::store;

/// The controller's name in metrics and logs.
pub const CONTROLLER: &str = "restore";
/// The label on a restored RedisCluster naming the Restore that created it.
pub const RESTORED_BY_LABEL: &str = "ferrocache.io/restored-by";
/// The field manager of the clusters restores create.
const MANAGER: &str = "ferrocache-operator-restore";

/// Why a reconcile of a Restore stopped early; it is retried.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("unable to read {kind} {name}")]
    Read {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("unable to create RedisCluster {name}")]
    CreateCluster {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("unable to update the status of Restore {name}")]
    UpdateStatus {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("unable to read the backup from the object store")]
    Store(#[source] S3Error),
    #[error("unable to read the S3 credentials")]
    Credentials(#[source] store::CredentialsError),
}

impl RestoreError {
    pub fn reason(&self) -> &'static str {
        match self {
            RestoreError::Read { .. } => "ReadFailed",
            RestoreError::CreateCluster { .. } => "CreateFailed",
            RestoreError::UpdateStatus { .. } => "StatusUpdateFailed",
            RestoreError::Store(error) => error.reason(),
            RestoreError::Credentials(_) => "CredentialsUnavailable",
        }
    }
}

/// A source resolved to the object the new cluster preloads.
struct Resolved {
    object: S3Object,
    /// The spec of the backed-up cluster, for a Backup.
    base: Option<RedisClusterSpec>,
    /// Memory the data needs at least, in bytes (the node's used memory at backup time, or the
    /// size of a raw RDB).
    data_bytes: i64,
}

enum Outcome {
    Resolved(Box<Resolved>),
    Wait(String),
    Fail(&'static str, String),
}

/// Reconciles one Restore.
#[instrument(skip_all, fields(object = %restore.name_any(), namespace = field::Empty, cluster = %restore.spec.cluster_name))]
pub async fn reconcile(restore: Arc<Restore>, context: Arc<Context>) -> Result<Action, RestoreError> {
    let started = Instant::now();
    let namespace = restore.namespace().unwrap_or_default();
    Span::current().record("namespace", namespace.as_str());
    let result = reconcile_inner(&restore, &context, &namespace).await;
    context.metrics.reconciled(CONTROLLER, started.elapsed().as_secs_f64());
    match &result {
        Ok(_) => context.reconciled(&object_key(restore.as_ref())),
        Err(error) => {
            context.metrics.failed(CONTROLLER, error.reason());
            tracing::warn!(error = error as &dyn std::error::Error, reason = error.reason(), "reconcile failed");
        }
    }
    result
}

/// What to do after a failed reconcile: retry with backoff.
pub fn error_policy(restore: Arc<Restore>, error: &RestoreError, context: Arc<Context>) -> Action {
    Action::requeue(context.retry_after_failure(&object_key(restore.as_ref()), error))
}

async fn reconcile_inner(restore: &Restore, context: &Context, namespace: &str) -> Result<Action, RestoreError> {
    let mut status = restore.status.clone().unwrap_or_default();
    let clusters: Api<RedisCluster> = Api::namespaced(context.client.clone(), namespace);
    let name = &restore.spec.cluster_name;
    let existing = clusters.get_opt(name).await.map_err(|source| RestoreError::Read {
        kind: "RedisCluster",
        name: name.clone(),
        source,
    })?;
    let ours =
        existing.as_ref().is_some_and(|cluster| cluster.labels().get(RESTORED_BY_LABEL) == Some(&restore.name_any()));
    if let Some(cluster) = existing.as_ref().filter(|_| ours) {
        // Created: mirror the cluster.
        return mirror(restore, context, status, cluster).await;
    }
    if State::of(&status.conditions) == Some(State::Failed) {
        return Ok(Action::await_change());
    }
    if existing.is_some() {
        let message =
            format!("RedisCluster {name} already exists; a Restore creates a new cluster: choose another clusterName");
        write_status(restore, context, status, State::Failed, "ClusterExists", &message).await?;
        return Ok(Action::await_change());
    }
    let resolved = match resolve(restore, context, namespace).await? {
        Outcome::Resolved(resolved) => resolved,
        Outcome::Wait(message) => {
            write_status(restore, context, status, State::Creating, "WaitingForBackup", &message).await?;
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
        Outcome::Fail(reason, message) => {
            write_status(restore, context, status, State::Failed, reason, &message).await?;
            return Ok(Action::await_change());
        }
    };
    let cluster = new_cluster(restore, &resolved);
    // The new cluster must be valid and large enough for the data before it is created.
    let check = validate::validate(&cluster, None, &context.settings.node_image);
    let failure = match check {
        Err(invalid) => Some((invalid.reason(), format!("the restored cluster would be invalid: {invalid}"))),
        Ok(validated) if resolved.data_bytes > validated.maxmemory_bytes => Some((
            "InsufficientMemory",
            format!(
                "the backup needs {} of memory but the new cluster's maxmemory is {}: raise overrides.memoryLimit or overrides.maxmemory",
                crate::units::human_bytes(resolved.data_bytes),
                crate::units::human_bytes(validated.maxmemory_bytes)
            ),
        )),
        Ok(_) => None,
    };
    if let Some((reason, message)) = failure {
        write_status(restore, context, status, State::Failed, reason, &message).await?;
        return Ok(Action::await_change());
    }
    clusters
        .patch(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&cluster))
        .await
        .map_err(|source| RestoreError::CreateCluster { name: name.clone(), source })?;
    status.source_object = Some(resolved.object.uri());
    let message = format!("created RedisCluster {name}; its node preloads {}", resolved.object.uri());
    context.event(&restore.object_ref(&()), false, "ClusterCreated", "Restore", message.clone()).await;
    write_status(restore, context, status, State::Creating, "Creating", &message).await?;
    Ok(Action::requeue(Duration::from_secs(2)))
}

/// The RedisCluster a Restore creates: the source's spec (or the defaults), the overrides, and
/// the object to preload.
fn new_cluster(restore: &Restore, resolved: &Resolved) -> RedisCluster {
    let mut spec = resolved.base.clone().unwrap_or_default();
    if let Some(overrides) = &restore.spec.overrides {
        if overrides.image.is_some() {
            spec.image = overrides.image.clone();
        }
        if let Some(limit) = &overrides.memory_limit {
            spec.memory_limit = limit.clone();
            // A new limit recomputes the default maxmemory unless one is given.
            spec.maxmemory = None;
        }
        if overrides.maxmemory.is_some() {
            spec.maxmemory = overrides.maxmemory.clone();
        }
        if let Some(percent) = overrides.reserved_memory_percent {
            spec.reserved_memory_percent = percent;
        }
        if let Some(method) = overrides.snapshot_method {
            spec.snapshot_method = method;
        }
        if overrides.resources.is_some() {
            spec.resources = overrides.resources.clone();
        }
        if overrides.password_secret.is_some() {
            spec.password_secret = overrides.password_secret.clone();
        }
    }
    spec.restore_from = Some(RestoreSource { backup: None, s3: Some(resolved.object.clone()) });
    let mut cluster = RedisCluster::new(&restore.spec.cluster_name, spec);
    cluster.metadata.namespace = restore.namespace();
    cluster.metadata.labels = Some([(RESTORED_BY_LABEL.to_owned(), restore.name_any())].into());
    cluster
}

async fn resolve(restore: &Restore, context: &Context, namespace: &str) -> Result<Outcome, RestoreError> {
    let source = &restore.spec.source;
    match (&source.backup, &source.s3) {
        (Some(backup), None) => resolve_backup(backup, context, namespace).await,
        (None, Some(object)) => {
            let client = match store_client(context, namespace, &object.connection).await? {
                Ok(client) => client,
                Err(outcome) => return Ok(outcome),
            };
            match s3::head_object(&client, &object.bucket, &object.key).await {
                Ok(info) => Ok(Outcome::Resolved(Box::new(Resolved {
                    object: object.clone(),
                    base: None,
                    data_bytes: info.size as i64,
                }))),
                Err(error) if error.is_transient() => Err(RestoreError::Store(error)),
                Err(error) => Ok(Outcome::Fail(error.reason(), error_chain(&error))),
            }
        }
        _ => Ok(Outcome::Fail("InvalidSource", "spec.source must name exactly one of backup and s3".to_owned())),
    }
}

async fn resolve_backup(name: &str, context: &Context, namespace: &str) -> Result<Outcome, RestoreError> {
    let backups: Api<Backup> = Api::namespaced(context.client.clone(), namespace);
    let Some(backup) = backups.get_opt(name).await.map_err(|source| RestoreError::Read {
        kind: "Backup",
        name: name.to_owned(),
        source,
    })?
    else {
        return Ok(Outcome::Fail("BackupNotFound", format!("Backup {name} does not exist in namespace {namespace}")));
    };
    let status = backup.status.clone().unwrap_or_default();
    match State::of(&status.conditions) {
        Some(State::Available) => {}
        Some(State::Failed) => {
            let why = condition::find(&status.conditions, condition::AVAILABLE)
                .map(|c| c.message.clone())
                .unwrap_or_default();
            return Ok(Outcome::Fail("BackupFailed", format!("Backup {name} failed: {why}")));
        }
        _ => return Ok(Outcome::Wait(format!("waiting for Backup {name} to be available"))),
    }
    let connection = backup.spec.destination.connection.clone();
    let client = match store_client(context, namespace, &connection).await? {
        Ok(client) => client,
        Err(outcome) => return Ok(outcome),
    };
    let bucket = &backup.spec.destination.bucket;
    let folder = manifest::folder(&backup.spec.destination, namespace, name);
    let manifest_key = manifest::manifest_key(&folder);
    let document = match manifest::read(&client, bucket, &manifest_key).await {
        Ok(Some(document)) => document,
        Ok(None) => {
            let message = format!("the manifest s3://{bucket}/{manifest_key} does not exist");
            return Ok(Outcome::Fail("ManifestUnreadable", message));
        }
        Err(manifest::ReadManifestError::Read { source, .. }) if source.is_transient() => {
            // Already retried; the store may come back: try again later rather than fail.
            return Err(RestoreError::Store(source));
        }
        Err(error @ manifest::ReadManifestError::Invalid { .. }) => {
            return Ok(Outcome::Fail("ManifestInvalid", error_chain(&error)));
        }
        Err(error) => return Ok(Outcome::Fail("ManifestUnreadable", error_chain(&error))),
    };
    let Some(shard) = document.shards.first() else {
        return Ok(Outcome::Fail("ManifestInvalid", format!("s3://{bucket}/{manifest_key} lists no data object")));
    };
    let key = shard.object.strip_prefix(&format!("s3://{bucket}/")).unwrap_or(&shard.object).to_owned();
    Ok(Outcome::Resolved(Box::new(Resolved {
        object: S3Object { bucket: bucket.clone(), key, connection },
        base: Some(document.cluster.spec.clone()),
        data_bytes: shard.used_memory_bytes.max(shard.size_bytes),
    })))
}

/// An S3 client for `connection`, or the outcome that ends the restore.
async fn store_client(
    context: &Context,
    namespace: &str,
    connection: &crate::crd::S3Connection,
) -> Result<Result<ferrocache_node::s3::S3Client, Outcome>, RestoreError> {
    match store::client_for(&context.client, namespace, connection).await {
        Ok(client) => Ok(Ok(client)),
        Err(store::ClientFailure::Unusable(reason, message)) => Ok(Err(Outcome::Fail(reason, message))),
        Err(store::ClientFailure::Unreadable(error)) => Err(RestoreError::Credentials(error)),
    }
}

/// Mirrors the created cluster's state: creating, then available, or failed with its reason.
async fn mirror(
    restore: &Restore,
    context: &Context,
    status: RestoreStatus,
    cluster: &RedisCluster,
) -> Result<Action, RestoreError> {
    let conditions = cluster.status.as_ref().map_or(&[][..], |status| &status.conditions[..]);
    let message_of = |type_| condition::find(conditions, type_).map(|c| c.message.clone()).unwrap_or_default();
    let name = cluster.name_any();
    let (state, reason, message) = match State::of(conditions) {
        Some(State::Available | State::Modifying) => {
            (State::Available, "ClusterAvailable", format!("RedisCluster {name} is available with the restored data"))
        }
        Some(State::Failed) => (
            State::Failed,
            "ClusterFailed",
            format!("RedisCluster {name} failed: {}", message_of(condition::AVAILABLE)),
        ),
        _ => (
            State::Creating,
            "Creating",
            format!("RedisCluster {name} is being created: {}", message_of(condition::AVAILABLE)),
        ),
    };
    write_status(restore, context, status, state, reason, &message).await?;
    Ok(match state {
        State::Creating => Action::requeue(Duration::from_secs(2)),
        _ => Action::requeue(Duration::from_secs(300)),
    })
}

/// Writes `status` with the conditions of `state` (see [`crate::status::write`]).
async fn write_status(
    restore: &Restore,
    context: &Context,
    status: RestoreStatus,
    state: State,
    reason: &str,
    message: &str,
) -> Result<(), RestoreError> {
    let previous = restore.status.clone().unwrap_or_default();
    let observed = condition::for_state(state, state == State::Available, reason, message);
    crate::status::write(context, restore, &previous, status, &observed, "Restore")
        .await
        .map_err(|source| RestoreError::UpdateStatus { name: restore.name_any(), source })
}
