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
pub mod infra;

use std::future::Future;
use std::time::Duration;

use poem::listener::TcpAcceptor;

pub use app::AppState;
pub use config::Config;

/// Serves the portal on an already-bound listener until `shutdown` resolves, with
/// the mail worker and housekeeping running beside it.
pub async fn serve(
    state: AppState,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    hold_search_index(&state).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop_tx = std::sync::Arc::new(stop_tx);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let mail = tokio::spawn(state.mailer.clone().run(stopped(stop_rx.clone())));
    let housekeeping = tokio::spawn(housekeeping(state.clone(), stopped(stop_rx.clone())));
    let repair_state = state.clone();
    tokio::spawn(async move {
        match documents::content::repair(&repair_state).await {
            Ok(Some(n)) => tracing::info!(documents = n, "search index rebuilt"),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "the search index could not be rebuilt; run `portal reindex`")
            }
        }
    });
    tracing::info!("mail goes to the {}", state.mailer.describe());
    tracing::info!(
        "serving on http://{local} (public URL {})",
        state.config.server.public_url
    );

    // The background jobs hear the shutdown at once, while HTTP connections drain;
    // the mail worker then abandons a hung delivery after a few seconds.
    let stopping = stop_tx.clone();
    let shutdown = async move {
        shutdown.await;
        let _ = stopping.send(true);
    };
    let acceptor = TcpAcceptor::from_std(listener)?;
    let server = poem::Server::new_with_acceptor(acceptor);
    let result = server
        .run_with_graceful_shutdown(app::build(state), shutdown, Some(Duration::from_secs(10)))
        .await;
    let _ = stop_tx.send(true);
    let _ = mail.await;
    let _ = housekeeping.await;
    tracing::info!("stopped");
    Ok(result?)
}

/// Holds the search index's writer for as long as the server runs, so that a
/// command that would change the index under it (`portal maintain`, `portal
/// reindex`) refuses before changing anything, and a second server on the same
/// data directory does not start.
async fn hold_search_index(state: &AppState) -> anyhow::Result<()> {
    let search = state.search.clone();
    tokio::task::spawn_blocking(move || search.claim_writer())
        .await?
        .map_err(|e| {
            if e.is::<infra::search::IndexInUse>() {
                anyhow::anyhow!(
                    "another portal process (`portal serve`, `reindex` or `maintain`) is using the data directory {}; stop it or let it finish first",
                    state.config.storage.data_dir.display()
                )
            } else {
                e.context("cannot open the search index")
            }
        })
}

/// Removes expired sessions, flows and abandoned uploads every few minutes, and
/// runs document retention (D9) as often as configured.
async fn housekeeping(state: AppState, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let idle = i64::from(state.config.accounts.session_idle_minutes) * 60;
    let retention_every =
        Duration::from_secs(u64::from(state.config.retention.run_every_minutes) * 60);
    let mut last_retention: Option<std::time::Instant> = None;
    loop {
        if let Err(e) = documents::upload::sweep(&state).await {
            tracing::warn!(error = ?e, "removing abandoned uploads failed");
        }
        if last_retention.is_none_or(|t| t.elapsed() >= retention_every) {
            last_retention = Some(std::time::Instant::now());
            match documents::retention::run(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "portal maintenance removed documents"),
                Err(e) => tracing::error!(error = %e, "portal maintenance failed"),
            }
        }
        let result = state
            .db
            .write(move |tx| {
                accounts::repo::delete_expired_sessions(tx, idle)?;
                tx.execute(
                    "DELETE FROM trusted_devices WHERE expires_at < ?1",
                    [infra::db::now()],
                )?;
                tx.execute(
                    "DELETE FROM auth_flows WHERE expires_at < ?1",
                    [infra::db::now()],
                )?;
                Ok::<_, infra::db::DbError>(())
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "housekeeping failed");
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(Duration::from_secs(300)) => {}
        }
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
