//! One pod bound to the node: its directory, IP, volumes, containers and status.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, PodCondition, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client};
use tokio::sync::{watch, Notify};
use tracing::{debug, info, warn};

use super::config::KubeletConfig;
use super::container::{self, ContainerOutcome};
use super::env::{self, EnvError, EnvSources, PodRuntimeInfo};
use super::image::{ImageDirs, ImageError};
use super::ipam::PodIpAllocator;
use super::network;
use super::process::ProcessSpec;
use super::status::{self, ContainerRuntimeState, PodRuntimeState};
use super::termination::{self, TerminationSource};
use super::volumes::{self, VolumeError, VolumeRoots};

/// `PATH` of a container whose env does not set one (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Error of preparing a container's process.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("unable to prepare volumes")]
    Volumes(#[source] VolumeError),
    #[error("unable to mount volumes of the container")]
    Mounts(#[source] VolumeError),
    #[error("unable to read {kind} {name} for the container env")]
    FetchEnvSource {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("unable to resolve the container env")]
    Env(#[source] EnvError),
    #[error("unable to find the container executable")]
    Image(#[source] ImageError),
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Slot::Init(index) => write!(f, "init container {index}"),
            Slot::App(index) => write!(f, "container {index}"),
        }
    }
}

/// Which container of the pod a state update is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Init(usize),
    App(usize),
}

/// What containers of a pod share: the pod, its placement and observed state.
pub struct PodContext {
    client: Client,
    config: Arc<KubeletConfig>,
    pod: Pod,
    key: String,
    runtime: PodRuntimeInfo,
    pod_dir: PathBuf,
    volumes: Mutex<Option<HashMap<String, PathBuf>>>,
    state: Mutex<PodRuntimeState>,
    changed: Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep going.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl PodContext {
    /// `namespace/name` of the pod, for logs.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn pod_ip(&self) -> String {
        self.runtime.pod_ip.clone()
    }

    pub fn images(&self) -> &ImageDirs {
        &self.config.images
    }

    pub fn restart_policy(&self) -> String {
        self.pod.spec.as_ref().and_then(|s| s.restart_policy.clone()).unwrap_or_else(|| "Always".into())
    }

