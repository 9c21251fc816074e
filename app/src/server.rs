//! What both binaries share: JSON logs to stdout and serving with a graceful SIGTERM drain.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

/// How long in-flight requests may take to finish after SIGTERM (Kubernetes waits 30 s).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(25);

/// Logs as JSON lines on stdout; `debug` adds per-request lines. `RUST_LOG` overrides.
pub fn init_logging(debug: bool) {
    let default = if debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .with_writer(std::io::stdout)
        .init();
}

/// Waits for SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = term => tracing::info!(signal = "SIGTERM", "shutdown signal received, draining in-flight requests"),
        _ = tokio::signal::ctrl_c() => tracing::info!(signal = "SIGINT", "shutdown signal received, draining in-flight requests"),
    }
}

/// Binds `addr` and serves `app` until SIGTERM, then stops accepting and lets in-flight
/// requests finish (at most [`DRAIN_TIMEOUT`]).
pub async fn serve(name: &str, addr: SocketAddr, app: axum::Router) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("{name}: cannot listen on {addr}; is the port in use?"))?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(addr = %local, "{name} listening");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = tx.send(());
    });
    let deadline = async move {
        if rx.await.is_ok() {
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        res = server => res.with_context(|| format!("{name}: server error"))?,
        () = deadline => tracing::warn!(timeout = ?DRAIN_TIMEOUT, "drain timeout reached; closing remaining connections"),
    }
    tracing::info!("{name} stopped");
    Ok(())
}

/// Logs each request at debug level (enabled by `HKF_DEBUG`/`HKA_DEBUG` or `RUST_LOG`).
pub async fn log_request(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let start = std::time::Instant::now();
    let res = next.run(req).await;
    tracing::debug!(%method, %path, status = res.status().as_u16(), micros = start.elapsed().as_micros() as u64, "request");
    res
}
