//! Starting the operator: checks, the HTTP endpoints, leader election, and
//! the three controllers until SIGTERM or a lost lease.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::ListParams;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::utils::{Backoff, ResetTimerBackoff};
use kube::runtime::watcher::ExponentialBackoff;
use kube::runtime::{watcher, Controller};
use kube::{Api, Client};

use crate::context::{Context, Settings};
use crate::crd::{Backup, RedisCluster, Restore};
use crate::meta::CLUSTER_LABEL;
use crate::metrics::Metrics;
use crate::{backup, cluster, http, restore};

/// How the operator runs.
#[derive(Clone, Debug)]
pub struct Options {
    pub metrics_address: SocketAddr,
    pub leader_election: bool,
    pub lease_name: String,
    /// The namespace of the Lease (the operator's own).
    pub lease_namespace: String,
    /// This replica's identity in the Lease (its pod name).
    pub identity: String,
    /// Watch only this namespace; all when `None`.
    pub watch_namespace: Option<String>,
    /// Read the time from this file (tests); the system clock otherwise.
    pub clock_file: Option<std::path::PathBuf>,
    pub settings: Settings,
}

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("unable to build a Kubernetes client from the kubeconfig or the in-cluster service account")]
    Client(#[source] kube::Error),
    #[error("the ferrocache CRDs are not installed or not readable ({kind}): apply them with `kubectl apply --server-side -f crds/`")]
    CrdsMissing {
        kind: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("unable to serve metrics and health on {address}")]
    Http {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("leader election failed")]
    LeaderElection(#[source] kube_lease_manager::LeaseManagerError),
    #[error("lost the leader lease; exiting so another replica takes over")]
    LostLease,
}

/// Runs the operator until `shutdown` resolves.
pub async fn run(options: Options, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), RunError> {
    let client = Client::try_default().await.map_err(RunError::Client)?;
    check_crds(&client, options.watch_namespace.as_deref()).await?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(options.metrics_address)
        .await
        .map_err(|source| RunError::Http { address: options.metrics_address, source })?;
    tokio::spawn(http::serve(listener, Arc::clone(&metrics), Arc::clone(&ready)));
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));

    let mut lease = None;
    if options.leader_election {
        let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &options.lease_name)
            .with_namespace(&options.lease_namespace)
            .with_identity(&options.identity)
            .with_duration(15)
            .with_grace(5)
            .build()
            .await
            .map_err(RunError::LeaderElection)?;
        let (mut leading, task) = manager.watch().await;
        tracing::info!(lease = %options.lease_name, identity = %options.identity, "waiting to become the leader");
        // A standby replica is healthy and ready: it is doing its job.
        ready.store(true, Ordering::Release);
        tokio::select! {
            _ = shutdown.clone() => return Ok(()),
            _ = async { while !*leading.borrow_and_update() { if leading.changed().await.is_err() { break; } } } => {}
        }
        tracing::info!("became the leader");
        lease = Some((leading, task));
    }

    let reporter = Reporter { controller: crate::meta::MANAGER.to_owned(), instance: Some(options.identity.clone()) };
    let clock: Arc<dyn crate::context::Clock> = match &options.clock_file {
        Some(path) => Arc::new(crate::context::FileClock { path: path.clone() }),
        None => Arc::new(crate::context::SystemClock),
    };
    let context =
        Arc::new(Context::new(client.clone(), reporter, Arc::clone(&metrics), options.settings.clone(), clock));
    let controllers = run_controllers(client, options.watch_namespace.clone(), context, shutdown.clone());
    ready.store(true, Ordering::Release);
    match lease {
        None => {
            controllers.await;
            Ok(())
        }
        Some((mut leading, task)) => {
            tokio::pin!(controllers);
            let lost = async {
                while *leading.borrow_and_update() {
                    if leading.changed().await.is_err() {
                        break;
                    }
                }
            };
            let result = tokio::select! {
                _ = &mut controllers => Ok(()),
                _ = lost => Err(RunError::LostLease),
            };
            drop(leading);
            // Dropping the receiver ends the manager's task, which releases the lease.
            let _ = task.await;
            result
        }
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

async fn check_crds(client: &Client, namespace: Option<&str>) -> Result<(), RunError> {
    let probe = ListParams::default().limit(1);
    api::<RedisCluster>(client, namespace)
        .list(&probe)
        .await
        .map_err(|source| RunError::CrdsMissing { kind: "RedisCluster", source })?;
    api::<Backup>(client, namespace)
        .list(&probe)
        .await
        .map_err(|source| RunError::CrdsMissing { kind: "Backup", source })?;
    api::<Restore>(client, namespace)
        .list(&probe)
        .await
        .map_err(|source| RunError::CrdsMissing { kind: "Restore", source })?;
    Ok(())
}

/// The longest pause of a controller's watches after errors, before jitter.
const LONGEST_WATCH_PAUSE: std::time::Duration = std::time::Duration::from_secs(3);

/// How a controller's watches pause after errors. kube's default (0.8 s
/// doubling to 30 s, plus jitter, reset only after 2 quiet minutes) is one
/// backoff shared by all of a controller's watches, and an API server
/// restart makes every one of them fail several times (refused
/// connections, then `410 Gone` on resuming, then `404` until the custom
/// resources are served again): that paused the watches for 17-44 s at a
/// time, so a RedisCluster created just before the restart went unseen for
/// minutes. The pauses stay short here: a restart is over in seconds, and
/// one operator's few watches cost the API server little.
fn watch_backoff() -> impl Backoff {
    let exponential = backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(250))
        .with_max_delay(LONGEST_WATCH_PAUSE)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times();
    ResetTimerBackoff::new(ExponentialBackoff::from(exponential), std::time::Duration::from_secs(30))
}

