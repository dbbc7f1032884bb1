//! The fork method: a child process serializes the image from its
//! copy-on-write view of memory and streams it through a pipe to the parent,
//! which owns all I/O (file or S3).
//!
//! After `fork()` only the calling thread exists in the child, and any lock
//! another thread held stays locked forever there: the child must touch
//! nothing but the store (whose lock the forking thread holds), the
//! allocator (jemalloc is fork-safe) and the pipe. It never logs, never
//! touches the runtime, and leaves with `_exit`. It reports its key count
//! and checksum on a page it shares with the parent.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::encode::ImageSummary;
use crate::storage::Store;

/// The pipe's capacity: large enough that the child rarely waits on the
/// parent, which forwards the bytes to a file or S3. The child itself
/// buffers little (whatever it writes to is memory it copies).
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
    report: ReportPage,
}

/// What the child tells the parent: one anonymous page mapped shared
/// before the fork, written by the child just before it exits.
#[repr(C)]
struct ChildReport {
    keys: AtomicU64,
    crc64: AtomicU64,
}

/// The mapping holding a [`ChildReport`].
struct ReportPage {
    pointer: *mut ChildReport,
}

// SAFETY: the pointer is to a MAP_SHARED page used only through atomics.
unsafe impl Send for ReportPage {}

const REPORT_PAGE_BYTES: usize = 4096;

impl ReportPage {
    fn new() -> std::io::Result<Self> {
        // SAFETY: an anonymous shared mapping of one page, checked below.
        let pointer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                REPORT_PAGE_BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if pointer == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(ReportPage { pointer: pointer.cast() })
    }

    fn report(&self) -> &ChildReport {
        // SAFETY: the mapping lives until drop, is zero-initialized (a valid
        // pair of atomics) and page-aligned.
        unsafe { &*self.pointer }
    }

    fn summary(&self) -> ImageSummary {
        let report = self.report();
        ImageSummary { keys: report.keys.load(Ordering::Acquire), crc64: report.crc64.load(Ordering::Acquire) }
    }
}

impl Drop for ReportPage {
    fn drop(&mut self) {
        // SAFETY: unmapping the page mapped in `new`.
        unsafe {
            libc::munmap(self.pointer.cast(), REPORT_PAGE_BYTES);
        }
    }
}

/// Why the fork method failed.
#[derive(Debug, thiserror::Error)]
pub enum ForkError {
    #[error("unable to create the snapshot pipe: {0}")]
    Pipe(#[source] std::io::Error),
    #[error("unable to map the page the snapshot child reports on: {0}")]
    ReportPage(#[source] std::io::Error),
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
    produce: impl FnOnce(&Store, File) -> std::io::Result<ImageSummary>,
) -> Result<ForkedChild, ForkError> {
    let report = ReportPage::new().map_err(ForkError::ReportPage)?;
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
        child_main(store, write_end, report.report(), produce);
    }
    let fork_pause = started.elapsed();
    drop(write_end);
    Ok(ForkedChild { pid, output: File::from(read_end), fork_pause, report })
}

fn child_main(
    store: &Store,
    write_end: OwnedFd,
    report: &ChildReport,
    produce: impl FnOnce(&Store, File) -> std::io::Result<ImageSummary>,
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
    crate::alloc::disable_thread_cache();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| produce(store, File::from(write_end))));
    let code = match outcome {
        Ok(Ok(summary)) => {
            report.keys.store(summary.keys, Ordering::Release);
            report.crc64.store(summary.crc64, Ordering::Release);
            CHILD_OK
        }
        Ok(Err(_)) => CHILD_WRITE_FAILED,
        Err(_) => CHILD_PANICKED,
    };
    // SAFETY: _exit skips destructors and atexit handlers, which could take
    // locks held by threads that do not exist in the child.
    unsafe { libc::_exit(code) }
}

impl ForkedChild {
    /// Waits for the child to exit; on success, what it wrote.
    pub fn wait(&self) -> Result<ImageSummary, ForkError> {
        wait(self.pid).map(|()| self.report.summary())
    }
}

/// Waits for the child and turns its exit status into a result.
fn wait(pid: libc::pid_t) -> Result<(), ForkError> {
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

/// Reads how much memory a child has copied so far (its private dirty
/// pages), which is what copy-on-write costs.
///
/// It reads into one buffer it keeps: whatever the parent allocates while
/// the child lives may land on a page the child shares, and copy it.
pub struct CowMeter {
    path: std::path::PathBuf,
    text: String,
}

impl CowMeter {
    pub fn new(pid: libc::pid_t) -> Self {
        CowMeter { path: format!("/proc/{pid}/smaps_rollup").into(), text: String::with_capacity(4096) }
    }

    /// The child's copied bytes now; `None` once the child is gone.
    pub fn copied_bytes(&mut self) -> Option<u64> {
        self.text.clear();
        File::open(&self.path).and_then(|mut file| file.read_to_string(&mut self.text)).ok()?;
        private_dirty_bytes(&self.text)
    }
}

/// The `Private_Dirty` figure of an smaps_rollup text, in bytes.
fn private_dirty_bytes(smaps_rollup: &str) -> Option<u64> {
    smaps_rollup
        .lines()
        .find_map(|line| line.strip_prefix("Private_Dirty:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kilobytes| kilobytes.parse::<u64>().ok())
        .map(|kilobytes| kilobytes * 1024)
}
