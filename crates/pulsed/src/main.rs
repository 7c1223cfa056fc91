//! `pulsed`: the Pulse server (`standalone | node | coordinator`).
//!
//! Thin by design (STYLE rule 12): parse the command line, set up logs, build the config, bind
//! the listener, then hand over to `pulse_coordinator::run` with a shutdown future that
//! resolves on SIGTERM or SIGINT. Every piece of server logic lives in the library crates.

mod cli;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};

/// mimalloc instead of glibc malloc: decoding and re-encoding customer states allocates per
/// event, and glibc's malloc/free showed as ~13 % of the CPU in profiles (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs();
    match serve(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            error!(error = format!("{error:#}"), "pulsed failed");
            ExitCode::FAILURE
        }
    }
}

/// Structured logs to stderr, filtered by `PULSE_LOG` (default `info`).
fn init_logs() {
    let filter = EnvFilter::try_from_env("PULSE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let (config, metrics_listen) = match &cli.command {
        Command::Standalone(args) => (args.config()?, args.metrics_listen.clone()),
        Command::Node(args) => (args.config()?, args.server.metrics_listen.clone()),
        Command::Coordinator(args) => (args.config()?, args.server.metrics_listen.clone()),
    };
    if let Some(address) = &metrics_listen {
        serve_metrics(address).await?;
    }
    let listener =
        TcpListener::bind(&config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    info!(listen = %listener.local_addr()?, "listening");
    match cli.command {
        Command::Standalone(_) => pulse_coordinator::run(config, listener, shutdown_signal()).await?,
        Command::Node(_) => pulse_coordinator::run_node(config, listener, shutdown_signal()).await?,
        Command::Coordinator(_) => {
            pulse_coordinator::run_coordinator(config, listener, shutdown_signal()).await?
        }
    }
    info!("pulsed stopped");
    Ok(())
}

/// Serves Prometheus metrics on `address` from a background task.
async fn serve_metrics(address: &str) -> anyhow::Result<()> {
    let socket = tokio::net::lookup_host(address)
        .await
        .with_context(|| format!("resolving metrics address {address}"))?
        .next()
        .with_context(|| format!("metrics address {address} resolves to nothing"))?;
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(socket)
        .install()
        .context("starting the metrics endpoint")?;
    pulse_coordinator::describe_metrics();
    info!(address = %socket, "serving metrics");
    Ok(())
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => info!("SIGINT received; shutting down"),
        () = terminate => info!("SIGTERM received; shutting down"),
    }
}
