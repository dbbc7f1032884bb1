//! The Backup controller: asks each node of the cluster to stream a snapshot
//! to S3 (`BACKUP START`, idempotent per job id), polls it, verifies the
//! node's sidecar, and writes the manifest last. Deleting a Backup deletes its
//! objects (finalizer) unless its retain policy keeps them.
//!
//! Every step is re-entrant: the job id is derived from the Backup's uid and
//! recorded in status before a node is asked, so an operator restarted in
//! mid-backup finds the node's job again instead of starting a second one.

mod copy;
pub mod manifest;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrocache_node::s3::{self, S3Client, S3Error};
use ferrocache_node::snapshot::CommitInfo;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::{Api, Resource, ResourceExt};
use tracing::{field, instrument, Span};

use self::manifest::{BackupIdentity, ClusterMetadata, Manifest, ReadManifestError, ShardManifest};
use crate::condition::{self, State};
use crate::context::{error_chain, object_key, Context};
use crate::crd::{Backup, BackupShardStatus, BackupStatus, RedisCluster, RetainPolicy};
use crate::node_client::{JobStatus, NodeConnection, NodeError, NODE_PORT};
use crate::store::{self, CredentialsError};

/// The controller's name in metrics and logs.
pub const CONTROLLER: &str = "backup";
/// Removes a Backup's objects from S3 before the Backup goes away.
pub const FINALIZER: &str = "backups.ferrocache.io/s3-cleanup";
/// How long a backup may wait for its cluster, node or store before it fails.
const PATIENCE: Duration = Duration::from_secs(300);
/// How often a running snapshot is polled.
const POLL: Duration = Duration::from_secs(2);

