//! The processes the soak kills and brings back: the operator (run here), the
//! bed's daemons (kube-apiserver, Garage), and node pods (by the kubelet
//! stand-in's pid files).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Error of controlling a process.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("unable to start {what}")]
    Start {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("unable to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no process id")]
    NoPid { path: PathBuf },
    #[error("process group {pgid} of {what} did not end within {timeout:?}")]
    Stuck { what: String, pgid: i32, timeout: Duration },
}

/// Sends `signal` to the process group `pgid`; false when the group is gone.
pub fn signal_group(pgid: i32, signal: i32) -> bool {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe { libc::kill(-pgid, signal) == 0 }
}

/// Whether a live (not zombie) process of group `pgid` remains.
pub fn group_alive(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // pid (comm) state ppid pgrp ...
        let Some((_, after)) = stat.rsplit_once(')') else {
            return false;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        fields.len() > 2 && fields[2] == pgid.to_string() && !matches!(fields[0], "Z" | "X")
    })
}

fn wait_group_gone(what: &str, pgid: i32, timeout: Duration) -> Result<(), ProcessError> {
    let deadline = Instant::now() + timeout;
    while group_alive(pgid) {
        if Instant::now() > deadline {
            return Err(ProcessError::Stuck { what: what.to_owned(), pgid, timeout });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn read_pid(path: &Path) -> Result<i32, ProcessError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProcessError::Read { path: path.to_owned(), source })?;
    text.trim().parse().map_err(|_| ProcessError::NoPid { path: path.to_owned() })
}

/// Kills a node pod's container (its whole process group, fork children included) with
/// SIGKILL, as the kernel's OOM killer or a node failure would.
pub fn kill_pod_container(pod_dir: &Path, container: &str) -> Result<(), ProcessError> {
    let pgid = read_pid(&pod_dir.join(format!("{container}.pid")))?;
    signal_group(pgid, libc::SIGKILL);
    wait_group_gone(container, pgid, Duration::from_secs(10))
}

/// A daemon of the bed started by `scripts/testbed/lib.sh` (`tb_start`: a session of its
/// own, pid file, log), restarted here with the same command line.
pub struct Daemon {
    pub name: String,
    pid_file: PathBuf,
    log: PathBuf,
    /// The process this harness started last, reaped when it is stopped.
    child: Option<Child>,
}

impl Daemon {
    pub fn new(name: &str, pid_file: PathBuf, log: PathBuf) -> Daemon {
        Daemon { name: name.to_owned(), pid_file, log, child: None }
    }

    /// Stops the daemon with `signal` and starts it again after `pause` with the command line
    /// it ran, into the same log and pid file (so `down.sh` stops the new one).
    pub fn restart(&mut self, signal: i32, pause: Duration) -> Result<(), ProcessError> {
        let pid = read_pid(&self.pid_file)?;
        let cmdline_path = PathBuf::from(format!("/proc/{pid}/cmdline"));
        let cmdline =
            std::fs::read(&cmdline_path).map_err(|source| ProcessError::Read { path: cmdline_path, source })?;
        let arguments: Vec<String> = cmdline
            .split(|byte| *byte == 0)
            .filter(|argument| !argument.is_empty())
            .map(|argument| String::from_utf8_lossy(argument).into_owned())
            .collect();
        signal_group(pid, signal);
        if signal != libc::SIGKILL && wait_group_gone(&self.name, pid, Duration::from_secs(20)).is_err() {
            signal_group(pid, libc::SIGKILL);
        }
        wait_group_gone(&self.name, pid, Duration::from_secs(10))?;
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        std::thread::sleep(pause);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|source| ProcessError::Read { path: self.log.clone(), source })?;
        let error_log = log.try_clone().map_err(|source| ProcessError::Read { path: self.log.clone(), source })?;
        let child = Command::new("setsid")
            .args(&arguments)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(error_log)
            .spawn()
            .map_err(|source| ProcessError::Start { what: self.name.clone(), source })?;
        std::fs::write(&self.pid_file, format!("{}\n", child.id()))
            .map_err(|source| ProcessError::Read { path: self.pid_file.clone(), source })?;
        self.child = Some(child);
        Ok(())
    }
}

/// The operator, run by the soak with leader election and a fixed identity (a container
/// restarted in place keeps its pod name), watching the soak's namespace only.
pub struct Operator {
    binary: PathBuf,
    arguments: Vec<String>,
    kubeconfig: String,
    log: PathBuf,
    child: Option<Child>,
    pub starts: u32,
}

impl Operator {
    pub fn new(kubeconfig: &str, namespace: &str, node_image: &str, log: PathBuf) -> Operator {
        let identity = format!("soak-{}", std::process::id());
        Operator {
            binary: PathBuf::from(env!("CARGO_BIN_EXE_ferrocache-operator")),
            arguments: vec![
                "--metrics-address".into(),
                "127.0.0.1:0".into(),
                "--node-image".into(),
                node_image.into(),
                "--lease-name".into(),
                "ferrocache-soak".into(),
                "--lease-namespace".into(),
                namespace.into(),
                "--identity".into(),
                identity,
                "--watch-namespace".into(),
                namespace.into(),
            ],
            kubeconfig: kubeconfig.to_owned(),
            log,
            child: None,
            starts: 0,
        }
    }

    pub fn start(&mut self) -> Result<(), ProcessError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|source| ProcessError::Read { path: self.log.clone(), source })?;
        let child = Command::new(&self.binary)
            .args(&self.arguments)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RUST_LOG", std::env::var("FERROCACHE_SOAK_OPERATOR_LOG").unwrap_or_else(|_| "info,kube=warn".into()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|source| ProcessError::Start { what: "ferrocache-operator".into(), source })?;
        self.child = Some(child);
        self.starts += 1;
        Ok(())
    }

    /// SIGKILL, without warning.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signals our own child process.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            for _ in 0..50 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
