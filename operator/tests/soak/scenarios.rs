//! The scenarios, and the steps they share: a source cluster under a steady write load,
//! Backups through Garage or through the fault proxy, Restores of every available backup with
//! every key compared, and the store checked after each backup for orphaned multipart uploads
//! and objects a failed backup left.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferrocache_node::s3::{self, S3Client, S3Error, S3Settings, StaticCredentials};
use ferrocache_operator::backup::{job_id, FINALIZER};
use ferrocache_operator::condition::{self, State};
use ferrocache_operator::context::error_chain;
use ferrocache_operator::crd::{Backup, RedisCluster, Restore, S3Connection, SnapshotMethod};
use ferrocache_operator::node_client::{JobS3, JobStatus, NodeConnection, NODE_PORT};
use ferrocache_testbed::harness::{wait_for, HarnessError, TestBed, TestNamespace};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use kube::{Api, ResourceExt};
use tokio::sync::mpsc;

use crate::bed::{self, Daemon, Operator, ProcessError};
use crate::proxy::{FaultProxy, Faults, ProxyError, RequestHead, Tapped, Verdict};
use crate::random::Random;
use crate::tally::{Row, Tally};
use crate::typed;
use crate::writer::{self, WriteLog, Writer};

mod schedule;

/// Why a step of the soak could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    #[error("the test bed is unusable")]
    Bed(#[source] HarnessError),
    #[error("unable to {action}")]
    Kube {
        action: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("unable to {action} on node {address}")]
    Redis {
        action: &'static str,
        address: SocketAddr,
        #[source]
        source: redis::RedisError,
    },
    #[error("unable to {action} in S3")]
    Store {
        action: String,
        #[source]
        source: Box<S3Error>,
    },
    #[error("unable to control a process")]
    Process(#[source] ProcessError),
    #[error("unable to start the fault proxy")]
    Proxy(#[source] ProxyError),
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout { what: String, timeout: Duration },
    #[error("{what} is missing: {detail}")]
    Missing { what: &'static str, detail: String },
    #[error("the local node failed: {0}")]
    Local(String),
}

fn kube_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> SoakError {
    let action = action.into();
    move |source| SoakError::Kube { action, source: Box::new(source) }
}

fn store_error(action: impl Into<String>) -> impl FnOnce(S3Error) -> SoakError {
    let action = action.into();
    move |source| SoakError::Store { action, source: Box::new(source) }
}

/// What the soak is asked to do.
#[derive(Clone, Debug)]
pub struct Settings {
    pub runs: u64,
    pub static_keys: u64,
    pub value_bytes: usize,
    pub writer_keys: u32,
    pub seed: u64,
    pub scenarios: Option<Vec<String>>,
    pub backup_timeout: Duration,
    pub restore_timeout: Duration,
}

impl Settings {
    pub fn from_env() -> Settings {
        let number = |name: &str, default: u64| {
            std::env::var(name).ok().and_then(|value| value.trim().parse().ok()).unwrap_or(default)
        };
        let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Settings {
            runs: number("FERROCACHE_SOAK_RUNS", 2).max(1),
            static_keys: number("FERROCACHE_SOAK_KEYS", 48_000),
            value_bytes: number("FERROCACHE_SOAK_VALUE_BYTES", 1000) as usize,
            writer_keys: number("FERROCACHE_SOAK_WRITER_KEYS", 2000) as u32,
            seed: number("FERROCACHE_SOAK_SEED", clock.as_nanos() as u64),
            scenarios: std::env::var("FERROCACHE_SOAK_SCENARIOS")
                .ok()
                .filter(|value| !value.trim().is_empty())
                .map(|value| value.split(',').map(|name| name.trim().to_owned()).collect()),
            backup_timeout: Duration::from_secs(number("FERROCACHE_SOAK_BACKUP_TIMEOUT", 240)),
            restore_timeout: Duration::from_secs(number("FERROCACHE_SOAK_RESTORE_TIMEOUT", 180)),
        }
    }
}

/// Every scenario, in the order they run.
pub const SCENARIOS: [&str; 20] = [
    "steady-fork",
    "steady-forkless",
    "node-kill-fork",
    "node-kill-forkless",
    "garage-kill",
    "s3-faults",
    "s3-stall-timeout",
    "uploader-kill-before-complete",
    "operator-kill-backup",
    "operator-kill-backup-start",
    "operator-kill-finalizer",
    "scheduled-backups",
    "operator-kill-restore",
    "apiserver-restart",
    "restore-corrupt",
    "restore-interrupted",
    "restore-garage-kill",
    "restore-s3-faults",
    "local-disk-full",
    "local-fsync-eio",
];

/// The per-connection cap on a restored node's download in the restore scenarios: the
/// node reads 6 ranges at a time, so 50 MB take about 8 s and a fault 1.5 s in lands
/// mid-preload.
const RESTORE_BANDWIDTH: u64 = 1 << 20;

/// The source node's `s3-request-timeout` in s3-stall-timeout: one attempt of an 8 MiB
/// UploadPart may then take 2 s plus 8 s for its body (1 MiB/s), a CompleteMultipartUpload
/// 2 s plus 50 ms per part.
const STALL_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The node's default `s3-request-timeout`, set again after s3-stall-timeout.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// UploadPart requests stalled in s3-stall-timeout: the first attempts of the four parts the
/// node has in flight, then two of their retries (the fifth part waits for a free slot).
const STALLED_PARTS: u64 = 6;
/// How long a stalled UploadPart is held unless the node hangs up first (half to all of it):
/// longer than any attempt may take.
const PART_STALL: Duration = Duration::from_secs(40);
/// How long Garage's answer to the CompleteMultipartUpload is withheld in s3-stall-timeout:
/// past the attempt's timeout (2 s plus 50 ms a part, 2.3 s for the 6 parts of the ~49 MB
/// snapshot).
const COMPLETION_HOLD: Duration = Duration::from_secs(4);
/// How long a deleted Backup may take to go once its operator is back, before it counts as
/// stuck.
const DELETION_TIMEOUT: Duration = Duration::from_secs(60);

/// A restore caught in the middle of its preload (see `restore_until_mid_preload`).
struct MidPreload {
    /// The backup restored.
    name: String,
    requested: Instant,
    log: WriteLog,
    restore: String,
    cluster: String,
}

/// The source cluster's name.
const SOURCE: &str = "source";
/// The key prefix of every backup (under it: namespace, backup name).
const PREFIX: &str = "soak";
/// The node container's name in the pods the operator builds.
const NODE_CONTAINER: &str = "node";

/// How a backup ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Available,
    Failed,
    Stuck,
}

/// The soak's state: the bed, the namespace, the operator, S3, the proxy and the tally.
pub struct Soak {
    pub settings: Settings,
    bed: TestBed,
    namespace: TestNamespace,
    operator: Operator,
    s3: S3Client,
    bucket: String,
    region: String,
    garage_endpoint: String,
    proxy: FaultProxy,
    apiserver: Daemon,
    garage: Daemon,
    run_dir: PathBuf,
    random: Random,
    names: u64,
    pub tally: Tally,
}

impl Soak {
    /// Connects to the bed, creates the namespace, its S3 Secret and the source cluster,
    /// starts the operator and the proxy, and loads the static data.
    pub async fn prepare(settings: Settings) -> Result<Soak, SoakError> {
        ferrocache_operator::install_crypto_provider();
        let bed = TestBed::connect().await.map_err(SoakError::Bed)?;
        let export = |name: &'static str| {
            bed.export(name)
                .map(str::to_owned)
                .ok_or(SoakError::Missing { what: "a test bed export", detail: name.into() })
        };
        let kubeconfig = export("KUBECONFIG")?;
        let run_dir = PathBuf::from(export("FERROCACHE_TESTBED_DIR")?);
        let garage_endpoint = export("AWS_ENDPOINT_URL")?;
        let bucket = export("FERROCACHE_TEST_BUCKET")?;
        let region = export("AWS_REGION")?;
        let access_key = export("AWS_ACCESS_KEY_ID")?;
        let secret_key = export("AWS_SECRET_ACCESS_KEY")?;
        apply_crds(&kubeconfig)?;
        let namespace = bed.namespace("soak").await.map_err(SoakError::Bed)?;
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s3"},
            "stringData": {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key},
        }))
        .map_err(|error| SoakError::Local(error.to_string()))?;
        namespace.create(&secret).await.map_err(SoakError::Bed)?;
        let s3 = S3Client::connect(&S3Settings {
            endpoint: Some(garage_endpoint.clone()),
            region: Some(region.clone()),
            credentials: Some(StaticCredentials::new(access_key, secret_key)),
            ..S3Settings::default()
        })
        .await
        .map_err(store_error("connect"))?;
        let garage_address: SocketAddr = garage_endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .map_err(|_| SoakError::Missing { what: "a Garage address", detail: garage_endpoint.clone() })?;
        let proxy = FaultProxy::start(garage_address, settings.seed).await.map_err(SoakError::Proxy)?;
        let node_image = std::env::var("FERROCACHE_TEST_IMAGE").unwrap_or_else(|_| "ferrocache/ferrocache:dev".into());
        let mut operator = Operator::new(&kubeconfig, &namespace.name, &node_image, run_dir.join("soak-operator.log"));
        operator.start().map_err(SoakError::Process)?;
        let apiserver = Daemon::new(
            "kube-apiserver",
            run_dir.join("pids/kube-apiserver.pid"),
            run_dir.join("logs/kube-apiserver.log"),
        );
        let garage = Daemon::new("garage", run_dir.join("garage/garage.pid"), run_dir.join("garage/garage.log"));
        let random = Random::new(settings.seed ^ 0x5eed);
        let soak = Soak {
            settings,
            bed,
            namespace,
            operator,
            s3,
            bucket,
            region,
            garage_endpoint,
            proxy,
            apiserver,
            garage,
            run_dir,
            random,
            names: 0,
            tally: Tally::default(),
        };
        soak.create_cluster(SOURCE).await?;
        soak.reload_source().await?;
        Ok(soak)
    }

    /// Runs every selected scenario `runs` times; a run that cannot finish is counted as
    /// incomplete, noted, and the next one starts from a healthy state.
    pub async fn run_all(&mut self) {
        let selected: Vec<&str> = SCENARIOS
            .into_iter()
            .filter(|name| self.settings.scenarios.as_ref().is_none_or(|chosen| chosen.iter().any(|c| c == name)))
            .collect();
        for scenario in selected {
            for run in 0..self.settings.runs {
                let started = Instant::now();
                eprintln!("soak: {scenario} run {}/{}", run + 1, self.settings.runs);
                let mut row = Row { runs: 1, ..Row::default() };
                let result = self.run_one(scenario, run, &mut row).await;
                if let Err(error) = &result {
                    row.incomplete += 1;
                    self.tally.note(scenario, format!("run incomplete: {}", error_chain(error)));
                    eprintln!("soak: {scenario} run {} incomplete: {}", run + 1, error_chain(error));
                }
                self.tally.row(scenario).add(&row);
                eprintln!("soak: {scenario} run {} done in {:.1} s: {row:?}", run + 1, started.elapsed().as_secs_f64());
                if let Err(error) = self.recover().await {
                    self.tally.note(scenario, format!("recovery after the run failed: {}", error_chain(&error)));
                }
            }
        }
    }

    async fn run_one(&mut self, scenario: &str, run: u64, row: &mut Row) -> Result<(), SoakError> {
        match scenario {
            "steady-fork" => self.steady(Some("Fork"), row).await,
            "steady-forkless" => self.steady(Some("Forkless"), row).await,
            "node-kill-fork" => self.node_kill("Fork", row).await,
            "node-kill-forkless" => self.node_kill("Forkless", row).await,
            "garage-kill" => self.garage_kill(row).await,
            "s3-faults" => self.s3_faults(if run.is_multiple_of(2) { "Fork" } else { "Forkless" }, row).await,
            "s3-stall-timeout" => self.s3_stall_timeout(row).await,
            "uploader-kill-before-complete" => self.uploader_kill(row).await,
            "operator-kill-backup" => self.operator_kill_backup(row).await,
            "operator-kill-backup-start" => self.operator_kill_backup_start(row).await,
            "operator-kill-finalizer" => self.operator_kill_finalizer(row).await,
            "operator-kill-restore" => self.operator_kill_restore(row).await,
            "apiserver-restart" => self.apiserver_restart(row).await,
            "restore-corrupt" => self.restore_corrupt(row).await,
            "restore-interrupted" => self.restore_interrupted(row).await,
            "restore-garage-kill" => self.restore_garage_kill(row).await,
            "restore-s3-faults" => self.restore_s3_faults(row).await,
            "local-disk-full" => crate::local::disk_full(self, row).await,
            "local-fsync-eio" => crate::local::fsync_eio(self, row).await,
            "scheduled-backups" => self.scheduled_backups(row).await,
            other => Err(SoakError::Missing { what: "a scenario", detail: other.to_owned() }),
        }
    }

    /// Stops the operator, deletes the namespace, and returns the tally.
    pub async fn finish(mut self) -> Tally {
        self.operator.kill();
        let namespace = self.namespace.name.clone();
        if let Err(error) = self.namespace.delete().await {
            eprintln!("soak: unable to delete namespace {namespace}: {error}");
        }
        self.tally
    }

    pub fn node_binary(&self) -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_ferrocache-operator")).with_file_name("ferrocache-node")
    }

    pub fn run_dir(&self) -> &std::path::Path {
        &self.run_dir
    }

    pub fn seed(&mut self) -> u64 {
        self.random.next()
    }

    // --- the scenarios -------------------------------------------------------------------

    /// Backups back to back under the write load, no fault: the baseline, and the
    /// point-in-time check of writes made while a slowed snapshot runs.
    async fn steady(&mut self, method: Option<&str>, row: &mut Row) -> Result<(), SoakError> {
        let source = self.serving_address(SOURCE).await?;
        self.slow_snapshots(source, method).await?;
        let writer = self.start_writer(source).await?;
        let name = self.name("steady");
        let requested = Instant::now();
        self.create_backup(&name, &self.proxy.endpoint(), method).await?;
        let ended = self.await_backup(&name).await?;
        let log = writer.stop().await;
        self.unslow(source).await?;
        self.account_backup(&name, ended, Some((&log, requested)), row).await?;
        if ended != Ended::Available {
            self.tally.note("steady", format!("backup {name} ended {ended:?} without a fault"));
        }
        self.delete_backup(&name).await
    }

    /// SIGKILL of the source node while it streams a snapshot.
    async fn node_kill(&mut self, method: &str, row: &mut Row) -> Result<(), SoakError> {
        let source = self.serving_address(SOURCE).await?;
        self.slow_snapshots(source, Some(method)).await?;
        let writer = self.start_writer(source).await?;
        let name = self.name("nodekill");
        self.create_backup(&name, &self.proxy.endpoint(), Some(method)).await?;
        let job = self.await_snapshot_running(&name, Duration::from_millis(1500)).await?;
        eprintln!("soak: killing node {SOURCE}-0 during its {} snapshot", job.method);
        self.kill_node(SOURCE).await?;
        row.faults += 1;
        let ended = self.await_backup(&name).await?;
        drop(writer.stop().await);
        self.unslow_proxy();
        // The node restarted empty: what the backup holds cannot be compared with the writer.
        self.account_backup(&name, ended, None, row).await?;
        if ended == Ended::Available {
            self.tally.note(
                &format!("node-kill-{}", method.to_lowercase()),
                format!("backup {name} became available although its node was killed mid-snapshot"),
            );
        }
        self.delete_backup(&name).await?;
        self.reload_source().await
    }

    /// Garage killed (SIGKILL) in mid-upload, back after three seconds.
    async fn garage_kill(&mut self, row: &mut Row) -> Result<(), SoakError> {
        let source = self.serving_address(SOURCE).await?;
        self.slow_snapshots(source, Some("Fork")).await?;
        let writer = self.start_writer(source).await?;
        let name = self.name("garagekill");
        let requested = Instant::now();
        let endpoint = self.garage_endpoint.clone();
        self.create_backup(&name, &endpoint, Some("Fork")).await?;
        self.await_snapshot_running(&name, Duration::from_millis(1500)).await?;
        eprintln!("soak: killing garage mid-upload");
        self.garage.restart(libc::SIGKILL, Duration::from_secs(3)).map_err(SoakError::Process)?;
        row.faults += 1;
        self.await_garage().await?;
        let ended = self.await_backup(&name).await?;
        let log = writer.stop().await;
        self.unslow(source).await?;
        self.account_backup(&name, ended, Some((&log, requested)), row).await?;
        self.tally.note("garage-kill", format!("a backup whose store was killed ended {ended:?}"));
        self.delete_backup(&name).await
    }

    /// Resets, lost responses, 503 SlowDown and stalls on the node's and the operator's S3
    /// requests during the backup (the restore then reads without faults).
    async fn s3_faults(&mut self, method: &str, row: &mut Row) -> Result<(), SoakError> {
        let source = self.serving_address(SOURCE).await?;
        let writer = self.start_writer(source).await?;
        let name = self.name("s3faults");
        let before = self.proxy.counters().injected();
        let requests_before = self.proxy.counters().requests.load(std::sync::atomic::Ordering::Relaxed);
        self.proxy.set_faults(Faults {
            reset: 0.12,
            lose_response: 0.08,
            slow_down: 0.12,
            stall: 0.08,
            stall_for: Duration::from_secs(4),
            bandwidth: Some(16 << 20),
            ..Faults::none()
        });
        let requested = Instant::now();
        self.create_backup(&name, &self.proxy.endpoint(), Some(method)).await?;
        let ended = self.await_backup(&name).await;
        self.proxy.set_faults(Faults::none());
        let ended = ended?;
        let injected = self.proxy.counters().injected() - before;
        let requests = self.proxy.counters().requests.load(std::sync::atomic::Ordering::Relaxed) - requests_before;
        row.faults += injected;
        self.tally.note("s3-faults", format!("backup {name} ({method}): {injected} faults in {requests} S3 requests"));
        let log = writer.stop().await;
        self.account_backup(&name, ended, Some((&log, requested)), row).await?;
        if ended != Ended::Available {
            let message = self.backup_message(&name).await;
            self.tally.note("s3-faults", format!("a backup under S3 faults ended {ended:?}: {message}"));
        }
        self.delete_backup(&name).await
    }

    /// S3 stalling longer than the node's attempt timeout, lowered to 2 s on the source
    /// (`s3-request-timeout`), so the timeout path itself runs (the stalls of s3-faults stay
    /// under the default 30 s). Two backups a run: the first six UploadPart requests held
    /// (20-40 s) until the node hangs up, an attempt being allowed 2 s plus 8 s for its 8 MiB
    /// body, so the four parts in flight time out once and two of them twice; then the
    /// CompleteMultipartUpload carried out by Garage and its answer withheld past the
    /// timeout, so the node's retry finds the upload already completed (an attempt that timed
    /// out and yet took effect). Each backup must end Available and restore exactly; the
    /// proxy counts the stalled attempts the node gave up on.
    async fn s3_stall_timeout(&mut self, row: &mut Row) -> Result<(), SoakError> {
        let source = self.serving_address(SOURCE).await?;
        config_set(source, "s3-request-timeout", &STALL_REQUEST_TIMEOUT.as_millis().to_string()).await?;
        let result = async {
            self.stall_parts(source, row).await?;
            self.stall_completion_answer(source, row).await
        }
        .await;
        self.proxy.set_faults(Faults::none());
        self.proxy.untap();
        let reset = config_set(source, "s3-request-timeout", &DEFAULT_REQUEST_TIMEOUT.as_millis().to_string()).await;
        result.and(reset)
    }

    /// s3-stall-timeout, first backup: UploadPart attempts stalled past their timeout.
    async fn stall_parts(&mut self, source: SocketAddr, row: &mut Row) -> Result<(), SoakError> {
        use std::sync::atomic::Ordering::Relaxed;
        let writer = self.start_writer(source).await?;
        let name = self.name("stallparts");
        let counters = self.proxy.counters();
        let (stalls_before, abandoned_before) =
            (counters.stalls.load(Relaxed), counters.stalls_abandoned.load(Relaxed));
        self.proxy.set_faults(Faults {
            stall: 1.0,
            stall_for: PART_STALL,
            only: Some(RequestHead::is_upload_part),
            limit: Some(STALLED_PARTS),
            ..Faults::none()
        });
        let requested = Instant::now();
        let ended = match self.create_backup(&name, &self.proxy.endpoint(), Some("Fork")).await {
            Ok(()) => self.await_backup(&name).await,
            Err(error) => Err(error),
        };
        let took = requested.elapsed();
        self.proxy.set_faults(Faults::none());
        let ended = ended?;
        let counters = self.proxy.counters();
        let stalled = counters.stalls.load(Relaxed) - stalls_before;
        let abandoned = counters.stalls_abandoned.load(Relaxed) - abandoned_before;
        row.faults += stalled;
        let scenario = "s3-stall-timeout";
        let upload = self.node_upload_line(SOURCE, &name).await.unwrap_or_else(|| "no upload line".to_owned());
        self.tally.note(
            scenario,
            format!(
                "Backup {name}: {stalled} UploadPart attempts stalled, {abandoned} of them given up by the node (timed out); ended {ended:?} after {:.0} s; node log: {upload}",
                took.as_secs_f64()
            ),
        );
        if abandoned < stalled {
            self.tally.note(
                scenario,
                format!(
                    "Backup {name}: {} stalled UploadPart attempts were waited out (at least {:?} each) instead of timing out",
                    stalled - abandoned,
                    PART_STALL / 2
                ),
            );
        }
        let log = writer.stop().await;
        self.account_backup(&name, ended, Some((&log, requested)), row).await?;
        if ended != Ended::Available {
            let message = self.backup_message(&name).await;
            self.tally.note(scenario, format!("Backup {name} with stalled parts ended {ended:?}: {message}"));
        }
        self.delete_backup(&name).await
    }

    /// s3-stall-timeout, second backup: the CompleteMultipartUpload carried out, its answer
    /// withheld past the node's timeout, then the node's retry let through.
    async fn stall_completion_answer(&mut self, source: SocketAddr, row: &mut Row) -> Result<(), SoakError> {
        let writer = self.start_writer(source).await?;
        let name = self.name("stallcomplete");
        let mut tap = self.proxy.tap(|head: &RequestHead| head.is_complete());
        let requested = Instant::now();
        self.create_backup(&name, &self.proxy.endpoint(), Some("Fork")).await?;
        let timeout = self.settings.backup_timeout;
        let held = receive(&mut tap, timeout, "the node's CompleteMultipartUpload").await?;
        // A retry, once the node's attempt has timed out, is held by a new tap.
        let mut retries = self.proxy.tap(|head: &RequestHead| head.is_complete());
        let _ = held.reply.send(Verdict::ForwardThenAsk);
        let answered = receive(&mut tap, timeout, "Garage's answer to the CompleteMultipartUpload").await?;
        tokio::time::sleep(COMPLETION_HOLD).await;
        // Too late if the node's attempt timed out: nobody reads it.
        let _ = answered.reply.send(Verdict::Forward);
        row.faults += 1;
        let retry = tokio::time::timeout(Duration::from_secs(10), retries.recv()).await.ok().flatten();
        self.proxy.untap();
        let scenario = "s3-stall-timeout";
        match retry {
            Some(retry) => {
                let _ = retry.reply.send(Verdict::ForwardThenAsk);
                let answered = receive(&mut retries, timeout, "Garage's answer to the retried completion").await?;
                let status = answered.status.map_or_else(|| "nothing".to_owned(), |status| status.to_string());
                let _ = answered.reply.send(Verdict::Forward);
                self.tally.note(
                    scenario,
                    format!(
                        "Backup {name}: the node retried its CompleteMultipartUpload after Garage's answer was withheld {COMPLETION_HOLD:?} (its attempt timed out); Garage answered the retry {status}"
                    ),
                );
            }
            None => self.tally.note(
                scenario,
                format!(
                    "Backup {name}: no retry of the CompleteMultipartUpload within 10 s of Garage's answer withheld {COMPLETION_HOLD:?}: the attempt did not time out"
                ),
            ),
        }
        let ended = self.await_backup(&name).await?;
        let log = writer.stop().await;
        self.account_backup(&name, ended, Some((&log, requested)), row).await?;
        if ended != Ended::Available {
            let message = self.backup_message(&name).await;
            self.tally
                .note(scenario, format!("Backup {name} whose completion was answered late ended {ended:?}: {message}"));
        }
        self.delete_backup(&name).await
    }

    /// The node killed when its last part and sidecar are stored and it asks S3 to complete
    /// the upload (between the last part and the manifest).
    async fn uploader_kill(&mut self, row: &mut Row) -> Result<(), SoakError> {
        let source = self.serving_address(SOURCE).await?;
        let writer = self.start_writer(source).await?;
        let name = self.name("uploaderkill");
        let mut tap = self.proxy.tap(|head: &RequestHead| head.is_complete());
        self.create_backup(&name, &self.proxy.endpoint(), None).await?;
        let tapped = receive(&mut tap, self.settings.backup_timeout, "the node's CompleteMultipartUpload").await?;
        self.kill_node(SOURCE).await?;
        let _ = tapped.reply.send(Verdict::Reset);
        row.faults += 1;
        let ended = self.await_backup(&name).await?;
        drop(writer.stop().await);
        self.account_backup(&name, ended, None, row).await?;
        self.delete_backup(&name).await?;
        self.reload_source().await
    }

    /// The operator killed at each step of a backup; each backup must complete once and
    /// restore exactly.
    async fn operator_kill_backup(&mut self, row: &mut Row) -> Result<(), SoakError> {
        for step in
            ["checking-destination", "snapshot-running", "verifying-sidecar", "writing-manifest", "manifest-written"]
        {
            let source = self.serving_address(SOURCE).await?;
            self.slow_snapshots(source, Some("Fork")).await?;
            let writer = self.start_writer(source).await?;
            let name = self.name("opkill");
            let mut tap = match step {
                "checking-destination" => Some(self.proxy.tap(|head: &RequestHead| head.is_get_of("/manifest.json"))),
                "verifying-sidecar" => Some(self.proxy.tap(|head: &RequestHead| head.is_get_of(".rdb.meta.json"))),
                "writing-manifest" | "manifest-written" => {
                    Some(self.proxy.tap(|head: &RequestHead| head.is_put_of("/manifest.json")))
                }
                _ => None,
            };
            let requested = Instant::now();
            self.create_backup(&name, &self.proxy.endpoint(), Some("Fork")).await?;
            let timeout = self.settings.backup_timeout;
            match tap.as_mut() {
                Some(tap) => {
                    let tapped = receive(tap, timeout, &format!("the operator's request at step {step}")).await?;
                    eprintln!("soak: operator killed at {step}, holding {} {}", tapped.head.method, tapped.head.target);
                    if step == "manifest-written" {
                        let _ = tapped.reply.send(Verdict::ForwardThenAsk);
                        let answered = receive(tap, timeout, "Garage's answer to the manifest").await?;
                        debug_assert!(answered.responded);
                        self.operator.kill();
                        let _ = answered.reply.send(Verdict::Reset);
                    } else {
                        self.operator.kill();
                        let _ = tapped.reply.send(Verdict::Reset);
                    }
                }
                None => {
                    self.await_snapshot_running(&name, Duration::from_millis(1000)).await?;
                    self.operator.kill();
                }
            }
            row.faults += 1;
            self.proxy.untap();
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.operator.start().map_err(SoakError::Process)?;
            let ended = self.await_backup(&name).await?;
            let log = writer.stop().await;
            self.unslow(source).await?;
            self.account_backup(&name, ended, Some((&log, requested)), row).await?;
            if ended != Ended::Available {
                let message = self.backup_message(&name).await;
                self.tally
                    .note("operator-kill-backup", format!("killed at {step}, the backup ended {ended:?}: {message}"));
            }
            self.delete_backup(&name).await?;
        }
        Ok(())
    }

    /// The operator killed between a Backup's creation and its first status write: down when
    /// the Backup is created and started 2 s later, then SIGKILLed the moment a watch shows
    /// the Backup with the operator's finalizer and no status yet (noted when the status was
    /// there already: the kill came too late), restarted 1 s later. Each backup must become
    /// Available once (one `Available` Event, one `SnapshotStarted`) and restore exactly.
    async fn operator_kill_backup_start(&mut self, row: &mut Row) -> Result<(), SoakError> {
        let scenario = "operator-kill-backup-start";
        for step in ["down-at-creation", "finalizer-added"] {
            let source = self.serving_address(SOURCE).await?;
            let writer = self.start_writer(source).await?;
            let name = self.name("opstart");
            let requested = Instant::now();
            if step == "down-at-creation" {
                self.operator.kill();
                self.create_backup(&name, &self.proxy.endpoint(), Some("Fork")).await?;
                tokio::time::sleep(Duration::from_secs(2)).await;
            } else {
                let (in_event, after_kill) = self.kill_operator_when_finalized(&name).await?;
                let outcome = match (in_event, after_kill) {
                    (false, false) => "the operator was killed with the finalizer on and no status yet".to_owned(),
                    (false, true) => "the watch showed the finalizer without a status, but the status was written before the kill took effect".to_owned(),
                    (true, _) => "the status was already written when the watch first showed the finalizer: the kill came after the first status write".to_owned(),
                };
                self.tally.note(scenario, format!("{step}, Backup {name}: {outcome}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            row.faults += 1;
            self.operator.start().map_err(SoakError::Process)?;
            let ended = self.await_backup(&name).await?;
            let log = writer.stop().await;
            self.account_backup(&name, ended, Some((&log, requested)), row).await?;
            if ended == Ended::Available {
                let (available, started) = self.count_backup_events(&name).await?;
                if (available, started) != (1, 1) {
                    self.tally.note(
                        scenario,
                        format!("{step}, Backup {name}: {available} Available Events and {started} SnapshotStarted Events, not one each"),
                    );
                }
            } else {
                let message = self.backup_message(&name).await;
                self.tally.note(scenario, format!("{step}, Backup {name} ended {ended:?}: {message}"));
            }
            self.delete_backup(&name).await?;
        }
        Ok(())
    }

    /// The operator killed while its finalizer deletes a deleted Backup's objects (its S3
    /// requests go through the proxy), restarted 1 s later: holding its first DELETE under the
    /// backup's folder (the manifest), reset; that DELETE carried out by Garage and its answer
    /// withheld; its last DELETE (the sidecar) carried out and its answer withheld, so only
    /// the finalizer's removal is left. Each Backup must go within 60 s (else stuck, and its
    /// finalizer is removed by hand), and nothing may remain under its folder: no object
    /// (counted as left), no open multipart upload. Last, a Backup deleted while the operator
    /// is down after starting its snapshot (see `deleted_mid_snapshot`).
    async fn operator_kill_finalizer(&mut self, row: &mut Row) -> Result<(), SoakError> {
        let scenario = "operator-kill-finalizer";
        let mut gone_after = Vec::new();
        for step in ["holding-first-delete", "first-delete-answered", "last-delete-answered"] {
            let name = self.name("opkillfin");
            self.available_backup(&name, "an available backup to delete", row).await?;
            let folder = self.folder(&name);
            let suffix = if step == "last-delete-answered" { ".meta.json" } else { "" };
            let mut tap =
                self.proxy.tap(move |head: &RequestHead| head.is_delete_of(suffix) && head.key_starts_with(&folder));
            let backups: Api<Backup> = self.namespace.api();
            ignore_missing(backups.delete(&name, &DeleteParams::default()).await.map(|_| ()))
                .map_err(kube_error(format!("delete Backup {name}")))?;
            let held = receive(&mut tap, DELETION_TIMEOUT, "the operator's DELETE").await?;
            eprintln!("soak: operator killed at {step}, {} {}", held.head.method, held.head.target);
            if step == "holding-first-delete" {
                self.operator.kill();
                let _ = held.reply.send(Verdict::Reset);
            } else {
                let _ = held.reply.send(Verdict::ForwardThenAsk);
                let answered = receive(&mut tap, DELETION_TIMEOUT, "Garage's answer to the DELETE").await?;
                self.operator.kill();
                let _ = answered.reply.send(Verdict::Reset);
            }
            row.faults += 1;
            self.proxy.untap();
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.operator.start().map_err(SoakError::Process)?;
            match self.await_deletion(&name, row).await? {
                Ok(gone_after_restart) => {
                    gone_after.push(format!("{name} ({step}) {:.1} s", gone_after_restart.as_secs_f64()));
                }
                Err(message) => self.tally.note(
                    scenario,
                    format!("{step}: Backup {name} was still there {DELETION_TIMEOUT:?} after the operator restarted ({message}); its finalizer was removed by hand"),
                ),
            }
            self.account_deleted_folder(&name, &format!("{scenario} ({step})"), row).await?;
        }
        if !gone_after.is_empty() {
            self.tally.note(scenario, format!("Backups gone after the operator restarted: {}", gone_after.join(", ")));
        }
        self.deleted_mid_snapshot("killed-at-node-start", row).await?;
        self.deleted_mid_snapshot("job-unrecorded", row).await
    }

    /// Sends the source node the `BACKUP START` of Backup `name` that the operator sends: the
    /// job id derived from the Backup, its data object, through the proxy, with the bed's
    /// credentials.
    async fn start_job_as_the_operator(&self, name: &str, source: SocketAddr) -> Result<(), SoakError> {
        let backups: Api<Backup> = self.namespace.api();
        let backup = backups.get(name).await.map_err(kube_error(format!("read Backup {name}")))?;
        let credential = |variable: &'static str| {
            self.bed
                .export(variable)
                .map(str::to_owned)
                .ok_or(SoakError::Missing { what: "a test bed export", detail: variable.to_owned() })
        };
        let job_s3 = JobS3 {
            connection: S3Connection {
                endpoint: Some(self.proxy.endpoint()),
                region: Some(self.region.clone()),
                force_path_style: true,
                credentials_secret: None,
            },
            access_key_id: Some(credential("AWS_ACCESS_KEY_ID")?),
            secret_access_key: Some(credential("AWS_SECRET_ACCESS_KEY")?),
            session_token: None,
        };
        let uri = format!("s3://{}/{}shard-0.rdb", self.bucket, self.folder(name));
        let mut node = NodeConnection::connect(source, None)
            .await
            .map_err(|error| SoakError::Local(format!("unable to reach node {source}: {}", error_chain(&error))))?;
        node.backup_start(&job_id(&backup), &uri, Some(SnapshotMethod::Fork), &job_s3)
            .await
            .map_err(|error| SoakError::Local(format!("BACKUP START on {source}: {}", error_chain(&error))))?;
        Ok(())
    }

    /// operator-kill-finalizer, last steps: a Backup deleted while the operator is down and its
    /// node's job runs, the operator restarted 1 s later. The Backup may go only once nothing
    /// more can appear under its folder: once the node's job has ended (plus 5 s), nothing may
    /// remain there. Two ways to get there:
    /// - `killed-at-node-start`: the operator SIGKILLed the moment the node has taken its
    ///   `BACKUP START` (whether its status had recorded the shard by then is a race, noted);
    /// - `job-unrecorded`: the operator SIGKILLed once its finalizer is on (no status yet), and
    ///   the harness sends the node the `BACKUP START` the operator would have sent next (the
    ///   job id derived from the Backup, the same object): the state of an operator that died
    ///   between starting the job and recording it, every time.
    async fn deleted_mid_snapshot(&mut self, step: &str, row: &mut Row) -> Result<(), SoakError> {
        let scenario = "operator-kill-finalizer";
        let source = self.serving_address(SOURCE).await?;
        self.slow_snapshots(source, Some("Fork")).await?;
        let name = self.name("opkillfin");
        let recorded = match step {
            "killed-at-node-start" => self.kill_operator_when_node_starts(&name).await?,
            _ => {
                let (in_event, after_kill) = self.kill_operator_when_finalized(&name).await?;
                if in_event || after_kill {
                    return Err(SoakError::Missing {
                        what: "a Backup without status when the operator was killed",
                        detail: format!("{name}: the status was written first"),
                    });
                }
                self.start_job_as_the_operator(&name, source).await?;
                false
            }
        };
        let backups: Api<Backup> = self.namespace.api();
        let job_id = job_id(&backups.get(&name).await.map_err(kube_error(format!("read Backup {name}")))?);
        ignore_missing(backups.delete(&name, &DeleteParams::default()).await.map(|_| ()))
            .map_err(kube_error(format!("delete Backup {name}")))?;
        row.faults += 1;
        row.backups_taken += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.operator.start().map_err(SoakError::Process)?;
        let restarted = Instant::now();
        let gone = self.await_deletion(&name, row).await?;
        let job_end = wait(&format!("the node's job {job_id} to end"), Duration::from_secs(90), || async {
            let mut node = NodeConnection::connect(source, None).await.ok()?;
            match node.backup_status(&job_id).await.ok()? {
                Some(job) if !job.is_finished() => None,
                Some(job) => Some(job.state),
                None => Some("gone".to_owned()),
            }
        })
        .await;
        let ended_after = restarted.elapsed();
        self.unslow(source).await?;
        let job_end = job_end?;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let shard = if recorded { "with" } else { "before" };
        let went = match gone {
            Ok(gone_after) => format!("the Backup went {:.1} s after the operator restarted", gone_after.as_secs_f64()),
            Err(_) => format!(
                "the Backup was still there {DELETION_TIMEOUT:?} after the operator restarted; its finalizer was removed by hand"
            ),
        };
        self.tally.note(
            scenario,
            format!(
                "{step}: Backup {name}, operator killed {shard} its status recorded the shard: {went}, the node's job ended ({job_end}) {:.1} s after the restart",
                ended_after.as_secs_f64()
            ),
        );
        self.account_deleted_folder(&name, &format!("{scenario} ({step})"), row).await
    }

    /// The operator killed at each step of a restore; each restore must complete and hold
    /// every key.
    async fn operator_kill_restore(&mut self, row: &mut Row) -> Result<(), SoakError> {
        let (name, requested, log) = self.available_backup_under_writes("opkillr", row).await?;
        for step in ["reading-manifest", "cluster-created", "node-preloading"] {
            let restore = self.name("r");
            let cluster = self.name("c");
            let mut tap = (step == "reading-manifest")
                .then(|| self.proxy.tap(|head: &RequestHead| head.is_get_of("/manifest.json")));
            self.create_restore(&restore, &cluster, RestoreFrom::Backup(&name)).await?;
            let timeout = self.settings.restore_timeout;
            match (step, tap.as_mut()) {
                (_, Some(tap)) => {
                    let tapped = receive(tap, timeout, "the restore's manifest read").await?;
                    self.operator.kill();
                    let _ = tapped.reply.send(Verdict::Reset);
                }
                ("cluster-created", None) => {
                    let clusters: Api<RedisCluster> = self.namespace.api();
                    wait(&format!("RedisCluster {cluster}"), timeout, || async {
                        clusters.get_opt(&cluster).await.ok().flatten().map(|_| ())
                    })
                    .await?;
                    self.operator.kill();
                }
                _ => {
                    let pods: Api<Pod> = self.namespace.api();
                    let pod = format!("{cluster}-0");
                    wait(&format!("pod {pod} to start"), timeout, || async {
                        let pod = pods.get_opt(&pod).await.ok().flatten()?;
                        pod.status?.container_statuses?.first()?.state.as_ref()?.running.as_ref().map(|_| ())
                    })
                    .await?;
                    self.operator.kill();
                }
            }
            row.faults += 1;
            self.proxy.untap();
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.operator.start().map_err(SoakError::Process)?;
            self.verify_restore(&restore, &cluster, Some((&log, requested)), row).await?;
        }
        self.delete_backup(&name).await
    }

    /// The API server restarted during a backup and during a restore.
    async fn apiserver_restart(&mut self, row: &mut Row) -> Result<(), SoakError> {
        let source = self.serving_address(SOURCE).await?;
        self.slow_snapshots(source, Some("Fork")).await?;
        let writer = self.start_writer(source).await?;
        let name = self.name("apirestart");
        let requested = Instant::now();
        self.create_backup(&name, &self.proxy.endpoint(), Some("Fork")).await?;
        self.await_snapshot_running(&name, Duration::from_millis(1000)).await?;
        self.restart_apiserver().await?;
        row.faults += 1;
        let back = Instant::now();
        let ended = self.await_backup(&name).await?;
        let backup_after = back.elapsed();
        let log = writer.stop().await;
        self.unslow(source).await?;
        self.account_store(&name, ended, row).await?;
        if ended != Ended::Available {
            let message = self.backup_message(&name).await;
            self.tally.note("apiserver-restart", format!("the backup ended {ended:?}: {message}"));
            return self.delete_backup(&name).await;
        }
        let restore = self.name("r");
        let cluster = self.name("c");
        self.create_restore(&restore, &cluster, RestoreFrom::Backup(&name)).await?;
        let clusters: Api<RedisCluster> = self.namespace.api();
        wait(&format!("RedisCluster {cluster}"), self.settings.restore_timeout, || async {
            clusters.get_opt(&cluster).await.ok().flatten().map(|_| ())
        })
        .await?;
        self.restart_apiserver().await?;
        row.faults += 1;
        let back = Instant::now();
        self.verify_restore(&restore, &cluster, Some((&log, requested)), row).await?;
        self.tally.note(
            "apiserver-restart",
            format!(
                "after the API server came back, the backup ended in {:.0} s and the restore was verified in {:.0} s",
                backup_after.as_secs_f64(),
                back.elapsed().as_secs_f64()
            ),
        );
        self.delete_backup(&name).await
    }

    /// Restores from objects corrupted in three ways must fail, never serve.
    async fn restore_corrupt(&mut self, row: &mut Row) -> Result<(), SoakError> {
        let name = self.name("corrupt");
        self.available_backup(&name, "an available backup to corrupt", row).await?;
        let folder = self.folder(&name);
        let data_key = format!("{folder}shard-0.rdb");
        let original = self.get_object(&data_key).await?;
        let middle = original.len() / 2;
        let mut flipped = original.clone();
        flipped[middle] ^= 0x20;
        let truncated = original[..original.len() * 2 / 3].to_vec();
        let cases: [(&str, Vec<u8>); 3] =
            [("flipped-raw", flipped.clone()), ("truncated-raw", truncated), ("flipped-in-backup", flipped)];
        for (case, bytes) in cases {
            let restore = self.name("r");
            let cluster = self.name("c");
            let from = if case == "flipped-in-backup" {
                self.put_object(&data_key, bytes).await?;
                RestoreFrom::Backup(&name)
            } else {
                let key = format!("{folder}{case}.rdb");
                self.put_object(&key, bytes).await?;
                RestoreFrom::Object(key)
            };
            self.create_restore(&restore, &cluster, from).await?;
            row.faults += 1;
            let ended = self.await_restore(&restore).await?;
            match ended {
                Ended::Available => {
                    row.corrupt_accepted += 1;
                    self.tally.note("restore-corrupt", format!("{case}: the restore became available"));
                }
                Ended::Stuck => row.stuck += 1,
                Ended::Failed => {}
            }
            self.delete_restore(&restore, &cluster).await?;
        }
        self.delete_backup(&name).await
    }

    /// The restored node killed while it preloads (slowed by the proxy); the stand-in restarts
    /// it and it must preload again from the start and hold every key.
    async fn restore_interrupted(&mut self, row: &mut Row) -> Result<(), SoakError> {
        let MidPreload { name, requested, log, restore, cluster } =
            self.restore_until_mid_preload("interrupted", "restore-interrupted", row).await?;
        let killed = self.kill_node(&cluster).await;
        self.proxy.set_faults(Faults::none());
        killed?;
        row.faults += 1;
        self.verify_restore(&restore, &cluster, Some((&log, requested)), row).await?;
        self.delete_backup(&name).await
    }

    /// Garage SIGKILLed while a restored node preloads (the download capped through the
    /// proxy so the kill lands mid-stream), back 3 s later: the restore must end Available
    /// and exact (the node refuses the broken stream and the stand-in restarts it), never
    /// serve part of the data.
    async fn restore_garage_kill(&mut self, row: &mut Row) -> Result<(), SoakError> {
        let MidPreload { name, requested, log, restore, cluster } =
            self.restore_until_mid_preload("restgarage", "restore-garage-kill", row).await?;
        eprintln!("soak: killing garage mid-preload");
        let killed = self.garage.restart(libc::SIGKILL, Duration::from_secs(3)).map_err(SoakError::Process);
        self.proxy.set_faults(Faults::none());
        killed?;
        row.faults += 1;
        self.await_garage().await?;
        let started = Instant::now();
        self.verify_restore(&restore, &cluster, Some((&log, requested)), row).await?;
        self.tally.note(
            "restore-garage-kill",
            format!("restore verified {:.0} s after Garage came back", started.elapsed().as_secs_f64()),
        );
        self.delete_backup(&name).await
    }

    /// Resets, lost responses and 503 SlowDown on the restored node's reads for its
    /// first 10 s of preloading: the restore must end Available and exact.
    async fn restore_s3_faults(&mut self, row: &mut Row) -> Result<(), SoakError> {
        let (name, requested, log) = self.available_backup_under_writes("restfaults", row).await?;
        let before = self.proxy.counters().injected();
        self.proxy.set_faults(Faults {
            reset: 0.15,
            lose_response: 0.05,
            slow_down: 0.15,
            bandwidth: Some(RESTORE_BANDWIDTH),
            ..Faults::none()
        });
        let restore = self.name("r");
        let cluster = self.name("c");
        let created = self.create_restore(&restore, &cluster, RestoreFrom::Backup(&name)).await;
        let preloading = match created {
            Ok(()) => self.await_preload_started(&cluster).await,
            Err(error) => Err(error),
        };
        if preloading.is_ok() {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        self.proxy.set_faults(Faults::none());
        preloading?;
        let injected = self.proxy.counters().injected() - before;
        row.faults += injected;
        self.verify_restore(&restore, &cluster, Some((&log, requested)), row).await?;
        self.tally.note("restore-s3-faults", format!("{injected} faults injected in the restore's reads"));
        self.delete_backup(&name).await
    }

    // --- shared steps -------------------------------------------------------------------------

    /// An available backup taken under writes, then its restore with the download capped,
    /// 1.5 s into the restored node's preload (noted for `scenario` if it is already over);
    /// the cap stays on for the caller's fault, which must lift it.
    async fn restore_until_mid_preload(
        &mut self,
        stem: &str,
        scenario: &str,
        row: &mut Row,
    ) -> Result<MidPreload, SoakError> {
        let (name, requested, log) = self.available_backup_under_writes(stem, row).await?;
        self.proxy.set_faults(Faults { bandwidth: Some(RESTORE_BANDWIDTH), ..Faults::none() });
        let restore = self.name("r");
        let cluster = self.name("c");
        self.create_restore(&restore, &cluster, RestoreFrom::Backup(&name)).await?;
        self.await_preload_started(&cluster).await?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        self.note_if_preload_done(scenario, &cluster).await;
        Ok(MidPreload { name, requested, log, restore, cluster })
    }

    /// Notes, for `scenario`, when a restored cluster's node is already ready (its preload
    /// over) at the moment a fault meant for the preload is about to land.
    async fn note_if_preload_done(&mut self, scenario: &str, cluster: &str) {
        let pods: Api<Pod> = self.namespace.api();
        let pod = format!("{cluster}-0");
        let ready =
            pods.get_opt(&pod).await.ok().flatten().and_then(|pod| pod.status?.conditions).is_some_and(|conditions| {
                conditions.iter().any(|condition| condition.type_ == "Ready" && condition.status == "True")
            });
        if ready {
            self.tally.note(scenario, format!("{pod} had finished preloading before the fault"));
        }
    }

    /// Waits until the node of a restored cluster runs (and so preloads).
    async fn await_preload_started(&self, cluster: &str) -> Result<(), SoakError> {
        let pods: Api<Pod> = self.namespace.api();
        let pod = format!("{cluster}-0");
        wait(&format!("pod {pod} to start preloading"), self.settings.restore_timeout, || async {
            let pod = pods.get_opt(&pod).await.ok().flatten()?;
            pod.status?.container_statuses?.first()?.state.as_ref()?.running.as_ref().map(|_| ())
        })
        .await
    }

    /// A Backup through the proxy while the writer writes, accounted in `row`; an error
    /// unless it became available. Returns its name, when it was requested and the writes.
    async fn available_backup_under_writes(
        &mut self,
        stem: &str,
        row: &mut Row,
    ) -> Result<(String, Instant, WriteLog), SoakError> {
        let source = self.serving_address(SOURCE).await?;
        let writer = self.start_writer(source).await?;
        let name = self.name(stem);
        let requested = Instant::now();
        let taken = self.available_backup(&name, "an available backup to restore", row).await;
        let log = writer.stop().await;
        taken.map(|()| (name, requested, log))
    }

    /// Takes Backup `name` through the proxy, counts it and checks the store; an error (the
    /// run cannot go on) unless it became available.
    async fn available_backup(&mut self, name: &str, what: &'static str, row: &mut Row) -> Result<(), SoakError> {
        self.create_backup(name, &self.proxy.endpoint(), None).await?;
        let ended = self.await_backup(name).await?;
        self.account_store(name, ended, row).await?;
        if ended != Ended::Available {
            return Err(SoakError::Missing { what, detail: format!("{name}: {ended:?}") });
        }
        Ok(())
    }

    /// Creates Backup `name` under a watch of it, and SIGKILLs the operator as soon as the
    /// watch shows the Backup with the operator's finalizer. Returns whether the Backup had a
    /// status in that event, and whether it had one just after the kill.
    async fn kill_operator_when_finalized(&mut self, name: &str) -> Result<(bool, bool), SoakError> {
        let backups: Api<Backup> = self.namespace.api();
        let listed =
            backups.list_metadata(&ListParams::default().limit(1)).await.map_err(kube_error("list Backups"))?;
        let version = listed.metadata.resource_version.unwrap_or_default();
        let params = WatchParams::default().fields(&format!("metadata.name={name}")).timeout(120);
        let events = backups.watch(&params, &version).await.map_err(kube_error(format!("watch Backup {name}")))?;
        let mut events = std::pin::pin!(events);
        self.create_backup(name, &self.proxy.endpoint(), Some("Fork")).await?;
        let timeout = Duration::from_secs(60);
        let finalized = tokio::time::timeout(timeout, async {
            while let Some(event) = events.next().await {
                if let Ok(WatchEvent::Added(backup) | WatchEvent::Modified(backup)) = event {
                    if backup.finalizers().iter().any(|finalizer| finalizer == FINALIZER) {
                        return Some(backup.status.is_some());
                    }
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let Some(in_event) = finalized else {
            return Err(SoakError::Timeout { what: format!("the finalizer on Backup {name}"), timeout });
        };
        self.operator.kill();
        let after_kill = backups.get(name).await.map_err(kube_error(format!("read Backup {name}")))?.status.is_some();
        Ok((in_event, after_kill))
    }

    /// Creates Backup `name` and SIGKILLs the operator as soon as the node has taken its
    /// `BACKUP START`: when the node's first S3 request (its HEAD of the bucket, after the
    /// operator's GET of the manifest) reaches the proxy, which holds it until the kill.
    /// Returns whether the status recorded the shard just after the kill (the operator records
    /// it after the node's answer and its `SnapshotStarted` Event: then the kill came too late).
    async fn kill_operator_when_node_starts(&mut self, name: &str) -> Result<bool, SoakError> {
        let folder = self.folder(name);
        let mut destination =
            self.proxy.tap(move |head: &RequestHead| head.is_get_of("/manifest.json") && head.key_starts_with(&folder));
        self.create_backup(name, &self.proxy.endpoint(), Some("Fork")).await?;
        let timeout = Duration::from_secs(60);
        let checked = receive(&mut destination, timeout, "the operator's GET of the manifest").await?;
        let mut node_started = self.proxy.tap(|head: &RequestHead| head.method == "HEAD");
        let _ = checked.reply.send(Verdict::Forward);
        let held = receive(&mut node_started, timeout, "the node's HEAD of the bucket").await?;
        self.operator.kill();
        let _ = held.reply.send(Verdict::Forward);
        let backups: Api<Backup> = self.namespace.api();
        let backup = backups.get(name).await.map_err(kube_error(format!("read Backup {name}")))?;
        Ok(backup.status.is_some_and(|status| !status.shards.is_empty()))
    }

    /// The Events about Backup `name` that say it became Available, and that its snapshot
    /// started (an Event one operator repeats counts as often as its series says), once the
    /// first of the former has arrived.
    async fn count_backup_events(&self, name: &str) -> Result<(u64, u64), SoakError> {
        let events: Api<Event> = self.namespace.api();
        let count = |list: &[Event], reason: &str| -> u64 {
            list.iter()
                .filter(|event| {
                    event.reason.as_deref() == Some(reason)
                        && event.regarding.as_ref().is_some_and(|regarding| {
                            regarding.kind.as_deref() == Some("Backup") && regarding.name.as_deref() == Some(name)
                        })
                })
                .map(|event| event.series.as_ref().map_or(1, |series| u64::try_from(series.count).unwrap_or(1)))
                .sum()
        };
        let listed = wait(&format!("the Available Event of Backup {name}"), Duration::from_secs(10), || async {
            let list = events.list(&ListParams::default()).await.ok()?.items;
            (count(&list, State::Available.reason()) > 0).then_some(list)
        })
        .await?;
        Ok((count(&listed, State::Available.reason()), count(&listed, "SnapshotStarted")))
    }

    /// Waits, from the operator's restart, for deleted Backup `name` to go: `Ok` with how long
    /// it took, or, after [`DELETION_TIMEOUT`], counts it stuck, removes its finalizer by hand
    /// (so the next run starts clean) and returns its condition's message as `Err`.
    async fn await_deletion(&self, name: &str, row: &mut Row) -> Result<Result<Duration, String>, SoakError> {
        let backups: Api<Backup> = self.namespace.api();
        let restarted = Instant::now();
        let gone = wait(&format!("Backup {name} to be deleted"), DELETION_TIMEOUT, || async {
            matches!(backups.get_opt(name).await, Ok(None)).then_some(())
        })
        .await;
        if gone.is_ok() {
            return Ok(Ok(restarted.elapsed()));
        }
        row.stuck += 1;
        let message = self.backup_message(name).await;
        backups
            .patch(name, &PatchParams::default(), &Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})))
            .await
            .map_err(kube_error(format!("remove the finalizer of Backup {name}")))?;
        Ok(Err(message))
    }

    /// Counts what a deleted Backup left under its folder, objects as left and open multipart
    /// uploads as orphaned (noted for `scenario`), and removes them so the next run starts clean.
    async fn account_deleted_folder(&mut self, name: &str, scenario: &str, row: &mut Row) -> Result<(), SoakError> {
        let folder = self.folder(name);
        let objects = s3::list_objects(&self.s3, &self.bucket, &folder).await.map_err(store_error("list objects"))?;
        for object in objects {
            row.leftovers += 1;
            self.tally.note(scenario, format!("deleted Backup {name} left {}", object.key));
            s3::delete_single_object(&self.s3, &self.bucket, &object.key)
                .await
                .map_err(store_error(format!("delete {}", object.key)))?;
        }
        let uploads =
            s3::list_incomplete_uploads(&self.s3, &self.bucket, &folder).await.map_err(store_error("list uploads"))?;
        if !uploads.is_empty() {
            row.orphaned_uploads += uploads.len() as u64;
            self.tally.note(scenario, format!("deleted Backup {name} left {} open multipart upload(s)", uploads.len()));
            s3::abort_incomplete_uploads(&self.s3, &self.bucket, &folder, Duration::ZERO)
                .await
                .map_err(store_error("abort uploads"))?;
        }
        Ok(())
    }

    /// What the node of `cluster` logged about the upload of Backup `backup`'s data object:
    /// the end of its last `uploaded` or `upload failed` line (sizes, parts, duration, error).
    async fn node_upload_line(&self, cluster: &str, backup: &str) -> Option<String> {
        let directory = self.bed.local_pod_dir(&self.namespace.name, &format!("{cluster}-0"))?;
        let log = tokio::fs::read_to_string(directory.join(format!("{NODE_CONTAINER}.log"))).await.ok()?;
        let key = format!("key={}shard-0.rdb}}", self.folder(backup));
        log.lines()
            .rev()
            .map(strip_colours)
            .filter(|line| line.contains(&key))
            .filter_map(|line| {
                ["uploaded ", "upload failed "]
                    .into_iter()
                    .find_map(|marker| line.find(marker).map(|at| line[at..].trim().to_owned()))
            })
            .next()
    }

    fn name(&mut self, prefix: &str) -> String {
        self.names += 1;
        format!("{prefix}-{}", self.names)
    }

    fn folder(&self, backup: &str) -> String {
        format!("{PREFIX}/{}/{backup}/", self.namespace.name)
    }

    async fn create_cluster(&self, name: &str) -> Result<(), SoakError> {
        let cluster: RedisCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "ferrocache.io/v1alpha1",
            "kind": "RedisCluster",
            "metadata": {"name": name},
            "spec": {"memoryLimit": "1Gi"},
        }))
        .map_err(|error| SoakError::Local(error.to_string()))?;
        self.namespace.create(&cluster).await.map_err(SoakError::Bed)?;
        Ok(())
    }

    /// The address of a cluster's node once it serves (ready and answering PING).
    pub async fn serving_address(&self, cluster: &str) -> Result<SocketAddr, SoakError> {
        let pods: Api<Pod> = self.namespace.api();
        let pod = format!("{cluster}-0");
        wait(&format!("node {pod} to serve"), Duration::from_secs(180), || async {
            let found = pods.get_opt(&pod).await.ok().flatten()?;
            if !ferrocache_testbed::harness::is_pod_ready(&found) {
                return None;
            }
            let ip = found.status?.pod_ip?.parse().ok()?;
            let address = SocketAddr::new(ip, NODE_PORT);
            let client = redis::Client::open(format!("redis://{address}/")).ok()?;
            let mut connection = client.get_multiplexed_async_connection().await.ok()?;
            let pong: String = redis::cmd("PING").query_async(&mut connection).await.ok()?;
            (pong == "PONG").then_some(address)
        })
        .await
    }

    async fn start_writer(&mut self, source: SocketAddr) -> Result<Writer, SoakError> {
        let seed = self.random.next();
        let writer = Writer::start(source, self.settings.writer_keys, seed).await.map_err(|source_error| {
            SoakError::Redis { action: "start the writer", address: source, source: source_error }
        })?;
        wait("the writer's first 300 writes", Duration::from_secs(30), || async {
            (writer.acknowledged() >= 300).then_some(())
        })
        .await?;
        Ok(writer)
    }

    /// Makes snapshots last a few seconds: fork by `rdb-key-save-delay`, forkless by a
    /// bandwidth cap on the proxy (the walk then waits on its full buffer).
    async fn slow_snapshots(&self, source: SocketAddr, method: Option<&str>) -> Result<(), SoakError> {
        match method {
            Some("Forkless") => self.proxy.set_faults(Faults { bandwidth: Some(6 << 20), ..Faults::none() }),
            _ => config_set(source, "rdb-key-save-delay", "100").await?,
        }
        Ok(())
    }

    async fn unslow(&self, source: SocketAddr) -> Result<(), SoakError> {
        self.unslow_proxy();
        config_set(source, "rdb-key-save-delay", "0").await
    }

    fn unslow_proxy(&self) {
        self.proxy.set_faults(Faults::none());
    }

    async fn create_backup(&self, name: &str, endpoint: &str, method: Option<&str>) -> Result<(), SoakError> {
        let mut spec = serde_json::json!({
            "cluster": SOURCE,
            "destination": {
                "bucket": self.bucket, "prefix": PREFIX, "endpoint": endpoint,
                "region": self.region, "credentialsSecret": "s3",
            },
        });
        if let Some(method) = method {
            spec["snapshotMethod"] = serde_json::Value::from(method);
        }
        let backup: Backup = serde_json::from_value(serde_json::json!({
            "apiVersion": "ferrocache.io/v1alpha1", "kind": "Backup", "metadata": {"name": name}, "spec": spec,
        }))
        .map_err(|error| SoakError::Local(error.to_string()))?;
        self.namespace.create(&backup).await.map_err(SoakError::Bed)?;
        Ok(())
    }

    async fn await_backup(&self, name: &str) -> Result<Ended, SoakError> {
        self.await_end::<Backup>("Backup", name, self.settings.backup_timeout, |backup| {
            backup.status.map(|status| status.conditions).unwrap_or_default()
        })
        .await
    }

    /// Waits until a Backup or Restore is Available or Failed; Stuck when
    /// it is neither within `timeout`.
    async fn await_end<K>(
        &self,
        kind: &str,
        name: &str,
        timeout: Duration,
        conditions: impl Fn(K) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
    ) -> Result<Ended, SoakError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        let objects: Api<K> = self.namespace.api();
        let ended = wait(&format!("{kind} {name} to end"), timeout, || async {
            let object = objects.get_opt(name).await.ok().flatten()?;
            match State::of(&conditions(object)) {
                Some(State::Available) => Some(Ended::Available),
                Some(State::Failed) => Some(Ended::Failed),
                _ => None,
            }
        })
        .await;
        match ended {
            Err(SoakError::Timeout { .. }) => Ok(Ended::Stuck),
            other => other,
        }
    }

    async fn backup_message(&self, name: &str) -> String {
        let backups: Api<Backup> = self.namespace.api();
        match backups.get_opt(name).await {
            Ok(Some(backup)) => {
                let conditions = backup.status.unwrap_or_default().conditions;
                condition::find(&conditions, condition::AVAILABLE)
                    .map(|found| format!("{}: {}", found.reason, found.message))
                    .unwrap_or_default()
            }
            _ => String::new(),
        }
    }

    /// Waits until the node streams the backup's snapshot, then `into` more, and returns its
    /// job if it still runs then (the node reports bytes only once a snapshot ends).
    async fn await_snapshot_running(&self, name: &str, into: Duration) -> Result<JobStatus, SoakError> {
        let backups: Api<Backup> = self.namespace.api();
        let source = self.serving_address(SOURCE).await?;
        let running = || async {
            let backup = backups.get_opt(name).await.ok().flatten()?;
            let job_id = backup.status?.job_id?;
            let mut node = NodeConnection::connect(source, None).await.ok()?;
            let job = node.backup_status(&job_id).await.ok()??;
            (job.state == "running").then_some(job)
        };
        wait(&format!("the snapshot of Backup {name} to run"), Duration::from_secs(90), running).await?;
        tokio::time::sleep(into).await;
        running().await.ok_or(SoakError::Missing {
            what: "a snapshot still running",
            detail: format!("Backup {name}'s snapshot ended within {into:?}: slow it down"),
        })
    }

    /// SIGKILL of a cluster's node container.
    async fn kill_node(&self, cluster: &str) -> Result<(), SoakError> {
        let pod = format!("{cluster}-0");
        let directory = self
            .bed
            .local_pod_dir(&self.namespace.name, &pod)
            .ok_or(SoakError::Missing { what: "the local pod directory", detail: pod.clone() })?;
        bed::kill_pod_container(&directory, NODE_CONTAINER).map_err(SoakError::Process)
    }

    /// The source started or restarted empty: wait for it and load the static data, strings
    /// and the other types.
    async fn reload_source(&self) -> Result<(), SoakError> {
        let address = self.serving_address(SOURCE).await?;
        load_static(address, self.settings.static_keys, self.settings.value_bytes).await?;
        typed::load_typed(address).await
    }

    async fn await_garage(&self) -> Result<(), SoakError> {
        let s3 = self.s3.clone();
        let bucket = self.bucket.clone();
        wait("garage to serve again", Duration::from_secs(60), || async { s3.check_bucket(&bucket).await.ok() }).await
    }

    async fn restart_apiserver(&mut self) -> Result<(), SoakError> {
        self.apiserver.restart(libc::SIGKILL, Duration::from_secs(2)).map_err(SoakError::Process)?;
        let client = self.bed.client();
        wait("the API server to serve again", Duration::from_secs(90), || async {
            let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
            namespaces.get_opt("default").await.ok().flatten().map(|_| ())
        })
        .await
    }

    /// Counts a backup and checks the store: then, when it is available, restores it and
    /// compares every key.
    async fn account_backup(
        &mut self,
        name: &str,
        ended: Ended,
        writes: Option<(&WriteLog, Instant)>,
        row: &mut Row,
    ) -> Result<(), SoakError> {
        self.account_store(name, ended, row).await?;
        if ended == Ended::Available {
            let restore = self.name("r");
            let cluster = self.name("c");
            self.create_restore(&restore, &cluster, RestoreFrom::Backup(name)).await?;
            self.verify_restore(&restore, &cluster, writes, row).await?;
        }
        Ok(())
    }

    /// Counts the backup and what it left in the store: multipart uploads still open under
    /// its folder (after a grace period for the node's own cleanup), and, for a failed backup,
    /// a data object or manifest under its keys.
    async fn account_store(&mut self, name: &str, ended: Ended, row: &mut Row) -> Result<(), SoakError> {
        row.backups_taken += 1;
        match ended {
            Ended::Available => row.backups_available += 1,
            Ended::Stuck => row.stuck += 1,
            Ended::Failed => {}
        }
        let folder = self.folder(name);
        let s3 = self.s3.clone();
        let bucket = self.bucket.clone();
        let open = wait("the open uploads to be aborted", Duration::from_secs(20), || async {
            let uploads = s3::list_incomplete_uploads(&s3, &bucket, &folder).await.ok()?;
            uploads.is_empty().then_some(0usize)
        })
        .await;
        if open.is_err() {
            let uploads =
                s3::list_incomplete_uploads(&s3, &bucket, &folder).await.map_err(store_error("list uploads"))?;
            row.orphaned_uploads += uploads.len() as u64;
            self.tally.note(
                "store",
                format!("Backup {name} ({ended:?}) left {} open multipart upload(s) under {folder}", uploads.len()),
            );
            // Clean up, so the next scenario starts from an empty store.
            s3::abort_incomplete_uploads(&s3, &bucket, &folder, Duration::ZERO)
                .await
                .map_err(store_error("abort uploads"))?;
        }
        if ended == Ended::Failed {
            let objects = s3::list_objects(&s3, &bucket, &folder).await.map_err(store_error("list objects"))?;
            for object in objects {
                let file = object.key.trim_start_matches(&folder).to_owned();
                if file == "shard-0.rdb" || file == "manifest.json" {
                    row.leftovers += 1;
                    self.tally.note("store", format!("failed Backup {name} left {file}"));
                } else if file.ends_with(".meta.json") {
                    self.tally
                        .note("store", format!("failed Backup {name} left the sidecar {file} (ignored by readers)"));
                }
            }
        }
        Ok(())
    }

    async fn create_restore(&self, name: &str, cluster: &str, from: RestoreFrom<'_>) -> Result<(), SoakError> {
        let source = match from {
            RestoreFrom::Backup(backup) => serde_json::json!({"backup": backup}),
            RestoreFrom::Object(key) => serde_json::json!({"s3": {
                "bucket": self.bucket, "key": key, "endpoint": self.proxy.endpoint(),
                "region": self.region, "credentialsSecret": "s3",
            }}),
        };
        let restore: Restore = serde_json::from_value(serde_json::json!({
            "apiVersion": "ferrocache.io/v1alpha1", "kind": "Restore", "metadata": {"name": name},
            "spec": {"source": source, "clusterName": cluster},
        }))
        .map_err(|error| SoakError::Local(error.to_string()))?;
        self.namespace.create(&restore).await.map_err(SoakError::Bed)?;
        Ok(())
    }

    async fn await_restore(&self, name: &str) -> Result<Ended, SoakError> {
        self.await_end::<Restore>("Restore", name, self.settings.restore_timeout, |restore| {
            restore.status.map(|status| status.conditions).unwrap_or_default()
        })
        .await
    }

    /// Waits for the restore, compares every key of the restored node with the static data
    /// and the writer's log, then deletes the restore and its cluster.
    async fn verify_restore(
        &mut self,
        restore: &str,
        cluster: &str,
        writes: Option<(&WriteLog, Instant)>,
        row: &mut Row,
    ) -> Result<(), SoakError> {
        let ended = self.await_restore(restore).await?;
        if ended != Ended::Available {
            let restores: Api<Restore> = self.namespace.api();
            let message = match restores.get_opt(restore).await {
                Ok(Some(found)) => condition::find(&found.status.unwrap_or_default().conditions, condition::AVAILABLE)
                    .map(|c| format!("{}: {}", c.reason, c.message))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            self.delete_restore(restore, cluster).await?;
            return Err(SoakError::Missing {
                what: "a restore of an available backup",
                detail: format!("Restore {restore} ended {ended:?}: {message}"),
            });
        }
        let address = self.serving_address(cluster).await?;
        let (compared, wrong) = verify_static(address, self.settings.static_keys, self.settings.value_bytes).await?;
        row.keys_compared += compared;
        row.mismatches += wrong;
        if wrong > 0 {
            self.tally.note("verify", format!("Restore {restore}: {wrong} static keys differ"));
        }
        let (compared, typed_wrong, first) = typed::verify_typed(address).await?;
        row.keys_compared += compared;
        row.mismatches += typed_wrong;
        if let Some(first) = first {
            self.tally.note("verify", format!("Restore {restore}: {typed_wrong} typed keys differ, first {first}"));
        }
        let wrong = wrong + typed_wrong;
        if let Some((log, requested)) = writes {
            let values = writer::read_back(address, self.settings.writer_keys)
                .await
                .map_err(|source| SoakError::Redis { action: "read the writer's keys", address, source })?;
            let verdict = writer::check(log, self.settings.writer_keys, requested, &values);
            row.keys_compared += verdict.keys;
            row.mismatches += verdict.mismatches;
            row.writes_lost += verdict.lost;
            if verdict.mismatches + verdict.lost > 0 {
                self.tally.note(
                    "verify",
                    format!(
                        "Restore {restore}: {} keys not at one point in time, {} acknowledged writes lost (point {}, {} writes acknowledged)",
                        verdict.mismatches,
                        verdict.lost,
                        verdict.point,
                        log.acknowledged()
                    ),
                );
            }
        }
        row.restores_verified += u64::from(wrong == 0);
        self.delete_restore(restore, cluster).await
    }

    async fn delete_restore(&self, restore: &str, cluster: &str) -> Result<(), SoakError> {
        let restores: Api<Restore> = self.namespace.api();
        let clusters: Api<RedisCluster> = self.namespace.api();
        ignore_missing(restores.delete(restore, &DeleteParams::default()).await.map(|_| ()))
            .map_err(kube_error(format!("delete Restore {restore}")))?;
        ignore_missing(clusters.delete(cluster, &DeleteParams::default()).await.map(|_| ()))
            .map_err(kube_error(format!("delete RedisCluster {cluster}")))?;
        Ok(())
    }

    /// Deletes a Backup (its finalizer deletes its objects) and waits for it to go.
    async fn delete_backup(&self, name: &str) -> Result<(), SoakError> {
        let backups: Api<Backup> = self.namespace.api();
        ignore_missing(backups.delete(name, &DeleteParams::default()).await.map(|_| ()))
            .map_err(kube_error(format!("delete Backup {name}")))?;
        wait(&format!("Backup {name} to be deleted"), Duration::from_secs(60), || async {
            matches!(backups.get_opt(name).await, Ok(None)).then_some(())
        })
        .await
    }

    async fn get_object(&self, key: &str) -> Result<Vec<u8>, SoakError> {
        let output = self
            .s3
            .sdk()
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|error| SoakError::Local(format!("unable to get {key}: {error}")))?;
        let body =
            output.body.collect().await.map_err(|error| SoakError::Local(format!("unable to read {key}: {error}")))?;
        Ok(body.into_bytes().to_vec())
    }

    async fn put_object(&self, key: &str, bytes: Vec<u8>) -> Result<(), SoakError> {
        s3::put_small_object(&self.s3, &self.bucket, key, bytes.into(), "application/octet-stream")
            .await
            .map_err(store_error(format!("put {key}")))
    }

    /// Brings everything back to a healthy state after a run: faults off, operator up, Garage
    /// up, the source serving its data.
    async fn recover(&mut self) -> Result<(), SoakError> {
        self.proxy.untap();
        self.proxy.set_faults(Faults::none());
        if !self.operator.running() {
            self.operator.start().map_err(SoakError::Process)?;
        }
        self.await_garage().await?;
        let source = self.serving_address(SOURCE).await?;
        config_set(source, "rdb-key-save-delay", "0").await?;
        config_set(source, "s3-request-timeout", &DEFAULT_REQUEST_TIMEOUT.as_millis().to_string()).await?;
        let mut connection = connect(source).await?;
        let keys: u64 = redis::cmd("DBSIZE").query_async(&mut connection).await.map_err(|error| SoakError::Redis {
            action: "DBSIZE",
            address: source,
            source: error,
        })?;
        if keys < self.settings.static_keys {
            self.reload_source().await?;
        }
        Ok(())
    }
}

