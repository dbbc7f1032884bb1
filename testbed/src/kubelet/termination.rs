//! Termination messages, as the kubelet reports them in
//! `state.terminated.message` and `lastState.terminated.message`.
//!
//! Each run of a container gets an empty file of its own on the host,
//! `<pod dir>/<container>.termination-log`, bind-mounted at the container's
//! `terminationMessagePath` (`/dev/termination-log` unless the pod says
//! otherwise). After the run the message is the last 4096 bytes of that file.
//! With `terminationMessagePolicy: FallbackToLogsOnError`, when the file is
//! empty (or could not be provided) and the run failed (exit code not 0), the
//! message is the tail of what this run wrote to its log instead: the last 80
//! lines, at most 2048 bytes. A message that came out empty is not reported.
//!
//! The bind mount needs a mount point. Below a volume's `mountPath` it is
//! created in the volume's directory; below `/dev` in the container's private
//! `/dev` (see [`DevOverlay`]), never in the host's; elsewhere on the host, as
//! for volumes. Without a private `/dev` (the host cannot provide one), a path
//! below `/dev` that the host lacks gets no file: the message then comes from
//! the log fallback alone.

use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::Container;
use tracing::warn;

use super::process::{BindMount, DevOverlay};

/// Most of the termination message file the kubelet reads (its end).
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Most log lines `FallbackToLogsOnError` reports.
pub const MAX_LOG_LINES: usize = 80;
/// Most log bytes `FallbackToLogsOnError` reports.
pub const MAX_LOG_BYTES: usize = 2048;

/// The API server's default `terminationMessagePath`.
pub const DEFAULT_PATH: &str = "/dev/termination-log";

/// Where the termination message of one run of a container comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TerminationSource {
    /// Host side of the file at `terminationMessagePath`, if the container has one.
    pub file: Option<PathBuf>,
    /// The container's log and its length when this run started.
    pub log: Option<(PathBuf, u64)>,
    /// `terminationMessagePolicy: FallbackToLogsOnError`.
    pub fallback_to_logs: bool,
}

impl TerminationSource {
    /// The termination message of a run that ended with `exit_code`, as the
    /// kubelet's `getTerminationMessage` and `readLastStringFromContainerLogs`
    /// compute it (empty when there is none).
    pub fn message(&self, exit_code: i32) -> String {
        let fallback = self.fallback_to_logs && exit_code != 0;
        if let Some(file) = &self.file {
            match read_end(file, 0, MAX_MESSAGE_BYTES) {
                Ok(data) if !data.is_empty() => return text(&data),
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return format!("Error on reading termination log {}: {error}", file.display()),
            }
        }
        let Some((log, start)) = self.log.as_ref().filter(|_| fallback) else {
            return String::new();
        };
        match read_end(log, *start, MAX_LOG_BYTES) {
            Ok(data) => text(log_tail(&data, MAX_LOG_LINES, MAX_LOG_BYTES)),
            Err(error) => format!("Error on reading termination message from logs: {error}"),
        }
    }
}

/// The kubelet appends the termination message to the runtime's own message
/// (a start error, say) after `": "`. `None` when both are empty.
pub fn combine(runtime_message: Option<String>, termination_message: String) -> Option<String> {
    let runtime_message = runtime_message.filter(|m| !m.is_empty());
    match (runtime_message, termination_message.is_empty()) {
        (None, true) => None,
        (None, false) => Some(termination_message),
        (Some(runtime), true) => Some(runtime),
        (Some(runtime), false) => Some(format!("{runtime}: {termination_message}")),
    }
}

/// The end of a log: its last `max_lines` lines (a final newline ends the
/// last line rather than starting another), then at most its last `max_bytes`.
pub fn log_tail(log: &[u8], max_lines: usize, max_bytes: usize) -> &[u8] {
    let body = log.strip_suffix(b"\n").unwrap_or(log);
    let start = match max_lines.checked_sub(1) {
        None => log.len(),
        Some(skip) => body
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, byte)| **byte == b'\n')
            .nth(skip)
            .map_or(0, |(index, _)| index + 1),
    };
    let lines = &log[start..];
    &lines[lines.len().saturating_sub(max_bytes)..]
}

