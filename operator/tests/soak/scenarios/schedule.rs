//! Backups on a schedule every few seconds: the source cluster's own `backup.schedule`, with
//! retention, under the write load and light S3 faults. Scheduled times that come while a
//! backup still runs are skipped by the operator; retention deletes the oldest backups with
//! their objects while new ones are taken. Every backup left at the end is restored and
//! compared, and every expired one must have left nothing in the store.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferrocache_node::s3;
use ferrocache_operator::condition::State;
use ferrocache_operator::crd::{Backup, RedisCluster};
use ferrocache_operator::meta::{BACKUP_KIND_LABEL, CLUSTER_LABEL};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};

use super::{kube_error, store_error, Ended, Soak, SoakError, PREFIX, SOURCE};
use crate::proxy::Faults;
use crate::tally::Row;

/// The schedule: every five seconds.
const SCHEDULE: &str = "*/5 * * * * *";
/// How long the schedule runs in each run.
const SCHEDULED_FOR: Duration = Duration::from_secs(40);
/// Automatic backups kept by retention.
const RETENTION_COUNT: u32 = 3;
/// The annotation on an automatic Backup holding its scheduled time.
const SCHEDULED_TIME: &str = "ferrocache.io/scheduled-time";

/// An automatic backup as the harness saw it while the schedule ran.
#[derive(Debug)]
struct Seen {
    /// Its scheduled time, as an instant of the harness's clock: writes acknowledged before it
    /// must be in the backup.
    requested: Instant,
    /// Its state when last seen.
    state: Option<State>,
}

impl Soak {
    /// The scenario `scheduled-backups`.
    pub(super) async fn scheduled_backups(&mut self, row: &mut Row) -> Result<(), SoakError> {
        let source = self.serving_address(SOURCE).await?;
        let writer = self.start_writer(source).await?;
        let before = self.proxy.counters().injected();
        self.proxy.set_faults(Faults {
            reset: 0.04,
            lose_response: 0.03,
            slow_down: 0.05,
            bandwidth: Some(16 << 20),
            ..Faults::none()
        });
        // Events may carry whole seconds: count from a second before.
        let since = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1);
        self.set_schedule(true).await?;
        let started = Instant::now();
        let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
        while started.elapsed() < SCHEDULED_FOR {
            self.observe_automatic(&mut seen).await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.set_schedule(false).await?;
        // A reconcile that read the schedule before it was removed may still create one.
        tokio::time::sleep(Duration::from_secs(2)).await;
        self.observe_automatic(&mut seen).await?;
        // The last ones may still run: let them end (retention may still expire older ones).
        let remaining = self.automatic_backups().await?;
        let mut ended = BTreeMap::new();
        for backup in &remaining {
            let name = backup.name_any();
            ended.insert(name.clone(), self.await_backup(&name).await?);
        }
        self.proxy.set_faults(Faults::none());
        row.faults += self.proxy.counters().injected() - before;
        let log = writer.stop().await;
        let skipped = self.skipped_events(since).await;
        self.tally.note(
            "scheduled-backups",
            format!(
                "schedule {SCHEDULE:?} for {} s: {} automatic backups taken, {} kept by retention, {skipped} scheduled time(s) skipped while one ran",
                SCHEDULED_FOR.as_secs(),
                seen.len(),
                remaining.len()
            ),
        );
        for (name, backup) in &seen {
            if let Some(ended) = ended.get(name) {
                self.account_backup(name, *ended, Some((&log, backup.requested)), row).await?;
                if *ended != Ended::Available {
                    let message = self.backup_message(name).await;
                    self.tally.note("scheduled-backups", format!("Backup {name} ended {ended:?}: {message}"));
                }
                self.delete_backup(name).await?;
            } else {
                self.account_expired(name, backup, row).await?;
            }
        }
        if seen.is_empty() {
            return Err(SoakError::Missing {
                what: "an automatic backup",
                detail: format!("the schedule {SCHEDULE:?} took none in {} s", SCHEDULED_FOR.as_secs()),
            });
        }
        Ok(())
    }

