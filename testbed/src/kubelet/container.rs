//! The life of one container: start, probe, exit, restart with back-off.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::pod::{PodContext, PrepareError, PreparedProcess, Slot};
use super::probe::{self, ProbeResult, ProbeTarget, ProbeTiming};
use super::process::{self, ProcessSpec};
use super::status::{Phase, Terminated};
use super::termination;

/// Restart back-off, as the kubelet's: the first restart is immediate, then
/// 10 s doubling up to 5 min; a container that ran 10 min starts over.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
}

const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(600);

impl Backoff {
    /// The delay before the next start of a container that ran for `ran_for`.
    pub fn next_delay(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= BACKOFF_RESET_AFTER {
            self.failures = 0;
        }
        let delay = match self.failures {
            0 => Duration::ZERO,
            n => BACKOFF_INITIAL.saturating_mul(1 << (n - 1).min(10)).min(BACKOFF_MAX),
        };
        self.failures = self.failures.saturating_add(1);
        delay
    }
}

/// How a container's runs ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerOutcome {
    /// Exited and will not be restarted; `true` when it succeeded.
    Finished { succeeded: bool },
    /// Stopped because the pod is going away.
    Stopped,
}

/// A stop request: `Some(grace)` once the pod is to stop.
pub type StopSignal = watch::Receiver<Option<Duration>>;

fn stop_requested(stop: &StopSignal) -> Option<Duration> {
    *stop.borrow()
}

/// Waits until a stop is requested (forever if the sender is gone and no
/// stop was ever requested, which cannot happen while the pod worker lives).
async fn stopped(stop: &mut StopSignal) -> Duration {
    loop {
        if let Some(grace) = stop_requested(stop) {
            return grace;
        }
        if stop.changed().await.is_err() {
            return Duration::ZERO;
        }
    }
}

/// Sleeps for `delay` unless a stop comes first; `false` when stopped.
async fn sleep_unless_stopped(delay: Duration, stop: &mut StopSignal) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        _ = stopped(stop) => false,
    }
}

enum RunEnd {
    Exited(std::io::Result<std::process::ExitStatus>),
    Stopped(std::io::Result<std::process::ExitStatus>),
    ProbeKilled(std::io::Result<std::process::ExitStatus>, String),
}

