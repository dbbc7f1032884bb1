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
//!
//! A container may also get a private `/dev` ([`DevOverlay`]): an overlay
//! whose lower layer is the host's `/dev` (every device node stays as it is,
//! the mounts below `/dev` such as `/dev/shm` and `/dev/pts` are bound again on
//! top) and whose upper layer is a directory of the pod. Files the container
//! creates in `/dev`, such as `/dev/termination-log`, land there and never in
//! the host's `/dev` (a devtmpfs that every process of the host shares).
//! Exec probes join the mount namespace of the running container
//! ([`ProcessSpec::join_mounts_of`]) as `kubectl exec` would.

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
    #[error("failed to read the mounts below /dev")]
    Mountinfo(#[source] io::Error),
    #[error("path {path} cannot be given to an overlay mount (it contains ',', ':' or '\\')")]
    OverlayPath { path: PathBuf },
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

/// A private `/dev` for a container: an overlay of the host's `/dev` (lower)
/// and `upper`, assembled at `merged` (an empty directory on the host) and
/// moved onto `/dev` in the container's mount namespace. All three
/// directories are on the same file system, and `work` is the overlay's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevOverlay {
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
}

impl DevOverlay {
    /// The directories of an overlay below `base`.
    pub fn under(base: &Path) -> Self {
        Self { upper: base.join("upper"), work: base.join("work"), merged: base.join("merged") }
    }

    /// Creates the three directories afresh, dropping what a previous run of
    /// the container left in its `/dev`.
    pub fn create(&self) -> io::Result<()> {
        for dir in [&self.upper, &self.work, &self.merged] {
            if dir.exists() {
                std::fs::remove_dir_all(dir)?;
            }
            std::fs::create_dir_all(dir)?;
        }
        Ok(())
    }
}

/// Everything needed to start one container process.
#[derive(Clone, Debug, Default)]
pub struct ProcessSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: PathBuf,
    /// Where stdout and stderr go (appended); `None` discards them.
    pub log_file: Option<PathBuf>,
    /// Bind mounts in a private mount namespace, parents before children.
    pub mounts: Vec<BindMount>,
    /// A private `/dev`, set up before `mounts`.
    pub dev_overlay: Option<DevOverlay>,
    /// Run in the mount namespace of this running process (an exec into a
    /// container) instead of setting up `mounts` and `dev_overlay`.
    pub join_mounts_of: Option<u32>,
}

impl ProcessSpec {
    /// Whether the process gets a mount namespace of its own.
    pub fn has_private_mounts(&self) -> bool {
        !self.mounts.is_empty() || self.dev_overlay.is_some()
    }
}

/// What the child does between fork and exec, prepared before the fork.
struct ChildPlan {
    join_namespace: Option<CString>,
    overlay: Option<OverlayPlan>,
    mounts: Vec<(CString, CString, bool)>,
    working_dir: CString,
}

struct OverlayPlan {
    options: CString,
    merged: CString,
    /// `/dev/<x>` and `<merged>/<x>` for each mount directly below `/dev`.
    submounts: Vec<(CString, CString)>,
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

    let plan = child_plan(spec)?;
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls on memory prepared before the fork.
    unsafe {
        command.pre_exec(move || child_setup(&plan));
    }
    command.spawn().map_err(|source| ProcessError::Spawn { program: spec.program.clone(), source })
}

fn child_plan(spec: &ProcessSpec) -> Result<ChildPlan, ProcessError> {
    let mounts = spec
        .mounts
        .iter()
        .map(|m| Ok((c_path(&m.source)?, c_path(&m.target)?, m.read_only)))
        .collect::<Result<Vec<_>, ProcessError>>()?;
    let overlay = spec.dev_overlay.as_ref().map(overlay_plan).transpose()?;
    let join_namespace =
        spec.join_mounts_of.map(|pid| c_path(Path::new(&format!("/proc/{pid}/ns/mnt")))).transpose()?;
    Ok(ChildPlan { join_namespace, overlay, mounts, working_dir: c_path(&spec.working_dir)? })
}

