//! The running script, as other connections see it.
//!
//! A script runs under the store lock, as any command does, and may run for
//! long. Redis answers other clients `-BUSY` once a script has run past
//! `busy-reply-threshold` and lets them send `SCRIPT KILL` or `SHUTDOWN
//! NOSAVE`. Here connections must not wait on the store lock while a script
//! holds it (a tokio worker parked on the lock serves no one, and with a few
//! workers nobody would be left to take the `SCRIPT KILL`), so the script
//! publishes that it runs in atomics, and connections check them before they
//! take the lock: [`lock_unless_script`] is the store lock for everyone but
//! the script, and [`answer`] what a connection does with a command while
//! the script runs.
//!
//! The state is process-wide, as in Redis (one script runs at a time: it
//! holds the one store lock).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use parking_lot::MutexGuard;

use crate::client::Client;
use crate::cmd::{self, flags, is};
use crate::protocol::Reply;
use crate::server::ServerState;
use crate::storage::{Key, SharedStore, Store};

/// Redis's `shared.slowevalerr`.
pub const BUSY_ERROR: &str = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";

/// Set while a script runs: the one load on every connection's path.
static RUNNING: AtomicBool = AtomicBool::new(false);
/// When the running script started, in milliseconds since [`EPOCH`].
static STARTED_MS: AtomicU64 = AtomicU64::new(0);
/// `busy-reply-threshold` when the script started (0: never busy).
static THRESHOLD_MS: AtomicU64 = AtomicU64::new(0);
/// SCRIPT KILL (or SHUTDOWN NOSAVE) asked the script to stop.
static KILL_REQUESTED: AtomicBool = AtomicBool::new(false);
/// The script ran a write command: SCRIPT KILL must refuse (UNKILLABLE),
/// since stopping it would leave half its writes.
static WROTE: AtomicBool = AtomicBool::new(false);
/// What a connection accepted while the script runs needs from the
/// configuration, which it cannot read from the locked store.
static CONNECTION_SETTINGS: parking_lot::Mutex<ConnectionSettings> =
    parking_lot::Mutex::new(ConnectionSettings { maxclients: 10000, requirepass_set: false, proto_max_bulk_len: 0 });
/// The monotonic clock's origin for [`STARTED_MS`].
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// How long a connection that finds the store taken tries again later to
/// see whether a script took it.
const LOCK_RETRY: Duration = Duration::from_millis(5);

/// Configuration a new connection reads before its first command.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSettings {
    pub maxclients: u64,
    pub requirepass_set: bool,
    pub proto_max_bulk_len: u64,
}

impl ConnectionSettings {
    pub fn of(store: &Store) -> Self {
        Self {
            maxclients: store.config.maxclients,
            requirepass_set: store.config.requirepass.is_some(),
            proto_max_bulk_len: store.config.proto_max_bulk_len,
        }
    }
}

fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

/// True while a script runs (a relaxed load: the hot path's only cost).
#[inline]
pub fn script_running() -> bool {
    RUNNING.load(Ordering::Relaxed)
}

/// True once the running script is past `busy-reply-threshold`: other
/// clients get `-BUSY` instead of waiting.
pub fn timed_out() -> bool {
    if !script_running() {
        return false;
    }
    let threshold = THRESHOLD_MS.load(Ordering::Acquire);
    threshold > 0 && now_ms().saturating_sub(STARTED_MS.load(Ordering::Acquire)) >= threshold
}

/// Takes the store lock, unless a script holds it (or takes it while this
/// waits): then `None`, and the caller must not block.
///
/// Without a script this is `lock()` plus one relaxed load; a connection
/// that finds the lock taken by an ordinary command waits for it as before,
/// looking every few milliseconds whether a script is the holder.
#[inline]
pub fn lock_unless_script(store: &SharedStore) -> Option<MutexGuard<'_, Store>> {
    loop {
        if script_running() {
            return None;
        }
        if let Some(guard) = store.try_lock_for(LOCK_RETRY) {
            return Some(guard);
        }
    }
}

