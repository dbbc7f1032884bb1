//! Per-connection state: selected database, protocol version, name,
//! authentication, the MULTI queue and WATCHed keys.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use futures::task::AtomicWaker;

use crate::storage::Key;

/// A transaction being queued by MULTI.
#[derive(Debug, Default)]
pub struct MultiState {
    pub queued: Vec<Vec<Vec<u8>>>,
    /// A command failed while queueing: EXEC must answer EXECABORT.
    pub aborted: bool,
}

/// What a blocking command asks for when it finds no data.
#[derive(Debug, Clone)]
pub struct BlockRequest {
    pub keys: Vec<Key>,
    /// Milliseconds to wait; 0 means forever.
    pub timeout_ms: u64,
    /// Reply on timeout: a null array (BLPOP...) or a null bulk (BLMOVE...).
    pub null_array_on_timeout: bool,
}

/// CLIENT KILL's signal to a connection. A connection waits on it each
/// time it waits for input, so waiting must be cheap: a flag and the
/// task's waker cost two atomic operations per wait, where a
/// `tokio::sync::Notify` takes its lock to enlist and again to leave.
#[derive(Debug, Default)]
pub struct KillSwitch {
    killed: AtomicBool,
    waker: AtomicWaker,
}

impl KillSwitch {
    /// Asks the connection to close; it does at its next wait: for input,
    /// for a blocking command's data, or for the client to take its
    /// replies.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Resolves once `kill` has been called, before or after.
    pub fn killed(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.killed.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            // A kill between the look above and the registration woke
            // no one: look again.
            if self.killed.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// Fields CLIENT LIST and INFO read from other connections.
#[derive(Debug)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i64,
    pub created_ms: i64,
    pub last_interaction_ms: AtomicI64,
    pub db: AtomicUsize,
    pub name: parking_lot::Mutex<Option<Vec<u8>>>,
    pub last_command: LastCommand,
    pub resp: AtomicUsize,
    pub pending_output: AtomicU64,
    pub pending_input: AtomicU64,
    pub kill: KillSwitch,
}

/// The last command a client ran, for CLIENT LIST's `cmd=`. Every command
/// records itself here, so recording is one plain store of a pointer into
/// the static command table rather than a lock and a copy of the name.
#[derive(Debug, Default)]
pub struct LastCommand(std::sync::atomic::AtomicPtr<crate::cmd::Command>);

impl LastCommand {
    pub fn record(&self, command: &'static crate::cmd::Command) {
        self.0.store(std::ptr::from_ref(command).cast_mut(), Ordering::Relaxed);
    }

    /// The command's name, or Redis's `NULL` before the first one.
    pub fn name(&self) -> &'static str {
        let command = self.0.load(Ordering::Relaxed);
        if command.is_null() {
            return "NULL";
        }
        // SAFETY: `record` is the only writer and stores `&'static Command`s.
        unsafe { &*command }.name
    }
}

/// One connection's state.
#[derive(Debug)]
pub struct Client {
    pub id: u64,
    pub db: usize,
    pub resp3: bool,
    pub authenticated: bool,
    pub multi: Option<MultiState>,
    pub watched: Vec<(usize, Key)>,
    /// Set by a blocking command that found nothing to serve.
    pub blocked: Option<BlockRequest>,
    /// Set by QUIT and SHUTDOWN: close after flushing replies.
    pub close_after_reply: bool,
    /// True while EXEC runs queued commands or a waiter is re-run: blocking
    /// commands must answer at once instead of blocking.
    pub no_block: bool,
    pub info: Option<Arc<ClientInfo>>,
}

impl Client {
    pub fn new(id: u64, authenticated: bool, info: Option<Arc<ClientInfo>>) -> Self {
        Self {
            id,
            db: 0,
            resp3: false,
            authenticated,
            multi: None,
            watched: Vec::new(),
            blocked: None,
            close_after_reply: false,
            no_block: false,
            info,
        }
    }

    /// A stand-in client used to re-run a blocked command on its owner's behalf.
    pub fn for_waiter(id: u64, db: usize, resp3: bool) -> Self {
        let mut client = Self::new(id, true, None);
        client.db = db;
        client.resp3 = resp3;
        client
    }

    pub fn select(&mut self, db: usize) {
        self.db = db;
        if let Some(info) = &self.info {
            info.db.store(db, Ordering::Relaxed);
        }
    }
}