/// Text of bytes cut from the end of a file: a character cut in two at the
/// start is dropped, other invalid UTF-8 becomes U+FFFD (as JSON encoding
/// does in the kubelet).
fn text(bytes: &[u8]) -> String {
    let continuation = bytes.iter().take(3).take_while(|byte| (0x80..0xc0).contains(*byte)).count();
    String::from_utf8_lossy(&bytes[continuation..]).into_owned()
}

/// The last `max` bytes of `path` from offset `from` on (everything if the
/// file is now shorter than `from`: it was replaced).
fn read_end(path: &Path, from: u64, max: usize) -> io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let length = file.metadata()?.len();
    let from = if from > length { 0 } else { from };
    let start = from.max(length.saturating_sub(max as u64));
    file.seek(SeekFrom::Start(start))?;
    let mut data = Vec::with_capacity(max.min(usize::try_from(length - start).unwrap_or(max)));
    file.take(max as u64).read_to_end(&mut data)?;
    Ok(data)
}

/// What one run of a container needs for its termination message.
#[derive(Clone, Debug, Default)]
pub struct TerminationSetup {
    pub source: TerminationSource,
    /// The termination message file at its path in the container (mounted last).
    pub mount: Option<BindMount>,
    /// The container's private `/dev`, when its path is below `/dev`.
    pub dev_overlay: Option<DevOverlay>,
}

/// Prepares the termination message of the next run of `container`: an
/// empty file on the host, its mount point, and where the log of the run
/// starts. `volume_mounts` are the container's other mounts; `private_dev`
/// says whether the host supports a private `/dev`. Problems leave the
/// container without a file (with a warning), never keep it from starting.
pub fn prepare(
    container: &Container,
    pod_dir: &Path,
    volume_mounts: &[BindMount],
    private_dev: bool,
) -> TerminationSetup {
    let log = pod_dir.join(format!("{}.log", container.name));
    let log_start = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let mut setup = TerminationSetup {
        source: TerminationSource {
            file: None,
            log: Some((log, log_start)),
            fallback_to_logs: container.termination_message_policy.as_deref() == Some("FallbackToLogsOnError"),
        },
        mount: None,
        dev_overlay: None,
    };
    let target = container.termination_message_path.as_deref().unwrap_or(DEFAULT_PATH);
    if target.is_empty() {
        return setup;
    }
    let target = PathBuf::from(target);
    let normal = target.is_absolute()
        && target.components().skip(1).all(|c| matches!(c, Component::Normal(_)))
        && target.components().count() > 1;
    if !normal {
        warn!(container = %container.name, path = %target.display(), "terminationMessagePath is not a plain absolute path; no termination message file");
        return setup;
    }
    let file = pod_dir.join(format!("{}.termination-log", container.name));
    let dev_dir = pod_dir.join("dev").join(&container.name);
    match place(&target, &file, volume_mounts, private_dev, &dev_dir) {
        Ok(Some(dev_overlay)) => setup.dev_overlay = dev_overlay,
        Ok(None) => return setup,
        Err(error) => {
            warn!(container = %container.name, path = %target.display(), error = &error as &dyn std::error::Error, "unable to provide the termination message file");
            return setup;
        }
    }
    setup.source.file = Some(file.clone());
    setup.mount = Some(BindMount { source: file, target, read_only: false });
    setup
}