fn overlay_plan(overlay: &DevOverlay) -> Result<OverlayPlan, ProcessError> {
    for path in [&overlay.upper, &overlay.work] {
        if path.as_os_str().as_bytes().iter().any(|b| matches!(b, b',' | b':' | b'\\')) {
            return Err(ProcessError::OverlayPath { path: path.clone() });
        }
    }
    let options = format!("lowerdir=/dev,upperdir={},workdir={}", overlay.upper.display(), overlay.work.display());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").map_err(ProcessError::Mountinfo)?;
    let submounts = top_mounts_below(&mountinfo, Path::new("/dev"))
        .into_iter()
        .map(|relative| Ok((c_path(&Path::new("/dev").join(&relative))?, c_path(&overlay.merged.join(&relative))?)))
        .collect::<Result<Vec<_>, ProcessError>>()?;
    Ok(OverlayPlan {
        options: CString::new(options).map_err(|_| ProcessError::NulInPath { path: overlay.upper.clone() })?,
        merged: c_path(&overlay.merged)?,
        submounts,
    })
}

/// The mount points strictly below `root` in a `/proc/<pid>/mountinfo`
/// text that no other such mount point contains, relative to `root`:
/// binding these (recursively) elsewhere carries every mount below `root`.
pub fn top_mounts_below(mountinfo: &str, root: &Path) -> Vec<PathBuf> {
    let mut points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(unescape_mount_point(point)))
        .filter_map(|point| point.strip_prefix(root).ok().map(Path::to_owned))
        .filter(|relative| !relative.as_os_str().is_empty())
        .collect();
    points.sort();
    points.dedup();
    let mut top: Vec<PathBuf> = Vec::new();
    for point in points {
        // Sorted: an ancestor comes before its descendants.
        if !top.iter().any(|ancestor| point.starts_with(ancestor)) {
            top.push(point);
        }
    }
    top
}

/// Mount points in mountinfo escape space, tab, newline and backslash as `\ooo`.
fn unescape_mount_point(escaped: &str) -> String {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal =
            bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(digits) => {
                out.push(digits.iter().fold(0u8, |value, digit| value.wrapping_mul(8).wrapping_add(digit - b'0')));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

fn child_setup(plan: &ChildPlan) -> io::Result<()> {
    // SAFETY: plain system calls with valid, NUL-terminated arguments.
    unsafe {
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0))?;
        if let Some(namespace) = &plan.join_namespace {
            let fd = libc::open(namespace.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            check(fd)?;
            let joined = check(libc::setns(fd, libc::CLONE_NEWNS));
            libc::close(fd);
            joined?;
            // setns moved the working directory to the namespace's root.
            libc::chdir(plan.working_dir.as_ptr());
            return Ok(());
        }
        if plan.mounts.is_empty() && plan.overlay.is_none() {
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
        if let Some(overlay) = &plan.overlay {
            check(libc::mount(
                c"overlay".as_ptr(),
                overlay.merged.as_ptr(),
                c"overlay".as_ptr(),
                0,
                overlay.options.as_ptr().cast(),
            ))?;
            for (source, target) in &overlay.submounts {
                check(libc::mount(
                    source.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ))?;
            }
            check(libc::mount(
                overlay.merged.as_ptr(),
                c"/dev".as_ptr(),
                std::ptr::null(),
                libc::MS_MOVE,
                std::ptr::null(),
            ))?;
        }
        for (source, target, read_only) in &plan.mounts {
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
        // The working directory was entered before the mounts: enter it again,
        // so one inside a volume is the volume's (best effort, as before).
        libc::chdir(plan.working_dir.as_ptr());
    }
    Ok(())
}

/// Whether a private `/dev` ([`DevOverlay`]) works on this host: starts
/// `/bin/sh` with one below `scratch` and has it create a file in its `/dev`,
/// then checks the file went to the overlay and not to the host's `/dev`.
pub async fn check_dev_overlay(scratch: &Path) -> Result<(), String> {
    let overlay = DevOverlay::under(scratch);
    overlay.create().map_err(|error| format!("unable to create {}: {error}", scratch.display()))?;
    let probe_name = format!("ferrocache-kubelet-check-{}", std::process::id());
    let spec = ProcessSpec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), format!("test -c /dev/null && : >/dev/{probe_name} && test -d /dev/shm")],
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        working_dir: scratch.to_owned(),
        dev_overlay: Some(overlay.clone()),
        ..ProcessSpec::default()
    };
    let status = spawn(&spec).map_err(|error| error_chain(&error))?.wait().await;
    let created = overlay.upper.join(&probe_name).exists();
    let leaked = Path::new("/dev").join(&probe_name);
    if leaked.exists() {
        let _ = std::fs::remove_file(&leaked);
        return Err("the file went to the host's /dev".into());
    }
    let _ = std::fs::remove_dir_all(scratch);
    match status {
        Ok(status) if status.success() && created => Ok(()),
        Ok(status) => Err(format!("the check exited with {}", exit_code(status))),
        Err(error) => Err(error.to_string()),
    }
}

