//! The network side: accepting connections and running each one.
//!
//! Each connection is a tokio task that reads requests, executes every
//! complete command in its buffer as one batch under a single acquisition of
//! the store lock (so pipelining amortizes locking), and writes the replies.
//! It does not read more input until its replies are written, so a client
//! that never reads its replies is held back by TCP and costs bounded memory.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use smallvec::SmallVec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify};
use tracing::{debug, info, warn, Instrument};

use crate::client::{BlockRequest, Client, ClientInfo};
use crate::cmd::{self, Ctx};
use crate::idle_poll::IdlePoll;
use crate::protocol::request::peek_first_args;
use crate::protocol::{Reply, RequestParser};
use crate::snapshot::{SnapshotContext, SnapshotState};
use crate::storage::blocking::Waiter;
use crate::storage::set::MemberWarmUp;
use crate::storage::{Key, SharedStore};

/// Most commands run under one lock acquisition.
const BATCH_COMMANDS: usize = 512;
/// A batch also ends once this much output is pending.
const BATCH_OUTPUT_BYTES: usize = 256 * 1024;
const READ_CHUNK: usize = 16 * 1024;
/// Pipelined commands whose keys are brought into the cache at a time
/// (`Connection::warm_ahead`): enough for the loads to overlap, few enough
/// that the first are still cached when their commands run.
const WARM_AHEAD: usize = 16;
/// Batches a connection runs without warming after a warm-up found nothing
/// worth warming (a lone command, or a pipeline on one key such as LPUSH
/// after LPUSH). Peeking at the commands was ~4% of the time of a pipeline
/// on one key; a connection that changes its ways waits this many batches
/// to be warmed again.
const WARM_REST_BATCHES: u8 = 7;
/// A pipelined command's key and the argument after it (`warm_ahead`).
type KeyAndMember<'a> = (&'a [u8], Option<&'a [u8]>);
/// Input kept while a client is blocked (further input waits in TCP).
const BLOCKED_INPUT_LIMIT: usize = 1024 * 1024;

/// State shared by every connection besides the keyspace.
pub struct ServerState {
    pub store: SharedStore,
    pub clients: parking_lot::Mutex<HashMap<u64, Arc<ClientInfo>>>,
    next_client_id: AtomicU64,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub started: Instant,
    pub run_id: String,
    pub port: u16,
    pub executable: String,
    pub config_file: String,
    /// Notified when SHUTDOWN asks the server to stop.
    pub shutdown: Notify,
    /// SHUTDOWN's save choice: None = default, Some(true) = SAVE, Some(false) = NOSAVE.
    pub shutdown_save: parking_lot::Mutex<Option<bool>>,
    /// Snapshot progress and history.
    pub snapshots: Arc<SnapshotState>,
    /// True while a snapshot is being loaded: commands get `-LOADING`.
    pub loading: AtomicBool,
    /// What the last load did, for INFO.
    pub last_load: parking_lot::Mutex<Option<crate::snapshot::load::LoadReport>>,
    /// Backups requested with BACKUP START.
    pub backups: crate::cmd::backup::SharedJobs,
    /// Keeps the connection thread polling briefly after each batch.
    pub idle_poll: IdlePoll,
}

impl ServerState {
    pub fn new(store: SharedStore, port: u16, config_file: String) -> Self {
        let run_id: String = (0..40).map(|_| fastrand::alphanumeric().to_ascii_lowercase()).collect();
        Self {
            store,
            clients: parking_lot::Mutex::new(HashMap::new()),
            next_client_id: AtomicU64::new(1),
            total_connections: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            net_input_bytes: AtomicU64::new(0),
            net_output_bytes: AtomicU64::new(0),
            started: Instant::now(),
            run_id,
            port,
            executable: std::env::current_exe().map(|path| path.display().to_string()).unwrap_or_default(),
            config_file,
            shutdown: Notify::new(),
            shutdown_save: parking_lot::Mutex::new(None),
            snapshots: Arc::new(SnapshotState::new()),
            loading: AtomicBool::new(false),
            last_load: parking_lot::Mutex::new(None),
            backups: Arc::default(),
            idle_poll: IdlePoll::new(),
        }
    }

    /// What background snapshots need to reach the store and report back.
    pub fn snapshot_context(&self) -> SnapshotContext {
        SnapshotContext { store: Arc::clone(&self.store), state: Arc::clone(&self.snapshots) }
    }