/// Runs a container until it finishes for good or the pod stops.
pub async fn run(context: Arc<PodContext>, slot: Slot, container: Container, mut stop: StopSignal) -> ContainerOutcome {
    let restart_policy = context.restart_policy();
    let is_init = matches!(slot, Slot::Init(_));
    let mut backoff = Backoff::default();
    loop {
        if stop_requested(&stop).is_some() {
            return ContainerOutcome::Stopped;
        }
        let (spec, termination_source) = match context.prepare_process(&container).await {
            Ok(PreparedProcess { process, termination }) => (process, termination),
            Err(error) => {
                let reason = match error {
                    PrepareError::Volumes(_) => "ContainerCreating",
                    _ => "CreateContainerConfigError",
                };
                warn!(pod = %context.key(), container = %container.name, error = &error as &dyn std::error::Error, "unable to prepare container");
                context.update(slot, |c| {
                    c.phase = Phase::Waiting { reason: reason.into(), message: Some(error.to_string()) };
                });
                if !sleep_unless_stopped(Duration::from_secs(2), &mut stop).await {
                    return ContainerOutcome::Stopped;
                }
                continue;
            }
        };

        let started = Instant::now();
        let started_at = Timestamp::now();
        let (terminated, probe_killed) = match process::spawn(&spec) {
            Err(error) => {
                warn!(pod = %context.key(), container = %container.name, error = &error as &dyn std::error::Error, "unable to start container");
                let terminated = Terminated {
                    exit_code: 128,
                    reason: "StartError".into(),
                    message: termination::combine(Some(process::error_chain(&error)), termination_source.message(128)),
                    started_at: None,
                    finished_at: Timestamp::now(),
                    container_id: None,
                };
                (terminated, false)
            }
            Ok(mut child) => {
                let pid = child.id().unwrap_or_default();
                let container_id = format!("process://{pid}");
                context.write_pid_file(&container.name, pid);
                info!(pod = %context.key(), container = %container.name, pid, program = %spec.program.display(), "container started");
                let has_startup = container.startup_probe.is_some();
                let has_readiness = container.readiness_probe.is_some();
                context.update(slot, |c| {
                    c.phase = Phase::Running { started_at };
                    c.container_id = Some(container_id.clone());
                    c.started = !has_startup;
                    c.ready = !has_readiness;
                });

                let (kill_sender, mut kill_receiver) = mpsc::channel::<String>(1);
                let probes = (!is_init).then(|| {
                    // Exec probes run inside the container's mounts, as with `kubectl exec`.
                    let exec = if spec.has_private_mounts() {
                        ProcessSpec { join_mounts_of: Some(pid), ..spec.clone() }
                    } else {
                        spec.clone()
                    };
                    tokio::spawn(run_probes(context.clone(), slot, container.clone(), exec, kill_sender))
                });
                let end = tokio::select! {
                    status = child.wait() => RunEnd::Exited(status),
                    grace = stopped(&mut stop) => RunEnd::Stopped(process::stop(&mut child, grace).await),
                    Some(message) = kill_receiver.recv() => {
                        let grace = context.termination_grace();
                        RunEnd::ProbeKilled(process::stop(&mut child, grace).await, message)
                    }
                };
                if let Some(probes) = probes {
                    probes.abort();
                }
                // Whatever the main process left behind goes with it.
                process::signal_group(pid, libc::SIGKILL);
                context.remove_pid_file(&container.name);
                let finished_at = Timestamp::now();
                let (status, probe_failure) = match end {
                    RunEnd::Exited(status) | RunEnd::Stopped(status) => (status, None),
                    RunEnd::ProbeKilled(status, message) => (status, Some(message)),
                };
                let exit_code = match status {
                    Ok(status) => process::exit_code(status),
                    Err(_) => 137,
                };
                // As with a container runtime, the kubelet's message is only
                // the termination message: a probe failure goes to an Event
                // on a real node and to this log here.
                let terminated = Terminated {
                    exit_code,
                    reason: if exit_code == 0 { "Completed".into() } else { "Error".into() },
                    message: termination::combine(None, termination_source.message(exit_code)),
                    started_at: Some(started_at),
                    finished_at,
                    container_id: Some(container_id.clone()),
                };
                let probe_killed = probe_failure.is_some();
                match &probe_failure {
                    Some(failure) => {
                        info!(pod = %context.key(), container = %container.name, pid, exit_code, %failure, "container killed after a failed probe")
                    }
                    None => {
                        info!(pod = %context.key(), container = %container.name, pid, exit_code, "container exited")
                    }
                }
                (terminated, probe_killed)
            }
        };
        let succeeded = terminated.exit_code == 0 && !probe_killed;
        if stop_requested(&stop).is_some() {
            context.update(slot, |c| {
                c.phase = Phase::Terminated(terminated.clone());
                c.ready = false;
            });
            return ContainerOutcome::Stopped;
        }
        let restart = match restart_policy.as_str() {
            "Never" => false,
            "OnFailure" => !succeeded,
            _ => !is_init || !succeeded,
        };
        if !restart {
            context.update(slot, |c| {
                c.phase = Phase::Terminated(terminated.clone());
                c.ready = false;
            });
            return ContainerOutcome::Finished { succeeded };
        }

        let delay = backoff.next_delay(started.elapsed());
        context.update(slot, |c| {
            c.last_terminated = Some(terminated.clone());
            c.ready = false;
            c.phase = if delay.is_zero() {
                Phase::Waiting { reason: "ContainerCreating".into(), message: None }
            } else {
                Phase::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: Some(format!(
                        "back-off {}s restarting failed container={} pod={}",
                        delay.as_secs(),
                        container.name,
                        context.key()
                    )),
                }
            };
        });
        if !sleep_unless_stopped(delay, &mut stop).await {
            return ContainerOutcome::Stopped;
        }
        context.update(slot, |c| c.restart_count += 1);
        debug!(pod = %context.key(), container = %container.name, "restarting container");
    }
}

