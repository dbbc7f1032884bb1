//! Point-in-time snapshots as Redis RDB files, by fork or forkless.
//!
//! A snapshot has explicit stages:
//! 1. **decide**: [`method::choose`] picks fork or forkless from memory facts;
//! 2. **start** (under the store lock): fork a child, or begin a forkless
//!    capture (a new epoch);
//! 3. **stream**: the image flows to a sink that owns all I/O, a local file
//!    or S3 ([`remote`]), through bounded buffers: the fork child's pipe
//!    (`forward` splices it straight into a file) and the chunk channel of
//!    an upload. The bounds are the back-pressure: a slow sink slows the
//!    producer, never grows memory;
//! 4. **finalize**: the sink commits (fsync and rename, or complete the
//!    upload) and a [`SnapshotReport`] records method, reason, duration,
//!    bytes, keys, checksum, peak extra memory and outcome for INFO.
//!
//! Every image is a complete RDB v10 file: magic, aux fields, databases,
//! EOF and the CRC64 of all of it. The image holds the keys alive at the
//! snapshot's start, with their TTLs.

pub mod encode;
pub mod fork;
mod forward;
pub mod load;
pub mod method;
pub mod remote;
pub mod sink;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{error, info, info_span};

use crate::storage::capture::StepBudget;
use crate::storage::{SharedStore, Store};
use method::{Decision, Method};
use sink::Trailer;
pub use sink::{CommitInfo, Sink, SinkError};

/// Chunks in flight between producer and a channel sink (each up to ~1 MiB).
pub const CHANNEL_CHUNKS: usize = 8;
/// The forkless walker hands on its output once this much is produced.
const WALK_CHUNK_BYTES: usize = 1 << 20;
/// The forkless walker hands the store lock back after holding it this
/// long in one step (wherever it is, inside a shard too). A client that
/// arrives during a step waits at most this long, and the connection
/// threads, which check for new input every few dozen tasks, keep noticing
/// it within a few milliseconds.
const WALK_STEP_BUDGET: Duration = Duration::from_micros(100);
/// While clients are being served, the walker rests this many times as
/// long as its last step held the lock before it takes the next one: it
/// then holds the store at most a quarter of the time, so a snapshot under
/// load takes longer but costs the clients little. With no clients it runs
/// flat out. Clients count as served when commands completed since the
/// last step, or when a connection thread is awake: one the scheduler keeps
/// off the CPU completes nothing, and a walker that ran flat out then kept
/// it off (stalls of 92-600 ms beside a busy loop on two cores).
const WALKER_REST_FACTOR: u32 = 3;
/// The niceness the forkless walker runs at. It is a background job: where
/// the node shares few cores with its clients, a walker at the clients'
/// priority takes whole time slices from the thread serving them (seen as
/// waits of 10 ms and more for the store lock on two cores); at a lower one
/// the kernel runs it on the CPU time they leave, which on an idle node is
/// all of it.
const WALKER_NICE: libc::c_int = 10;
/// Above this many bytes produced but not yet handed on, writes to the
/// store wait (ElastiCache's forkless method delays writes rather than
/// spend memory).
pub const FORKLESS_BACKLOG_LIMIT: usize = 32 << 20;

/// The result of one snapshot, as INFO persistence reports it.
#[derive(Debug, Clone)]
pub struct SnapshotReport {
    pub method: Method,
    pub reason: String,
    pub destination: String,
    pub started_unix_ms: i64,
    pub duration: Duration,
    pub bytes: u64,
    pub keys: u64,
    pub crc64: u64,
    /// Copy-on-write (fork) or unsent buffered output (forkless), at peak.
    pub peak_extra_memory: u64,
    /// How long `fork()` paused the node (fork method).
    pub fork_pause: Duration,
    pub outcome: Result<(), String>,
}

/// The snapshot in progress.
#[derive(Debug, Clone)]
pub struct RunningSnapshot {
    pub method: Method,
    pub reason: String,
    pub destination: String,
    pub started: Instant,
    pub child_pid: Option<i32>,
}

/// Snapshot bookkeeping shared by commands, INFO and the drivers.
#[derive(Debug, Default)]
pub struct SnapshotState {
    inner: parking_lot::Mutex<SnapshotStatus>,
    /// Live copy-on-write of the running fork child, for INFO.
    pub current_cow: AtomicU64,
}

/// What INFO and LASTSAVE read.
#[derive(Debug, Default, Clone)]
pub struct SnapshotStatus {
    pub running: Option<RunningSnapshot>,
    pub last: Option<SnapshotReport>,
    /// Unix seconds of the last successful save (LASTSAVE).
    pub last_success_unix: i64,
    pub saves: u64,
}