/// An error and its sources, `: `-separated.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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
            ..ProcessSpec::default()
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

    #[test]
    fn mounts_below_dev_are_found_once_and_only_at_the_top() {
        let mountinfo = "\
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
23 22 0:5 / /dev rw,relatime - devtmpfs devtmpfs rw
24 23 0:20 / /dev/shm rw - tmpfs tmpfs rw
25 24 0:20 / /dev/shm rw - tmpfs tmpfs rw
26 23 0:21 / /dev/pts rw - devpts devpts rw
27 26 0:22 / /dev/pts/inner rw - tmpfs tmpfs rw
28 23 0:23 / /dev/my\\040disk rw - tmpfs tmpfs rw
29 22 0:24 / /devices rw - tmpfs tmpfs rw
";
        assert_eq!(
            top_mounts_below(mountinfo, Path::new("/dev")),
            vec![PathBuf::from("my disk"), PathBuf::from("pts"), PathBuf::from("shm")]
        );
    }

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    #[tokio::test]
    async fn private_dev_takes_the_termination_log_and_keeps_host_dev_untouched() {
        if !is_root() {
            eprintln!("skipped: mount namespaces need root");
            return;
        }
        let base = std::env::temp_dir().join(format!("ferrocache-private-dev-{}", std::process::id()));
        let overlay = DevOverlay::under(&base.join("dev"));
        overlay.create().expect("overlay dirs");
        let message = base.join("main.termination-log");
        std::fs::write(&message, b"").expect("message file");
        std::fs::write(overlay.upper.join("termination-log"), b"").expect("mount point");
        let name = format!("ferrocache-private-dev-test-{}", std::process::id());
        let mut spec = shell(&format!(
            "echo custom > /dev/termination-log && echo other > /dev/{name} && echo x > /dev/null && test -d /dev/pts && ls /dev/shm >/dev/null"
        ));
        spec.env.push(("PATH".into(), "/usr/bin:/bin".into()));
        spec.dev_overlay = Some(overlay.clone());
        spec.mounts =
            vec![BindMount { source: message.clone(), target: "/dev/termination-log".into(), read_only: false }];
        let status = spawn(&spec).expect("spawn").wait().await.expect("wait");
        assert_eq!(exit_code(status), 0);
        assert_eq!(std::fs::read_to_string(&message).expect("message"), "custom\n");
        assert_eq!(std::fs::read_to_string(overlay.upper.join(&name)).expect("file in the overlay"), "other\n");
        assert!(!Path::new("/dev/termination-log").exists(), "nothing in the host's /dev");
        assert!(!Path::new("/dev").join(&name).exists(), "nothing in the host's /dev");
        let _ = std::fs::remove_dir_all(&base);
    }

    #[tokio::test]
    async fn exec_joins_the_mount_namespace_of_a_running_process() {
        if !is_root() {
            eprintln!("skipped: mount namespaces need root");
            return;
        }
        let base = std::env::temp_dir().join(format!("ferrocache-join-{}", std::process::id()));
        let (volume, target) = (base.join("volume"), base.join("target"));
        for dir in [&volume, &target] {
            std::fs::create_dir_all(dir).expect("dirs");
        }
        std::fs::write(volume.join("marker"), b"mounted").expect("marker");
        let mut container = shell("sleep 30");
        container.mounts = vec![BindMount { source: volume.clone(), target: target.clone(), read_only: true }];
        let mut child = spawn(&container).expect("spawn");
        let pid = child.id().expect("running");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut exec = shell(&format!("test \"$(cat {}/marker)\" = mounted", target.display()));
        exec.env.push(("PATH".into(), "/usr/bin:/bin".into()));
        exec.mounts.clone_from(&container.mounts);
        exec.join_mounts_of = Some(pid);
        let status = spawn(&exec).expect("spawn exec").wait().await.expect("wait");
        assert_eq!(exit_code(status), 0);
        assert!(!target.join("marker").exists(), "the host does not see the mount");
        stop(&mut child, Duration::ZERO).await.expect("stopped");
        let _ = std::fs::remove_dir_all(&base);
    }

    #[tokio::test]
    async fn exit_code_of_a_killed_process_is_128_plus_signal() {
        let mut child = spawn(&shell("sleep 300")).expect("spawn");
        signal_group(child.id().expect("running"), libc::SIGKILL);
        let status = child.wait().await.expect("wait");
        assert_eq!(exit_code(status), 137);
    }
}