/// Where a Restore reads from.
enum RestoreFrom<'a> {
    Backup(&'a str),
    Object(String),
}

fn ignore_missing(result: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match result {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other,
    }
}

/// `line` without its ANSI colour sequences.
fn strip_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut characters = line.chars();
    while let Some(character) = characters.next() {
        if character == '\u{1b}' {
            // ESC [ parameters final-letter
            for next in characters.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(character);
        }
    }
    plain
}

/// The next request `tap` holds, or a timeout naming `what`.
async fn receive(
    tap: &mut mpsc::UnboundedReceiver<Tapped>,
    timeout: Duration,
    what: &str,
) -> Result<Tapped, SoakError> {
    tokio::time::timeout(timeout, tap.recv())
        .await
        .ok()
        .flatten()
        .ok_or(SoakError::Timeout { what: what.to_owned(), timeout })
}

/// Polls `check` every 250 ms until it yields a value or `timeout` passes (the harness's
/// `wait_for`, with the soak's error).
pub async fn wait<T, F, Fut>(what: &str, timeout: Duration, check: F) -> Result<T, SoakError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    wait_for(what, timeout, check).await.map_err(|error| match error {
        HarnessError::Timeout { what, timeout } => SoakError::Timeout { what, timeout },
        other => SoakError::Bed(other),
    })
}

