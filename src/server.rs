//! Running the server: bind, serve until SIGTERM or Ctrl-C, let requests in flight finish.

use std::sync::Arc;
use std::time::Duration;

use poem::Server;
use poem::listener::TcpAcceptor;

use crate::clock::{HOUR, SystemClock};
use crate::config::Config;
use crate::db::{Db, Ownership};
use crate::domain::{State, keys, sessions};

/// How long in-flight requests get to finish after a stop signal.
const GRACE: Duration = Duration::from_secs(10);

pub async fn serve(config: Config) -> Result<(), String> {
    let db = Db::open(&config.db_path, config.read_pool_size, Ownership::Server)
        .map_err(|e| e.to_string())?;
    let listen = config.listen;
    let state = State::new(db, Arc::new(SystemClock), config);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let acceptor = TcpAcceptor::from_tokio(listener).map_err(|e| e.to_string())?;
    tracing::info!(
        "keygate {} listening on http://{bound} (database {})",
        env!("CARGO_PKG_VERSION"),
        state.db.path().display()
    );

    let stop = stop_signal()?;
    let janitor = tokio::spawn(janitor(state.clone()));
    let flusher = tokio::spawn(flusher(state.clone()));
    tokio::spawn(crate::db::watch(state.db.clone()));
    let result = Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(crate::app(state.clone()), stop, Some(GRACE))
        .await
        .map_err(|e| format!("server error: {e}"));
    janitor.abort();
    flusher.abort();
    // Requests are done: what they counted lands before the process ends.
    match keys::flush_at_stop(&state).await {
        Ok(n) => tracing::info!(keys = n, "key usage flushed"),
        Err(e) => tracing::error!(error = %e, "flushing key usage at shutdown failed"),
    }
    tracing::info!("stopped");
    result
}

/// Writes in-memory key usage to the database every few seconds.
async fn flusher(state: State) {
    let every = Duration::from_millis(state.config.usage_flush_ms.max(100) as u64);
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Err(e) = keys::flush_usage(&state).await {
            tracing::warn!(error = %e, "flushing key usage failed; will retry");
        }
    }
}

/// Deletes expired sessions every hour.
async fn janitor(state: State) {
    let mut tick = tokio::time::interval(Duration::from_millis(HOUR as u64));
    loop {
        tick.tick().await;
        match sessions::purge_expired(&state).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "expired sessions purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is called, not
/// when the future is first polled, so a signal that arrives as soon as the server
/// answers is never lost to the default action (which would kill the process without
/// flushing).
fn stop_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    #[cfg(unix)]
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| format!("cannot handle SIGINT: {e}"))?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("stop signal received; finishing requests in flight");
    })
}