    /// Sets (or removes) the source cluster's schedule, to the proxy's endpoint.
    async fn set_schedule(&self, on: bool) -> Result<(), SoakError> {
        let backup = on.then(|| {
            serde_json::json!({
                "schedule": SCHEDULE,
                "retentionCount": RETENTION_COUNT,
                "destination": {
                    "bucket": self.bucket, "prefix": PREFIX, "endpoint": self.proxy.endpoint(),
                    "region": self.region, "credentialsSecret": "s3",
                },
            })
        });
        let clusters: Api<RedisCluster> = self.namespace.api();
        let patch = serde_json::json!({"spec": {"backup": backup}});
        clusters
            .patch(SOURCE, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(kube_error(format!("set the schedule of RedisCluster {SOURCE}")))
    }

    async fn automatic_backups(&self) -> Result<Vec<Backup>, SoakError> {
        let backups: Api<Backup> = self.namespace.api();
        let selector = format!("{CLUSTER_LABEL}={SOURCE},{BACKUP_KIND_LABEL}=automatic");
        let list = backups
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(kube_error("list the automatic Backups"))?;
        Ok(list.items.into_iter().filter(|backup| backup.metadata.deletion_timestamp.is_none()).collect())
    }

    /// Notes every automatic backup that exists now, with its scheduled time and state.
    async fn observe_automatic(&self, seen: &mut BTreeMap<String, Seen>) -> Result<(), SoakError> {
        for backup in self.automatic_backups().await? {
            let state = State::of(&backup.status.clone().unwrap_or_default().conditions);
            let name = backup.name_any();
            if let Some(known) = seen.get_mut(&name) {
                known.state = state;
                continue;
            }
            let scheduled: jiff::Timestamp = backup
                .annotations()
                .get(SCHEDULED_TIME)
                .and_then(|time| time.parse().ok())
                .ok_or(SoakError::Missing { what: "a scheduled time", detail: format!("Backup {name}") })?;
            let ago = jiff::Timestamp::now().duration_since(scheduled);
            let ago = Duration::try_from(ago).unwrap_or_default();
            let requested = Instant::now().checked_sub(ago).unwrap_or_else(Instant::now);
            seen.insert(name, Seen { requested, state });
        }
        Ok(())
    }

    /// Counts a backup retention deleted: it must have finished before, and left nothing in the
    /// store (its finalizer deletes its objects).
    async fn account_expired(&mut self, name: &str, backup: &Seen, row: &mut Row) -> Result<(), SoakError> {
        row.backups_taken += 1;
        match backup.state {
            Some(State::Available) => row.backups_available += 1,
            Some(State::Failed) => {}
            other => self.tally.note(
                "scheduled-backups",
                format!("Backup {name} was expired while last seen {other:?}: retention must keep a running one"),
            ),
        }
        let folder = self.folder(name);
        let s3 = self.s3.clone();
        let bucket = self.bucket.clone();
        let emptied =
            super::wait(&format!("the objects of expired Backup {name} to go"), Duration::from_secs(60), || async {
                let objects = s3::list_objects(&s3, &bucket, &folder).await.ok()?;
                objects.is_empty().then_some(())
            })
            .await;
        if emptied.is_err() {
            let objects = s3::list_objects(&s3, &bucket, &folder).await.map_err(store_error("list objects"))?;
            row.leftovers += objects.len() as u64;
            let keys: Vec<&str> = objects.iter().map(|object| object.key.as_str()).collect();
            self.tally.note("store", format!("expired Backup {name} left {keys:?}"));
        }
        let uploads = s3::list_incomplete_uploads(&s3, &bucket, &folder).await.map_err(store_error("list uploads"))?;
        if !uploads.is_empty() {
            row.orphaned_uploads += uploads.len() as u64;
            self.tally.note("store", format!("expired Backup {name} left {} open multipart upload(s)", uploads.len()));
        }
        Ok(())
    }

    /// How many `BackupSkipped` Events were published since `since` (each a scheduled time
    /// skipped while a backup ran; each has a message of its own, so none is a repeat).
    async fn skipped_events(&self, since: jiff::Timestamp) -> usize {
        let events: Api<k8s_openapi::api::core::v1::Event> = self.namespace.api();
        let params = ListParams::default().fields("reason=BackupSkipped");
        let Ok(list) = events.list(&params).await else {
            return 0;
        };
        list.items
            .iter()
            .filter_map(|event| {
                event.event_time.as_ref().map(|time| time.0).or(event.last_timestamp.as_ref().map(|time| time.0))
            })
            .filter(|time| *time >= since)
            .count()
    }
}