fn apply_crds(kubeconfig: &str) -> Result<(), SoakError> {
    let crds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds");
    for arguments in [
        vec!["apply", "--server-side", "--force-conflicts", "-f", crds.to_str().unwrap_or("crds")],
        vec![
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "redisclusters.ferrocache.io",
            "backups.ferrocache.io",
            "restores.ferrocache.io",
        ],
    ] {
        let output = std::process::Command::new("kubectl")
            .args(&arguments)
            .env("KUBECONFIG", kubeconfig)
            .output()
            .map_err(|error| SoakError::Local(format!("unable to run kubectl: {error}")))?;
        if !output.status.success() {
            return Err(SoakError::Local(format!(
                "kubectl {} failed: {}",
                arguments.join(" "),
                String::from_utf8_lossy(&output.stderr)
            )));
        }
    }
    Ok(())
}

pub async fn connect(address: SocketAddr) -> Result<redis::aio::MultiplexedConnection, SoakError> {
    let client = redis::Client::open(format!("redis://{address}/")).map_err(|source| SoakError::Redis {
        action: "open a client",
        address,
        source,
    })?;
    client.get_multiplexed_async_connection().await.map_err(|source| SoakError::Redis {
        action: "connect",
        address,
        source,
    })
}

pub async fn config_set(address: SocketAddr, name: &str, value: &str) -> Result<(), SoakError> {
    let mut connection = connect(address).await?;
    redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query_async::<()>(&mut connection)
        .await
        .map_err(|source| SoakError::Redis { action: "CONFIG SET", address, source })
}

