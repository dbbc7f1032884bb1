//! Containers as local processes.
//!
//! Each container process leads a process group of its own, so signals reach
//! everything it started (`sh -c` children included), and, when the pod has
//! volumes, runs in a private mount namespace where the volume directories are
//! bind-mounted at their `mountPath`s: the service-account token lands at
//! `/var/run/secrets/kubernetes.io/serviceaccount/` as in a real pod, without
//! touching the host's view of that path. The process gets `SIGKILL` if the
//! stand-in dies (`PR_SET_PDEATHSIG`); `down.sh` kills whatever is left by the
//! process groups recorded in the pid files.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};

/// Error of starting a container process.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("failed to open log file {path}")]
    OpenLog {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("path {path} contains a NUL byte")]
    NulInPath { path: PathBuf },
    #[error("failed to start {program} (mounts and process group set up in the child)")]
    Spawn {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A bind mount of `source` onto `target` inside the container's mount namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

/// Everything needed to start one container process.
#[derive(Clone, Debug)]
pub struct ProcessSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: PathBuf,
    /// Where stdout and stderr go (appended); `None` discards them.
    pub log_file: Option<PathBuf>,
    pub mounts: Vec<BindMount>,
}

/// Starts the process described by `spec` in a new process group.
pub fn spawn(spec: &ProcessSpec) -> Result<Child, ProcessError> {
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(&spec.working_dir)
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(false);
    match &spec.log_file {
        Some(path) => {
            let open = || {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| ProcessError::OpenLog { path: path.clone(), source })
            };
            command.stdout(open()?).stderr(open()?);
        }
        None => {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }

    let mounts = spec
        .mounts
        .iter()
        .map(|m| Ok((c_path(&m.source)?, c_path(&m.target)?, m.read_only)))
        .collect::<Result<Vec<_>, ProcessError>>()?;
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls on memory prepared before the fork.
    unsafe {
        command.pre_exec(move || child_setup(&mounts));
    }
    command.spawn().map_err(|source| ProcessError::Spawn { program: spec.program.clone(), source })
}

fn c_path(path: &Path) -> Result<CString, ProcessError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| ProcessError::NulInPath { path: path.to_owned() })
}

fn check(result: libc::c_int) -> io::Result<()> {
    if result == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn child_setup(mounts: &[(CString, CString, bool)]) -> io::Result<()> {
    // SAFETY: plain system calls with valid, NUL-terminated arguments.
    unsafe {
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0))?;
        if mounts.is_empty() {
            return Ok(());
        }
        check(libc::unshare(libc::CLONE_NEWNS))?;
        // Keep the mounts below out of the host's namespace.
        check(libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        for (source, target, read_only) in mounts {
            check(libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ))?;
            if *read_only {
                check(libc::mount(
                    std::ptr::null(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                    std::ptr::null(),
                ))?;
            }
        }
    }
    Ok(())
}

/// Sends `signal` to the process group led by `pid`. A group that is already
/// gone is not an error.
pub fn signal_group(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(-pid, signal);
    }
}

/// Whether any process of the group led by `pid` is still alive (zombies,
/// which only wait to be reaped, do not count).
pub fn group_alive(pid: u32) -> bool {
    !group_members(pid).is_empty()
}

/// The live (non-zombie) processes whose process group is `pgid`, from `/proc`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // Fields after the parenthesised command: state, ppid, pgrp, ...
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next();
            let group = fields.nth(1).and_then(|g| g.parse::<u32>().ok());
            state != Some("Z") && state != Some("X") && group == Some(pgid)
        })
        .collect()
}

/// Whether process `pid` exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().next() != Some("Z")))
        .unwrap_or(false)
}

/// The exit code the kubelet reports: the code, or 128 + signal.
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// The signal that ended the process, if any.
pub fn exit_signal(status: ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

/// Stops a running container process: `SIGTERM` to its group, then `SIGKILL`
/// once `grace` has passed. Returns its exit status.
pub async fn stop(child: &mut Child, grace: Duration) -> io::Result<ExitStatus> {
    let Some(pid) = child.id() else {
        return child.wait().await;
    };
    signal_group(pid, libc::SIGTERM);
    let status = match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            signal_group(pid, libc::SIGKILL);
            child.wait().await
        }
    };
    // Whatever the main process left behind goes with it, as with a cgroup.
    signal_group(pid, libc::SIGKILL);
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> ProcessSpec {
        ProcessSpec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![("GREETING".into(), "hello".into())],
            working_dir: std::env::temp_dir(),
            log_file: None,
            mounts: Vec::new(),
        }
    }

    #[tokio::test]
    async fn process_gets_exactly_the_given_environment() {
        let mut spec = shell(r#"test "$GREETING" = hello && test -z "$HOME""#);
        spec.env.push(("PATH".into(), "/usr/bin:/bin".into()));
        let status = spawn(&spec).expect("spawn").wait().await.expect("wait");
        assert_eq!(exit_code(status), 0);
    }

    #[tokio::test]
    async fn stop_kills_the_whole_group_even_when_sigterm_is_ignored() {
        let mut child = spawn(&shell("trap '' TERM; sleep 300 & wait")).expect("spawn");
        let pid = child.id().expect("running");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let status = stop(&mut child, Duration::from_millis(300)).await.expect("stopped");
        assert_eq!(exit_signal(status), Some(libc::SIGKILL));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!group_alive(pid), "sleep child must be gone too");
    }

    #[tokio::test]
    async fn exit_code_of_a_killed_process_is_128_plus_signal() {
        let mut child = spawn(&shell("sleep 300")).expect("spawn");
        signal_group(child.id().expect("running"), libc::SIGKILL);
        let status = child.wait().await.expect("wait");
        assert_eq!(exit_code(status), 137);
    }
}