impl SnapshotState {
    pub fn new() -> Self {
        let status = SnapshotStatus { last_success_unix: crate::util::now_ms() / 1000, ..SnapshotStatus::default() };
        SnapshotState { inner: parking_lot::Mutex::new(status), current_cow: AtomicU64::new(0) }
    }

    pub fn status(&self) -> SnapshotStatus {
        self.inner.lock().clone()
    }

    pub fn in_progress(&self) -> bool {
        self.inner.lock().running.is_some()
    }

    pub(crate) fn begin(&self, running: RunningSnapshot) -> Result<(), StartError> {
        let mut status = self.inner.lock();
        if status.running.is_some() {
            return Err(StartError::AlreadyRunning);
        }
        status.running = Some(running);
        Ok(())
    }

    fn set_child(&self, pid: i32) {
        if let Some(running) = self.inner.lock().running.as_mut() {
            running.child_pid = Some(pid);
        }
    }

    fn complete(&self, report: SnapshotReport) {
        let mut status = self.inner.lock();
        status.running = None;
        if report.outcome.is_ok() {
            status.last_success_unix = crate::util::now_ms() / 1000;
            status.saves += 1;
        }
        status.last = Some(report);
        self.current_cow.store(0, Ordering::Relaxed);
    }

    /// Records a foreground SAVE.
    pub fn record_foreground(&self, report: SnapshotReport) {
        self.complete(report);
    }
}

/// Called with the report when a background snapshot ends.
pub type OnDone = Box<dyn FnOnce(&SnapshotReport) + Send>;

