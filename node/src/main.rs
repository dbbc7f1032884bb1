//! `ferrocache-node`: started like `redis-server`:
//! `ferrocache-node [config-file] [--name value ...]`, or
//! `ferrocache-node --probe ready|alive` as a Kubernetes health check.

use std::sync::Arc;

use ferrocache_node::config::Config;
use ferrocache_node::server::{self, ServerState};
use ferrocache_node::snapshot::{self, load};
use ferrocache_node::storage::{self, Store};
use std::sync::atomic::Ordering;
use tracing::{error, info};

#[global_allocator]
static GLOBAL: ferrocache_node::alloc::CountingAllocator = ferrocache_node::alloc::CountingAllocator;

/// Stack of the threads that serve connections and run scripts.
const SCRIPT_THREAD_STACK: usize = 8 * 1024 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--version" || arg == "-v") {
        println!(
            "ferrocache-node v={} (redis compatible {})",
            env!("CARGO_PKG_VERSION"),
            ferrocache_node::cmd::server::REDIS_VERSION
        );
        return;
    }
    if args.first().map(String::as_str) == Some("--probe") {
        std::process::exit(ferrocache_node::probe::run(&args[1..]));
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match Config::from_args(&args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("ferrocache-node: invalid configuration: {error}");
            std::process::exit(1);
        }
    };
    if config.disable_thp {
        if let Err(error) = ferrocache_node::alloc::disable_transparent_huge_pages() {
            tracing::warn!(%error, "cannot turn transparent huge pages off");
        }
    }
    let config_file = args
        .first()
        .filter(|first| !first.starts_with("--"))
        .and_then(|path| std::fs::canonicalize(path).ok())
        .map(|path| path.display().to_string())
        .unwrap_or_default();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // Connections whose requests arrive together run in arrival order, as
    // Redis reads them: the LIFO slot would run the last one woken first
    // (a WATCHing client's EXEC sent just before another client's write
    // then saw the write 58% of the time). Built with `tokio_unstable`
    // (.cargo/config.toml).
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    #[cfg(not(tokio_unstable))]
    tracing::warn!(
        "built without --cfg tokio_unstable (a RUSTFLAGS variable replaces .cargo/config.toml's flags): \
         requests of different connections may run out of arrival order"
    );
    let runtime = match builder
        .worker_threads(config.connection_threads())
        // Scripts run on these threads, and Redis's Lua libraries recurse as
        // C does (cjson nests 1000 deep, results convert to 8000 levels):
        // the 8 MiB of Redis's main thread, not tokio's 2 MiB.
        .thread_stack_size(SCRIPT_THREAD_STACK)
        .on_thread_park(server::connection_thread_parked)
        .on_thread_unpark(server::connection_thread_unparked)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ferrocache-node: cannot start the runtime: {error}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(run(config, config_file));
    std::process::exit(code);
}

/// Raises the open-file limit so `maxclients` connections fit, as Redis does.
fn raise_open_file_limit(maxclients: u64) {
    let wanted = maxclients + 64;
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        if limit.rlim_cur >= wanted {
            return;
        }
        limit.rlim_cur = wanted.min(limit.rlim_max);
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            tracing::warn!(wanted, "cannot raise the open file limit; fewer clients may connect");
        }
    }
}