async fn run_controllers(
    client: Client,
    namespace: Option<String>,
    context: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static,
) {
    let namespace = namespace.as_deref();
    let owned = watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={}", crate::meta::MANAGER));
    let clusters = Controller::new(api::<RedisCluster>(&client, namespace), watcher::Config::default())
        .owns(api::<StatefulSet>(&client, namespace), owned.clone())
        .owns(api::<Service>(&client, namespace), owned.clone())
        .owns(api::<ConfigMap>(&client, namespace), owned)
        .watches(
            api::<Backup>(&client, namespace),
            watcher::Config::default().labels(CLUSTER_LABEL),
            |backup: Backup| {
                let cluster = backup.metadata.labels.as_ref()?.get(CLUSTER_LABEL)?.clone();
                Some(ObjectRef::<RedisCluster>::new(&cluster).within(backup.metadata.namespace.as_deref()?))
            },
        )
        .watches(api::<Pod>(&client, namespace), watcher::Config::default().labels(CLUSTER_LABEL), |pod: Pod| {
            let cluster = pod.metadata.labels.as_ref()?.get(CLUSTER_LABEL)?.clone();
            Some(ObjectRef::<RedisCluster>::new(&cluster).within(pod.metadata.namespace.as_deref()?))
        })
        .trigger_backoff(watch_backoff())
        .graceful_shutdown_on(shutdown.clone())
        .run(cluster::reconcile, cluster::error_policy, Arc::clone(&context))
        .for_each(|_| futures::future::ready(()));
    let backups = Controller::new(api::<Backup>(&client, namespace), watcher::Config::default())
        .trigger_backoff(watch_backoff())
        .graceful_shutdown_on(shutdown.clone())
        .run(backup::reconcile, backup::error_policy, Arc::clone(&context))
        .for_each(|_| futures::future::ready(()));
    let restores = Controller::new(api::<Restore>(&client, namespace), watcher::Config::default())
        .watches(api::<RedisCluster>(&client, namespace), watcher::Config::default(), |cluster: RedisCluster| {
            let restore = cluster.metadata.labels.as_ref()?.get(restore::RESTORED_BY_LABEL)?.clone();
            Some(ObjectRef::<Restore>::new(&restore).within(cluster.metadata.namespace.as_deref()?))
        })
        .trigger_backoff(watch_backoff())
        .graceful_shutdown_on(shutdown)
        .run(restore::reconcile, restore::error_policy, context)
        .for_each(|_| futures::future::ready(()));
    tracing::info!(namespace = namespace.unwrap_or("(all)"), "controllers running");
    futures::join!(clusters, backups, restores);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_never_pause_longer_than_twice_the_longest_pause_whatever_the_errors() {
        let mut backoff = watch_backoff();
        let pauses: Vec<_> = backoff.by_ref().take(100).collect();
        assert_eq!(pauses.len(), 100, "the watches are retried for ever");
        assert!(pauses[0] < std::time::Duration::from_millis(500), "first pause {:?}", pauses[0]);
        assert!(pauses.iter().all(|pause| *pause <= 2 * LONGEST_WATCH_PAUSE), "{pauses:?}");
        backoff.reset();
        assert!(backoff.next().is_some_and(|pause| pause < std::time::Duration::from_millis(500)));
    }
}