/// The value of static key `index`: its index, then filler up to `bytes`.
pub fn static_value(index: u64, bytes: usize) -> Vec<u8> {
    let mut value = format!("{index:010}:").into_bytes();
    let mut filler = index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    while value.len() < bytes {
        filler ^= filler << 13;
        filler ^= filler >> 7;
        filler ^= filler << 17;
        value.push(b'a' + (filler % 26) as u8);
    }
    value
}

pub fn static_key(index: u64) -> String {
    format!("static:{index}")
}

/// Loads the static keys, in pipelines of 1000.
pub async fn load_static(address: SocketAddr, keys: u64, bytes: usize) -> Result<(), SoakError> {
    let mut connection = connect(address).await?;
    let mut start = 0;
    while start < keys {
        let end = (start + 1000).min(keys);
        let mut pipe = redis::pipe();
        for index in start..end {
            pipe.cmd("SET").arg(static_key(index)).arg(static_value(index, bytes)).ignore();
        }
        pipe.query_async::<()>(&mut connection).await.map_err(|source| SoakError::Redis {
            action: "load the static keys",
            address,
            source,
        })?;
        start = end;
    }
    Ok(())
}

/// Compares the static keys of a node with what was loaded: (keys compared, keys that differ).
pub async fn verify_static(address: SocketAddr, keys: u64, bytes: usize) -> Result<(u64, u64), SoakError> {
    let mut connection = connect(address).await?;
    let mut wrong = 0;
    let mut start = 0;
    while start < keys {
        let end = (start + 1000).min(keys);
        let mut get = redis::cmd("MGET");
        for index in start..end {
            get.arg(static_key(index));
        }
        let values: Vec<Option<Vec<u8>>> = get
            .query_async(&mut connection)
            .await
            .map_err(|source| SoakError::Redis { action: "read the static keys", address, source })?;
        for (index, value) in (start..end).zip(values) {
            if value.as_deref() != Some(static_value(index, bytes).as_slice()) {
                wrong += 1;
            }
        }
        start = end;
    }
    Ok((keys, wrong))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_values_have_the_requested_size_and_differ_by_key() {
        assert_eq!(static_value(7, 1000).len(), 1000);
        assert_ne!(static_value(7, 100), static_value(8, 100));
        assert_eq!(static_value(7, 100), static_value(7, 100));
        assert!(static_value(7, 100).starts_with(b"0000000007:"));
    }

    #[test]
    fn colour_sequences_are_taken_out_of_log_lines() {
        assert_eq!(strip_colours("\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m uploaded"), "2026  INFO uploaded");
        assert_eq!(strip_colours("plain"), "plain");
    }

    #[test]
    fn every_scenario_has_a_distinct_name() {
        let mut names = SCENARIOS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SCENARIOS.len());
    }
}
