//! Running the server: bind, accept within a cap on connections, serve each connection
//! with deadlines, and on SIGTERM or Ctrl-C let the requests in flight finish.
//!
//! poem's own server builds hyper without a timer and accepts without bound, so a client
//! that never finishes its request head, or a flood of idle sockets, would hold the
//! server for good. This loop owns those rules instead: HTTP/1.1 only (no cleartext
//! HTTP/2, whose streams would multiply what one socket may hold), a deadline for each
//! phase of a connection (see `deadline.rs`), a semaphore of connection slots below the
//! process's file limit, and an accept loop that backs off when the system refuses.

mod deadline;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use poem::{Endpoint, EndpointExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::clock::{HOUR, SystemClock};
use crate::config::Config;
use crate::db::{Db, Ownership};
use crate::domain::{State, audit, keys, sessions};
use deadline::{Deadlines, Phases, Shared};

/// How long in-flight requests get to finish after a stop signal.
const GRACE: Duration = Duration::from_secs(10);
/// File descriptors kept free for the database, logs and the accept loop itself.
const RESERVED_FDS: u64 = 64;
/// The largest request head (and read buffer) a connection may hold.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Accept errors are logged at most once per this interval.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(10);

pub async fn serve(config: Config) -> Result<(), String> {
    let max_connections = connection_cap(config.max_connections)?;
    let db = Db::open(&config.db_path, config.read_pool_size, Ownership::Server)
        .map_err(|e| e.to_string())?;
    let listen = config.listen;
    let state = State::new(db, Arc::new(SystemClock), config);
    crate::domain::two_factor::check_key(&state)?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        "keygate {} listening on http://{bound} (database {}, at most {max_connections} connections)",
        env!("CARGO_PKG_VERSION"),
        state.db.path().display()
    );

    let stop = stop_signal()?;
    let janitor = tokio::spawn(janitor(state.clone()));
    let flusher = tokio::spawn(flusher(state.clone()));
    let watcher = tokio::spawn(crate::db::watch(state.db.clone()));
    let phases = Phases {
        head: Duration::from_millis(state.config.header_timeout_ms),
        idle: Duration::from_millis(state.config.idle_timeout_ms),
        stall: Duration::from_millis(state.config.body_timeout_ms),
    };
    let app = Arc::new(crate::app(state.clone()).map_to_response());
    accept_loop(listener, app, phases, max_connections, stop).await;
    watcher.abort();
    janitor.abort();
    flusher.abort();
    // Requests are done: what they counted lands before the process ends.
    match keys::flush_at_stop(&state).await {
        Ok(n) => tracing::info!(keys = n, "key usage flushed"),
        Err(e) => tracing::error!(error = %e, "flushing key usage at shutdown failed"),
    }
    if let Err(e) = audit::flush_refusals(&state).await {
        tracing::error!(error = %e, "writing refused sign-ins to the audit log at shutdown failed");
    }
    tracing::info!("stopped");
    Ok(())
}

/// The number of connections served at once: the configured cap, or what the file limit
/// allows after raising the soft limit to the hard one. A cap above the file limit is
/// refused, since the server would then fail accepts instead of queueing clients.
fn connection_cap(configured: Option<usize>) -> Result<usize, String> {
    let files = raise_file_limit();
    let fits = files.map(|n| n.saturating_sub(RESERVED_FDS).max(16) as usize);
    match (configured, fits) {
        (Some(c), Some(f)) if c > f => Err(format!(
            "--max-connections {c} does not fit the file limit of {} (at most {f}); raise \
             the limit (ulimit -n, LimitNOFILE=) or lower the cap",
            files.unwrap_or_default()
        )),
        (Some(c), _) => Ok(c.max(1)),
        (None, Some(f)) => Ok(f.min(DEFAULT_MAX_CONNECTIONS)),
        (None, None) => Ok(1024),
    }
}

/// The cap when none is configured and the file limit allows more.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Raises the soft limit on open files to the hard limit and answers the soft limit now
/// in force (`None` when it is unlimited or unknown).
fn raise_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if setrlimit(Resource::Nofile, limit).is_err() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    limit.current
}

/// Accepts until `stop`, each connection holding one slot; then asks every connection
/// to finish and waits up to `GRACE` for them.
async fn accept_loop<E>(
    listener: TcpListener,
    app: Arc<E>,
    phases: Phases,
    max_connections: usize,
    stop: impl std::future::Future<Output = ()>,
) where
    E: Endpoint<Output = poem::Response> + 'static,
{
    let slots = Arc::new(Semaphore::new(max_connections));
    let (stage, stages) = watch::channel(Stage::Serving);
    let local = listener.local_addr().ok();
    let mut errors = AcceptErrors::default();
    tokio::pin!(stop);
    loop {
        // Wait for a free slot before accepting: at the cap, new clients queue in the
        // kernel's backlog instead of costing a file descriptor each.
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut stop => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                errors.ok();
                let (app, stages) = (Arc::clone(&app), stages.clone());
                tokio::spawn(async move {
                    serve_connection(stream, peer, local, app, phases, stages).await;
                    drop(permit);
                });
            }
            // A connection that failed before it was accepted (reset, aborted) is that
            // client's problem: go on at once.
            Err(e) if !exhausted(&e) => drop(permit),
            Err(e) => {
                drop(permit);
                let pause = errors.failed(&e);
                // Out of descriptors or memory: retrying at once would spin a core while
                // no client is served.
                tokio::select! {
                    () = tokio::time::sleep(pause) => {},
                    () = &mut stop => break,
                }
            }
        }
    }
    drop(listener);
    let _ = stage.send(Stage::Closing);
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(GRACE, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {GRACE:?}; closing them");
        let _ = stage.send(Stage::Abort);
        let _ = tokio::time::timeout(Duration::from_secs(1), slots.acquire_many(all)).await;
    }
}