    /// The pod's `terminationGracePeriodSeconds` (30 s by default).
    pub fn termination_grace(&self) -> Duration {
        let seconds = self.pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30);
        Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
    }

    /// Changes the observed state of a container and wakes the status writer.
    pub fn update(&self, slot: Slot, change: impl FnOnce(&mut ContainerRuntimeState)) {
        {
            let mut state = lock(&self.state);
            let container = match slot {
                Slot::Init(index) => state.init_containers.get_mut(index),
                Slot::App(index) => state.containers.get_mut(index),
            };
            if let Some(container) = container {
                change(container);
            }
        }
        self.changed.notify_one();
    }

    pub fn is_started(&self, slot: Slot) -> bool {
        let state = lock(&self.state);
        match slot {
            Slot::Init(index) => state.init_containers.get(index),
            Slot::App(index) => state.containers.get(index),
        }
        .is_some_and(|c| c.started)
    }

    fn snapshot(&self) -> PodRuntimeState {
        lock(&self.state).clone()
    }

    fn pid_file(&self, container: &str) -> PathBuf {
        self.pod_dir.join(format!("{container}.pid"))
    }

    /// Records the process group of a container in `<pod dir>/<container>.pid`
    /// (read by tests and by `down.sh`).
    pub fn write_pid_file(&self, container: &str, pid: u32) {
        let path = self.pid_file(container);
        if let Err(error) = std::fs::write(&path, format!("{pid}\n")) {
            warn!(path = %path.display(), error = &error as &dyn std::error::Error, "unable to write pid file");
        }
    }

    pub fn remove_pid_file(&self, container: &str) {
        // Missing already is fine.
        let _ = std::fs::remove_file(self.pid_file(container));
    }

    async fn ensure_volumes(&self) -> Result<HashMap<String, PathBuf>, VolumeError> {
        if let Some(volumes) = lock(&self.volumes).clone() {
            return Ok(volumes);
        }
        let roots = VolumeRoots { pod_dir: self.pod_dir.clone(), claims_dir: self.config.run_dir.join("claims") };
        let volumes = volumes::prepare_volumes(&self.client, &self.pod, &roots, &self.runtime).await?;
        *lock(&self.volumes) = Some(volumes.clone());
        Ok(volumes)
    }

    async fn env_sources(&self, container: &Container) -> Result<EnvSources, PrepareError> {
        let namespace = self.pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let (secret_names, config_map_names) = env::referenced_sources(container);
        let mut sources = EnvSources::default();
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        for name in secret_names {
            let secret = secrets.get_opt(&name).await.map_err(|source| PrepareError::FetchEnvSource {
                kind: "Secret",
                name: name.clone(),
                source,
            })?;
            let data = secret.map(|s| {
                s.data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                    .collect()
            });
            sources.secrets.insert(name, data);
        }
        let config_maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), &namespace);
        for name in config_map_names {
            let config_map = config_maps.get_opt(&name).await.map_err(|source| PrepareError::FetchEnvSource {
                kind: "ConfigMap",
                name: name.clone(),
                source,
            })?;
            sources.config_maps.insert(name, config_map.map(|cm| cm.data.unwrap_or_default()));
        }
        Ok(sources)
    }

    /// Everything needed to start `container` now: env, command, mounts, and
    /// a fresh termination message file.
    pub async fn prepare_process(&self, container: &Container) -> Result<PreparedProcess, PrepareError> {
        let volumes = self.ensure_volumes().await.map_err(PrepareError::Volumes)?;
        let sources = self.env_sources(container).await?;
        let mut environment =
            env::resolve_env(&self.pod, container, &self.runtime, &sources).map_err(PrepareError::Env)?;
        // What an image and the runtime add underneath the pod's env.
        let hostname = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.hostname.clone())
            .or_else(|| self.pod.metadata.name.clone())
            .unwrap_or_default();
        let mut full = env::Environment::default();
        full.set("PATH", DEFAULT_PATH);
        full.set("HOSTNAME", hostname);
        full.set("HOME", self.pod_dir.join("home").display().to_string());
        for (name, value) in environment.iter() {
            full.set(name, value);
        }
        environment = full;

        let command: Vec<String> = container.command.iter().flatten().map(|c| environment.expand(c)).collect();
        let args: Vec<String> = container.args.iter().flatten().map(|a| environment.expand(a)).collect();
        let path = environment.get("PATH").unwrap_or(DEFAULT_PATH).to_owned();
        let executable = self
            .config
            .images
            .resolve(container.image.as_deref().unwrap_or_default(), &command, &args, &path)
            .map_err(PrepareError::Image)?;
        let mut mounts = volumes::container_mounts(container, &self.pod, &volumes).map_err(PrepareError::Mounts)?;
        let termination = termination::prepare(container, &self.pod_dir, &mounts, self.config.private_dev);
        // Last: the file may lie inside a volume.
        mounts.extend(termination.mount);
        let working_dir = container
            .working_dir
            .as_ref()
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| self.pod_dir.join("home"));
        for dir in [&working_dir, &self.pod_dir.join("home")] {
            if let Err(error) = std::fs::create_dir_all(dir) {
                warn!(path = %dir.display(), error = &error as &dyn std::error::Error, "unable to create directory");
            }
        }
        let process = ProcessSpec {
            program: executable.program,
            args: executable.args,
            env: environment.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
            working_dir,
            log_file: Some(self.pod_dir.join(format!("{}.log", container.name))),
            mounts,
            dev_overlay: termination.dev_overlay,
            join_mounts_of: None,
        };
        Ok(PreparedProcess { process, termination: termination.source })
    }
}

/// A container process ready to start, and where its termination message will come from.
pub struct PreparedProcess {
    pub process: ProcessSpec,
    pub termination: TerminationSource,
}

/// Why a pod worker is asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The pod is being deleted: stop within `grace`, then delete it for good.
    Deleted { grace: Duration },
    /// The stand-in is shutting down: stop within `grace`, leave the pod object.
    Shutdown { grace: Duration },
}

/// Handle the dispatcher keeps for a running pod worker.
pub struct PodWorker {
    stop: watch::Sender<Option<StopReason>>,
    task: tokio::task::JoinHandle<()>,
}

impl PodWorker {
    /// Starts a worker for `pod`, which must be bound to this node.
    pub fn start(
        client: Client,
        config: Arc<KubeletConfig>,
        ipam: Arc<Mutex<PodIpAllocator>>,
        pod: Pod,
        finished: tokio::sync::mpsc::UnboundedSender<String>,
    ) -> Self {
        let (stop, stop_receiver) = watch::channel(None);
        let task = tokio::spawn(async move {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            run_pod(client, config, ipam, pod, stop_receiver).await;
            // The dispatcher may be gone during shutdown.
            let _ = finished.send(uid);
        });
        Self { stop, task }
    }

