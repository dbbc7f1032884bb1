//! `ferrocache-operator`: runs the controllers against the cluster of the
//! kubeconfig or the in-cluster service account.

use std::net::SocketAddr;

use clap::Parser;
use ferrocache_operator::context::Settings;
use ferrocache_operator::run::{run, Options};

/// Reconciles RedisCluster, Backup and Restore resources.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Arguments {
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[arg(long, env = "FERROCACHE_METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    metrics_address: SocketAddr,
    /// Run only while holding the Lease, so several replicas can run.
    #[arg(long, env = "FERROCACHE_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// The Lease's name.
    #[arg(long, env = "FERROCACHE_LEASE_NAME", default_value = "ferrocache-operator")]
    lease_name: String,
    /// The Lease's namespace (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// This replica's identity in the Lease.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// The image RedisCluster pods run when their spec names none.
    #[arg(long, env = "FERROCACHE_NODE_IMAGE", default_value = "ghcr.io/ferrocache/ferrocache:0.1.0")]
    node_image: String,
    /// Watch only this namespace (all when unset).
    #[arg(long, env = "FERROCACHE_WATCH_NAMESPACE")]
    watch_namespace: Option<String>,
    /// Read the current time from this file (an RFC 3339 time) when it exists: lets tests drive
    /// schedules and retention without waiting.
    #[arg(long, env = "FERROCACHE_CLOCK_FILE", hide = true)]
    clock_file: Option<std::path::PathBuf>,
    /// Log as JSON lines or as text.
    #[arg(long, env = "FERROCACHE_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

fn main() {
    let arguments = Arguments::parse();
    ferrocache_operator::install_crypto_provider();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if arguments.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
    let identity = arguments.identity.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "operator".to_owned());
        format!("{host}-{}", std::process::id())
    });
    let options = Options {
        metrics_address: arguments.metrics_address,
        leader_election: arguments.leader_election,
        lease_name: arguments.lease_name,
        lease_namespace: arguments.lease_namespace,
        identity,
        watch_namespace: arguments.watch_namespace.filter(|namespace| !namespace.is_empty()),
        clock_file: arguments.clock_file,
        settings: Settings { node_image: arguments.node_image },
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ferrocache-operator: cannot start the runtime: {error}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async {
        let shutdown = async {
            let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async {
                    match terminate.as_mut() {
                        Some(signal) => { signal.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {}
            }
            tracing::info!("shutting down");
        };
        match run(options, shutdown).await {
            Ok(()) => 0,
            Err(error) => {
                tracing::error!(error = &error as &dyn std::error::Error, "the operator stopped");
                eprintln!("ferrocache-operator: {}", ferrocache_operator::context::error_chain(&error));
                1
            }
        }
    });
    std::process::exit(code);
}