/// Why a snapshot could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("Background save already in progress")]
    AlreadyRunning,
    #[error("failed to start the snapshot: {0}")]
    Fork(#[from] fork::ForkError),
    #[error("failed to start the snapshot stream: {0}")]
    Encode(String),
    #[error("failed to open the snapshot destination: {0}")]
    Sink(#[from] SinkError),
}

/// Everything a background snapshot needs, cloned into its tasks.
#[derive(Clone)]
pub struct SnapshotContext {
    pub store: SharedStore,
    pub state: Arc<SnapshotState>,
}

/// Starts a background snapshot to `sink`, choosing the method by memory
/// (unless `forced`). The caller holds the store lock and passes the store.
/// Returns the decision; progress and the outcome go to `SnapshotState`.
pub fn start_background(
    context: &SnapshotContext,
    store: &mut Store,
    sink: Sink,
    forced: Option<Method>,
    on_done: Option<OnDone>,
) -> Result<Decision, StartError> {
    let decision = match forced {
        Some(method) => Decision { method, reason: format!("method {} requested", method.name()) },
        None => method::choose(
            store.config.snapshot_method,
            store.config.reserved_memory_percent,
            &method::current_facts(store.config.maxmemory),
        ),
    };
    let destination = sink.describe();
    context.state.begin(RunningSnapshot {
        method: decision.method,
        reason: decision.reason.clone(),
        destination: destination.clone(),
        started: Instant::now(),
        child_pid: None,
    })?;
    let started_unix_ms = crate::util::now_ms();
    let dirty_at_start = store.dirty;
    let result = match decision.method {
        Method::Fork => start_fork(context, store, sink, &decision, started_unix_ms, dirty_at_start, on_done),
        Method::Forkless => start_forkless(context, store, sink, &decision, started_unix_ms, dirty_at_start, on_done),
    };
    if let Err(error) = result {
        context.state.complete(SnapshotReport {
            method: decision.method,
            reason: decision.reason.clone(),
            destination,
            started_unix_ms,
            duration: Duration::ZERO,
            bytes: 0,
            keys: 0,
            crc64: 0,
            peak_extra_memory: 0,
            fork_pause: Duration::ZERO,
            outcome: Err(error.to_string()),
        });
        return Err(error);
    }
    Ok(decision)
}

fn start_fork(
    context: &SnapshotContext,
    store: &mut Store,
    mut sink: Sink,
    decision: &Decision,
    started_unix_ms: i64,
    dirty_at_start: u64,
    on_done: Option<OnDone>,
) -> Result<(), StartError> {
    let now_ms = store.now_ms;
    let child =
        fork::spawn(store, move |store, pipe| encode::write_image(store, pipe, now_ms).map_err(std::io::Error::other))?;
    context.state.set_child(child.pid);
    let state = Arc::clone(&context.state);
    let store_handle = Arc::clone(&context.store);
    let decision = decision.clone();
    let started = Instant::now();
    let spawned = std::thread::Builder::new().name("snapshot-fork".into()).spawn(move || {
        let span = info_span!("snapshot", method = "fork", pid = child.pid, destination = %sink.describe());
        let _entered = span.enter();
        crate::alloc::disable_thread_cache();
        let mut meter = fork::CowMeter::new(child.pid);
        let forwarded = forward::forward(&child.output, &mut sink, &mut meter, &state.current_cow);
        let (summary, outcome) = match forwarded.outcome {
            Ok(()) => match child.wait() {
                Ok(summary) => {
                    let info = sink::CommitInfo::new(summary.crc64, forwarded.bytes, summary.keys, Method::Fork.name());
                    (summary, sink.commit(info).map(|_| ()).map_err(|error| error.to_string()))
                }
                Err(error) => {
                    sink.abort();
                    (encode::ImageSummary::default(), Err(error.to_string()))
                }
            },
            Err(error) => {
                fork::kill(child.pid);
                let _ = child.wait();
                sink.abort();
                (encode::ImageSummary::default(), Err(error.to_string()))
            }
        };
        let report = SnapshotReport {
            method: Method::Fork,
            reason: decision.reason,
            destination: String::new(),
            started_unix_ms,
            duration: started.elapsed(),
            bytes: forwarded.bytes,
            keys: summary.keys,
            crc64: summary.crc64,
            peak_extra_memory: forwarded.peak_cow,
            fork_pause: child.fork_pause,
            outcome,
        };
        finish(&state, &store_handle, report, dirty_at_start, on_done);
    });
    spawned.map(|_| ()).map_err(|error| StartError::Encode(format!("cannot start the snapshot thread: {error}")))
}

fn start_forkless(
    context: &SnapshotContext,
    store: &mut Store,
    sink: Sink,
    decision: &Decision,
    started_unix_ms: i64,
    dirty_at_start: u64,
    on_done: Option<OnDone>,
) -> Result<(), StartError> {
    let encoder = encode::StreamEncoder::new(&store.config, store.now_ms)
        .map_err(|error| StartError::Encode(error.to_string()))?;
    let buffer = encoder.buffer();
    // Fixed at start (`io-threads`); counted once, not on every step.
    let connection_threads = store.config.connection_threads();
    store.begin_capture(Box::new(encoder));
    let shared = Arc::clone(&context.store);
    let state = Arc::clone(&context.state);
    let decision = decision.clone();
    let spawned = std::thread::Builder::new().name("snapshot-walker".into()).spawn(move || {
        let span = info_span!("snapshot", method = "forkless", destination = %sink.describe());
        let _entered = span.enter();
        lower_thread_priority(WALKER_NICE);
        let started = Instant::now();
        let (bytes, crc64, keys, peak, outcome) = walk(&shared, &buffer, sink, connection_threads);
        let report = SnapshotReport {
            method: Method::Forkless,
            reason: decision.reason,
            destination: String::new(),
            started_unix_ms,
            duration: started.elapsed(),
            bytes,
            keys,
            crc64,
            peak_extra_memory: peak,
            fork_pause: Duration::ZERO,
            outcome,
        };
        finish(&state, &shared, report, dirty_at_start, on_done);
    });
    match spawned {
        Ok(_) => Ok(()),
        Err(error) => {
            store.capture = None;
            Err(StartError::Encode(format!("cannot start the snapshot thread: {error}")))
        }
    }
}

/// Sets the calling thread's niceness (Linux applies `setpriority` on a
/// thread id to that thread alone). Failing leaves the default priority,
/// which costs latency, not correctness.
fn lower_thread_priority(nice: libc::c_int) {
    // SAFETY: gettid and setpriority only read and change this thread's
    // scheduling attributes.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice) };
    if result != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "unable to lower the snapshot thread's priority");
    }
}

/// What one walker step did.
enum WalkStep {
    /// More to visit.
    Continue { keys: u64, peak: u64 },
    /// The walk is complete and the stream finished (or failed to).
    Done { keys: u64, peak: u64, finished: Result<(), String> },
    /// The capture was cancelled under us.
    Lost,
}

/// Runs one step under the lock: serializes entries until the step's time
/// budget or chunk size is reached.
fn walk_once(store: &mut Store) -> WalkStep {
    let Store { dbs, capture, .. } = store;
    let Some(active) = capture.as_mut() else {
        return WalkStep::Lost;
    };
    let budget = StepBudget { deadline: Instant::now() + WALK_STEP_BUDGET, max_pending_bytes: WALK_CHUNK_BYTES };
    let more = active.walk_step(dbs, &budget);
    let peak = active.peak_pending_bytes as u64;
    let keys = active.keys;
    if more {
        return WalkStep::Continue { keys, peak };
    }
    let finished = active.finish().map(|_| ());
    *capture = None;
    WalkStep::Done { keys, peak, finished }
}

/// Bytes, checksum, keys, peak extra memory and outcome of a walk.
type WalkOutcome = (u64, u64, u64, u64, Result<(), String>);

