//! Commands: the table of every command the node knows, the dispatcher that
//! checks arity, authentication, MULTI queueing and memory before calling a
//! handler, and the handlers themselves, one module per family.
//!
//! A handler is a plain function `fn(&mut Ctx, &[&[u8]]) -> CmdResult` that
//! writes its reply through `ctx.reply`. Errors are returned, and turned into
//! RESP error lines in one place ([`error::CmdError`]).

pub mod backup;
pub mod bitops;
pub mod error;
pub mod hash;
pub mod keys;
pub mod list;
pub mod persistence;
pub mod script;
pub mod server;
pub mod set;
pub mod sort;
pub mod string;
pub mod transaction;
pub mod zset;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use hashbrown::HashMap;

pub use error::{CmdError, CmdResult};

use crate::client::{BlockRequest, Client};
use crate::protocol::Reply;
use crate::server::ServerState;
use crate::storage::{Entry, Store};

/// Command flags, as COMMAND reports them.
pub mod flags {
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const NOSCRIPT: u32 = 1 << 4;
    pub const BLOCKING: u32 = 1 << 5;
    pub const LOADING: u32 = 1 << 6;
    pub const STALE: u32 = 1 << 7;
    pub const FAST: u32 = 1 << 8;
    pub const NO_AUTH: u32 = 1 << 9;
    /// Runs immediately even inside MULTI (EXEC, DISCARD, MULTI, WATCH, QUIT).
    pub const NO_QUEUE: u32 = 1 << 10;
    pub const NO_MULTI: u32 = 1 << 11;

    pub const NAMES: [(u32, &str); 12] = [
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_QUEUE, "allow_busy"),
        (NO_MULTI, "no_multi"),
    ];
}

/// A command handler.
pub type Handler = fn(&mut Ctx, &[&[u8]]) -> CmdResult;

/// One entry of the command table.
pub struct Command {
    /// Lowercase name.
    pub name: &'static str,
    /// Redis arity: exact argument count including the name, or `-min`.
    pub arity: i32,
    pub flags: u32,
    /// Key positions for COMMAND and COMMAND GETKEYS (0 when no keys).
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub handler: Handler,
}

impl Command {
    pub const fn new(name: &'static str, arity: i32, flags: u32, keys: (i32, i32, i32), handler: Handler) -> Self {
        Self { name, arity, flags, first_key: keys.0, last_key: keys.1, step: keys.2, handler }
    }

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i32;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    /// Positions of key arguments in `args`.
    pub fn key_positions(&self, argc: usize) -> Vec<usize> {
        if self.first_key <= 0 {
            return Vec::new();
        }
        let last = if self.last_key < 0 { argc as i32 + self.last_key } else { self.last_key };
        let step = self.step.max(1) as usize;
        (self.first_key as usize..=last.max(0) as usize).step_by(step).filter(|position| *position < argc).collect()
    }
}

fn all_commands() -> impl Iterator<Item = &'static Command> {
    [
        string::COMMANDS,
        bitops::COMMANDS,
        keys::COMMANDS,
        list::COMMANDS,
        hash::COMMANDS,
        set::COMMANDS,
        zset::COMMANDS,
        sort::COMMANDS,
        server::COMMANDS,
        persistence::COMMANDS,
        backup::COMMANDS,
        transaction::COMMANDS,
        script::COMMANDS,
    ]
    .into_iter()
    .flatten()
}

/// Counters of one command since start or `CONFIG RESETSTAT`, as `INFO
/// commandstats` reports them (Redis's `cmdstat_<name>` lines).
#[derive(Default)]
pub struct CommandStats {
    /// Executions (a blocked command counts once, when it is called).
    pub calls: AtomicU64,
    /// Microseconds spent in the handler.
    pub usec: AtomicU64,
    /// Refused before running: arity, authentication, loading, not
    /// allowed in MULTI, out of memory.
    pub rejected_calls: AtomicU64,
    /// Ran and answered an error.
    pub failed_calls: AtomicU64,
}

impl CommandStats {
    fn reset(&self) {
        for counter in [&self.calls, &self.usec, &self.rejected_calls, &self.failed_calls] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

/// A command of the table with its counters.
pub struct Registered {
    pub command: &'static Command,
    pub stats: CommandStats,
}

static TABLE: LazyLock<HashMap<&'static [u8], &'static Registered>> = LazyLock::new(|| {
    all_commands()
        .map(|command| {
            let registered: &'static Registered =
                Box::leak(Box::new(Registered { command, stats: CommandStats::default() }));
            (command.name.as_bytes(), registered)
        })
        .collect()
});

/// Looks a command up by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static Command> {
    lookup_registered(name).map(|registered| registered.command)
}

/// Looks a command up by name, case-insensitively, with its counters.
pub fn lookup_registered(name: &[u8]) -> Option<&'static Registered> {
    let mut buffer = [0u8; 32];
    let lowered = crate::util::lowercase_into(name, &mut buffer)?;
    TABLE.get(lowered).copied()
}