    pub fn connected_clients(&self) -> usize {
        self.clients.lock().len()
    }
}

/// Connection threads parked with nothing to do, kept by the runtime's
/// park and unpark hooks (see `main.rs`).
static PARKED_CONNECTION_THREADS: AtomicIsize = AtomicIsize::new(0);

/// Called by the runtime as a connection thread goes idle.
pub fn connection_thread_parked() {
    PARKED_CONNECTION_THREADS.fetch_add(1, Ordering::Relaxed);
}

/// Called by the runtime as a connection thread wakes up to run tasks.
pub fn connection_thread_unparked() {
    PARKED_CONNECTION_THREADS.fetch_sub(1, Ordering::Relaxed);
}

/// Whether some connection thread is running or waiting to run tasks
/// (rather than parked idle). A background job that yields to clients asks
/// this as well as whether commands complete: a connection thread that the
/// scheduler keeps off the CPU completes none, yet has clients waiting.
pub fn connection_threads_busy(connection_threads: usize) -> bool {
    PARKED_CONNECTION_THREADS.load(Ordering::Relaxed) < isize::try_from(connection_threads).unwrap_or(isize::MAX)
}

/// Accepts connections on every listener until `shutdown` resolves.
pub async fn run(listeners: Vec<TcpListener>, state: Arc<ServerState>, shutdown: impl Future<Output = ()>) {
    let mut accept_tasks = Vec::new();
    for listener in listeners {
        let state = Arc::clone(&state);
        accept_tasks.push(tokio::spawn(accept_loop(listener, state)));
    }
    let expiry = tokio::spawn(active_expiry(Arc::clone(&state)));
    let poller = crate::idle_poll::has_a_core_to_spare()
        .then(|| tokio::spawn(crate::idle_poll::poll_after_batches(Arc::clone(&state))));
    shutdown.await;
    for task in accept_tasks {
        task.abort();
    }
    expiry.abort();
    if let Some(poller) = poller {
        poller.abort();
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<ServerState>) {
    let mut backoff = Duration::from_millis(1);
    loop {
        match listener.accept().await {
            Ok((socket, peer)) => {
                backoff = Duration::from_millis(1);
                let state = Arc::clone(&state);
                let span = tracing::debug_span!("connection", peer = %peer);
                // Admitted here, in accept order, so a burst of connections
                // cannot slip past maxclients before their tasks first run.
                let admission = admit(&state, &socket);
                tokio::spawn(
                    async move {
                        if let Err(error) = handle_connection(state, socket, admission).await {
                            debug!(error = %error, "connection ended with an error");
                        }
                    }
                    .instrument(span),
                );
            }
            Err(error) => {
                // Out of file descriptors and similar: back off, keep serving.
                warn!(error = %error, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

async fn active_expiry(state: Arc<ServerState>) {
    let mut cursor = crate::storage::expire::ExpireCursor::default();
    loop {
        // While a script holds the store, expiry waits (as in Redis).
        let hz = crate::script::busy::lock_unless_script(&state.store).map_or(10, |store| store.config.hz.max(1));
        tokio::time::sleep(Duration::from_millis(1000 / u64::from(hz))).await;
        let Some(mut store) = crate::script::busy::lock_unless_script(&state.store) else {
            continue;
        };
        store.active_expire_cycle(&mut cursor, Duration::from_millis(2));
    }
}

/// Removes the client from the registry when the connection ends, however it ends.
struct Registration<'a> {
    state: &'a ServerState,
    client_id: u64,
    watched: Vec<(usize, Key)>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.state.clients.lock().remove(&self.client_id);
        if !self.watched.is_empty() {
            let (client_id, watched) = (self.client_id, std::mem::take(&mut self.watched));
            crate::script::busy::with_store_soon(&self.state.store, move |store| {
                store.watches.unwatch(client_id, &watched);
            });
        }
    }
}

/// A connection the server took on: registered from the moment it was
/// accepted (INFO counts it, maxclients sees it), not yet served.
struct Admitted {
    info: Arc<ClientInfo>,
    requirepass_set: bool,
    max_bulk: u64,
}

/// Counts a new connection and registers it, or returns None when
/// `maxclients` connections are already registered.
fn admit(state: &ServerState, socket: &TcpStream) -> Option<Admitted> {
    let (maxclients, requirepass_set, max_bulk) = {
        let settings = match crate::script::busy::lock_unless_script(&state.store) {
            Some(store) => crate::script::busy::ConnectionSettings::of(&store),
            None => crate::script::busy::connection_settings(),
        };
        (settings.maxclients, settings.requirepass_set, settings.proto_max_bulk_len)
    };
    state.total_connections.fetch_add(1, Ordering::Relaxed);
    let mut clients = state.clients.lock();
    if clients.len() as u64 >= maxclients {
        state.rejected_connections.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    let id = state.next_client_id.fetch_add(1, Ordering::Relaxed);
    let peer = socket.peer_addr().map(|addr| addr.to_string()).unwrap_or_default();
    let local = socket.local_addr().map(|addr| addr.to_string()).unwrap_or_default();
    let now = crate::util::now_ms();
    let info = Arc::new(ClientInfo {
        id,
        addr: peer,
        laddr: local,
        fd: 0,
        created_ms: now,
        last_interaction_ms: now.into(),
        db: 0.into(),
        name: parking_lot::Mutex::new(None),
        last_command: Default::default(),
        resp: 2.into(),
        pending_output: 0.into(),
        pending_input: 0.into(),
        kill: Default::default(),
    });
    clients.insert(id, Arc::clone(&info));
    Some(Admitted { info, requirepass_set, max_bulk })
}

async fn handle_connection(
    state: Arc<ServerState>,
    mut socket: TcpStream,
    admission: Option<Admitted>,
) -> std::io::Result<()> {
    let Some(Admitted { info, requirepass_set, max_bulk }) = admission else {
        socket.write_all(b"-ERR max number of clients reached\r\n").await?;
        return Ok(());
    };
    let id = info.id;
    let mut registration = Registration { state: &state, client_id: id, watched: Vec::new() };
    let _ = socket.set_nodelay(true);
    let mut client = Client::new(id, !requirepass_set, Some(Arc::clone(&info)));
    let mut connection = Connection {
        input: Vec::with_capacity(1024),
        output: Vec::with_capacity(1024),
        parser: RequestParser::new(usize::try_from(max_bulk).unwrap_or(usize::MAX)),
        walker_shares_the_store: false,
        warm_rest: 0,
    };
    let result = connection.serve(&state, &mut client, &mut socket, &info).await;
    registration.watched = std::mem::take(&mut client.watched);
    result
}

/// Buffers and parser of one connection.
struct Connection {
    input: Vec<u8>,
    output: Vec<u8>,
    parser: RequestParser,
    /// A forkless snapshot was walking the store when the last batch ran:
    /// reply at once (see `serve`).
    walker_shares_the_store: bool,
    /// Batches left before this connection's commands are warmed again
    /// (see [`WARM_REST_BATCHES`]).
    warm_rest: u8,
}

/// How a batch ended.
enum BatchEnd {
    /// All complete commands were executed; read more.
    NeedInput,
    /// The batch hit its size limit; more commands are waiting in the buffer.
    More,
    /// A command blocked; wait for its reply.
    Blocked(BlockedCommand),
    /// QUIT, SHUTDOWN or a protocol error: flush and close.
    Close,
    /// A forkless snapshot has too much output waiting for its destination:
    /// wait a moment before running more commands (writes wait rather than
    /// memory grow).
    Throttled,
}

/// A blocking command waiting for data: its place on the wait list, what
/// it asked for, and where its reply will come from.
struct BlockedCommand {
    waiter_id: u64,
    request: BlockRequest,
    reply: oneshot::Receiver<Vec<u8>>,
}

impl Connection {
    async fn serve(
        &mut self,
        state: &ServerState,
        client: &mut Client,
        socket: &mut TcpStream,
        info: &ClientInfo,
    ) -> std::io::Result<()> {
        let mut need_read = true;
        loop {
            if need_read {
                let pending = self.parser.pending_bulk_bytes(self.input.len());
                let room = self.input.capacity() - self.input.len();
                if room < READ_CHUNK.max(pending) {
                    self.input.reserve(READ_CHUNK.max(pending));
                }
                let read = tokio::select! {
                    biased;
                    _ = info.kill.killed() => return Ok(()),
                    read = socket.read_buf(&mut self.input) => read?,
                };
                if read == 0 {
                    return Ok(());
                }
                state.net_input_bytes.fetch_add(read as u64, Ordering::Relaxed);
            }
            let end = self.run_batch(state, client);
            state.idle_poll.batch_ran();
            if !self.output.is_empty() {
                // Reply after one more look for ready connections: tokio
                // runs a yielded task only once it has polled for new
                // events, so the commands that arrived meanwhile run first
                // and the replies leave together, much as Redis writes its
                // replies just before it sleeps. The thread then sleeps, and
                // the clients' sends must wake it, half as often; with 50
                // unpipelined clients that saves the client ~2% of its CPU
                // per request, and `-P 16` runs ~10% faster
                // (docs/benchmarks.md, "Replies after one more look").
                // Not while a forkless walker takes the lock in turns: the
                // commands run first could wait a walker step for the lock,
                // and finished replies would wait with them.
                if !self.walker_shares_the_store {
                    tokio::task::yield_now().await;
                }
                if !self.write_replies(state, socket, info).await? {
                    return Ok(());
                }
            }
            match end {
                BatchEnd::NeedInput => {
                    if self.input.is_empty() && self.input.capacity() > 64 * 1024 {
                        self.input.shrink_to(4096);
                    }
                    need_read = true;
                }
                BatchEnd::More => need_read = false,
                BatchEnd::Throttled => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    need_read = false;
                }
                BatchEnd::Close => {
                    socket.shutdown().await.ok();
                    return Ok(());
                }
                BatchEnd::Blocked(blocked) => {
                    if !self.wait_blocked(state, client, socket, info, blocked).await? {
                        return Ok(());
                    }
                    if !self.write_replies(state, socket, info).await? {
                        return Ok(());
                    }
                    need_read = false;
                }
            }
        }
    }

    /// Writes the replies waiting in the output buffer. Returns false when
    /// CLIENT KILL came first: a client that stopped reading would
    /// otherwise hold its connection open forever.
    async fn write_replies(
        &mut self,
        state: &ServerState,
        socket: &mut TcpStream,
        info: &ClientInfo,
    ) -> std::io::Result<bool> {
        tokio::select! {
            // The write first: it usually completes at once, and the kill
            // switch is then not even looked at.
            biased;
            written = socket.write_all(&self.output) => written?,
            _ = info.kill.killed() => return Ok(false),
        }
        state.net_output_bytes.fetch_add(self.output.len() as u64, Ordering::Relaxed);
        self.output.clear();
        if self.output.capacity() > 64 * 1024 {
            self.output.shrink_to(4096);
        }
        Ok(true)
    }

    /// Executes the complete commands in the input buffer under one lock.
    fn run_batch(&mut self, state: &ServerState, client: &mut Client) -> BatchEnd {
        let Some(mut store) = crate::script::busy::lock_unless_script(&state.store) else {
            return self.run_batch_during_script(state, client);
        };
        if crate::snapshot::writes_must_wait(&store) {
            return BatchEnd::Throttled;
        }
        store.refresh_clock();
        self.walker_shares_the_store = store.capture.is_some();
        self.parser.set_max_bulk_len(usize::try_from(store.config.proto_max_bulk_len).unwrap_or(usize::MAX));
        self.parser.set_unauthenticated(!client.authenticated);
        let mut consumed = 0;
        let mut executed = 0;
        let mut warmed_up_to = if self.warm_rest > 0 {
            self.warm_rest -= 1;
            usize::MAX
        } else {
            0
        };
        let end = loop {
            if self.parser.position() >= warmed_up_to {
                let (end, worth_it) = self.warm_ahead(&store, client.db);
                warmed_up_to = end;
                // Judged on a batch's first commands only: its last ones
                // are often a lone command or none at all.
                if !worth_it && executed == 0 {
                    self.warm_rest = WARM_REST_BATCHES;
                    warmed_up_to = usize::MAX;
                }
            }
            let ranges = match self.parser.next_command(&mut self.input) {
                Ok(Some(ranges)) => ranges,
                Ok(None) => break BatchEnd::NeedInput,
                Err(error) => {
                    debug!(error = %error, "closing connection after a protocol error");
                    Reply::new(&mut self.output, client.resp3).error(&format!("ERR {error}"));
                    break BatchEnd::Close;
                }
            };
            if ranges.is_empty() {
                consumed = self.parser.position();
                continue;
            }
            let args: SmallVec<[&[u8]; 8]> = ranges.iter().map(|range| &self.input[range.clone()]).collect();
            let resp3 = client.resp3;
            {
                let mut ctx =
                    Ctx { store: &mut store, client, reply: Reply::new(&mut self.output, resp3), server: state };
                cmd::execute(&mut ctx, &args);
            }
            consumed = self.parser.position();
            executed += 1;
            self.parser.set_unauthenticated(!client.authenticated);
            if let Some(request) = client.blocked.take() {
                let (sender, receiver) = oneshot::channel();
                let waiter_id = store.blocking.block(Waiter {
                    client_id: client.id,
                    db: client.db,
                    keys: request.keys.clone(),
                    args: args.iter().map(|arg| arg.to_vec()).collect(),
                    resp3: client.resp3,
                    reply: sender,
                });
                break BatchEnd::Blocked(BlockedCommand { waiter_id, request, reply: receiver });
            }
            if client.close_after_reply {
                break BatchEnd::Close;
            }
            if executed >= BATCH_COMMANDS || self.output.len() >= BATCH_OUTPUT_BYTES {
                break BatchEnd::More;
            }
        };
        drop(store);
        if consumed > 0 {
            self.input.drain(..consumed);
            self.parser.discard_prefix(consumed);
        }
        end
    }

    /// Brings the keys of the next [`WARM_AHEAD`] pipelined commands (and
    /// the set members or hash fields after them) into the cache before
    /// they run, and returns the input offset where those
    /// commands end. A pipelined batch over a large keyspace otherwise waits
    /// on memory for each key in turn (the table, the entry, the value:
    /// half of a `GET -P 16`'s time); looked up back to back, the loads
    /// overlap. A lone command is not looked up twice, nor a key the command
    /// before used. Also says whether warming was worth it: false for fewer
    /// than two commands or one key throughout.
    fn warm_ahead(&self, store: &crate::storage::Store, db: usize) -> (usize, bool) {
        let mut args: SmallVec<[KeyAndMember<'_>; WARM_AHEAD]> = SmallVec::new();
        let end = peek_first_args(&self.input, self.parser.position(), WARM_AHEAD, |key, member| {
            args.push((key, member));
        });
        let Some(db) = store.dbs.get(db).filter(|_| args.len() >= 2) else {
            return (end, false);
        };
        // A pipeline on one key (LPUSH after LPUSH) has it cached already;
        // the members of a set or hash (SADD after SADD) differ.
        let (mut previous, mut previous_has_members): (&[u8], bool) = (&[], false);
        let mut members = MemberWarmUp::default();
        let mut warmed = 0;
        for (key, member) in args {
            if key != previous || (previous_has_members && member.is_some()) {
                previous_has_members = db.warm(key, member, &mut members);
                previous = key;
                warmed += 1;
            }
        }
        members.finish();
        (end, warmed >= 2)
    }

    /// A script holds the store: until it is past `busy-reply-threshold`
    /// the commands wait (Throttled: tried again shortly), then they are
    /// answered without the store as Redis answers them during a busy
    /// script (`-BUSY`, SCRIPT KILL, MULTI...; see `script::busy::answer`).
    fn run_batch_during_script(&mut self, state: &ServerState, client: &mut Client) -> BatchEnd {
        if !crate::script::busy::timed_out() {
            return BatchEnd::Throttled;
        }
        let mut consumed = 0;
        let end = loop {
            let ranges = match self.parser.next_command(&mut self.input) {
                Ok(Some(ranges)) => ranges,
                Ok(None) => break BatchEnd::NeedInput,
                Err(error) => {
                    Reply::new(&mut self.output, client.resp3).error(&format!("ERR {error}"));
                    break BatchEnd::Close;
                }
            };
            if ranges.is_empty() {
                consumed = self.parser.position();
                continue;
            }
            let args: SmallVec<[&[u8]; 8]> = ranges.iter().map(|range| &self.input[range.clone()]).collect();
            let resp3 = client.resp3;
            let mut reply = Reply::new(&mut self.output, resp3);
            match crate::script::busy::answer(client, &args, &mut reply, state) {
                crate::script::busy::Answer::Answered => {}
                crate::script::busy::Answer::Close => {
                    consumed = self.parser.position();
                    break BatchEnd::Close;
                }
                crate::script::busy::Answer::NeedsStore => {
                    // WATCH, AUTH, HELLO, RESET: run once the script ends, on a
                    // thread the runtime replaces meanwhile.
                    let mut store = crate::script::busy::off_the_runtime(|| state.store.lock());
                    let mut ctx = Ctx { store: &mut store, client, reply, server: state };
                    cmd::execute(&mut ctx, &args);
                }
            }
            consumed = self.parser.position();
        };
        if consumed > 0 {
            self.input.drain(..consumed);
            self.parser.discard_prefix(consumed);
        }
        end
    }

    /// Waits for a blocked command's reply, its timeout, the client
    /// leaving or CLIENT KILL. Returns false when the connection should
    /// close.
    async fn wait_blocked(
        &mut self,
        state: &ServerState,
        client: &mut Client,
        socket: &mut TcpStream,
        info: &ClientInfo,
        blocked: BlockedCommand,
    ) -> std::io::Result<bool> {
        let BlockedCommand { waiter_id, request, mut reply } = blocked;
        let mut deadline =
            (request.timeout_ms > 0).then(|| tokio::time::Instant::now() + Duration::from_millis(request.timeout_ms));
        loop {
            let timed_out = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            let can_read = self.input.len() < BLOCKED_INPUT_LIMIT;
            tokio::select! {
                served = &mut reply => {
                    if let Ok(bytes) = served {
                        self.output.extend_from_slice(&bytes);
                    }
                    return Ok(true);
                }
                _ = timed_out => {
                    let Some(mut store) = crate::script::busy::lock_unless_script(&state.store) else {
                        // A script holds the store: time out once it is done.
                        deadline = Some(tokio::time::Instant::now() + Duration::from_millis(10));
                        continue;
                    };
                    if store.blocking.unblock(waiter_id).is_some() {
                        drop(store);
                        let mut writer = Reply::new(&mut self.output, client.resp3);
                        if request.null_array_on_timeout {
                            writer.null_array();
                        } else {
                            writer.null();
                        }
                    } else {
                        drop(store);
                        // Served while the timer fired: the reply is in the channel.
                        if let Ok(bytes) = reply.try_recv() {
                            self.output.extend_from_slice(&bytes);
                        }
                    }
                    return Ok(true);
                }
                read = socket.read_buf(&mut self.input), if can_read => {
                    if read.unwrap_or(0) == 0 {
                        Self::abandon_wait(state, waiter_id);
                        return Ok(false);
                    }
                }
                // As Redis: CLIENT KILL closes a blocked client at once.
                _ = info.kill.killed() => {
                    Self::abandon_wait(state, waiter_id);
                    return Ok(false);
                }
            }
        }
    }

    /// Takes a closing client's blocking command off the wait list.
    fn abandon_wait(state: &ServerState, waiter_id: u64) {
        crate::script::busy::with_store_soon(&state.store, move |store| {
            store.blocking.unblock(waiter_id);
        });
    }
}

/// Binds listeners for every configured address.
pub async fn bind(config: &crate::config::Config) -> std::io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    let mut last_error = None;
    for address in &config.bind {
        // A leading '-' marks an optional address, as in redis.conf.
        let (optional, host) = match address.strip_prefix('-') {
            Some(host) => (true, host),
            None => (false, address.as_str()),
        };
        let host = if host == "*" { "0.0.0.0" } else { host };
        let target =
            if host.contains(':') { format!("[{host}]:{}", config.port) } else { format!("{host}:{}", config.port) };
        match TcpListener::bind(&target).await {
            Ok(listener) => {
                info!(address = %target, "listening");
                listeners.push(listener);
            }
            Err(error) if optional => debug!(address = %target, error = %error, "optional address not bound"),
            Err(error) => last_error = Some(error),
        }
    }
    if let Some(error) = last_error {
        return Err(error);
    }
    if listeners.is_empty() {
        return Err(std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address to listen on"));
    }
    Ok(listeners)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_threads_are_busy_until_every_one_has_parked() {
        // Only this test moves the counter: the hooks belong to main's runtime.
        assert!(connection_threads_busy(2), "threads start awake");
        connection_thread_parked();
        assert!(connection_threads_busy(2), "one of two still runs tasks");
        connection_thread_parked();
        assert!(!connection_threads_busy(2), "both idle");
        connection_thread_unparked();
        assert!(connection_threads_busy(2), "a client woke one");
        connection_thread_unparked();
    }
}