    /// Asks the worker to stop; the first request wins.
    pub fn stop(&self, reason: StopReason) {
        self.stop.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    pub async fn join(self) {
        if let Err(error) = self.task.await {
            warn!(error = &error as &dyn std::error::Error, "pod worker panicked");
        }
    }
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The pod's directory under the run dir: `<run>/pods/<namespace>_<name>`.
pub fn pod_dir(run_dir: &Path, pod: &Pod) -> PathBuf {
    run_dir.join("pods").join(format!(
        "{}_{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default()
    ))
}

fn allocate_ip(ipam: &Mutex<PodIpAllocator>, pod: &Pod) -> Option<Ipv4Addr> {
    let mut ipam = lock(ipam);
    let previous = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).and_then(|ip| ip.parse::<Ipv4Addr>().ok());
    if let Some(previous) = previous {
        if ipam.reserve(previous) {
            return Some(previous);
        }
    }
    match ipam.allocate() {
        Ok(ip) => Some(ip),
        Err(error) => {
            warn!(error = &error as &dyn std::error::Error, "unable to allocate a pod IP");
            None
        }
    }
}

async fn run_pod(
    client: Client,
    config: Arc<KubeletConfig>,
    ipam: Arc<Mutex<PodIpAllocator>>,
    pod: Pod,
    mut stop: watch::Receiver<Option<StopReason>>,
) {
    let key = pod_key(&pod);
    let spec = pod.spec.clone().unwrap_or_default();
    let host_network = spec.host_network == Some(true);
    let allocated = if host_network { None } else { allocate_ip(&ipam, &pod) };
    let Some(pod_ip) = (if host_network { Some(config.host_ip) } else { allocated }) else {
        return;
    };
    let add_address = allocated.filter(|_| !config.pod_cidr.is_loopback());
    if let Some(ip) = add_address {
        if let Err(error) = network::add_address(ip).await {
            warn!(pod = %key, %ip, error = &error as &dyn std::error::Error, "unable to add the pod IP to lo; the pod's processes cannot bind to it");
        }
    }
    let dir = pod_dir(&config.run_dir, &pod);
    if let Err(error) = std::fs::create_dir_all(dir.join("home")) {
        warn!(pod = %key, error = &error as &dyn std::error::Error, "unable to create pod directory");
    }
    info!(pod = %key, %pod_ip, dir = %dir.display(), "starting pod");

    let state = PodRuntimeState {
        restart_policy: spec.restart_policy.clone().unwrap_or_else(|| "Always".into()),
        init_containers: spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| ContainerRuntimeState::new(&c.name, c.image.as_deref().unwrap_or_default()))
            .collect(),
        containers: spec
            .containers
            .iter()
            .map(|c| ContainerRuntimeState::new(&c.name, c.image.as_deref().unwrap_or_default()))
            .collect(),
        pod_ip: Some(pod_ip.to_string()),
        host_ip: config.host_ip.to_string(),
        start_time: pod.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0).unwrap_or_else(Timestamp::now),
    };
    let runtime = PodRuntimeInfo {
        pod_ip: pod_ip.to_string(),
        host_ip: config.host_ip.to_string(),
        node_name: config.node_name.clone(),
        api_host: config.api_host.clone(),
        api_port: config.api_port,
        node_cpu_cores: config.cpu_cores,
        node_memory_bytes: config.memory_bytes,
    };
    let initial_conditions = pod.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    let context = Arc::new(PodContext {
        client: client.clone(),
        config: config.clone(),
        key: key.clone(),
        runtime,
        pod_dir: dir.clone(),
        volumes: Mutex::new(None),
        state: Mutex::new(state),
        changed: Notify::new(),
        pod: pod.clone(),
    });

    // Status goes out first, so `status.podIP` is set before any container
    // starts (for tools that read it from the API rather than the env).
    let writer = StatusWriter::new(client.clone(), &pod, initial_conditions);
    let writer_task = tokio::spawn(writer.clone().run(context.clone()));
    writer.write(&context).await;

    // Containers see a stop as Some(grace).
    let (container_stop, container_stop_receiver) = watch::channel::<Option<Duration>>(None);
    let containers = {
        let context = context.clone();
        let init_containers = spec.init_containers.clone().unwrap_or_default();
        let app_containers = spec.containers.clone();
        let stop = container_stop_receiver.clone();
        tokio::spawn(async move {
            for (index, container) in init_containers.into_iter().enumerate() {
                match container::run(context.clone(), Slot::Init(index), container, stop.clone()).await {
                    ContainerOutcome::Finished { succeeded: true } => {}
                    ContainerOutcome::Finished { succeeded: false } | ContainerOutcome::Stopped => return,
                }
            }
            let tasks: Vec<_> = app_containers
                .into_iter()
                .enumerate()
                .map(|(index, container)| {
                    tokio::spawn(container::run(context.clone(), Slot::App(index), container, stop.clone()))
                })
                .collect();
            for task in tasks {
                if let Err(error) = task.await {
                    warn!(error = &error as &dyn std::error::Error, "container task panicked");
                }
            }
        })
    };

    // Wait for a stop request; containers that finish for good just stay finished.
    let reason = loop {
        if let Some(reason) = *stop.borrow_and_update() {
            break reason;
        }
        if stop.changed().await.is_err() {
            break StopReason::Shutdown { grace: Duration::ZERO };
        }
    };
    let grace = match reason {
        StopReason::Deleted { grace } | StopReason::Shutdown { grace } => grace,
    };
    info!(pod = %key, ?reason, "stopping pod");
    container_stop.send_replace(Some(grace));
    if let Err(error) = containers.await {
        warn!(pod = %key, error = &error as &dyn std::error::Error, "container supervisor panicked");
    }
    writer_task.abort();

    if let Some(ip) = add_address {
        if let Err(error) = network::remove_address(ip).await {
            warn!(pod = %key, %ip, error = &error as &dyn std::error::Error, "unable to remove the pod IP from lo");
        }
    }
    if let Some(ip) = allocated {
        lock(&ipam).release(ip);
    }
    // Volumes and what containers wrote to their private /dev.
    for private in [dir.join("volumes"), dir.join("dev")] {
        if private.exists() {
            if let Err(error) = std::fs::remove_dir_all(&private) {
                warn!(pod = %key, path = %private.display(), error = &error as &dyn std::error::Error, "unable to remove pod files");
            }
        }
    }
    if let StopReason::Deleted { .. } = reason {
        writer.write(&context).await;
        delete_for_good(&client, &pod).await;
    }
    info!(pod = %key, "pod stopped");
}

