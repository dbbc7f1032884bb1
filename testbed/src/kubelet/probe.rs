//! Container probes: `exec`, `tcpSocket` and `httpGet`.
//!
//! As with the kubelet, an `exec` probe command expands `$(VAR)` only against
//! the container's literal `value` env entries (not `valueFrom` ones) and runs
//! inside the container, with its full environment and mounts: use
//! `sh -c '... "$POD_IP" ...'` to reach a `fieldRef` variable. `tcpSocket`
//! and `httpGet` default their host to the pod IP. `httpGet` speaks plain
//! HTTP/1.1; `HTTPS` and `grpc` probes are reported as failing.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::expand::expand;
use super::image::ImageDirs;
use super::process::{self, ProcessSpec};

/// Result of one probe run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeResult {
    Success,
    Failure(String),
}

/// What a probe needs to know about the running container.
#[derive(Clone, Debug)]
pub struct ProbeTarget {
    pub pod_ip: String,
    pub image: String,
    /// The container process's spec; exec probes reuse its env and mounts.
    pub process: ProcessSpec,
}

/// Timing of a probe with the API defaults filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeTiming {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl ProbeTiming {
    pub fn of(probe: &Probe) -> Self {
        let seconds = |value: Option<i32>, default: u64| {
            Duration::from_secs(value.and_then(|v| u64::try_from(v).ok()).unwrap_or(default))
        };
        let count = |value: Option<i32>| value.and_then(|v| u32::try_from(v).ok()).filter(|v| *v > 0).unwrap_or(1);
        Self {
            initial_delay: seconds(probe.initial_delay_seconds, 0),
            period: seconds(probe.period_seconds, 10).max(Duration::from_secs(1)),
            timeout: seconds(probe.timeout_seconds, 1).max(Duration::from_secs(1)),
            success_threshold: count(probe.success_threshold),
            failure_threshold: probe
                .failure_threshold
                .and_then(|v| u32::try_from(v).ok())
                .filter(|v| *v > 0)
                .unwrap_or(3),
        }
    }
}

/// Runs `probe` once against the container.
pub async fn run(probe: &Probe, container: &Container, target: &ProbeTarget, images: &ImageDirs) -> ProbeResult {
    let timeout = ProbeTiming::of(probe).timeout;
    if let Some(exec) = &probe.exec {
        let command: Vec<String> =
            exec.command.iter().flatten().map(|part| expand(part, |name| static_env(container, name))).collect();
        return run_exec(&command, target, images, timeout).await;
    }
    if let Some(tcp) = &probe.tcp_socket {
        let host = tcp.host.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| target.pod_ip.clone());
        let Some(port) = resolve_port(&tcp.port, container) else {
            return ProbeResult::Failure(format!("unknown port {:?}", tcp.port));
        };
        return match tokio::time::timeout(timeout, TcpStream::connect((host.as_str(), port))).await {
            Ok(Ok(_)) => ProbeResult::Success,
            Ok(Err(error)) => ProbeResult::Failure(format!("dial tcp {host}:{port}: {error}")),
            Err(_) => ProbeResult::Failure(format!("dial tcp {host}:{port}: timeout")),
        };
    }
    if let Some(http) = &probe.http_get {
        if http.scheme.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("https")) {
            return ProbeResult::Failure("HTTPS probes are not supported by the kubelet stand-in".into());
        }
        let host = http.host.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| target.pod_ip.clone());
        let Some(port) = resolve_port(&http.port, container) else {
            return ProbeResult::Failure(format!("unknown port {:?}", http.port));
        };
        let path = http.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into());
        let headers: Vec<(String, String)> =
            http.http_headers.iter().flatten().map(|h| (h.name.clone(), h.value.clone())).collect();
        return match tokio::time::timeout(timeout, http_get(&host, port, &path, &headers)).await {
            Ok(Ok(status)) if (200..400).contains(&status) => ProbeResult::Success,
            Ok(Ok(status)) => ProbeResult::Failure(format!("HTTP probe failed with statuscode: {status}")),
            Ok(Err(error)) => ProbeResult::Failure(format!("Get http://{host}:{port}{path}: {error}")),
            Err(_) => ProbeResult::Failure(format!("Get http://{host}:{port}{path}: timeout")),
        };
    }
    ProbeResult::Failure("probe type not supported by the kubelet stand-in".into())
}

fn static_env(container: &Container, name: &str) -> Option<String> {
    container
        .env
        .iter()
        .flatten()
        .filter(|var| var.value_from.is_none())
        .find(|var| var.name == name)
        .map(|var| var.value.clone().unwrap_or_default())
}