async fn run(config: Config, config_file: String) -> i32 {
    raise_open_file_limit(config.maxclients);
    // The clock that times commands calibrates against the TSC on first use
    // (about a millisecond, at most 200 ms): here, not under the store lock
    // on the first command.
    let _ = quanta::Instant::now();
    let listeners = match server::bind(&config).await {
        Ok(listeners) => listeners,
        Err(error) => {
            error!(port = config.port, error = %error, "cannot listen");
            eprintln!("ferrocache-node: cannot listen on port {}: {error}", config.port);
            return 1;
        }
    };
    let port = config.port;
    let snapshot_path = config.dir.join(&config.dbfilename);
    let preload = config.preload.clone();
    let s3_settings = snapshot::remote::settings_from_config(&config);
    let store = storage::shared(Store::new(config));
    let state = Arc::new(ServerState::new(store, port, config_file));
    // Clients may connect at once; data commands answer -LOADING until the
    // snapshot on disk is loaded, and a bad snapshot stops the node.
    state.loading.store(true, Ordering::Release);
    let load_state = Arc::clone(&state);
    match preload {
        Some(uri) => {
            tokio::spawn(preload_from_s3(load_state, uri, s3_settings));
        }
        None => {
            tokio::task::spawn_blocking(move || load_at_start(&load_state, &snapshot_path));
        }
    }
    tokio::spawn(save_points(Arc::clone(&state)));
    info!(port, version = env!("CARGO_PKG_VERSION"), "ready to accept connections");
    let shutdown_state = Arc::clone(&state);
    let shutdown = async move {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = shutdown_state.shutdown.notified() => info!("shutdown requested by SHUTDOWN"),
            _ = tokio::signal::ctrl_c() => info!("received SIGINT, shutting down"),
            _ = async {
                match terminate.as_mut() {
                    Some(signal) => { signal.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => info!("received SIGTERM, shutting down"),
        }
    };
    server::run(listeners, Arc::clone(&state), shutdown).await;
    // A running script would hold the store forever: stop it, as Redis
    // exits from within a busy script on SIGTERM.
    ferrocache_node::script::busy::stop_for_shutdown();
    let code = tokio::task::spawn_blocking(move || save_on_shutdown(&state)).await.unwrap_or(1);
    info!("bye");
    code
}

/// Loads `dir/dbfilename` if present; exits the process if it is unusable,
/// so no partial data is ever served.
fn load_at_start(state: &ServerState, path: &std::path::Path) {
    match load::load_file_if_present(&state.store, path) {
        Ok(report) => {
            if report.is_none() {
                info!(path = %path.display(), "no snapshot to load");
            }
            *state.last_load.lock() = report;
            state.loading.store(false, Ordering::Release);
        }
        Err(error) => {
            error!(error = %error, "refusing to serve: the snapshot cannot be loaded");
            eprintln!("ferrocache-node: refusing to serve: {error}");
            std::process::exit(1);
        }
    }
}

/// Preloads the snapshot object `uri` from S3 before serving; exits the
/// process, saying exactly what is wrong, if it cannot (missing object or
/// bucket, wrong credentials, unreachable endpoint, truncated or corrupt
/// data), so no partial data is ever served.
async fn preload_from_s3(state: Arc<ServerState>, uri: String, settings: ferrocache_node::s3::S3Settings) {
    let refuse = |message: String| -> ! {
        error!(error = %message, "refusing to serve: the preload failed");
        eprintln!("ferrocache-node: refusing to serve: {message}");
        std::process::exit(1);
    };
    let parsed: ferrocache_node::s3::S3Uri = match uri.parse() {
        Ok(parsed) => parsed,
        Err(error) => refuse(format!("--preload {uri}: {error}")),
    };
    let client = match ferrocache_node::s3::S3Client::connect(&settings).await {
        Ok(client) => client,
        Err(error) => refuse(error.to_string()),
    };
    info!(uri = %uri, "preloading snapshot");
    match snapshot::remote::preload(Arc::clone(&state.store), client, parsed).await {
        Ok(report) => {
            info!(uri = %uri, keys = report.keys_loaded, bytes = report.bytes, "preload complete, serving");
            *state.last_load.lock() = Some(report);
            state.loading.store(false, Ordering::Release);
        }
        Err(error) => refuse(error.to_string()),
    }
}

/// Runs BGSAVE when a `save <seconds> <changes>` point is reached.
async fn save_points(state: Arc<ServerState>) {
    let mut last_attempt = std::time::Instant::now();
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        if state.loading.load(Ordering::Acquire) || state.snapshots.in_progress() {
            continue;
        }
        // A running script holds the store: look again next second.
        let Some(mut store) = ferrocache_node::script::busy::lock_unless_script(&state.store) else {
            continue;
        };
        let points = parse_save_points(&store.config.save);
        let since_save = (ferrocache_node::util::now_ms() / 1000 - state.snapshots.status().last_success_unix).max(0);
        let due = points.iter().any(|(seconds, changes)| store.dirty >= *changes && since_save >= *seconds as i64);
        if !due || last_attempt.elapsed() < std::time::Duration::from_secs(5) {
            continue;
        }
        last_attempt = std::time::Instant::now();
        let sink = match snapshot::Sink::file(&store.config.dir, &store.config.dbfilename) {
            Ok(sink) => sink,
            Err(error) => {
                error!(error = %error, "save point reached but the snapshot file cannot be created");
                continue;
            }
        };
        info!(changes = store.dirty, seconds = since_save, "save point reached, saving");
        let context = state.snapshot_context();
        if let Err(error) = snapshot::start_background(&context, &mut store, sink, None, None) {
            error!(error = %error, "background save failed to start");
        }
    }
}

/// `save` as pairs of (seconds, changes).
fn parse_save_points(text: &str) -> Vec<(u64, u64)> {
    let numbers: Vec<u64> = text.split_whitespace().filter_map(|word| word.parse().ok()).collect();
    numbers.chunks_exact(2).map(|pair| (pair[0], pair[1])).collect()
}

/// Saves before exiting when asked to (SHUTDOWN SAVE) or when save points
/// are configured, as Redis does. Returns the exit code.
fn save_on_shutdown(state: &ServerState) -> i32 {
    let store = state.store.lock();
    let wanted = state.shutdown_save.lock().unwrap_or(!parse_save_points(&store.config.save).is_empty());
    if !wanted || state.loading.load(Ordering::Acquire) {
        return 0;
    }
    if let Some(running) = state.snapshots.status().running {
        if let Some(pid) = running.child_pid {
            snapshot::fork::kill(pid);
        }
    }
    let sink = match snapshot::Sink::file(&store.config.dir, &store.config.dbfilename) {
        Ok(sink) => sink,
        Err(error) => {
            error!(error = %error, "cannot save before shutdown");
            return 1;
        }
    };
    match snapshot::save_foreground(&store, sink) {
        Ok(report) => {
            info!(keys = report.keys, bytes = report.bytes, "saved the dataset before shutdown");
            0
        }
        Err(error) => {
            error!(error = %error, "cannot save before shutdown");
            1
        }
    }
}
