//! The status of a cluster, computed purely from what a reconcile observed.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::condition::{self, Observed, State};
use crate::crd::NodeStatus;

/// One node pod as observed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodObservation {
    pub name: String,
    pub address: Option<String>,
    pub ready: bool,
    /// Whether the pod runs the StatefulSet's current template.
    pub updated: bool,
    /// Why the node keeps failing, when it does (exit code and its last words).
    pub crash: Option<String>,
}

/// What a reconcile saw of a cluster's children.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    pub desired_nodes: i32,
    pub pods: Vec<PodObservation>,
    /// The StatefulSet controller has not caught up with the latest template yet.
    pub rollout_pending: bool,
    /// Settings applied to running nodes by CONFIG SET that are not in effect yet.
    pub settings_pending: Option<String>,
    /// Why the cluster waits before its nodes can start (a Backup to restore not ready yet).
    pub waiting: Option<String>,
}

/// Restarts after which a failing node is reported as failed rather than starting.
const CRASHES_BEFORE_FAILED: i32 = 2;

/// Observes a node pod of `set`.
pub fn observe_pod(pod: &Pod, set: Option<&StatefulSet>) -> PodObservation {
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let update_revision = set.and_then(|set| set.status.as_ref()?.update_revision.clone());
    let revision = pod.metadata.labels.as_ref().and_then(|labels| labels.get("controller-revision-hash").cloned());
    let updated = match (update_revision, revision) {
        (Some(wanted), Some(actual)) => wanted == actual,
        _ => true,
    };
    let crash = status.and_then(|status| status.container_statuses.as_ref()).and_then(|containers| {
        containers.iter().find_map(|container| {
            let last = container.last_state.as_ref()?.terminated.as_ref()?;
            (container.restart_count >= CRASHES_BEFORE_FAILED && last.exit_code != 0 && !container.ready).then(|| {
                let words = last.message.as_deref().map(str::trim).filter(|m| !m.is_empty());
                let words = words.map(|m| m.lines().last().unwrap_or(m).to_owned());
                match words {
                    Some(words) => {
                        format!("exits with code {} ({} restarts): {words}", last.exit_code, container.restart_count)
                    }
                    None => format!("exits with code {} ({} restarts)", last.exit_code, container.restart_count),
                }
            })
        })
    });
    PodObservation {
        name: pod.metadata.name.clone().unwrap_or_default(),
        address: status.and_then(|status| status.pod_ip.clone()),
        ready,
        updated,
        crash,
    }
}

/// The conditions of a cluster whose spec is valid, given what was observed.
pub fn conditions(previous: &[Condition], observation: &Observation) -> [Observed; 2] {
    let ready = observation.pods.iter().filter(|pod| pod.ready).count() as i32;
    let all_ready = ready >= observation.desired_nodes && observation.desired_nodes > 0;
    let was_available = previous_state(previous).is_some_and(|state| state != State::Creating)
        || condition::is_true(previous, condition::AVAILABLE);
    let available = all_ready;
    if let Some(crash) = observation.pods.iter().find_map(|pod| pod.crash.as_ref().map(|crash| (pod, crash))) {
        let message = format!("node {} {}", crash.0.name, crash.1);
        return condition::for_state(State::Failed, available, "NodeFailing", &message);
    }
    if let Some(waiting) = &observation.waiting {
        let state = if was_available { State::Modifying } else { State::Creating };
        return condition::for_state(state, available, "Waiting", waiting);
    }
    let rolling = observation.rollout_pending || observation.pods.iter().any(|pod| !pod.updated);
    if all_ready && !rolling {
        if let Some(pending) = &observation.settings_pending {
            return condition::for_state(State::Modifying, true, "ApplyingSettings", pending);
        }
        let message = format!("{ready}/{} nodes ready", observation.desired_nodes);
        return condition::for_state(State::Available, true, "NodesReady", &message);
    }
    let message = format!("{ready}/{} nodes ready", observation.desired_nodes);
    if was_available {
        condition::for_state(
            State::Modifying,
            available,
            if available { "NodesReady" } else { "NodesNotReady" },
            &format!("rolling out a change: {message}"),
        )
    } else {
        condition::for_state(State::Creating, false, "NodesNotReady", &format!("starting: {message}"))
    }
}

fn previous_state(previous: &[Condition]) -> Option<State> {
    State::of(previous)
}

/// The `nodes` and `readyNodes` of the status.
pub fn nodes(observation: &Observation) -> (Vec<NodeStatus>, String) {
    let nodes: Vec<NodeStatus> = observation
        .pods
        .iter()
        .map(|pod| NodeStatus { pod: pod.name.clone(), address: pod.address.clone(), ready: pod.ready })
        .collect();
    let ready = nodes.iter().filter(|node| node.ready).count();
    (nodes, format!("{ready}/{}", observation.desired_nodes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn pod(ready: bool) -> PodObservation {
        PodObservation { name: "cache-0".into(), address: Some("10.0.0.1".into()), ready, updated: true, crash: None }
    }

    fn observation(pods: Vec<PodObservation>) -> Observation {
        Observation { desired_nodes: 1, pods, ..Observation::default() }
    }

    fn after(previous: &[Condition], observed: &[Observed]) -> Vec<Condition> {
        condition::merge(previous, observed, Some(1), Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn a_new_cluster_is_creating_until_its_node_is_ready_then_available() {
        let creating = after(&[], &conditions(&[], &observation(vec![pod(false)])));
        assert_eq!(State::of(&creating), Some(State::Creating));
        assert!(!condition::is_true(&creating, condition::AVAILABLE));
        let available = after(&creating, &conditions(&creating, &observation(vec![pod(true)])));
        assert_eq!(State::of(&available), Some(State::Available));
        assert!(condition::is_true(&available, condition::AVAILABLE));
    }

    #[test]
    fn a_change_rolling_out_on_an_available_cluster_is_modifying() {
        let available = after(&[], &conditions(&[], &observation(vec![pod(true)])));
        let mut stale = pod(true);
        stale.updated = false;
        let modifying = after(&available, &conditions(&available, &observation(vec![stale])));
        assert_eq!(State::of(&modifying), Some(State::Modifying));
        let restarting = after(&modifying, &conditions(&modifying, &observation(vec![pod(false)])));
        assert_eq!(State::of(&restarting), Some(State::Modifying), "a restart during a change is not creation");
        assert!(!condition::is_true(&restarting, condition::AVAILABLE));
    }

    #[test]
    fn settings_being_applied_keep_the_cluster_available_and_modifying() {
        let mut seen = observation(vec![pod(true)]);
        seen.settings_pending = Some("maxmemory 1 -> 2".into());
        let modifying = after(&[], &conditions(&[], &seen));
        assert_eq!(State::of(&modifying), Some(State::Modifying));
        assert!(condition::is_true(&modifying, condition::AVAILABLE));
    }

    #[test]
    fn a_crashing_node_fails_the_cluster_with_its_last_words() {
        let mut crashing = pod(false);
        crashing.crash = Some("exits with code 1 (3 restarts): preload failed: no such key".into());
        let failed = after(&[], &conditions(&[], &observation(vec![crashing])));
        assert_eq!(State::of(&failed), Some(State::Failed));
        let message = &condition::find(&failed, condition::AVAILABLE).unwrap().message;
        assert!(message.contains("cache-0") && message.contains("no such key"), "{message}");
    }
}