/// Every command, for COMMAND and COMMAND COUNT.
pub fn table() -> impl Iterator<Item = &'static Command> {
    TABLE.values().map(|registered| registered.command)
}

/// Every command with its counters, for INFO commandstats.
pub fn registered() -> impl Iterator<Item = &'static Registered> {
    TABLE.values().copied()
}

/// CONFIG RESETSTAT: zeroes every command's counters.
pub fn reset_command_stats() {
    for registered in TABLE.values() {
        registered.stats.reset();
    }
}

/// What a handler works with.
pub struct Ctx<'a> {
    pub store: &'a mut Store,
    pub client: &'a mut Client,
    pub reply: Reply<'a>,
    pub server: &'a ServerState,
}

impl Ctx<'_> {
    pub fn db(&self) -> usize {
        self.client.db
    }

    /// Reads a key, checking its type; `None` when missing.
    pub fn read(&mut self, key: &[u8]) -> Option<&Entry> {
        let db = self.client.db;
        self.store.lookup(db, key)
    }

    /// Asks the connection to block with this request (see [`BlockRequest`]).
    pub fn block(&mut self, request: BlockRequest) {
        self.client.blocked = Some(request);
    }

    /// Whether a blocking command may block now (not inside EXEC or a re-run).
    pub fn can_block(&self) -> bool {
        !self.client.no_block
    }
}

/// Fetches a string value for reading; `Ok(None)` when missing.
pub fn read_string(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
    match ctx.read(key) {
        None => Ok(None),
        Some(entry) => entry.value.to_string_bytes().map(Some).ok_or(CmdError::WrongType),
    }
}

/// Parses an integer argument.
pub fn arg_i64(arg: &[u8]) -> Result<i64, CmdError> {
    crate::util::parse_i64(arg).ok_or(CmdError::NotInteger)
}

/// Parses a float argument.
pub fn arg_f64(arg: &[u8]) -> Result<f64, CmdError> {
    crate::util::parse_f64(arg).ok_or(CmdError::NotFloat)
}

/// Parses a blocking timeout in seconds (float allowed) into milliseconds;
/// 0 means forever.
///
/// As Redis, the check is on `ceil(seconds * 1000)` converted to a long
/// long: a tiny negative value rounds to 0 (block forever), and a value the
/// conversion cannot hold (infinity included) comes out negative.
pub fn arg_timeout_ms(arg: &[u8]) -> Result<u64, CmdError> {
    /// Beyond this (about 31 000 years) a deadline is as good as none.
    const FOREVER_MS: f64 = 1e15;
    let seconds = crate::util::parse_f64(arg).ok_or(CmdError::TimeoutNotFloat)?;
    let millis = (seconds * 1000.0).ceil();
    if !(0.0..i64::MAX as f64).contains(&millis) {
        return Err(CmdError::TimeoutNegative);
    }
    Ok(if millis > FOREVER_MS { 0 } else { millis as u64 })
}

/// Case-insensitive comparison of an argument with an option name.
pub fn is(arg: &[u8], option: &str) -> bool {
    arg.eq_ignore_ascii_case(option.as_bytes())
}

/// Builds the unknown-command error text exactly as Redis 7.0 does.
pub(crate) fn unknown_command(args: &[&[u8]]) -> CmdError {
    let name = String::from_utf8_lossy(&args[0][..args[0].len().min(128)]).into_owned();
    let mut listed = String::new();
    for arg in args.iter().skip(1) {
        if listed.len() >= 128 {
            break;
        }
        let text = String::from_utf8_lossy(arg);
        let room = 128 - listed.len();
        let shown: String = text.chars().take(room).collect();
        listed.push_str(&format!("'{shown}' "));
    }
    CmdError::err(format!("unknown command '{name}', with args beginning with: {listed}"))
}

