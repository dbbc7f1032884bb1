//! `ferrocache-kubelet`: the kubelet stand-in of the local test bed.
//! See [`ferrocache_testbed::kubelet`] and `scripts/testbed/README.md`.

use std::io::IsTerminal;
use std::process::ExitCode;

use ferrocache_testbed::kubelet::{self, config::Settings};
use tokio::signal::unix::{signal, SignalKind};
use tracing::error;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    ferrocache_testbed::install_crypto_provider();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", kubelet::config::USAGE);
        return ExitCode::SUCCESS;
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            error!(error = &*error as &dyn std::error::Error, "kubelet stand-in failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::from_args_and_env(args)?;
    let client_config = kube::Config::infer().await?;
    let host = client_config.cluster_url.host().unwrap_or("127.0.0.1").trim_matches(['[', ']']).to_owned();
    let port = client_config.cluster_url.port_u16().unwrap_or(443);
    let config = settings.into_config(&host, port)?;
    let client = kube::Client::try_from(client_config)?;

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    };
    kubelet::run(client, config, shutdown).await?;
    Ok(())
}