/// The forkless walker: visits the keyspace a step at a time under the
/// lock, handing each step's output to the sink outside it.
fn walk(shared: &SharedStore, buffer: &encode::ChunkBuffer, mut sink: Sink, connection_threads: usize) -> WalkOutcome {
    let mut tail = Trailer::default();
    let mut total = 0u64;
    let mut commands_after_last_step = None;
    loop {
        let mut guard = shared.lock();
        let clients_active = commands_after_last_step.is_some_and(|count| guard.stats.commands_processed != count)
            || crate::server::connection_threads_busy(connection_threads);
        let step_started = Instant::now();
        let step = walk_once(&mut guard);
        let held = step_started.elapsed();
        commands_after_last_step = Some(guard.stats.commands_processed);
        // Hand the lock straight to a waiting client: the walker must not
        // starve the node.
        parking_lot::MutexGuard::unlock_fair(guard);
        let rest_until = step_started + held + held * WALKER_REST_FACTOR;
        let chunk = buffer.take();
        if !chunk.is_empty() {
            tail.observe(&chunk);
            total += chunk.len() as u64;
            if let Err(error) = sink.write(chunk) {
                abandon_capture(shared);
                sink.abort();
                let (keys, peak) = match step {
                    WalkStep::Continue { keys, peak } | WalkStep::Done { keys, peak, .. } => (keys, peak),
                    WalkStep::Lost => (0, 0),
                };
                return (total, 0, keys, peak, Err(error.to_string()));
            }
        }
        match step {
            WalkStep::Continue { .. } => {
                if clients_active {
                    std::thread::sleep(rest_until.saturating_duration_since(Instant::now()));
                }
            }
            WalkStep::Lost => {
                sink.abort();
                return (total, 0, 0, 0, Err("the snapshot was cancelled".into()));
            }
            WalkStep::Done { keys, peak, finished: Ok(()) } => {
                let info = sink::CommitInfo::new(tail.crc64(), total, keys, Method::Forkless.name());
                return match sink.commit(info) {
                    Ok(_) => (total, tail.crc64(), keys, peak, Ok(())),
                    Err(error) => (total, tail.crc64(), keys, peak, Err(error.to_string())),
                };
            }
            WalkStep::Done { keys, peak, finished: Err(error) } => {
                sink.abort();
                return (total, 0, keys, peak, Err(format!("failed to encode the snapshot: {error}")));
            }
        }
    }
}

/// Stops a capture whose output can no longer go anywhere.
fn abandon_capture(shared: &SharedStore) {
    shared.lock().capture = None;
}

fn finish(
    state: &SnapshotState,
    store: &SharedStore,
    mut report: SnapshotReport,
    dirty_at_start: u64,
    on_done: Option<OnDone>,
) {
    if let Some(running) = state.status().running {
        report.destination = running.destination;
    }
    match &report.outcome {
        Ok(()) => {
            let mut store = store.lock();
            store.dirty = store.dirty.saturating_sub(dirty_at_start);
            drop(store);
            info!(
                method = report.method.name(),
                bytes = report.bytes,
                keys = report.keys,
                duration_ms = report.duration.as_millis() as u64,
                peak_extra_memory = report.peak_extra_memory,
                "snapshot complete"
            );
        }
        Err(message) => error!(method = report.method.name(), error = %message, "snapshot failed"),
    }
    if let Some(callback) = on_done {
        callback(&report);
    }
    state.complete(report);
}

/// Writes the store to `sink` in the foreground, holding the lock (SAVE).
pub fn save_foreground(store: &Store, mut sink: Sink) -> Result<SnapshotReport, String> {
    let started = Instant::now();
    let started_unix_ms = crate::util::now_ms();
    let destination = sink.describe();
    let mut writer = sink::SinkWriter::new(&mut sink);
    let keys = encode::write_image(store, &mut writer, store.now_ms).map_err(|error| error.to_string());
    let (bytes, crc64) = writer.totals();
    let keys = match keys {
        Ok(summary) => summary.keys,
        Err(error) => {
            sink.abort();
            return Err(error);
        }
    };
    sink.commit(sink::CommitInfo::new(crc64, bytes, keys, "save")).map_err(|error| error.to_string())?;
    Ok(SnapshotReport {
        method: Method::Forkless,
        reason: "SAVE runs in the foreground".into(),
        destination,
        started_unix_ms,
        duration: started.elapsed(),
        bytes,
        keys,
        crc64,
        peak_extra_memory: 0,
        fork_pause: Duration::ZERO,
        outcome: Ok(()),
    })
}

/// Whether writes must wait for a forkless snapshot to drain its output.
pub fn writes_must_wait(store: &Store) -> bool {
    store.capture.as_ref().is_some_and(|capture| capture.pending_bytes() > FORKLESS_BACKLOG_LIMIT)
}
