//! The Node object: registration, Ready heartbeats and the node Lease.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tracing::{debug, warn};

use super::config::KubeletConfig;

/// Error of registering or updating the Node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("failed to register node {node}")]
    Register {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("unable to update status of node {node}")]
    UpdateStatus {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("unable to remove taints of node {node}")]
    RemoveTaints {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("unable to renew lease of node {node}")]
    RenewLease {
        node: String,
        #[source]
        source: kube::Error,
    },
}

/// How often the Node's conditions and Lease are renewed.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
const LEASE_NAMESPACE: &str = "kube-node-lease";
const LEASE_DURATION_SECONDS: i32 = 40;

/// The Node object registered for this stand-in.
pub fn node_object(config: &KubeletConfig) -> Node {
    let labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_owned(), config.node_name.clone()),
        ("kubernetes.io/os".to_owned(), "linux".to_owned()),
        (
            "kubernetes.io/arch".to_owned(),
            std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        ),
        ("ferrocache.io/kubelet-stand-in".to_owned(), "true".to_owned()),
    ]);
    Node {
        metadata: ObjectMeta { name: Some(config.node_name.clone()), labels: Some(labels), ..ObjectMeta::default() },
        ..Node::default()
    }
}

fn status_patch(config: &KubeletConfig, ready: bool) -> serde_json::Value {
    let now = Time(Timestamp::now());
    // Conditions hold since the stand-in started; only the heartbeat moves.
    static STARTED: std::sync::OnceLock<Timestamp> = std::sync::OnceLock::new();
    let since = if ready { Time(*STARTED.get_or_init(Timestamp::now)) } else { now.clone() };
    let capacity = BTreeMap::from([
        ("cpu".to_owned(), Quantity(config.cpu_cores.to_string())),
        ("memory".to_owned(), Quantity(format!("{}Ki", config.memory_bytes / 1024))),
        ("pods".to_owned(), Quantity(config.max_pods.to_string())),
        ("ephemeral-storage".to_owned(), Quantity("100Gi".to_owned())),
    ]);
    let condition = |type_: &str, status: bool, reason: &str, message: &str| NodeCondition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(since.clone()),
    };
    let (ready_reason, ready_message) = if ready {
        ("KubeletReady", "kubelet stand-in is posting ready status")
    } else {
        ("KubeletNotReady", "kubelet stand-in stopped")
    };
    let conditions = vec![
        condition("MemoryPressure", false, "KubeletHasSufficientMemory", "kubelet stand-in has sufficient memory"),
        condition("DiskPressure", false, "KubeletHasNoDiskPressure", "kubelet stand-in has no disk pressure"),
        condition("PIDPressure", false, "KubeletHasSufficientPID", "kubelet stand-in has sufficient PID"),
        condition("Ready", ready, ready_reason, ready_message),
    ];
    let node_info = NodeSystemInfo {
        architecture: std::env::consts::ARCH.into(),
        boot_id: String::new(),
        container_runtime_version: "process://ferrocache-kubelet".into(),
        kernel_version: String::new(),
        kube_proxy_version: String::new(),
        kubelet_version: "v1.20.2-ferrocache-stand-in".into(),
        machine_id: String::new(),
        operating_system: "linux".into(),
        os_image: "ferrocache kubelet stand-in".into(),
        system_uuid: String::new(),
        ..NodeSystemInfo::default()
    };
    serde_json::json!({
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": conditions,
            "addresses": [
                NodeAddress { type_: "InternalIP".into(), address: config.host_ip.to_string() },
                NodeAddress { type_: "Hostname".into(), address: config.node_name.clone() },
            ],
            "daemonEndpoints": NodeDaemonEndpoints { kubelet_endpoint: Some(DaemonEndpoint { port: 10250 }) },
            "nodeInfo": node_info,
        }
    })
}

/// Creates the Node if needed, marks it Ready and removes its taints (the
/// API server adds `node.kubernetes.io/not-ready` to a new Node).
pub async fn register(client: &Client, config: &KubeletConfig) -> Result<(), NodeError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = config.node_name.clone();
    match nodes.create(&PostParams::default(), &node_object(config)).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {
            debug!(%node, "node already registered")
        }
        Err(source) => return Err(NodeError::Register { node, source }),
    }
    heartbeat(client, config, true).await
}

/// Renews the Ready condition, clears taints and renews the Lease.
pub async fn heartbeat(client: &Client, config: &KubeletConfig, ready: bool) -> Result<(), NodeError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = config.node_name.clone();
    nodes
        .patch_status(&node, &PatchParams::default(), &Patch::Merge(status_patch(config, ready)))
        .await
        .map_err(|source| NodeError::UpdateStatus { node: node.clone(), source })?;
    if ready {
        let current =
            nodes.get(&node).await.map_err(|source| NodeError::RemoveTaints { node: node.clone(), source })?;
        if current.spec.as_ref().and_then(|s| s.taints.as_ref()).is_some_and(|t| !t.is_empty()) {
            let patch = serde_json::json!({ "spec": { "taints": null } });
            nodes
                .patch(&node, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map_err(|source| NodeError::RemoveTaints { node: node.clone(), source })?;
        }
        renew_lease(client, config).await?;
    }
    Ok(())
}

async fn renew_lease(client: &Client, config: &KubeletConfig) -> Result<(), NodeError> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let node = config.node_name.clone();
    let spec = LeaseSpec {
        holder_identity: Some(node.clone()),
        lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
        renew_time: Some(MicroTime(Timestamp::now())),
        ..LeaseSpec::default()
    };
    let patch = serde_json::json!({ "spec": spec });
    match leases.patch(&node, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            let lease =
                Lease { metadata: ObjectMeta { name: Some(node.clone()), ..ObjectMeta::default() }, spec: Some(spec) };
            match leases.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
                Err(source) => Err(NodeError::RenewLease { node, source }),
            }
        }
        Err(source) => Err(NodeError::RenewLease { node, source }),
    }
}

/// Heartbeats until cancelled; failures are logged and retried.
pub async fn heartbeat_forever(client: Client, config: std::sync::Arc<KubeletConfig>) {
    loop {
        tokio::time::sleep(HEARTBEAT_INTERVAL).await;
        if let Err(error) = heartbeat(&client, &config, true).await {
            warn!(error = &error as &dyn std::error::Error, "node heartbeat failed");
        }
    }
}
