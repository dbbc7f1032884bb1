//! Polling for new requests a little longer before the connection thread
//! sleeps.
//!
//! Where clients share the node's cores (a benchmark on the same machine, a
//! pod next door), each time the connection thread sleeps in `epoll_wait`
//! the next client's `send` must wake it, and the kernel charges that
//! wake-up to the client. Under steady load the gaps between requests are a
//! few microseconds, so the thread sleeps often and briefly. After a batch
//! has run, the poller keeps the runtime looking for events (each turn is
//! one `epoll_wait` that does not block) until `idle-poll-us` microseconds
//! pass without a batch; then it lets the thread sleep. An idle node costs
//! nothing, and a busy one sleeps a few times per thousand requests instead
//! of ~100 (docs/benchmarks.md, "Polling before sleeping"). Dragonfly's
//! proactor spins a few rounds before it blocks for the same reason.
//!
//! It stands down where polling would take CPU from work that needs it:
//! while a snapshot runs (the fork child, the forkless walker and the
//! upload want the other core), where the process has fewer than two cores
//! to run on (a container's CPU quota counts), and for a while after
//! windows that caught no batch (a client sending one command at a time).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::server::ServerState;

/// The poller's shared side: connections report batches here.
#[derive(Debug, Default)]
pub struct IdlePoll {
    /// Batches run so far; the poller polls on while this moves.
    batches: AtomicU64,
    /// The poller is polling or standing down, so a batch need not wake
    /// it; false while it waits for a batch.
    awake: AtomicBool,
    wake: Notify,
    /// Windows polled so far.
    windows: AtomicU64,
}

impl IdlePoll {
    pub fn new() -> Self {
        Self::default()
    }

