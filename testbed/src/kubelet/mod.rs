//! A kubelet stand-in: runs the pods bound to its Node as local processes.
//!
//! It registers a Node and keeps it Ready, watches the pods bound to it, and
//! for each pod: gives it a loopback address of its own as `status.podIP`,
//! writes its volumes, resolves its env as the kubelet does, starts each
//! container as a process of the binary the workspace built for its image,
//! runs probes, reports container statuses (with termination messages) and
//! conditions, restarts per `restartPolicy` with back-off, and on deletion
//! stops the processes (SIGTERM, then SIGKILL after the grace period) and
//! deletes the pod.
//!
//! What it does not do: `kubectl logs`/`exec`/`port-forward` (read
//! `<run dir>/pods/<namespace>_<pod>/<container>.log` instead), resource
//! limits, network isolation (pods share the host's network namespace and
//! must bind to their `POD_IP`, which is an address of the host's `lo`),
//! Service virtual IPs (no kube-proxy: reach pods by pod IP), cluster DNS,
//! image pulls, readiness gates, and refreshing ConfigMap/Secret volumes
//! after the pod started.
//!
//! # Layout
//! - [`config`]: flags and environment variables.
//! - [`node`]: Node registration, Ready heartbeats, Lease.
//! - [`pod`]: one pod's worker: IP, directory, container tasks, status writer.
//! - [`container`]: one container's start/probe/restart loop and back-off.
//! - [`process`]: process groups, private mount namespaces, signals.
//! - [`probe`]: exec, tcpSocket and httpGet probes.
//! - [`env`], [`expand`], [`quantity`]: env resolution and `$(VAR)` expansion.
//! - [`volumes`]: ConfigMap, Secret, projected and other volumes as directories.
//! - [`image`]: image and command to a local executable.
//! - [`ipam`], [`network`]: pod IPs and their addresses on `lo`.
//! - [`status`]: pod phase, conditions and container statuses (pure).
//! - [`termination`]: termination message files and `FallbackToLogsOnError`.

pub mod config;
pub mod container;
pub mod env;
pub mod expand;
pub mod image;
pub mod ipam;
pub mod network;
pub mod node;
pub mod pod;
pub mod probe;
pub mod process;
pub mod quantity;
pub mod status;
pub mod termination;
pub mod volumes;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use tokio::sync::mpsc;
use tracing::{info, warn};

pub use config::KubeletConfig;
use ipam::PodIpAllocator;
use pod::{PodWorker, StopReason};

/// Error that stops the stand-in.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("failed to register the node")]
    Register(#[source] node::NodeError),
    #[error("failed to create run directory {path}")]
    RunDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Runs the stand-in until `shutdown` completes, then stops every pod's
/// processes (leaving the pod objects) and marks the Node not ready.
pub async fn run(
    client: Client,
    mut config: KubeletConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), KubeletError> {
    let pods_dir = config.run_dir.join("pods");
    std::fs::create_dir_all(&pods_dir).map_err(|source| KubeletError::RunDir { path: pods_dir.clone(), source })?;
    if config.private_dev {
        if let Err(reason) = process::check_dev_overlay(&config.run_dir.join("dev-check")).await {
            warn!(%reason, "containers get no private /dev: termination message files below /dev are left out (FallbackToLogsOnError still works)");
            config.private_dev = false;
        }
    }
    let config = Arc::new(config);
    clear_pod_addresses(&config).await;
    node::register(&client, &config).await.map_err(KubeletError::Register)?;
    info!(node = %config.node_name, run_dir = %config.run_dir.display(), "node registered and ready");
    let heartbeat = tokio::spawn(node::heartbeat_forever(client.clone(), config.clone()));

    let mut dispatcher = Dispatcher::new(client.clone(), config.clone());
    let pods: Api<Pod> = Api::all(client.clone());
    let selector = format!("spec.nodeName={}", config.node_name);
    let mut events = watcher::watcher(pods, watcher::Config::default().fields(&selector)).default_backoff().boxed();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(uid) = dispatcher.finished.1.recv() => { dispatcher.workers.remove(&uid); }
            event = events.next() => match event {
                Some(Ok(event)) => dispatcher.handle(event).await,
                Some(Err(error)) => warn!(error = &error as &dyn std::error::Error, "pod watch failed; retrying"),
                None => break,
            },
        }
    }

    info!("shutting down: stopping all pods");
    heartbeat.abort();
    dispatcher.shutdown().await;
    clear_pod_addresses(&config).await;
    if let Err(error) = node::heartbeat(&client, &config, false).await {
        warn!(error = &error as &dyn std::error::Error, "unable to mark node not ready");
    }
    Ok(())
}

