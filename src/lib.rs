//! Portal: a self-hosted client portal for tax and accounting firms.
//!
//! `serve` runs the whole thing from a listener and a shutdown future, so that
//! `main` and the tests start it the same way.

pub mod accounts;
pub mod app;
pub mod config;
pub mod documents;
pub mod error;
pub mod firm;
pub mod home;
pub mod ids;
pub mod infra;
pub mod plugin_cli;
pub mod state;
pub mod tasks;
pub mod theme_check;
pub mod web;

use std::future::Future;
use std::time::Duration;

use app::Schedule;
use tracing::Instrument;

pub use config::Config;
pub use state::AppState;

/// Serves the portal on an already-bound listener until `shutdown` resolves, with
/// the background jobs of `app::jobs` running beside it.
pub async fn serve(
    state: AppState,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    hold_search_index(&state).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let jobs = start_jobs(&state, &stop_rx);
    tracing::info!("mail goes to the {}", state.mailer.describe());
    tracing::info!(
        "serving on http://{local} (public URL {})",
        state.config.base_url()
    );

    // The background jobs hear the shutdown at once, while HTTP connections drain;
    // the mail worker then abandons a hung delivery after a few seconds.
    let stop_tx = std::sync::Arc::new(stop_tx);
    let stopping = stop_tx.clone();
    let shutdown = async move {
        shutdown.await;
        let _ = stopping.send(true);
    };
    let limits = connection_limits(&state);
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let search = state.search.clone();
    let result = infra::web::server::run(listener, app::build(state), limits, shutdown).await;
    let _ = stop_tx.send(true);
    for job in jobs {
        let _ = job.await;
    }
    search.release_writer();
    tracing::info!("stopped");
    Ok(result?)
}

/// Starts every job of `app::jobs`; returns those to wait for at shutdown.
fn start_jobs(
    state: &AppState,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| -> app::Shutdown {
        Box::pin(async move {
            let _ = rx.wait_for(|s| *s).await;
        })
    };
    let mut awaited = Vec::new();
    for job in app::jobs() {
        let span = tracing::info_span!("job", name = job.name);
        let state = state.clone();
        let task = match job.schedule {
            Schedule::AtStart(run) => {
                tokio::spawn(run(state).instrument(span));
                continue;
            }
            Schedule::Every(period, run) => {
                let period = period(&state.config);
                repeat(period, run, state, stopped(stop.clone()))
            }
            Schedule::Worker(run) => run(state, stopped(stop.clone())),
        };
        awaited.push(tokio::spawn(task.instrument(span)));
    }
    awaited
}

/// Runs `run` now and then every `period` until `stop` resolves.
fn repeat(
    period: Duration,
    run: fn(AppState) -> app::JobFuture,
    state: AppState,
    stop: app::Shutdown,
) -> app::JobFuture {
    Box::pin(async move {
        tokio::pin!(stop);
        loop {
            run(state.clone()).await;
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(period) => {}
            }
        }
    })
}

/// Holds the search index's writer for as long as the server runs, so that a
/// command that would change the index under it (`portal maintain`, `portal
/// reindex`) refuses before changing anything, and a second server on the same
/// data directory does not start.
async fn hold_search_index(state: &AppState) -> anyhow::Result<()> {
    // A process that is just exiting (a restart) may hold the index a moment
    // longer: wait a few seconds for it before refusing.
    let deadline = tokio::time::Instant::now() + INDEX_WAIT;
    loop {
        let search = state.search.clone();
        let claimed = tokio::task::spawn_blocking(move || search.claim_writer()).await?;
        match claimed {
            Ok(()) => return Ok(()),
            Err(e) if e.is::<infra::search::IndexInUse>() => {
                if tokio::time::Instant::now() >= deadline {
                    anyhow::bail!(
                        "another portal process (`portal serve`, `reindex` or `maintain`) is using the data directory {}; stop it or let it finish first",
                        state.config.storage.data_dir.display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.context("cannot open the search index")),
        }
    }
}

/// How long `serve` waits for another process to let go of the search index.
const INDEX_WAIT: Duration = Duration::from_secs(5);

fn connection_limits(state: &AppState) -> infra::web::server::Limits {
    let server = &state.config.server;
    infra::web::server::Limits {
        max_connections: server.max_connections.get() as usize,
        max_per_ip: server.max_connections_per_ip as usize,
        header_timeout: Duration::from_secs(u64::from(server.header_timeout_seconds.get())),
        send_timeout: Duration::from_secs(u64::from(server.send_timeout_seconds.get())),
        exempt: if state.web.trust_proxy_headers {
            state.web.trusted_proxies.to_vec()
        } else {
            Vec::new()
        },
        shutdown_grace: Duration::from_secs(10),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
