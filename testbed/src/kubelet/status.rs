//! Pod status as the kubelet computes it, from what the stand-in observes.
//!
//! Pure functions: [`pod_status`] turns the observed container states into
//! the `status` the API server gets (phase, conditions, container statuses),
//! keeping `lastTransitionTime` of conditions whose status did not change.
//! The phase follows the kubelet's `getPhase`.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
    PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// A finished run of a container, as the kubelet reports it: `reason` is
/// `Completed` for exit code 0 and `Error` otherwise (`StartError` when the
/// process could not start), a process killed by a signal exits with
/// 128 + the signal (the kubelet never sets `signal`), and `message` is the
/// termination message (see [`super::termination`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terminated {
    pub exit_code: i32,
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Timestamp,
    pub container_id: Option<String>,
}

/// What a container is doing now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    Waiting { reason: String, message: Option<String> },
    Running { started_at: Timestamp },
    Terminated(Terminated),
}

/// The observed state of one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRuntimeState {
    pub name: String,
    pub image: String,
    pub phase: Phase,
    pub last_terminated: Option<Terminated>,
    pub restart_count: i32,
    /// Readiness as the readiness probe last decided (true without a probe).
    pub ready: bool,
    /// Whether the startup probe has passed (true without a probe).
    pub started: bool,
    pub container_id: Option<String>,
}

impl ContainerRuntimeState {
    /// A container that has not been started yet.
    pub fn new(name: &str, image: &str) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            phase: Phase::Waiting { reason: "ContainerCreating".into(), message: None },
            last_terminated: None,
            restart_count: 0,
            ready: false,
            started: false,
            container_id: None,
        }
    }

    fn succeeded(&self) -> bool {
        matches!(&self.phase, Phase::Terminated(t) if t.exit_code == 0)
    }
}

/// The observed state of a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRuntimeState {
    pub restart_policy: String,
    pub init_containers: Vec<ContainerRuntimeState>,
    pub containers: Vec<ContainerRuntimeState>,
    pub pod_ip: Option<String>,
    pub host_ip: String,
    pub start_time: Timestamp,
}

/// The pod phase, as the kubelet's `getPhase` computes it.
pub fn phase(state: &PodRuntimeState) -> &'static str {
    let init_failed =
        state.init_containers.iter().any(|c| matches!(&c.phase, Phase::Terminated(t) if t.exit_code != 0));
    if init_failed && state.restart_policy == "Never" {
        return "Failed";
    }
    let pending_initialization = state.init_containers.iter().any(|c| !c.succeeded());

    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for container in &state.containers {
        match &container.phase {
            Phase::Running { .. } => running += 1,
            Phase::Terminated(t) => {
                stopped += 1;
                if t.exit_code == 0 {
                    succeeded += 1;
                }
            }
            Phase::Waiting { .. } if container.last_terminated.is_some() => stopped += 1,
            Phase::Waiting { .. } => waiting += 1,
        }
    }
    if pending_initialization || waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        if state.restart_policy == "Always" {
            "Running"
        } else if stopped == succeeded {
            "Succeeded"
        } else if state.restart_policy == "Never" {
            "Failed"
        } else {
            "Running"
        }
    } else {
        "Pending"
    }
}

fn time(timestamp: Timestamp) -> Time {
    Time(timestamp)
}

fn terminated_state(terminated: &Terminated) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: terminated.exit_code,
        signal: None,
        reason: Some(terminated.reason.clone()),
        message: terminated.message.clone(),
        started_at: terminated.started_at.map(time),
        finished_at: Some(time(terminated.finished_at)),
        container_id: terminated.container_id.clone(),
    }
}

/// The API form of a container's state.
pub fn container_status(container: &ContainerRuntimeState) -> ContainerStatus {
    let state = match &container.phase {
        Phase::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting { reason: Some(reason.clone()), message: message.clone() }),
            ..ContainerState::default()
        },
        Phase::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning { started_at: Some(time(*started_at)) }),
            ..ContainerState::default()
        },
        Phase::Terminated(terminated) => {
            ContainerState { terminated: Some(terminated_state(terminated)), ..ContainerState::default() }
        }
    };
    let last_state = container.last_terminated.as_ref().map(|terminated| ContainerState {
        terminated: Some(terminated_state(terminated)),
        ..ContainerState::default()
    });
    let running = matches!(container.phase, Phase::Running { .. });
    ContainerStatus {
        name: container.name.clone(),
        image: container.image.clone(),
        image_id: String::new(),
        container_id: container.container_id.clone(),
        ready: running && container.started && container.ready,
        started: Some(running && container.started),
        restart_count: container.restart_count,
        state: Some(state),
        last_state: Some(last_state.unwrap_or_default()),
        ..ContainerStatus::default()
    }
}