/// Dispatches one command: lookup, arity, auth, MULTI queueing, maxmemory,
/// then the handler. Replies (including errors) are written into `ctx.reply`.
pub fn execute(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some(registered) = lookup_registered(args[0]) else {
        let error = unknown_command(args);
        if let Some(multi) = ctx.client.multi.as_mut() {
            multi.aborted = true;
        }
        ctx.reply.error(&error.to_string());
        return;
    };
    let command = registered.command;
    let reject = |ctx: &mut Ctx, abort_multi: bool, error: &str| {
        registered.stats.rejected_calls.fetch_add(1, Ordering::Relaxed);
        if abort_multi {
            if let Some(multi) = ctx.client.multi.as_mut() {
                multi.aborted = true;
            }
        }
        ctx.reply.error(error);
    };
    if !ctx.client.authenticated && !command.has(flags::NO_AUTH) {
        reject(ctx, true, &CmdError::NoAuth.to_string());
        return;
    }
    if !command.has(flags::LOADING) && ctx.server.loading.load(Ordering::Acquire) {
        reject(ctx, false, "LOADING Redis is loading the dataset in memory");
        return;
    }
    if !command.arity_ok(args.len()) {
        reject(ctx, true, &CmdError::WrongArity(command.name.to_string()).to_string());
        return;
    }
    if ctx.client.multi.is_some() && !command.has(flags::NO_QUEUE) {
        if command.has(flags::NO_MULTI) {
            reject(ctx, true, "ERR Command not allowed inside a transaction");
            return;
        }
        if let Some(multi) = ctx.client.multi.as_mut() {
            multi.queued.push(args.iter().map(|arg| arg.to_vec()).collect());
        }
        ctx.reply.simple("QUEUED");
        return;
    }
    run(ctx, registered, args);
}

/// Runs a resolved command, with the maxmemory check, and counts it.
pub fn run(ctx: &mut Ctx, registered: &Registered, args: &[&[u8]]) {
    let command = registered.command;
    let stats = &registered.stats;
    if command.has(flags::DENYOOM) && ctx.store.config.maxmemory > 0 && ctx.store.evict_to_limit().is_err() {
        stats.rejected_calls.fetch_add(1, Ordering::Relaxed);
        ctx.reply.error(&CmdError::OutOfMemory.to_string());
        return;
    }
    ctx.store.stats.commands_processed += 1;
    if let Some(info) = &ctx.client.info {
        info.last_command.record(command);
    }
    // quanta reads the TSC: two std clock reads per command were ~7% of
    // the node's time under a pipelined load.
    let started = quanta::Instant::now();
    let outcome = (command.handler)(ctx, args);
    stats.usec.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    stats.calls.fetch_add(1, Ordering::Relaxed);
    if let Err(error) = outcome {
        stats.failed_calls.fetch_add(1, Ordering::Relaxed);
        ctx.reply.error(&error.to_string());
    }
    // Inside EXEC (no_block), blocked clients are served once EXEC is done,
    // as Redis does: they must see the transaction's end state.
    if ctx.store.blocking.has_ready() && !ctx.client.no_block {
        serve_blocked_clients(ctx.store, ctx.server);
    }
}

/// Re-runs commands of clients blocked on keys that received data, oldest
/// first, sending each served client its reply. Runs until no key is ready
/// (a served BLMOVE may make another key ready).
pub fn serve_blocked_clients(store: &mut Store, server: &ServerState) {
    while store.blocking.has_ready() {
        for (db, key) in store.blocking.take_ready() {
            for waiter_id in store.blocking.waiting_on(db, &key) {
                let Some(waiter) = store.blocking.get(waiter_id) else {
                    continue;
                };
                let args: Vec<Vec<u8>> = waiter.args.clone();
                let (client_id, waiter_db, resp3) = (waiter.client_id, waiter.db, waiter.resp3);
                let mut client = Client::for_waiter(client_id, waiter_db, resp3);
                let mut out = Vec::new();
                let Some(command) = lookup(&args[0]) else {
                    continue;
                };
                let arg_slices: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                {
                    let mut ctx =
                        Ctx { store: &mut *store, client: &mut client, reply: Reply::new(&mut out, resp3), server };
                    if let Err(error) = (command.handler)(&mut ctx, &arg_slices) {
                        ctx.reply.error(&error.to_string());
                    }
                }
                if client.blocked.is_some() {
                    // Still nothing for this waiter; later waiters on this key
                    // would find nothing either.
                    break;
                }
                store.stats.commands_processed += 1;
                if let Some(waiter) = store.blocking.unblock(waiter_id) {
                    // The receiver may have gone (client disconnected): nothing to do.
                    let _ = waiter.reply.send(out);
                }
            }
        }
    }
}
