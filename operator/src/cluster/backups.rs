//! The backups a cluster makes by itself: automatic ones on its schedule
//! (expired by its retention), and a final one when it is deleted.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};

use super::schedule::{expired, running, Kept, Schedule};
use super::ClusterError;
use crate::condition::State;
use crate::context::Context;
use crate::crd::{Backup, BackupPolicy, BackupSpec, RedisCluster, RedisClusterStatus, S3Destination};
use crate::meta::{owner_reference, BACKUP_KIND_LABEL, CLUSTER_LABEL, MANAGER};

/// The annotation on an automatic Backup holding the time it was scheduled for (retention
/// counts from it).
pub const SCHEDULED_TIME_ANNOTATION: &str = "ferrocache.io/scheduled-time";
/// How often a cluster with a schedule is looked at, at least.
const SCHEDULE_RESYNC: Duration = Duration::from_secs(60);

/// What the schedule did this time, for the status.
#[derive(Debug, Default)]
pub struct ScheduleOutcome {
    pub last_scheduled_time: Option<Time>,
    pub last_scheduled_backup: Option<String>,
    pub next_time: Option<Time>,
    /// When to look again.
    pub requeue: Option<Duration>,
}

fn backup_object(
    cluster: &RedisCluster,
    name: &str,
    kind: &str,
    destination: S3Destination,
    policy: Option<&BackupPolicy>,
    owned: bool,
) -> Backup {
    let cluster_name = cluster.name_any();
    let mut backup = Backup::new(
        name,
        BackupSpec {
            cluster: Some(cluster_name.clone()),
            copy_from: None,
            destination,
            snapshot_method: policy.and_then(|policy| policy.snapshot_method),
            retain_policy: Default::default(),
        },
    );
    backup.metadata = ObjectMeta {
        name: Some(name.to_owned()),
        namespace: cluster.namespace(),
        labels: Some(BTreeMap::from([
            (CLUSTER_LABEL.to_owned(), cluster_name),
            (BACKUP_KIND_LABEL.to_owned(), kind.to_owned()),
        ])),
        owner_references: owned.then(|| vec![owner_reference(cluster)]),
        ..ObjectMeta::default()
    };
    backup
}

async fn create_backup(context: &Context, namespace: &str, backup: &Backup) -> Result<(), ClusterError> {
    let api: Api<Backup> = Api::namespaced(context.client.clone(), namespace);
    let name = backup.name_any();
    api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(backup))
        .await
        .map(|_| ())
        .map_err(|source| ClusterError::Apply { kind: "Backup", name, source })
}

/// Takes the automatic backup that is due, if any, and deletes the expired ones.
pub async fn run_schedule(
    cluster: &RedisCluster,
    policy: &BackupPolicy,
    context: &Context,
    namespace: &str,
) -> Result<ScheduleOutcome, ClusterError> {
    let schedule = Schedule::parse(policy).map_err(|error| ClusterError::Invalid(error.into()))?;
    let now = context.now();
    let status = cluster.status.clone().unwrap_or_default();
    let mut outcome = ScheduleOutcome {
        last_scheduled_time: status.last_scheduled_backup_time.clone(),
        last_scheduled_backup: status.last_scheduled_backup.clone(),
        ..ScheduleOutcome::default()
    };
    let due = match status.last_scheduled_backup_time.as_ref().map(|time| time.0) {
        // First sight of the schedule: the next scheduled time is the first backup.
        None => {
            outcome.last_scheduled_time = Some(Time(now));
            None
        }
        Some(last) => schedule.due(last, now),
    };
    let retained = policy.retention_count.is_some() || policy.retention_days.is_some();
    let mut automatic =
        if due.is_some() || retained { automatic_backups(cluster, context, namespace, now).await? } else { Vec::new() };
    if let Some(due) = due {
        let reference = cluster.object_ref(&());
        outcome.last_scheduled_time = Some(Time(due));
        let name = schedule.backup_name(&cluster.name_any(), due);
        if automatic.iter().any(|backup| backup.name == name) {
            // Created by a reconcile whose status write did not land.
            outcome.last_scheduled_backup = Some(name);
        } else if let Some(previous) = running(&automatic) {
            let note =
                format!("skipped the automatic backup scheduled for {due}: Backup {} is still running", previous.name);
            tracing::warn!(cluster = %cluster.name_any(), %due, running = %previous.name, "scheduled backup skipped");
            context.event(&reference, true, "BackupSkipped", "ScheduleBackup", note).await;
        } else {
            let mut backup = backup_object(cluster, &name, "automatic", policy.destination.clone(), Some(policy), true);
            backup
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(SCHEDULED_TIME_ANNOTATION.to_owned(), due.to_string());
            create_backup(context, namespace, &backup).await?;
            let note = format!("created automatic Backup {name} for {due}");
            context.event(&reference, false, "BackupScheduled", "ScheduleBackup", note).await;
            automatic.push(Kept { name: name.clone(), created: due, in_progress: true });
            outcome.last_scheduled_backup = Some(name);
        }
    }
    expire(cluster, policy, context, namespace, &automatic, now).await?;
    let next = schedule.next_after(now);
    outcome.next_time = next.map(Time);
    let until_next = next
        .and_then(|next| u64::try_from(next.as_millisecond() - now.as_millisecond()).ok())
        .map_or(SCHEDULE_RESYNC, Duration::from_millis);
    outcome.requeue = Some(until_next.clamp(Duration::from_secs(1), SCHEDULE_RESYNC));
    Ok(outcome)
}