/// Deletes a pod whose containers are gone, as the kubelet does once a
/// graceful deletion has been carried out (grace period 0, same UID).
pub async fn delete_for_good(client: &Client, pod: &Pod) {
    let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions { uid: pod.metadata.uid.clone(), resource_version: None }),
        ..DeleteParams::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => debug!(pod = %namespace, %name, "pod deleted"),
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
        Err(error) => {
            warn!(pod = %name, error = &error as &dyn std::error::Error, "unable to delete pod")
        }
    }
}

/// Writes the pod status whenever the observed state changes.
#[derive(Clone)]
struct StatusWriter {
    api: Api<Pod>,
    name: String,
    last: Arc<tokio::sync::Mutex<(Vec<PodCondition>, Option<serde_json::Value>)>>,
}

impl StatusWriter {
    fn new(client: Client, pod: &Pod, conditions: Vec<PodCondition>) -> Self {
        let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        Self {
            api: Api::namespaced(client, &namespace),
            name: pod.metadata.name.clone().unwrap_or_default(),
            last: Arc::new(tokio::sync::Mutex::new((conditions, None))),
        }
    }

    async fn run(self, context: Arc<PodContext>) {
        loop {
            tokio::select! {
                () = context.changed.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(10)) => {}
            }
            // Let a burst of changes settle into one patch.
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.write(&context).await;
        }
    }

    async fn write(&self, context: &PodContext) {
        let mut last = self.last.lock().await;
        let state = context.snapshot();
        let mut status = status::pod_status(&state, &last.0, Timestamp::now());
        let body = match serde_json::to_value(&status) {
            Ok(body) => body,
            Err(error) => {
                warn!(error = &error as &dyn std::error::Error, "unable to serialise pod status");
                return;
            }
        };
        if last.1.as_ref() == Some(&body) {
            return;
        }
        let patch = serde_json::json!({ "status": body });
        match self.api.patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {
                last.0 = status.conditions.take().unwrap_or_default();
                last.1 = Some(body);
            }
            Err(kube::Error::Api(response)) if response.code == 404 => {}
            Err(error) => {
                warn!(pod = %context.key(), error = &error as &dyn std::error::Error, "unable to write pod status");
                // Retried on the next change or tick.
                context.changed.notify_one();
            }
        }
    }
}