/// A numeric port, or a named one looked up in the container's ports.
pub fn resolve_port(port: &IntOrString, container: &Container) -> Option<u16> {
    match port {
        IntOrString::Int(number) => u16::try_from(*number).ok(),
        IntOrString::String(name) => name.parse().ok().or_else(|| {
            container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
        }),
    }
}

async fn run_exec(command: &[String], target: &ProbeTarget, images: &ImageDirs, timeout: Duration) -> ProbeResult {
    let path =
        target.process.env.iter().find(|(name, _)| name == "PATH").map(|(_, value)| value.clone()).unwrap_or_default();
    let executable = match images.resolve(&target.image, command, &[], &path) {
        Ok(executable) => executable,
        Err(error) => return ProbeResult::Failure(error.to_string()),
    };
    let spec =
        ProcessSpec { program: executable.program, args: executable.args, log_file: None, ..target.process.clone() };
    let mut child = match process::spawn(&spec) {
        Ok(child) => child,
        Err(error) => return ProbeResult::Failure(error.to_string()),
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => ProbeResult::Success,
        Ok(Ok(status)) => {
            ProbeResult::Failure(format!("command {command:?} exited with {}", process::exit_code(status)))
        }
        Ok(Err(error)) => ProbeResult::Failure(format!("command {command:?}: {error}")),
        Err(_) => {
            // Best effort: the probe's group is killed and reaped.
            let _stopped = process::stop(&mut child, Duration::ZERO).await;
            ProbeResult::Failure(format!("command {command:?} timed out after {timeout:?}"))
        }
    }
}

async fn http_get(host: &str, port: u16, path: &str, headers: &[(String, String)]) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect((host, port)).await?;
    let has_host = headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host"));
    let mut request = format!("GET {path} HTTP/1.1\r\n");
    if !has_host {
        request.push_str(&format!("Host: {host}:{port}\r\n"));
    }
    request.push_str("User-Agent: kube-probe/1.20\r\nAccept: */*\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    let mut buffer = [0u8; 1024];
    while !response.windows(2).any(|w| w == b"\r\n") {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        response.extend_from_slice(&buffer[..read]);
    }
    let status_line = String::from_utf8_lossy(&response);
    status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed HTTP status line"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container() -> Container {
        serde_yaml::from_str(
            r#"
name: c
image: x
ports: [{name: redis, containerPort: 6379}]
env:
- {name: PORT, value: "6379"}
- {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
"#,
        )
        .expect("valid container")
    }

    #[test]
    fn defaults_match_the_api() {
        let timing = ProbeTiming::of(&Probe::default());
        assert_eq!(timing.period, Duration::from_secs(10));
        assert_eq!(timing.timeout, Duration::from_secs(1));
        assert_eq!(timing.success_threshold, 1);
        assert_eq!(timing.failure_threshold, 3);
    }

    #[test]
    fn named_ports_resolve_through_container_ports() {
        let container = container();
        assert_eq!(resolve_port(&IntOrString::String("redis".into()), &container), Some(6379));
        assert_eq!(resolve_port(&IntOrString::Int(80), &container), Some(80));
        assert_eq!(resolve_port(&IntOrString::String("nope".into()), &container), None);
    }

    #[test]
    fn exec_commands_expand_only_literal_env_values() {
        let container = container();
        assert_eq!(static_env(&container, "PORT"), Some("6379".into()));
        assert_eq!(static_env(&container, "POD_IP"), None);
    }

    #[tokio::test]
    async fn tcp_probe_succeeds_on_a_listening_port_and_fails_on_a_closed_one() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let target = ProbeTarget {
            pod_ip: "127.0.0.1".into(),
            image: "x".into(),
            process: ProcessSpec {
                program: "/bin/true".into(),
                args: vec![],
                env: vec![],
                working_dir: std::env::temp_dir(),
                log_file: None,
                ..ProcessSpec::default()
            },
        };
        let probe: Probe = serde_json::from_value(serde_json::json!({"tcpSocket": {"port": port}})).expect("probe");
        assert_eq!(run(&probe, &container(), &target, &ImageDirs::default()).await, ProbeResult::Success);
        drop(listener);
        // A socket bound but not listening holds a port that refuses connections (a port merely
        // closed could be taken by a test running in parallel).
        let closed = tokio::net::TcpSocket::new_v4().expect("socket");
        closed.bind("127.0.0.1:0".parse().expect("address")).expect("bind");
        let port = closed.local_addr().expect("addr").port();
        let probe: Probe = serde_json::from_value(serde_json::json!({"tcpSocket": {"port": port}})).expect("probe");
        assert!(matches!(run(&probe, &container(), &target, &ImageDirs::default()).await, ProbeResult::Failure(_)));
    }
}