/// Settings for a connection accepted while a script holds the store.
pub fn connection_settings() -> ConnectionSettings {
    *CONNECTION_SETTINGS.lock()
}

/// Marks a script as running until dropped. Made by the script engine
/// under the store lock.
pub struct RunningScript(());

impl RunningScript {
    pub fn start(store: &Store) -> Self {
        *CONNECTION_SETTINGS.lock() = ConnectionSettings::of(store);
        THRESHOLD_MS.store(store.config.busy_reply_threshold, Ordering::Release);
        STARTED_MS.store(now_ms(), Ordering::Release);
        KILL_REQUESTED.store(false, Ordering::Release);
        WROTE.store(false, Ordering::Release);
        RUNNING.store(true, Ordering::Release);
        RunningScript(())
    }

    /// The script is about to run a write command.
    pub fn wrote(&self) {
        WROTE.store(true, Ordering::Release);
    }

    pub fn has_written(&self) -> bool {
        WROTE.load(Ordering::Acquire)
    }
}

impl Drop for RunningScript {
    fn drop(&mut self) {
        RUNNING.store(false, Ordering::Release);
        KILL_REQUESTED.store(false, Ordering::Release);
    }
}

/// Runs a script's work on the current thread with the tokio worker's
/// duties handed to another thread (`block_in_place`), so connections keep
/// being served while the script holds the store (however few workers the
/// runtime has: with one, nothing else would run). Outside a multi-thread
/// runtime (tests, tools) the work simply runs.
pub fn off_the_runtime<R>(work: impl FnOnce() -> R) -> R {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// The server is stopping: a running script ends at its next hook, written
/// or not (the process exits; nothing waits for the rest of it).
pub fn stop_for_shutdown() {
    if script_running() {
        KILL_REQUESTED.store(true, Ordering::Release);
    }
}

/// Checked by the Lua instruction hook.
pub fn kill_requested() -> bool {
    KILL_REQUESTED.load(Ordering::Acquire)
}

/// SCRIPT KILL while a script runs: the reply Redis gives.
fn kill(reply: &mut Reply) {
    if WROTE.load(Ordering::Acquire) {
        reply.error(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either \
             wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
        );
    } else {
        KILL_REQUESTED.store(true, Ordering::Release);
        reply.ok();
    }
}

/// What a connection did with a command while a script runs.
pub enum Answer {
    /// The reply is written.
    Answered,
    /// The reply is written; close the connection (QUIT, SHUTDOWN).
    Close,
    /// The command needs the store and is allowed while busy (WATCH, AUTH,
    /// HELLO, RESET...): it must wait for the script to end.
    NeedsStore,
}

/// Handles one command of a connection while a script past the threshold
/// holds the store, as Redis's `processCommand` does during a busy script:
/// commands flagged `allow-busy` run (MULTI, DISCARD, WATCH, QUIT, SCRIPT
/// KILL, SHUTDOWN NOSAVE...), every other one gets `-BUSY` and fails the
/// client's MULTI; EXEC answers `-EXECABORT` and ends the transaction.
pub fn answer(client: &mut Client, args: &[&[u8]], reply: &mut Reply, server: &ServerState) -> Answer {
    // Redis checks the command's existence, arity and authentication
    // before the busy state.
    let refuse = |client: &mut Client, reply: &mut Reply, error: &str| {
        if let Some(multi) = client.multi.as_mut() {
            multi.aborted = true;
        }
        reply.error(error);
        Answer::Answered
    };
    let Some(registered) = cmd::lookup_registered(args[0]) else {
        return refuse(client, reply, &cmd::unknown_command(args).to_string());
    };
    let command = registered.command;
    if !client.authenticated && !command.has(flags::NO_AUTH) {
        registered.stats.rejected_calls.fetch_add(1, Ordering::Relaxed);
        return refuse(client, reply, &cmd::CmdError::NoAuth.to_string());
    }
    if !command.arity_ok(args.len()) {
        registered.stats.rejected_calls.fetch_add(1, Ordering::Relaxed);
        return refuse(client, reply, &cmd::CmdError::WrongArity(name_of(command)).to_string());
    }
    let name = command.name;
    // Commands allowed while busy are queued inside MULTI, as any other
    // (MULTI, EXEC, DISCARD, WATCH and QUIT excepted).
    let subcommand = args.get(1).copied().unwrap_or_default();
    let allowed_while_busy =
        matches!(name, "shutdown" | "auth" | "hello" | "unwatch") || (name == "script" && is(subcommand, "kill"));
    if allowed_while_busy && client.multi.is_some() && !command.has(flags::NO_QUEUE) {
        if command.has(flags::NO_MULTI) {
            return refuse(client, reply, "ERR Command not allowed inside a transaction");
        }
        if let Some(multi) = client.multi.as_mut() {
            multi.queued.push(args.iter().map(|arg| arg.to_vec()).collect());
        }
        reply.simple("QUEUED");
        return Answer::Answered;
    }
    let reject = |client: &mut Client, reply: &mut Reply| {
        registered.stats.rejected_calls.fetch_add(1, Ordering::Relaxed);
        if let Some(multi) = client.multi.as_mut() {
            multi.aborted = true;
        }
        reply.error(BUSY_ERROR);
    };
    match name {
        "script" if is(subcommand, "kill") && args.len() == 2 => {
            kill(reply);
            Answer::Answered
        }
        "multi" if args.len() == 1 => {
            if client.multi.is_some() {
                reply.error("ERR MULTI calls can not be nested");
            } else {
                client.multi = Some(Default::default());
                reply.ok();
            }
            Answer::Answered
        }
        "discard" if args.len() == 1 => {
            if client.multi.take().is_none() {
                reply.error("ERR DISCARD without MULTI");
            } else {
                unwatch_later(server, client);
                reply.ok();
            }
            Answer::Answered
        }
        "exec" if args.len() == 1 => {
            // Redis refuses EXEC before looking at the MULTI state.
            registered.stats.rejected_calls.fetch_add(1, Ordering::Relaxed);
            client.multi = None;
            unwatch_later(server, client);
            reply.error(&format!("EXECABORT Transaction discarded because of: {BUSY_ERROR}"));
            Answer::Answered
        }
        "unwatch" if args.len() == 1 && client.multi.is_none() => {
            unwatch_later(server, client);
            reply.ok();
            Answer::Answered
        }
        "quit" => {
            reply.ok();
            client.close_after_reply = true;
            Answer::Close
        }
        "shutdown" => {
            let nosave = args[1..].iter().any(|arg| is(arg, "nosave"));
            if !nosave {
                reply.error(BUSY_ERROR);
                return Answer::Answered;
            }
            // The script is stopped whatever it wrote: the data is not saved.
            KILL_REQUESTED.store(true, Ordering::Release);
            *server.shutdown_save.lock() = Some(false);
            server.shutdown.notify_one();
            client.close_after_reply = true;
            Answer::Close
        }
        "watch" | "unwatch" | "auth" | "hello" | "reset" => Answer::NeedsStore,
        _ => {
            reject(client, reply);
            Answer::Answered
        }
    }
}

fn name_of(command: &cmd::Command) -> String {
    command.name.to_string()
}

/// Drops the client's WATCHes once the script has ended (the watch
/// registry is in the store the script holds).
fn unwatch_later(server: &ServerState, client: &mut Client) {
    let keys: Vec<(usize, Key)> = std::mem::take(&mut client.watched);
    if keys.is_empty() {
        return;
    }
    let store = std::sync::Arc::clone(&server.store);
    let client_id = client.id;
    std::thread::spawn(move || store.lock().watches.unwatch(client_id, &keys));
}

/// Runs `work` on the store now, or on a thread of its own once the running
/// script has ended (for cleanups that must not block a connection's task).
pub fn with_store_soon(store: &SharedStore, work: impl FnOnce(&mut Store) + Send + 'static) {
    match lock_unless_script(store) {
        Some(mut guard) => work(&mut guard),
        None => {
            let store = std::sync::Arc::clone(store);
            std::thread::spawn(move || work(&mut store.lock()));
        }
    }
}