/// Removes pod addresses a previous run may have left on `lo`.
async fn clear_pod_addresses(config: &KubeletConfig) {
    if config.pod_cidr.is_loopback() {
        return;
    }
    match network::remove_all_in(&config.pod_cidr).await {
        Ok(0) => {}
        Ok(removed) => info!(removed, "removed stale pod addresses from lo"),
        Err(error) => warn!(error = &error as &dyn std::error::Error, "unable to remove stale pod addresses"),
    }
}

struct Dispatcher {
    client: Client,
    config: Arc<KubeletConfig>,
    ipam: Arc<Mutex<PodIpAllocator>>,
    workers: HashMap<String, PodWorker>,
    finished: (mpsc::UnboundedSender<String>, mpsc::UnboundedReceiver<String>),
    listed: HashSet<String>,
}

fn deletion_grace(pod: &Pod) -> Duration {
    let seconds = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(30);
    Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

impl Dispatcher {
    fn new(client: Client, config: Arc<KubeletConfig>) -> Self {
        let ipam = Arc::new(Mutex::new(PodIpAllocator::new(config.pod_cidr)));
        Self {
            client,
            config,
            ipam,
            workers: HashMap::new(),
            finished: mpsc::unbounded_channel(),
            listed: HashSet::new(),
        }
    }

    async fn handle(&mut self, event: Event<Pod>) {
        match event {
            Event::Init => self.listed.clear(),
            Event::InitApply(pod) => {
                if let Some(uid) = pod.metadata.uid.clone() {
                    self.listed.insert(uid);
                }
                self.apply(pod).await;
            }
            Event::InitDone => {
                // Pods deleted while the watch was down.
                let gone: Vec<String> =
                    self.workers.keys().filter(|uid| !self.listed.contains(*uid)).cloned().collect();
                for uid in gone {
                    if let Some(worker) = self.workers.get(&uid) {
                        worker.stop(StopReason::Shutdown { grace: Duration::from_secs(2) });
                    }
                }
            }
            Event::Apply(pod) => self.apply(pod).await,
            Event::Delete(pod) => {
                if let Some(worker) = pod.metadata.uid.as_ref().and_then(|uid| self.workers.get(uid)) {
                    // Gone from the API already (force deletion): no grace left to honour.
                    worker.stop(StopReason::Shutdown { grace: Duration::ZERO });
                }
            }
        }
    }

    async fn apply(&mut self, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let deleting = pod.metadata.deletion_timestamp.is_some();
        match self.workers.get(&uid) {
            Some(worker) if deleting => worker.stop(StopReason::Deleted { grace: deletion_grace(&pod) }),
            Some(_) => {}
            None if deleting => pod::delete_for_good(&self.client, &pod).await,
            None if is_terminal(&pod) => {}
            None => {
                let worker = PodWorker::start(
                    self.client.clone(),
                    self.config.clone(),
                    self.ipam.clone(),
                    pod,
                    self.finished.0.clone(),
                );
                self.workers.insert(uid, worker);
            }
        }
    }

    async fn shutdown(self) {
        let grace = self.config.shutdown_grace;
        for worker in self.workers.values() {
            worker.stop(StopReason::Shutdown { grace });
        }
        for (_, worker) in self.workers {
            worker.join().await;
        }
    }
}
