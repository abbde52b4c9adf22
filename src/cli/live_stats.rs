//! `live`'s latency histograms on request: `kill -USR1 <pid>` prints them to stderr while the
//! capture runs (they are also printed on exit and included in `--json`).

use std::sync::{Arc, Mutex};

use crate::bench::LiveLatency;

/// Starts a thread that prints `latency` to stderr on every SIGUSR1. It lives as long as the
/// process; a failure to install the handler is logged, not fatal.
pub fn print_on_sigusr1(latency: Arc<Mutex<LiveLatency>>) {
    let spawned = std::thread::Builder::new().name("tapedeck-sigusr1".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_io().build() {
            Ok(rt) => rt,
            Err(e) => return tracing::warn!("no SIGUSR1 latency report: {e}"),
        };
        runtime.block_on(async move {
            let mut usr1 = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()) {
                Ok(s) => s,
                Err(e) => return tracing::warn!("no SIGUSR1 latency report: {e}"),
            };
            while usr1.recv().await.is_some() {
                let text = latency.lock().map(|l| l.render()).unwrap_or_default();
                eprint!("latency so far:\n{text}");
            }
        });
    });
    if let Err(e) = spawned {
        tracing::warn!("no SIGUSR1 latency report: {e}");
    }
}
