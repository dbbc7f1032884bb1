//! The fork method: a child process serializes the image from its
//! copy-on-write view of memory and streams it through a pipe to the parent,
//! which owns all I/O (file or S3).
//!
//! After `fork()` only the calling thread exists in the child, and any lock
//! another thread held stays locked forever there: the child must touch
//! nothing but the store (whose lock the forking thread holds), the
//! allocator (jemalloc is fork-safe) and the pipe. It never logs, never
//! touches the runtime, and leaves with `_exit`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::storage::Store;

/// The child's write buffer. Whatever the child allocates is private dirty
/// memory, counted with its copy-on-write; the pipe, enlarged to
/// [`PIPE_BYTES`] in the kernel, does the buffering instead.
const CHILD_BUFFER_BYTES: usize = 64 * 1024;
/// The pipe's capacity: large enough that the child rarely waits on the
/// parent, which forwards the bytes to a file or S3.
const PIPE_BYTES: libc::c_int = 1 << 20;

/// Exit codes of the child.
const CHILD_OK: i32 = 0;
const CHILD_WRITE_FAILED: i32 = 1;
const CHILD_PANICKED: i32 = 2;

/// A running snapshot child.
pub struct ForkedChild {
    pub pid: libc::pid_t,
    /// Read end of the pipe carrying the image.
    pub output: File,
    /// How long `fork()` itself paused the node (page-table copy).
    pub fork_pause: Duration,
}

/// Why the fork method failed.
#[derive(Debug, thiserror::Error)]
pub enum ForkError {
    #[error("unable to create the snapshot pipe: {0}")]
    Pipe(#[source] std::io::Error),
    #[error("unable to fork the snapshot child: {0}")]
    Fork(#[source] std::io::Error),
    #[error("unable to wait for the snapshot child {pid}: {source}")]
    Wait {
        pid: libc::pid_t,
        #[source]
        source: std::io::Error,
    },
    #[error("the snapshot child {pid} failed: {reason}")]
    ChildFailed { pid: libc::pid_t, reason: String },
}

/// Forks a child that writes the image produced by `produce` to a pipe.
///
/// The caller must hold the store lock (so the data is quiescent and the
/// lock is held by this very thread, which is the one that survives in the
/// child). `produce` runs in the child only.
pub fn spawn(
    store: &Store,
    produce: impl FnOnce(&Store, &mut dyn Write) -> std::io::Result<()>,
) -> Result<ForkedChild, ForkError> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array we pass.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(ForkError::Pipe(std::io::Error::last_os_error()));
    }
    // SAFETY: both descriptors were just created and are owned here only.
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own. A refusal (a lower
    // pipe-max-size) keeps the default capacity, which only costs speed.
    unsafe {
        libc::fcntl(write_end.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES);
    }
    let started = Instant::now();
    // SAFETY: see the module documentation for what the child may do.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(ForkError::Fork(std::io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(read_end);
        child_main(store, write_end, produce);
    }
    let fork_pause = started.elapsed();
    drop(write_end);
    Ok(ForkedChild { pid, output: File::from(read_end), fork_pause })
}

fn child_main(
    store: &Store,
    write_end: OwnedFd,
    produce: impl FnOnce(&Store, &mut dyn Write) -> std::io::Result<()>,
) -> ! {
    // SAFETY: plain libc calls in the single-threaded child.
    unsafe {
        // The runtime's signal handlers write to the parent's pipes: restore
        // defaults so a signal meant for the child stays with the child.
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGHUP, libc::SIG_DFL);
        // Die with the parent rather than linger as an orphan.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut writer = BufWriter::with_capacity(CHILD_BUFFER_BYTES, File::from(write_end));
        produce(store, &mut writer).and_then(|()| writer.flush())
    }));
    let code = match outcome {
        Ok(Ok(())) => CHILD_OK,
        Ok(Err(_)) => CHILD_WRITE_FAILED,
        Err(_) => CHILD_PANICKED,
    };
    // SAFETY: _exit skips destructors and atexit handlers, which could take
    // locks held by threads that do not exist in the child.
    unsafe { libc::_exit(code) }
}

/// Waits for the child and turns its exit status into a result.
pub fn wait(pid: libc::pid_t) -> Result<(), ForkError> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid status pointer.
        let result = unsafe { libc::waitpid(pid, &mut status, 0) };
        if result == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(ForkError::Wait { pid, source: error });
        }
    }
    if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            CHILD_OK => Ok(()),
            CHILD_WRITE_FAILED => {
                Err(ForkError::ChildFailed { pid, reason: "writing the image to the pipe failed".into() })
            }
            CHILD_PANICKED => Err(ForkError::ChildFailed { pid, reason: "the serializer panicked".into() }),
            code => Err(ForkError::ChildFailed { pid, reason: format!("exited with code {code}") }),
        }
    } else if libc::WIFSIGNALED(status) {
        Err(ForkError::ChildFailed { pid, reason: format!("killed by signal {}", libc::WTERMSIG(status)) })
    } else {
        Err(ForkError::ChildFailed { pid, reason: format!("ended with status {status}") })
    }
}

/// Kills a child whose output is no longer wanted.
pub fn kill(pid: libc::pid_t) {
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// Memory the child has copied so far (its private dirty pages), which is
/// what copy-on-write costs; `None` once the child is gone.
pub fn copied_bytes(pid: libc::pid_t) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("Private_Dirty:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kilobytes| kilobytes.parse::<u64>().ok())
        .map(|kilobytes| kilobytes * 1024)
}