    /// Called by a connection after each batch of commands: two relaxed
    /// atomics while the poller polls, one notify when it waits.
    pub fn batch_ran(&self) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        if !self.awake.load(Ordering::Relaxed) && !self.awake.swap(true, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    /// How many windows the poller has polled (each ends after
    /// `idle-poll-us` without a batch).
    pub fn windows_polled(&self) -> u64 {
        self.windows.load(Ordering::Relaxed)
    }
}

/// Whether this process may keep a core busy polling: it needs at least two
/// (`available_parallelism` honours affinity masks and cgroup CPU quotas).
pub fn has_a_core_to_spare() -> bool {
    std::thread::available_parallelism().is_ok_and(|cores| cores.get() >= 2)
}

/// Runs for the life of the server: after each batch, polls for events
/// until `idle-poll-us` passes without one, then waits for the next batch.
pub async fn poll_after_batches(state: Arc<ServerState>) {
    let poll = &state.idle_poll;
    let mut wasted_in_a_row = 0;
    loop {
        poll.wake.notified().await;
        let window = if wasted_in_a_row >= WASTED_BEFORE_STANDING_DOWN { Duration::ZERO } else { window(&state) };
        let seen = if window.is_zero() {
            // Stays marked awake meanwhile, so batches cost no wake-up and
            // the setting is looked up at most this often.
            wasted_in_a_row = 0;
            tokio::time::sleep(STAND_DOWN).await;
            poll.batches.load(Ordering::Acquire)
        } else {
            let (seen, caught_a_batch) = poll_until_quiet(&state, window).await;
            wasted_in_a_row = if caught_a_batch { 0 } else { wasted_in_a_row + 1 };
            seen
        };
        poll.awake.store(false, Ordering::Release);
        // A batch that ran between the last look and the store above saw
        // the poller busy and did not notify: look once more.
        if poll.batches.load(Ordering::Acquire) != seen && !poll.awake.swap(true, Ordering::AcqRel) {
            poll.wake.notify_one();
        }
    }
}

/// How long the poller stands down when it may not poll, or when polling
/// has not paid for a while.
const STAND_DOWN: Duration = Duration::from_millis(10);

/// Windows in a row that ended without a batch before the poller stands
/// down: a client that sends one command every 100 µs or so (a script, a
/// test suite) would otherwise cost a window of CPU per command. With it,
/// such a client costs at most 8 windows per 10 ms.
const WASTED_BEFORE_STANDING_DOWN: u32 = 8;

/// The setting, or zero where polling would take CPU that work needs.
fn window(state: &ServerState) -> Duration {
    // Asked first: a forkless walker holds the store lock in turns.
    if state.snapshots.in_progress() {
        return Duration::ZERO;
    }
    let configured = crate::script::busy::lock_unless_script(&state.store).map_or(0, |store| store.config.idle_poll_us);
    Duration::from_micros(configured)
}

/// Polls until `window` passes without a batch. Returns the batch count it
/// saw last, and whether any batch ran while it polled.
async fn poll_until_quiet(state: &ServerState, window: Duration) -> (u64, bool) {
    let poll = &state.idle_poll;
    poll.windows.fetch_add(1, Ordering::Relaxed);
    let first = poll.batches.load(Ordering::Relaxed);
    let mut seen = first;
    let mut deadline = Instant::now() + window;
    loop {
        // Another thread that wants this core gets it first (a no-op
        // where none does).
        std::thread::yield_now();
        // Tokio resumes a yielded task only after it has polled the
        // driver for events (without blocking, since a task is pending).
        tokio::task::yield_now().await;
        let batches = poll.batches.load(Ordering::Relaxed);
        if batches != seen {
            seen = batches;
            deadline = Instant::now() + window;
        } else if Instant::now() >= deadline || state.snapshots.in_progress() {
            return (seen, seen != first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::snapshot::method::Method;
    use crate::snapshot::RunningSnapshot;
    use crate::storage::{shared, Store};

    fn server_polling_for(micros: u64) -> Arc<ServerState> {
        let config = Config { idle_poll_us: micros, ..Config::default() };
        let state = Arc::new(ServerState::new(shared(Store::new(config)), 0, String::new()));
        tokio::spawn(poll_after_batches(Arc::clone(&state)));
        state
    }

    async fn pause(millis: u64) {
        tokio::time::sleep(Duration::from_millis(millis)).await;
    }

    #[tokio::test]
    async fn an_idle_node_does_not_poll() {
        let state = server_polling_for(1_000);
        pause(50).await;
        assert_eq!(state.idle_poll.windows_polled(), 0);
    }

    #[tokio::test]
    async fn a_batch_starts_one_window_that_lasts_while_batches_keep_coming() {
        let state = server_polling_for(100_000);
        for _ in 0..20 {
            state.idle_poll.batch_ran();
            pause(1).await;
        }
        assert_eq!(state.idle_poll.windows_polled(), 1, "the batches came within one window");
    }

    #[tokio::test]
    async fn the_poller_waits_again_once_a_window_passes_without_a_batch() {
        let state = server_polling_for(1_000);
        state.idle_poll.batch_ran();
        pause(50).await;
        assert!(!state.idle_poll.awake.load(Ordering::Acquire), "waiting for the next batch");
        state.idle_poll.batch_ran();
        pause(50).await;
        assert_eq!(state.idle_poll.windows_polled(), 2, "a later batch opens a new window");
    }

    #[tokio::test]
    async fn zero_turns_polling_off() {
        let state = server_polling_for(0);
        state.idle_poll.batch_ran();
        pause(50).await;
        assert_eq!(state.idle_poll.windows_polled(), 0);
    }

    #[tokio::test]
    async fn no_polling_while_a_snapshot_runs() {
        let state = server_polling_for(1_000);
        let snapshot = RunningSnapshot {
            method: Method::Forkless,
            reason: "test".into(),
            destination: String::new(),
            started: std::time::Instant::now(),
            child_pid: None,
        };
        state.snapshots.begin(snapshot).expect("no other snapshot runs");
        state.idle_poll.batch_ran();
        pause(50).await;
        assert_eq!(state.idle_poll.windows_polled(), 0);
    }

    #[tokio::test]
    async fn the_poller_stands_down_after_windows_that_caught_nothing() {
        let state = server_polling_for(1_000);
        for _ in 0..WASTED_BEFORE_STANDING_DOWN {
            state.idle_poll.batch_ran();
            pause(30).await;
        }
        assert_eq!(state.idle_poll.windows_polled(), u64::from(WASTED_BEFORE_STANDING_DOWN));
        state.idle_poll.batch_ran();
        pause(2).await;
        assert_eq!(
            state.idle_poll.windows_polled(),
            u64::from(WASTED_BEFORE_STANDING_DOWN),
            "a client one command at a time gets no window for a while"
        );
        pause(STAND_DOWN.as_millis() as u64 + 5).await;
        state.idle_poll.batch_ran();
        pause(2).await;
        assert_eq!(state.idle_poll.windows_polled(), u64::from(WASTED_BEFORE_STANDING_DOWN) + 1, "then polls again");
    }
}