/// The cluster's automatic backups that are not being deleted, as the schedule and retention
/// see them.
async fn automatic_backups(
    cluster: &RedisCluster,
    context: &Context,
    namespace: &str,
    now: Timestamp,
) -> Result<Vec<Kept>, ClusterError> {
    let api: Api<Backup> = Api::namespaced(context.client.clone(), namespace);
    let selector = format!("{CLUSTER_LABEL}={},{BACKUP_KIND_LABEL}=automatic", cluster.name_any());
    let list = api.list(&ListParams::default().labels(&selector)).await.map_err(|source| ClusterError::Read {
        kind: "Backup",
        name: selector.clone(),
        source,
    })?;
    Ok(list
        .items
        .iter()
        .filter(|backup| backup.metadata.deletion_timestamp.is_none())
        .map(|backup| Kept {
            name: backup.name_any(),
            created: backup
                .annotations()
                .get(SCHEDULED_TIME_ANNOTATION)
                .and_then(|time| time.parse().ok())
                .or_else(|| backup.metadata.creation_timestamp.as_ref().map(|time| time.0))
                .unwrap_or(now),
            in_progress: !matches!(
                State::of(&backup.status.clone().unwrap_or_default().conditions),
                Some(State::Available | State::Failed)
            ),
        })
        .collect())
}

/// Deletes the automatic backups the retention policy no longer keeps (their finalizer deletes
/// their objects). Manual backups are never touched.
async fn expire(
    cluster: &RedisCluster,
    policy: &BackupPolicy,
    context: &Context,
    namespace: &str,
    automatic: &[Kept],
    now: Timestamp,
) -> Result<(), ClusterError> {
    let api: Api<Backup> = Api::namespaced(context.client.clone(), namespace);
    for name in expired(policy, automatic, now) {
        api.delete(&name, &DeleteParams::default()).await.map_err(|source| ClusterError::Apply {
            kind: "Backup",
            name: name.clone(),
            source,
        })?;
        context
            .event(
                &cluster.object_ref(&()),
                false,
                "BackupExpired",
                "ExpireBackup",
                format!("deleted automatic Backup {name} (retention)"),
            )
            .await;
    }
    Ok(())
}

/// Runs when a cluster is deleted: with `finalBackup` set, creates that Backup and keeps the
/// cluster (and its pods) until the Backup is available or has failed.
pub async fn final_backup(cluster: &RedisCluster, context: &Context, namespace: &str) -> Result<(), ClusterError> {
    let Some(final_backup) = &cluster.spec.final_backup else {
        return Ok(());
    };
    let reference = cluster.object_ref(&());
    let destination = final_backup
        .destination
        .clone()
        .or_else(|| cluster.spec.backup.as_ref().map(|policy| policy.destination.clone()));
    let Some(destination) = destination else {
        let note = "finalBackup has no destination; the cluster is deleted without one".to_owned();
        context.event(&reference, true, "FinalBackupSkipped", "FinalBackup", note).await;
        return Ok(());
    };
    let available = cluster
        .status
        .as_ref()
        .is_some_and(|status| crate::condition::is_true(&status.conditions, crate::condition::AVAILABLE));
    let api: Api<Backup> = Api::namespaced(context.client.clone(), namespace);
    let name = &final_backup.name;
    let existing =
        api.get_opt(name).await.map_err(|source| ClusterError::Read { kind: "Backup", name: name.clone(), source })?;
    let Some(backup) = existing else {
        if !available {
            let note = format!("the cluster was not available: no final Backup {name} was taken");
            context.event(&reference, true, "FinalBackupSkipped", "FinalBackup", note).await;
            return Ok(());
        }
        let backup = backup_object(cluster, name, "final", destination, cluster.spec.backup.as_ref(), false);
        create_backup(context, namespace, &backup).await?;
        let note = format!("taking final Backup {name} before the cluster's pods are removed");
        context.event(&reference, false, "FinalBackupStarted", "FinalBackup", note).await;
        return Err(ClusterError::FinalBackupPending(name.clone()));
    };
    if backup.spec.cluster.as_deref() != Some(cluster.name_any().as_str()) {
        let note = format!("Backup {name} already exists and is not this cluster's: no final backup taken");
        context.event(&reference, true, "FinalBackupSkipped", "FinalBackup", note).await;
        return Ok(());
    }
    let conditions = backup.status.clone().unwrap_or_default().conditions;
    match State::of(&conditions) {
        Some(State::Available) => {
            let note = format!("final Backup {name} is available; removing the cluster's pods");
            context.event(&reference, false, "FinalBackupAvailable", "FinalBackup", note).await;
            Ok(())
        }
        Some(State::Failed) => {
            let why = crate::condition::find(&conditions, crate::condition::AVAILABLE)
                .map(|condition| condition.message.clone())
                .unwrap_or_default();
            let note = format!("final Backup {name} failed ({why}); removing the cluster's pods anyway");
            context.event(&reference, true, "FinalBackupFailed", "FinalBackup", note).await;
            Ok(())
        }
        _ => Err(ClusterError::FinalBackupPending(name.clone())),
    }
}

/// The status fields the schedule owns.
pub fn fill_status(status: &mut RedisClusterStatus, outcome: ScheduleOutcome) {
    status.last_scheduled_backup_time = outcome.last_scheduled_time;
    status.last_scheduled_backup = outcome.last_scheduled_backup;
    status.next_scheduled_backup_time = outcome.next_time;
}
