//! `ferrocache-node`: started like `redis-server`:
//! `ferrocache-node [config-file] [--name value ...]`.

use std::sync::Arc;

use ferrocache_node::config::Config;
use ferrocache_node::server::{self, ServerState};
use ferrocache_node::storage::{self, Store};
use tracing::{error, info};

#[global_allocator]
static GLOBAL: ferrocache_node::alloc::CountingAllocator = ferrocache_node::alloc::CountingAllocator;

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
    let config_file = args
        .first()
        .filter(|first| !first.starts_with("--"))
        .and_then(|path| std::fs::canonicalize(path).ok())
        .map(|path| path.display().to_string())
        .unwrap_or_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |count| count.get()).min(4))
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
    let listeners = match server::bind(&config).await {
        Ok(listeners) => listeners,
        Err(error) => {
            error!(port = config.port, error = %error, "cannot listen");
            eprintln!("ferrocache-node: cannot listen on port {}: {error}", config.port);
            return 1;
        }
    };
    let port = config.port;
    let store = storage::shared(Store::new(config));
    let state = Arc::new(ServerState::new(store, port, config_file));
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
    info!("bye");
    0
}