/// Runs the startup probe, then liveness and readiness, for one run of a
/// container. Updates `started`/`ready` and asks for a kill on failure.
async fn run_probes(
    context: Arc<PodContext>,
    slot: Slot,
    container: Container,
    process: ProcessSpec,
    kill: mpsc::Sender<String>,
) {
    let target = ProbeTarget { pod_ip: context.pod_ip(), image: container.image.clone().unwrap_or_default(), process };
    if let Some(startup) = &container.startup_probe {
        match probe_until_decided(&context, &container, &target, startup, true).await {
            Decision::Passed => context.update(slot, |c| c.started = true),
            Decision::Failed(message) => {
                let _ = kill.send(format!("Startup probe failed: {message}")).await;
                return;
            }
        }
    }
    let liveness = container.liveness_probe.clone().map(|probe| {
        let (context, container, target, kill) = (context.clone(), container.clone(), target.clone(), kill.clone());
        async move {
            if let Decision::Failed(message) = probe_until_decided(&context, &container, &target, &probe, false).await {
                let _ = kill.send(format!("Liveness probe failed: {message}")).await;
            }
        }
    });
    let readiness = container.readiness_probe.clone().map(|probe| {
        let (context, container, target) = (context.clone(), container.clone(), target.clone());
        async move { readiness_loop(&context, slot, &container, &target, &probe).await }
    });
    match (liveness, readiness) {
        (Some(liveness), Some(readiness)) => {
            tokio::join!(liveness, readiness);
        }
        (Some(liveness), None) => liveness.await,
        (None, Some(readiness)) => readiness.await,
        (None, None) => {}
    }
}

enum Decision {
    Passed,
    Failed(String),
}

/// Probes until `failure_threshold` consecutive failures, or, when
/// `until_success`, until `success_threshold` consecutive successes.
async fn probe_until_decided(
    context: &PodContext,
    container: &Container,
    target: &ProbeTarget,
    probe: &Probe,
    until_success: bool,
) -> Decision {
    let timing = ProbeTiming::of(probe);
    tokio::time::sleep(timing.initial_delay).await;
    let (mut successes, mut failures) = (0, 0);
    loop {
        match probe::run(probe, container, target, context.images()).await {
            ProbeResult::Success => {
                failures = 0;
                successes += 1;
                if until_success && successes >= timing.success_threshold {
                    return Decision::Passed;
                }
            }
            ProbeResult::Failure(message) => {
                successes = 0;
                failures += 1;
                debug!(pod = %context.key(), container = %container.name, %message, failures, "probe failed");
                if failures >= timing.failure_threshold {
                    return Decision::Failed(message);
                }
            }
        }
        tokio::time::sleep(timing.period).await;
    }
}

async fn readiness_loop(context: &PodContext, slot: Slot, container: &Container, target: &ProbeTarget, probe: &Probe) {
    let timing = ProbeTiming::of(probe);
    tokio::time::sleep(timing.initial_delay).await;
    let (mut successes, mut failures) = (0, 0);
    loop {
        if context.is_started(slot) {
            match probe::run(probe, container, target, context.images()).await {
                ProbeResult::Success => {
                    failures = 0;
                    successes += 1;
                    if successes >= timing.success_threshold {
                        context.update(slot, |c| c.ready = true);
                    }
                }
                ProbeResult::Failure(message) => {
                    successes = 0;
                    failures += 1;
                    debug!(pod = %context.key(), container = %container.name, %message, failures, "readiness probe failed");
                    if failures >= timing.failure_threshold {
                        context.update(slot, |c| c.ready = false);
                    }
                }
            }
        }
        tokio::time::sleep(timing.period).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_restart_is_immediate_then_back_off_doubles_up_to_five_minutes() {
        let mut backoff = Backoff::default();
        let short = Duration::from_secs(1);
        let delays: Vec<u64> = (0..8).map(|_| backoff.next_delay(short).as_secs()).collect();
        assert_eq!(delays, vec![0, 10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn back_off_starts_over_after_ten_minutes_of_running() {
        let mut backoff = Backoff::default();
        backoff.next_delay(Duration::ZERO);
        backoff.next_delay(Duration::ZERO);
        assert_eq!(backoff.next_delay(Duration::from_secs(601)), Duration::ZERO);
    }
}