/// Sets a condition, keeping its `lastTransitionTime` if the status is unchanged.
fn condition(
    previous: &[PodCondition],
    type_: &str,
    value: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: Timestamp,
) -> PodCondition {
    let status = if value { "True" } else { "False" };
    let transition = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| time(now));
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        reason: if value { None } else { reason.map(Into::into) },
        message: if value { None } else { message },
        last_probe_time: None,
        last_transition_time: Some(transition),
        ..PodCondition::default()
    }
}

fn names_where(containers: &[ContainerRuntimeState], predicate: impl Fn(&ContainerRuntimeState) -> bool) -> Vec<&str> {
    containers.iter().filter(|c| predicate(c)).map(|c| c.name.as_str()).collect()
}

/// The full pod status for `state`, given the conditions the pod has now.
pub fn pod_status(state: &PodRuntimeState, previous: &[PodCondition], now: Timestamp) -> PodStatus {
    let phase = phase(state);
    let uninitialized = names_where(&state.init_containers, |c| !c.succeeded());
    let statuses: Vec<ContainerStatus> = state.containers.iter().map(container_status).collect();
    let unready: Vec<&str> = statuses.iter().filter(|s| !s.ready).map(|s| s.name.as_str()).collect();
    let completed = phase == "Succeeded";
    let (ready_reason, ready_message) = if completed {
        ("PodCompleted", None)
    } else {
        ("ContainersNotReady", Some(format!("containers with unready status: [{}]", unready.join(" "))))
    };
    let ready = unready.is_empty() && !completed && phase != "Failed";

    let conditions = vec![
        condition(
            previous,
            "Initialized",
            uninitialized.is_empty(),
            Some("ContainersNotInitialized"),
            Some(format!("containers with incomplete status: [{}]", uninitialized.join(" "))),
            now,
        ),
        condition(previous, "Ready", ready, Some(ready_reason), ready_message.clone(), now),
        condition(previous, "ContainersReady", ready, Some(ready_reason), ready_message, now),
        condition(previous, "PodScheduled", true, None, None, now),
    ];

    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: Some(state.host_ip.clone()),
        pod_ip: state.pod_ip.clone(),
        pod_ips: state.pod_ip.clone().map(|ip| vec![PodIP { ip }]),
        start_time: Some(time(state.start_time)),
        qos_class: None,
        init_container_statuses: (!state.init_containers.is_empty())
            .then(|| state.init_containers.iter().map(container_status).collect()),
        container_statuses: Some(statuses),
        ..PodStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_second(1_700_000_000).expect("valid")
    }

    fn running(name: &str, ready: bool) -> ContainerRuntimeState {
        ContainerRuntimeState {
            phase: Phase::Running { started_at: now() },
            ready,
            started: true,
            ..ContainerRuntimeState::new(name, "img")
        }
    }

    fn exited(name: &str, exit_code: i32) -> ContainerRuntimeState {
        ContainerRuntimeState {
            phase: Phase::Terminated(Terminated {
                exit_code,
                reason: if exit_code == 0 { "Completed".into() } else { "Error".into() },
                message: None,
                started_at: Some(now()),
                finished_at: now(),
                container_id: None,
            }),
            ..ContainerRuntimeState::new(name, "img")
        }
    }

    fn pod(policy: &str, containers: Vec<ContainerRuntimeState>) -> PodRuntimeState {
        PodRuntimeState {
            restart_policy: policy.into(),
            init_containers: vec![],
            containers,
            pod_ip: Some("127.0.1.1".into()),
            host_ip: "127.0.0.1".into(),
            start_time: now(),
        }
    }

    fn condition_of<'a>(status: &'a PodStatus, type_: &str) -> &'a PodCondition {
        status.conditions.iter().flatten().find(|c| c.type_ == type_).expect("condition present")
    }

    #[test]
    fn pod_is_ready_only_when_every_container_is_ready() {
        let status = pod_status(&pod("Always", vec![running("a", true), running("b", false)]), &[], now());
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(condition_of(&status, "Ready").status, "False");
        assert_eq!(condition_of(&status, "Ready").message.as_deref(), Some("containers with unready status: [b]"));
        let status = pod_status(&pod("Always", vec![running("a", true), running("b", true)]), &[], now());
        assert_eq!(condition_of(&status, "Ready").status, "True");
        assert_eq!(condition_of(&status, "ContainersReady").status, "True");
    }

    #[test]
    fn container_not_yet_started_keeps_pod_pending() {
        let status = pod_status(&pod("Always", vec![ContainerRuntimeState::new("a", "img")]), &[], now());
        assert_eq!(status.phase.as_deref(), Some("Pending"));
    }

    #[test]
    fn phase_after_all_containers_exit_depends_on_restart_policy() {
        assert_eq!(phase(&pod("Never", vec![exited("a", 0)])), "Succeeded");
        assert_eq!(phase(&pod("Never", vec![exited("a", 1)])), "Failed");
        assert_eq!(phase(&pod("OnFailure", vec![exited("a", 0)])), "Succeeded");
        assert_eq!(phase(&pod("OnFailure", vec![exited("a", 1)])), "Running");
        assert_eq!(phase(&pod("Always", vec![exited("a", 0)])), "Running");
    }

    #[test]
    fn crash_looping_container_counts_as_stopped_not_pending() {
        let mut container = exited("a", 1);
        let Phase::Terminated(terminated) = container.phase.clone() else { unreachable!() };
        container.last_terminated = Some(terminated);
        container.phase = Phase::Waiting { reason: "CrashLoopBackOff".into(), message: None };
        container.restart_count = 2;
        let state = pod("Always", vec![container]);
        let status = pod_status(&state, &[], now());
        assert_eq!(status.phase.as_deref(), Some("Running"));
        let reported = &status.container_statuses.as_ref().expect("statuses")[0];
        assert_eq!(reported.restart_count, 2);
        let last = reported.last_state.as_ref().and_then(|s| s.terminated.as_ref()).expect("lastState.terminated");
        assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
        assert_eq!(
            reported.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref()),
            Some("CrashLoopBackOff")
        );
    }

    #[test]
    fn terminated_state_reports_what_the_kubelet_does() {
        let mut container = exited("a", 3);
        if let Phase::Terminated(terminated) = &mut container.phase {
            terminated.message = Some("preload failed".into());
            terminated.container_id = Some("process://42".into());
        }
        let status = container_status(&container);
        let terminated = status.state.as_ref().and_then(|s| s.terminated.as_ref()).expect("terminated");
        assert_eq!(terminated.exit_code, 3);
        assert_eq!(terminated.reason.as_deref(), Some("Error"));
        assert_eq!(terminated.message.as_deref(), Some("preload failed"));
        assert_eq!(terminated.signal, None, "the kubelet never reports the signal");
        assert_eq!(terminated.started_at, Some(Time(now())));
        assert_eq!(terminated.finished_at, Some(Time(now())));
        assert_eq!(terminated.container_id.as_deref(), Some("process://42"));
        assert_eq!(status.last_state, Some(ContainerState::default()), "no earlier run: lastState is {{}}");
        let json = serde_json::to_value(terminated).expect("json");
        assert_eq!(json["reason"], "Error");
        let completed = container_status(&exited("b", 0));
        let terminated = completed.state.and_then(|s| s.terminated).expect("terminated");
        assert_eq!(terminated.reason.as_deref(), Some("Completed"));
        assert_eq!(terminated.message, None, "an empty message is left out");
    }

    #[test]
    fn transition_time_is_kept_while_status_is_unchanged() {
        let state = pod("Always", vec![running("a", true)]);
        let earlier = Timestamp::from_second(1_600_000_000).expect("valid");
        let first = pod_status(&state, &[], earlier);
        let again = pod_status(&state, first.conditions.as_deref().unwrap_or_default(), now());
        assert_eq!(condition_of(&again, "Ready").last_transition_time, Some(Time(earlier)));

        let unready = pod("Always", vec![running("a", false)]);
        let flipped = pod_status(&unready, again.conditions.as_deref().unwrap_or_default(), now());
        assert_eq!(condition_of(&flipped, "Ready").last_transition_time, Some(Time(now())));
    }

    #[test]
    fn failed_init_container_fails_a_never_restarting_pod() {
        let mut state = pod("Never", vec![ContainerRuntimeState::new("a", "img")]);
        state.init_containers = vec![exited("init", 1)];
        assert_eq!(phase(&state), "Failed");
        state.restart_policy = "Always".into();
        assert_eq!(phase(&state), "Pending");
        let status = pod_status(&state, &[], now());
        assert_eq!(condition_of(&status, "Initialized").status, "False");
    }
}