/// Writes the empty message `file` and the mount point for `target`.
/// `Ok(None)`: no file for this container; `Ok(Some(overlay))`: mount it,
/// with that private `/dev` if any.
fn place(
    target: &Path,
    file: &Path,
    volume_mounts: &[BindMount],
    private_dev: bool,
    dev_dir: &Path,
) -> io::Result<Option<Option<DevOverlay>>> {
    // The deepest volume mount holding the target decides where it lives.
    let volume = volume_mounts
        .iter()
        .filter(|m| m.source.is_dir() && target.starts_with(&m.target) && target != m.target)
        .max_by_key(|m| m.target.components().count());
    let (mount_point, dev_overlay) = if let Some(volume) = volume {
        (volume.source.join(target.strip_prefix(&volume.target).unwrap_or(target)), None)
    } else if let Ok(relative) = target.strip_prefix("/dev") {
        if private_dev {
            let overlay = DevOverlay::under(dev_dir);
            overlay.create()?;
            (overlay.upper.join(relative), Some(overlay))
        } else if target.is_file() {
            (target.to_owned(), None)
        } else {
            // Nothing may be created in the host's /dev.
            return Ok(None);
        }
    } else {
        (target.to_owned(), None)
    };
    if mount_point.is_dir() {
        return Err(io::Error::other(format!("{} is a directory", mount_point.display())));
    }
    if !mount_point.exists() {
        if let Some(parent) = mount_point.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&mount_point, b"")?;
    }
    // A fresh, empty file for each run; any user of the container may write it.
    std::fs::write(file, b"")?;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o666))?;
    Ok(Some(dev_overlay))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(range: std::ops::Range<usize>) -> String {
        range.map(|i| format!("line {i}\n")).collect()
    }

    #[test]
    fn log_tail_keeps_the_last_80_lines() {
        let log = lines(0..100);
        let tail = log_tail(log.as_bytes(), MAX_LOG_LINES, MAX_LOG_BYTES);
        assert_eq!(std::str::from_utf8(tail).expect("utf-8"), lines(20..100));
    }

    #[test]
    fn log_tail_counts_a_last_line_without_newline() {
        let log = format!("{}last", lines(0..100));
        let tail = std::str::from_utf8(log_tail(log.as_bytes(), MAX_LOG_LINES, MAX_LOG_BYTES)).expect("utf-8");
        assert_eq!(tail, format!("{}last", lines(21..100)));
    }

    #[test]
    fn log_tail_keeps_at_most_2048_bytes_when_lines_are_long() {
        let line = format!("{}\n", "x".repeat(999));
        let log = format!("first\n{}{}{}end\n", line, line, line);
        let tail = log_tail(log.as_bytes(), MAX_LOG_LINES, MAX_LOG_BYTES);
        assert_eq!(tail.len(), MAX_LOG_BYTES);
        assert!(tail.ends_with(b"xx\nend\n"));
        assert_eq!(tail, &log.as_bytes()[log.len() - MAX_LOG_BYTES..]);
    }

    #[test]
    fn log_tail_of_short_logs_is_the_whole_log() {
        assert_eq!(log_tail(b"", MAX_LOG_LINES, MAX_LOG_BYTES), b"");
        assert_eq!(log_tail(b"\n", MAX_LOG_LINES, MAX_LOG_BYTES), b"\n");
        let log = lines(0..80);
        assert_eq!(log_tail(log.as_bytes(), MAX_LOG_LINES, MAX_LOG_BYTES), log.as_bytes());
        assert_eq!(log_tail(b"a\nb\nc\n", 2, 100), b"b\nc\n");
        assert_eq!(log_tail(b"a\nb\nc\n", 0, 100), b"");
    }

    #[test]
    fn a_character_cut_by_the_byte_limit_is_dropped() {
        let log = "é".repeat(1500);
        let tail = log_tail(log.as_bytes(), MAX_LOG_LINES, MAX_LOG_BYTES);
        assert_eq!(text(&[0xa9, b'o', b'k']), "ok");
        assert_eq!(text(tail), "é".repeat(1024));
    }

    #[test]
    fn runtime_and_termination_messages_are_joined_as_by_the_kubelet() {
        assert_eq!(combine(None, String::new()), None);
        assert_eq!(combine(Some(String::new()), "done".into()), Some("done".into()));
        assert_eq!(combine(Some("start failed".into()), String::new()), Some("start failed".into()));
        assert_eq!(combine(Some("start failed".into()), "why".into()), Some("start failed: why".into()));
    }

    /// A directory of its own below the system's temporary directory.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!("ferrocache-termination-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).expect("scratch dir");
            Self(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn source(scratch: &Scratch, message: Option<&str>, log: &str, start: u64, fallback: bool) -> TerminationSource {
        let file = message.map(|m| {
            let path = scratch.0.join("main.termination-log");
            std::fs::write(&path, m).expect("write message");
            path
        });
        let log_path = scratch.0.join("main.log");
        std::fs::write(&log_path, log).expect("write log");
        TerminationSource { file, log: Some((log_path, start)), fallback_to_logs: fallback }
    }

    #[test]
    fn message_is_the_end_of_the_file_and_falls_back_to_the_log_of_this_run_on_error() {
        let scratch = Scratch::new("message");
        let earlier = "earlier run\n";
        let log = format!("{earlier}starting\npreload failed: the object does not exist\n");
        let start = earlier.len() as u64;
        // The file wins when it has something, whatever the policy.
        assert_eq!(source(&scratch, Some("custom\n"), &log, start, true).message(1), "custom\n");
        let long = format!("{}end", "y".repeat(5000));
        assert_eq!(source(&scratch, Some(&long), &log, start, false).message(0), long[long.len() - 4096..]);
        // Empty file: the log of this run, but only for a failure with the fallback policy.
        let failed = source(&scratch, Some(""), &log, start, true);
        assert_eq!(failed.message(3), "starting\npreload failed: the object does not exist\n");
        assert_eq!(failed.message(0), "");
        assert_eq!(source(&scratch, Some(""), &log, start, false).message(3), "");
        // No file at all: the fallback still applies.
        assert_eq!(source(&scratch, None, &log, start, true).message(137), failed.message(3));
        let missing = TerminationSource { file: Some(scratch.0.join("gone")), ..failed.clone() };
        assert_eq!(missing.message(3), failed.message(3));
    }

    fn container(path: Option<&str>, policy: Option<&str>) -> Container {
        Container {
            name: "main".into(),
            termination_message_path: path.map(Into::into),
            termination_message_policy: policy.map(Into::into),
            ..Container::default()
        }
    }

    #[test]
    fn setup_creates_a_fresh_file_and_mount_points_inside_volumes_and_the_private_dev() {
        let scratch = Scratch::new("setup");
        let pod_dir = scratch.0.join("pod");
        let volume = scratch.0.join("volume");
        std::fs::create_dir_all(&pod_dir).expect("pod dir");
        std::fs::create_dir_all(&volume).expect("volume dir");
        std::fs::write(pod_dir.join("main.log"), "old run\n").expect("log");
        std::fs::write(pod_dir.join("main.termination-log"), "old message").expect("old message");

        let setup = prepare(&container(None, Some("FallbackToLogsOnError")), &pod_dir, &[], true);
        let file = pod_dir.join("main.termination-log");
        assert_eq!(setup.source.file.as_deref(), Some(file.as_path()));
        assert_eq!(std::fs::read(&file).expect("file"), b"");
        assert_eq!(setup.source.log, Some((pod_dir.join("main.log"), 8)));
        assert!(setup.source.fallback_to_logs);
        let overlay = setup.dev_overlay.expect("a private /dev for /dev/termination-log");
        assert!(overlay.upper.join("termination-log").is_file(), "mount point in the overlay");
        assert_eq!(setup.mount.map(|m| m.target), Some(PathBuf::from(DEFAULT_PATH)));

        let mounts = [BindMount { source: volume.clone(), target: "/data".into(), read_only: false }];
        let setup = prepare(&container(Some("/data/logs/why"), None), &pod_dir, &mounts, true);
        assert!(volume.join("logs/why").is_file(), "mount point inside the volume");
        assert!(setup.dev_overlay.is_none());
        assert!(!setup.source.fallback_to_logs);

        // Without a private /dev nothing is created in the host's /dev.
        let setup = prepare(&container(Some("/dev/ferrocache-no-such-file"), None), &pod_dir, &[], false);
        assert!(setup.mount.is_none() && setup.source.file.is_none());
        assert!(!Path::new("/dev/ferrocache-no-such-file").exists());

        let setup = prepare(&container(Some(""), Some("FallbackToLogsOnError")), &pod_dir, &[], true);
        assert!(setup.mount.is_none() && setup.source.log.is_some());
        let setup = prepare(&container(Some("relative/path"), None), &pod_dir, &[], true);
        assert!(setup.mount.is_none());
    }
}