/// Whether an accept failed for want of descriptors or memory, which retrying at once
/// cannot fix.
fn exhausted(e: &std::io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        Errno::from_io_error(e),
        Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)
    )
}

/// Back-off and rate-limited logging for failed accepts.
#[derive(Default)]
struct AcceptErrors {
    pause: Duration,
    logged_at: Option<Instant>,
    suppressed: u64,
}

impl AcceptErrors {
    fn ok(&mut self) {
        self.pause = Duration::ZERO;
    }

    /// Records a failure; answers how long to wait before the next accept.
    fn failed(&mut self, e: &std::io::Error) -> Duration {
        self.pause = (self.pause * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
        let now = Instant::now();
        if self
            .logged_at
            .is_none_or(|t| now.duration_since(t) >= ACCEPT_LOG_EVERY)
        {
            tracing::warn!(
                error = %e,
                repeats = self.suppressed,
                "accepting a connection failed; backing off (repeats counts failures since the last line)"
            );
            self.logged_at = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        self.pause
    }
}

async fn serve_connection<E>(
    stream: TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    app: Arc<E>,
    phases: Phases,
    mut stage: watch::Receiver<Stage>,
) where
    E: Endpoint<Output = poem::Response> + 'static,
{
    let _ = stream.set_nodelay(true);
    let remote = poem::web::RemoteAddr(poem::Addr::SocketAddr(peer));
    let local = poem::web::LocalAddr(local.map_or(poem::Addr::Custom("tcp", "".into()), |a| {
        poem::Addr::SocketAddr(a)
    }));
    let shared = Arc::new(Shared::default());
    let phase = Arc::clone(&shared);
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        phase.request_started();
        let (app, phase) = (Arc::clone(&app), Arc::clone(&phase));
        let req = poem::Request::from((
            req,
            local.clone(),
            remote.clone(),
            poem::http::uri::Scheme::HTTP,
        ));
        async move {
            let resp = app.get_response(req).await;
            phase.response_ready();
            Ok::<_, Infallible>(hyper::Response::<
                http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>,
            >::from(resp))
        }
    });
    let io = hyper_util::rt::TokioIo::new(Deadlines::new(stream, phases, shared));
    let conn = hyper::server::conn::http1::Builder::new()
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stage.wait_for(|s| *s != Stage::Serving) => {}
    }
    // Stopping: finish the request in flight, then close; past the grace period the
    // connection is dropped, so nothing it does can miss the final usage flush.
    conn.as_mut().graceful_shutdown();
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stage.wait_for(|s| *s == Stage::Abort) => {}
    }
}

/// Where the server is in its life, as the connections see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Serving,
    /// Finish the request in flight, then close.
    Closing,
    /// Close now.
    Abort,
}

/// Writes in-memory key usage to the database every few seconds.
async fn flusher(state: State) {
    let every = Duration::from_millis(state.config.usage_flush_ms.max(100) as u64);
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let started = std::time::Instant::now();
        match keys::flush_usage(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(
                keys = n,
                ms = started.elapsed().as_secs_f64() * 1000.0,
                "key usage flushed"
            ),
            Err(e) => tracing::warn!(error = %e, "flushing key usage failed; will retry"),
        }
        if let Err(e) = audit::flush_refusals(&state).await {
            tracing::warn!(error = %e, "writing refused sign-ins to the audit log failed; will retry");
        }
    }
}

/// Deletes expired sessions, audit events past the audit retention, and key usage hours
/// past the usage retention, every hour.
async fn janitor(state: State) {
    let mut tick = tokio::time::interval(Duration::from_millis(HOUR as u64));
    loop {
        tick.tick().await;
        match sessions::purge_expired(&state).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "expired sessions purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
        }
        match audit::prune(&state).await {
            Ok(n) if n > 0 => {
                tracing::info!(deleted = n, "audit events past their retention deleted")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning the audit log failed"),
        }
        match keys::prune_usage(&state).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "key usage hours past retention pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning key usage hours failed"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_accepts_back_off_to_a_second_and_are_logged_once_per_interval() {
        let mut errors = AcceptErrors::default();
        let e = std::io::Error::from_raw_os_error(24); // EMFILE
        assert!(exhausted(&e));
        assert!(!exhausted(&std::io::Error::from(
            std::io::ErrorKind::ConnectionAborted
        )));
        let pauses: Vec<u128> = (0..10).map(|_| errors.failed(&e).as_millis()).collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        // The first failure was logged; the nine after it, within the interval, were not.
        assert_eq!(errors.suppressed, 9);
        errors.ok();
        assert_eq!(
            errors.failed(&e).as_millis(),
            5,
            "a success resets the back-off"
        );
    }
}