/// Why a reconcile of a Backup stopped early; it is retried.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("unable to read {kind} {name}")]
    Read {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("unable to update the status of Backup {name}")]
    UpdateStatus {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("unable to read the S3 credentials")]
    Credentials(#[source] CredentialsError),
    #[error("unable to reach the object store")]
    Store(#[source] S3Error),
    #[error("unable to reach the node")]
    Node(#[source] NodeError),
    #[error("the backup is still being written; its objects are deleted once it ends")]
    InProgress,
    #[error("finalizer failed")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<BackupError>>),
}

impl BackupError {
    pub fn reason(&self) -> &'static str {
        match self {
            BackupError::Read { .. } => "ReadFailed",
            BackupError::UpdateStatus { .. } => "StatusUpdateFailed",
            BackupError::Credentials(_) => "CredentialsUnavailable",
            BackupError::Store(error) => error.reason(),
            BackupError::Node(_) => "NodeUnreachable",
            BackupError::InProgress => "InProgress",
            BackupError::Finalizer(_) => "FinalizerFailed",
        }
    }
}

/// The outcome of one visit that did not hit an error.
pub(crate) enum Step {
    /// Come back after this long.
    Wait(Duration, String),
    /// The backup failed for good: reason and message.
    Fail(&'static str, String),
    /// The manifest is written.
    Complete,
}

/// Reconciles one Backup.
#[instrument(skip_all, fields(object = %backup.name_any(), namespace = field::Empty, cluster = backup.spec.cluster.as_deref().unwrap_or_default()))]
pub async fn reconcile(backup: Arc<Backup>, context: Arc<Context>) -> Result<Action, BackupError> {
    let started = Instant::now();
    let namespace = backup.namespace().unwrap_or_default();
    Span::current().record("namespace", namespace.as_str());
    let api: Api<Backup> = Api::namespaced(context.client.clone(), &namespace);
    let key = object_key(backup.as_ref());
    let result = finalizer(&api, FINALIZER, backup, |event| async {
        match event {
            FinalizerEvent::Apply(backup) => apply(&backup, &context).await,
            FinalizerEvent::Cleanup(backup) => cleanup(&backup, &context).await,
        }
    })
    .await
    .map_err(|error| match error {
        kube::runtime::finalizer::Error::ApplyFailed(error) | kube::runtime::finalizer::Error::CleanupFailed(error) => {
            error
        }
        other => BackupError::Finalizer(Box::new(other)),
    });
    context.metrics.reconciled(CONTROLLER, started.elapsed().as_secs_f64());
    match &result {
        Ok(_) => context.reconciled(&key),
        Err(error) => {
            context.metrics.failed(CONTROLLER, error.reason());
            tracing::warn!(error = error as &dyn std::error::Error, reason = error.reason(), "reconcile failed");
        }
    }
    result
}

/// What to do after a failed reconcile: every error here may pass, so retry with backoff
/// (a snapshot still running is polled at a steady pace instead).
pub fn error_policy(backup: Arc<Backup>, error: &BackupError, context: Arc<Context>) -> Action {
    match error {
        BackupError::InProgress => Action::requeue(Duration::from_secs(5)),
        _ => Action::requeue(context.retry_after_failure(&object_key(backup.as_ref()), error)),
    }
}

/// The node-side job id of a backup: stable for the object, unique across re-creations.
pub fn job_id(backup: &Backup) -> String {
    format!(
        "{}.{}.{}",
        backup.namespace().unwrap_or_default(),
        backup.name_any(),
        backup.meta().uid.as_deref().unwrap_or("")
    )
}

async fn apply(backup: &Backup, context: &Context) -> Result<Action, BackupError> {
    let status = backup.status.clone().unwrap_or_default();
    if matches!(State::of(&status.conditions), Some(State::Available | State::Failed)) {
        return Ok(Action::await_change());
    }
    let namespace = backup.namespace().unwrap_or_default();
    let folder = manifest::folder(&backup.spec.destination, &namespace, &backup.name_any());
    let bucket = backup.spec.destination.bucket.clone();
    let mut status = status;
    if status.start_time.is_none() {
        status.start_time = Some(Time(context.now()));
        status.location = Some(format!("s3://{bucket}/{folder}"));
        status.job_id = Some(job_id(backup));
        let message = match (&backup.spec.cluster, &backup.spec.copy_from) {
            (Some(cluster), _) => format!("backing up RedisCluster {cluster} to s3://{bucket}/{folder}"),
            (None, Some(source)) => format!("copying Backup {source} to s3://{bucket}/{folder}"),
            (None, None) => "starting".to_owned(),
        };
        write_status(backup, context, status.clone(), State::Creating, "Creating", &message).await?;
        status = backup.status.clone().unwrap_or(status);
    }
    let step = step(backup, context, &mut status, &namespace, &folder).await?;
    match step {
        Step::Wait(after, message) => {
            write_status(backup, context, status, State::Creating, "Creating", &message).await?;
            Ok(Action::requeue(after))
        }
        Step::Fail(reason, message) => {
            status.completion_time = Some(Time(context.now()));
            context.metrics.backups.get_or_create(&crate::metrics::OutcomeLabels { outcome: "failed" }).inc();
            write_status(backup, context, status, State::Failed, reason, &message).await?;
            Ok(Action::await_change())
        }
        Step::Complete => {
            let seconds = status
                .start_time
                .as_ref()
                .zip(status.completion_time.as_ref())
                .map_or(0.0, |(start, end)| (end.0.as_millisecond() - start.0.as_millisecond()) as f64 / 1000.0);
            context.metrics.backups.get_or_create(&crate::metrics::OutcomeLabels { outcome: "available" }).inc();
            context.metrics.backup_duration.observe(seconds);
            context.metrics.backup_size.observe(status.size_bytes.unwrap_or(0) as f64);
            let message = format!(
                "{} keys, {} of RDB data by {} in {seconds:.1} s at {}",
                status.keys.unwrap_or(0),
                crate::units::human_bytes(status.size_bytes.unwrap_or(0)),
                status.method.clone().unwrap_or_default(),
                status.manifest.clone().unwrap_or_default()
            );
            write_status(backup, context, status, State::Available, "BackupComplete", &message).await?;
            Ok(Action::await_change())
        }
    }
}

/// Whether the backup has waited longer than its patience.
fn out_of_patience(status: &BackupStatus, context: &Context) -> bool {
    let Some(start) = &status.start_time else {
        return false;
    };
    let waited = context.now().as_millisecond() - start.0.as_millisecond();
    waited > PATIENCE.as_millis() as i64
}

/// One step of a backup in progress: a snapshot of a cluster, or a copy of another backup.
async fn step(
    backup: &Backup,
    context: &Context,
    status: &mut BackupStatus,
    namespace: &str,
    folder: &str,
) -> Result<Step, BackupError> {
    match (&backup.spec.cluster, &backup.spec.copy_from) {
        (Some(cluster), None) => snapshot_step(backup, context, status, namespace, folder, cluster).await,
        (None, Some(source)) => copy::step(backup, context, status, namespace, folder, source).await,
        _ => Ok(Step::Fail("InvalidSpec", "spec must name exactly one of cluster and copyFrom".to_owned())),
    }
}

/// One step of a snapshot of a cluster.
async fn snapshot_step(
    backup: &Backup,
    context: &Context,
    status: &mut BackupStatus,
    namespace: &str,
    folder: &str,
    cluster_name: &String,
) -> Result<Step, BackupError> {
    let bucket = &backup.spec.destination.bucket;
    let clusters: Api<RedisCluster> = Api::namespaced(context.client.clone(), namespace);
    let cluster = clusters.get_opt(cluster_name).await.map_err(|source| BackupError::Read {
        kind: "RedisCluster",
        name: cluster_name.clone(),
        source,
    })?;
    let Some(cluster) = cluster else {
        return Ok(Step::Fail(
            "ClusterNotFound",
            format!("RedisCluster {cluster_name} does not exist in namespace {namespace}; fix spec.cluster and create a new Backup"),
        ));
    };
    let job_s3 = match store::job_settings(&context.client, namespace, &backup.spec.destination.connection).await {
        Ok(settings) => settings,
        Err(error @ (CredentialsError::Missing(_) | CredentialsError::MissingKey { .. })) => {
            return Ok(Step::Fail("CredentialsNotFound", format!("{error}; create it and a new Backup")));
        }
        Err(error) => return Err(BackupError::Credentials(error)),
    };
    let client = match store::client(&job_s3).await {
        Ok(client) => client,
        Err(error) => return Ok(Step::Fail(error.reason(), error_chain(&error))),
    };
    let manifest_key = manifest::manifest_key(folder);
    if status.shards.is_empty() {
        // Before any node starts: the destination must be usable and free.
        if let Some(step) = check_destination(backup, context, status, &client, &manifest_key).await? {
            return Ok(step);
        }
    }
    if !condition::is_true(cluster.status.as_ref().map_or(&[], |s| &s.conditions), condition::AVAILABLE) {
        if status.shards.is_empty() && out_of_patience(status, context) {
            return Ok(Step::Fail(
                "ClusterNotAvailable",
                format!("RedisCluster {cluster_name} did not become available"),
            ));
        }
        return Ok(Step::Wait(
            Duration::from_secs(5),
            format!("waiting for RedisCluster {cluster_name} to be available"),
        ));
    }
    if status.shards.is_empty() {
        if let Some(other) = earlier_backup_of(backup, context, namespace, cluster_name).await? {
            return Ok(Step::Wait(
                Duration::from_secs(3),
                format!("waiting for Backup {other} of RedisCluster {cluster_name} to finish: one backup at a time"),
            ));
        }
    }
    let password = match &cluster.spec.password_secret {
        Some(reference) => match crate::cluster::read_password(context, namespace, reference).await {
            Ok(password) => Some(password),
            Err(message) => return Ok(Step::Fail("PasswordUnavailable", message)),
        },
        None => None,
    };
    let pod_name = format!("{}-0", crate::cluster::build::statefulset_name(cluster_name));
    let pods: Api<Pod> = Api::namespaced(context.client.clone(), namespace);
    let pod = pods.get_opt(&pod_name).await.map_err(|source| BackupError::Read {
        kind: "Pod",
        name: pod_name.clone(),
        source,
    })?;
    let Some(address) = pod.as_ref().and_then(|pod| pod.status.as_ref()?.pod_ip.as_ref()?.parse().ok()) else {
        return Ok(Step::Wait(Duration::from_secs(5), format!("waiting for node {pod_name} to have an address")));
    };
    let data_key = manifest::shard_key(folder, 0);
    let uri = format!("s3://{bucket}/{data_key}");
    let job_id = status.job_id.clone().unwrap_or_else(|| job_id(backup));
    let mut node = match NodeConnection::connect(SocketAddr::new(address, NODE_PORT), password.as_deref()).await {
        Ok(node) => node,
        Err(error) if status.shards.is_empty() && out_of_patience(status, context) => {
            return Ok(Step::Fail("NodeUnreachable", error_chain(&error)));
        }
        Err(error) => return Err(BackupError::Node(error)),
    };
    let job = match node.backup_status(&job_id).await.map_err(BackupError::Node)? {
        Some(job) => job,
        None if !status.shards.is_empty() => {
            // The node died with its upload: nobody else will abort it.
            abort_orphaned_upload(&client, bucket, &data_key).await;
            return Ok(Step::Fail(
                "NodeRestarted",
                format!("node {pod_name} restarted during the backup and lost its data; create a new Backup"),
            ));
        }
        None => {
            let method = backup.spec.snapshot_method.or(Some(cluster.spec.snapshot_method));
            match node.backup_start(&job_id, &uri, method, &job_s3).await {
                Ok(job) => {
                    context
                        .event(
                            &backup.object_ref(&()),
                            false,
                            "SnapshotStarted",
                            "StartSnapshot",
                            format!("node {pod_name} streams its snapshot to {uri}"),
                        )
                        .await;
                    job
                }
                Err(error) if error.is_refusal() => {
                    return Ok(Step::Wait(
                        Duration::from_secs(3),
                        format!("node {pod_name} is busy: {}", error_chain(&error)),
                    ));
                }
                Err(error) => return Err(BackupError::Node(error)),
            }
        }
    };
    status.shards = vec![shard_status(&pod_name, &uri, &job)];
    if !job.is_finished() {
        let progress =
            format!("node {pod_name} is writing its snapshot by {} ({} bytes so far)", job.method, job.bytes);
        return Ok(Step::Wait(POLL, progress));
    }
    if !job.succeeded() {
        let error = job.error.clone().unwrap_or_else(|| "no reason given".to_owned());
        return Ok(Step::Fail(
            "SnapshotFailed",
            format!("node {pod_name} failed to write its snapshot to {uri}: {error}"),
        ));
    }
    // Verify what the node recorded next to the data, then complete with the manifest.
    let sidecar = match s3::read_sidecar::<CommitInfo>(&client, bucket, &data_key).await {
        Ok(Some(sidecar)) => sidecar,
        Ok(None) => {
            return Ok(Step::Fail("SidecarMissing", format!("{uri} has no sidecar: the upload did not complete")))
        }
        Err(error) if error.is_transient() => return Ok(store_unavailable(context, &job, &error)),
        Err(error) => return Ok(Step::Fail(error.reason(), error_chain(&error))),
    };
    if sidecar.metadata.crc64 != job.crc64
        || sidecar.size as i64 != job.bytes
        || sidecar.metadata.keys as i64 != job.keys
    {
        return Ok(Step::Fail(
            "ChecksumMismatch",
            format!(
                "{uri}: the node reported crc64 {} of {} bytes, {} keys, the store holds crc64 {} of {} bytes, {} keys",
                job.crc64, job.bytes, job.keys, sidecar.metadata.crc64, sidecar.size, sidecar.metadata.keys
            ),
        ));
    }
    let node_info = node.info("server").await.map_err(BackupError::Node)?;
    let memory = node.info("memory").await.map_err(BackupError::Node)?;
    let settings = node
        .config_get(&["maxmemory", "maxmemory-policy", "reserved-memory-percent", "snapshot-method"])
        .await
        .map_err(BackupError::Node)?;
    let completed = context.now();
    let shard = ShardManifest {
        shard: 0,
        pod: pod_name.clone(),
        object: uri.clone(),
        size_bytes: job.bytes,
        keys: job.keys,
        crc64: job.crc64.clone(),
        method: job.method.clone(),
        method_reason: job.reason.clone(),
        duration_ms: job.duration_ms,
        peak_extra_memory_bytes: job.peak_extra_memory,
        used_memory_bytes: memory.get("used_memory").and_then(|value| value.parse().ok()).unwrap_or(0),
    };
    let image = pod.as_ref().and_then(|pod| pod.spec.as_ref()?.containers.first()?.image.clone()).unwrap_or_default();
    let document = Manifest {
        kind: manifest::MANIFEST_KIND.to_owned(),
        version: manifest::MANIFEST_VERSION,
        backup: BackupIdentity {
            name: backup.name_any(),
            namespace: namespace.to_owned(),
            uid: backup.meta().uid.clone().unwrap_or_default(),
            started_at: status.start_time.as_ref().map(|time| time.0.to_string()).unwrap_or_default(),
            completed_at: completed.to_string(),
        },
        cluster: ClusterMetadata {
            name: cluster_name.clone(),
            uid: cluster.meta().uid.clone().unwrap_or_default(),
            spec: cluster.spec.clone(),
            image,
            node_version: node_info.get("ferrocache_version").cloned().unwrap_or_default(),
            redis_version: node_info.get("redis_version").cloned().unwrap_or_default(),
            settings: settings.into_iter().collect::<BTreeMap<_, _>>(),
            shard_count: 1,
        },
        method: manifest::overall_method([shard.method.as_str()]),
        copied_from: None,
        size_bytes: shard.size_bytes,
        keys: shard.keys,
        shards: vec![shard],
    };
    let body = serde_json::to_vec_pretty(&document).unwrap_or_default();
    match s3::put_small_object(&client, bucket, &manifest_key, body.into(), "application/json").await {
        Ok(()) => {}
        Err(error) if error.is_transient() => return Ok(store_unavailable(context, &job, &error)),
        Err(error) => return Ok(Step::Fail(error.reason(), error_chain(&error))),
    }
    complete(status, &document, format!("s3://{bucket}/{manifest_key}"), Time(completed));
    Ok(Step::Complete)
}

/// Aborts the multipart uploads left open under `key` by a writer (a node, a copy) that died
/// (its parts would otherwise stay in the bucket, billed and invisible). Best effort: a
/// failure is logged, and a bucket lifecycle rule remains the backstop.
async fn abort_orphaned_upload(client: &S3Client, bucket: &str, key: &str) {
    match s3::abort_incomplete_uploads(client, bucket, key, Duration::ZERO).await {
        Ok(0) => {}
        Ok(aborted) => tracing::info!(bucket, key, aborted, "aborted the upload a dead writer left open"),
        Err(error) => tracing::warn!(
            error = &error as &dyn std::error::Error,
            bucket,
            key,
            "unable to abort the upload a dead writer left open"
        ),
    }
}

/// Another unfinished Backup of the same cluster that goes first: one already writing, or one
/// created earlier (so waiting Backups run in the order they were created).
async fn earlier_backup_of(
    backup: &Backup,
    context: &Context,
    namespace: &str,
    cluster: &str,
) -> Result<Option<String>, BackupError> {
    let backups: Api<Backup> = Api::namespaced(context.client.clone(), namespace);
    let all = backups.list(&kube::api::ListParams::default()).await.map_err(|source| BackupError::Read {
        kind: "Backup",
        name: format!("list in {namespace}"),
        source,
    })?;
    let created = |other: &Backup| (other.metadata.creation_timestamp.as_ref().map(|time| time.0), other.name_any());
    let mine = created(backup);
    Ok(all
        .items
        .iter()
        .filter(|other| other.metadata.uid != backup.metadata.uid && other.spec.cluster.as_deref() == Some(cluster))
        .filter(|other| other.metadata.deletion_timestamp.is_none())
        .filter(|other| {
            let status = other.status.clone().unwrap_or_default();
            let unfinished = matches!(State::of(&status.conditions), None | Some(State::Creating));
            unfinished && (!status.shards.is_empty() || created(other) < mine)
        })
        .map(|other| other.name_any())
        .min())
}

/// The node wrote its snapshot but the store cannot be reached to verify it and write the
/// manifest: wait for the store, and fail once it has been away longer than the patience.
fn store_unavailable(context: &Context, job: &JobStatus, error: &S3Error) -> Step {
    let finished_ms = job.started_ms + job.duration_ms;
    let waited = Duration::from_millis(u64::try_from(context.now().as_millisecond() - finished_ms).unwrap_or(0));
    if waited > PATIENCE {
        Step::Fail(
            "StoreUnreachable",
            format!(
                "the snapshot was written but the store stayed unreachable for {}s: {}",
                waited.as_secs(),
                error_chain(error)
            ),
        )
    } else {
        Step::Wait(
            Duration::from_secs(5),
            format!("waiting for the object store to complete the backup: {}", error_chain(error)),
        )
    }
}

pub(crate) fn complete(status: &mut BackupStatus, document: &Manifest, manifest_uri: String, completed: Time) {
    status.manifest = Some(manifest_uri);
    status.size_bytes = Some(document.size_bytes);
    status.keys = Some(document.keys);
    status.method = Some(document.method.clone());
    status.completion_time = Some(completed);
    status.shards = document
        .shards
        .iter()
        .map(|shard| BackupShardStatus {
            shard: shard.shard,
            pod: shard.pod.clone(),
            object: shard.object.clone(),
            size_bytes: shard.size_bytes,
            keys: shard.keys,
            crc64: shard.crc64.clone(),
            method: format!("{} ({})", shard.method, shard.method_reason),
        })
        .collect();
}

fn shard_status(pod: &str, uri: &str, job: &JobStatus) -> BackupShardStatus {
    BackupShardStatus {
        shard: 0,
        pod: pod.to_owned(),
        object: uri.to_owned(),
        size_bytes: job.bytes,
        keys: job.keys,
        crc64: job.crc64.clone(),
        method: job.method.clone(),
    }
}

/// Checks, before any node writes, that the bucket is usable and the folder holds no other
/// backup. A manifest of this very Backup (the operator stopped after writing it) completes it.
pub(crate) async fn check_destination(
    backup: &Backup,
    context: &Context,
    status: &mut BackupStatus,
    client: &S3Client,
    manifest_key: &str,
) -> Result<Option<Step>, BackupError> {
    let bucket = &backup.spec.destination.bucket;
    match client.check_bucket(bucket).await {
        Ok(()) => {}
        Err(error) if error.is_transient() => {
            if out_of_patience(status, context) {
                return Ok(Some(Step::Fail(error.reason(), error_chain(&error))));
            }
            return Ok(Some(Step::Wait(
                Duration::from_secs(5),
                format!("waiting for the object store: {}", error_chain(&error)),
            )));
        }
        Err(error) => return Ok(Some(Step::Fail(error.reason(), error_chain(&error)))),
    }
    // Whatever holds the manifest's key must be read for sure: taking a failed read for "no
    // manifest" would write over another backup's data (one retained under the same name).
    let in_use = || {
        Step::Fail(
            "DestinationInUse",
            format!("s3://{bucket}/{manifest_key} already holds another backup; choose another prefix or name"),
        )
    };
    match manifest::read(client, bucket, manifest_key).await {
        Ok(None) => Ok(None),
        Ok(Some(document)) if Some(&document.backup.uid) == backup.meta().uid.as_ref() => {
            let completed = document.backup.completed_at.parse().map(Time).unwrap_or(Time(context.now()));
            complete(status, &document, format!("s3://{bucket}/{manifest_key}"), completed);
            Ok(Some(Step::Complete))
        }
        Ok(Some(_)) | Err(ReadManifestError::Invalid { .. }) => Ok(Some(in_use())),
        Err(ReadManifestError::Read { source, .. }) if source.is_transient() => {
            if out_of_patience(status, context) {
                return Ok(Some(Step::Fail(source.reason(), error_chain(&source))));
            }
            Ok(Some(Step::Wait(
                Duration::from_secs(5),
                format!("waiting for the object store: {}", error_chain(&source)),
            )))
        }
        Err(error) => Ok(Some(Step::Fail(error.reason(), error_chain(&error)))),
    }
}

/// Deletes the backup's objects unless it is retained, once no node job can write them any
/// more: the manifest first (the backup is no longer complete), then each shard's data object
/// and sidecar, and any upload a dead writer left open.
async fn cleanup(backup: &Backup, context: &Context) -> Result<Action, BackupError> {
    let reference = backup.object_ref(&());
    if backup.spec.retain_policy == RetainPolicy::Retain {
        context
            .event(
                &reference,
                false,
                "Retained",
                "DeleteBackup",
                "retainPolicy is Retain: the objects stay in S3".to_owned(),
            )
            .await;
        return Ok(Action::await_change());
    }
    let namespace = backup.namespace().unwrap_or_default();
    let status = backup.status.clone().unwrap_or_default();
    // A backup that has not ended may have a node job writing its objects, even when no
    // status says so (the operator may have died between starting the job and recording it):
    // delete only once no job can write them any more.
    if !matches!(State::of(&status.conditions), Some(State::Available | State::Failed)) {
        match node_job(backup, context, &status).await {
            NodeJob::Ended => {}
            NodeJob::Running => return Err(BackupError::InProgress),
            NodeJob::Unknown(why) if !deletion_out_of_patience(backup, context) => {
                tracing::info!(backup = %backup.name_any(), %why, "waiting to learn whether the node still writes");
                return Err(BackupError::InProgress);
            }
            NodeJob::Unknown(why) => {
                let note = format!(
                    "{why} for {} s: deleting the objects anyway; any the node writes later are left in S3",
                    PATIENCE.as_secs()
                );
                context.event(&reference, true, "CleanupUnverified", "DeleteBackup", note).await;
            }
        }
    }
    let job_s3 = match store::job_settings(&context.client, &namespace, &backup.spec.destination.connection).await {
        Ok(settings) => settings,
        Err(error) => {
            let note = format!("{error}: the backup's objects were left in S3");
            context.event(&reference, true, "CleanupSkipped", "DeleteBackup", note).await;
            return Ok(Action::await_change());
        }
    };
    let client = store::client(&job_s3).await.map_err(BackupError::Store)?;
    let bucket = &backup.spec.destination.bucket;
    let folder = manifest::folder(&backup.spec.destination, &namespace, &backup.name_any());
    let result = async {
        s3::delete_single_object(&client, bucket, &manifest::manifest_key(&folder)).await?;
        let data_key = manifest::shard_key(&folder, 0);
        s3::delete_object(&client, bucket, &data_key).await?;
        // No job writes any more: an upload still open is a dead writer's (a node or a copy
        // that died before the Backup failed), and would stay invisible and billed.
        abort_orphaned_upload(&client, bucket, &data_key).await;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            context
                .event(&reference, false, "Deleted", "DeleteBackup", format!("deleted s3://{bucket}/{folder}"))
                .await;
            Ok(Action::await_change())
        }
        Err(S3Error::NoSuchBucket { .. }) => Ok(Action::await_change()),
        Err(error) if error.is_transient() => Err(BackupError::Store(error)),
        Err(error) => {
            let note = format!("{}: the backup's objects were left in S3", error_chain(&error));
            context.event(&reference, true, "CleanupFailed", "DeleteBackup", note).await;
            Ok(Action::await_change())
        }
    }
}

/// Whether a node job may still write a backup's objects.
#[derive(Debug, PartialEq, Eq)]
enum NodeJob {
    /// The node reports the job running (or starting).
    Running,
    /// No job can write any more: it ended, the node never had it, or the node's process is
    /// gone (jobs live in its memory).
    Ended,
    /// The node could not be asked, although its container runs.
    Unknown(String),
}

/// Asks the node that a snapshot backup runs on about the backup's job, whose id is derived
/// from the Backup, so the node can be asked even when no status recorded the job.
async fn node_job(backup: &Backup, context: &Context, status: &BackupStatus) -> NodeJob {
    let Some(cluster) = &backup.spec.cluster else {
        return NodeJob::Ended;
    };
    let namespace = backup.namespace().unwrap_or_default();
    let pod_name = match status.shards.first() {
        Some(shard) => shard.pod.clone(),
        None => format!("{}-0", crate::cluster::build::statefulset_name(cluster)),
    };
    let pods: Api<Pod> = Api::namespaced(context.client.clone(), &namespace);
    let pod = match pods.get_opt(&pod_name).await {
        Ok(pod) => pod,
        Err(error) => return NodeJob::Unknown(format!("unable to read pod {pod_name}: {error}")),
    };
    let running = pod.as_ref().and_then(|pod| {
        let status = pod.status.as_ref()?;
        let container =
            status.container_statuses.as_ref()?.iter().find(|c| c.name == crate::cluster::build::NODE_CONTAINER)?;
        container.state.as_ref()?.running.as_ref()?;
        status.pod_ip.as_ref()?.parse::<std::net::IpAddr>().ok()
    });
    let Some(address) = running else {
        return NodeJob::Ended;
    };
    let clusters: Api<RedisCluster> = Api::namespaced(context.client.clone(), &namespace);
    let password = match clusters.get_opt(cluster).await.ok().flatten().and_then(|c| c.spec.password_secret) {
        Some(reference) => crate::cluster::read_password(context, &namespace, &reference).await.ok(),
        None => None,
    };
    let job_id = status.job_id.clone().unwrap_or_else(|| job_id(backup));
    let answer = match NodeConnection::connect(SocketAddr::new(address, NODE_PORT), password.as_deref()).await {
        Ok(mut node) => node.backup_status(&job_id).await,
        Err(NodeError::Connect { source, .. }) if source.is_connection_refusal() => return NodeJob::Ended,
        Err(error) => Err(error),
    };
    match answer {
        Ok(Some(job)) if !job.is_finished() => NodeJob::Running,
        Ok(_) => NodeJob::Ended,
        Err(error) => {
            NodeJob::Unknown(format!("node {pod_name} could not be asked about job {job_id}: {}", error_chain(&error)))
        }
    }
}

/// Whether the Backup has been waiting to be deleted for longer than [`PATIENCE`].
fn deletion_out_of_patience(backup: &Backup, context: &Context) -> bool {
    backup
        .metadata
        .deletion_timestamp
        .as_ref()
        .is_some_and(|since| context.now().as_millisecond() - since.0.as_millisecond() > PATIENCE.as_millis() as i64)
}

/// Writes `status` with the conditions of `state` (see [`crate::status::write`]).
async fn write_status(
    backup: &Backup,
    context: &Context,
    status: BackupStatus,
    state: State,
    reason: &str,
    message: &str,
) -> Result<(), BackupError> {
    let previous = backup.status.clone().unwrap_or_default();
    let observed = condition::for_state(state, state == State::Available, reason, message);
    crate::status::write(context, backup, &previous, status, &observed, "Backup")
        .await
        .map_err(|source| BackupError::UpdateStatus { name: backup.name_any(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_id_is_unique_per_backup_object() {
        let mut backup: Backup = serde_yaml::from_str(
            "
apiVersion: ferrocache.io/v1alpha1
kind: Backup
metadata: {name: nightly, namespace: shop, uid: 1234-abcd}
spec: {cluster: cache, destination: {bucket: backups}}
",
        )
        .unwrap();
        assert_eq!(job_id(&backup), "shop.nightly.1234-abcd");
        backup.metadata.uid = Some("5678".into());
        assert_eq!(job_id(&backup), "shop.nightly.5678");
    }
}
