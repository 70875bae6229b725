//! Logs: `tracing` to a daily file in the data directory's `logs/` (7 kept), and to stderr.
//! Secrets never reach them: passwords and tokens are wrapper types that print as redacted.

use std::path::Path;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

/// Starts logging; keep the guard for the life of the app (it flushes the file on drop).
pub fn start(data_dir: &Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let _ = std::fs::create_dir_all(data_dir.join("logs"));
    // The SIP stack logs every message it sends and receives at info: a trace for whoever asks
    // for it (`CALLBOX_LOG=info,rsipstack=info`), not for every agent's log.
    let filter = EnvFilter::try_from_env("CALLBOX_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,rsipstack=warn"));
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("callbox")
        .filename_suffix("log")
        .max_log_files(7)
        .build(data_dir.join("logs"));
    match appender {
        Ok(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(fmt::layer().with_writer(writer).with_ansi(false))
                .with(fmt::layer().with_writer(std::io::stderr))
                .try_init();
            Some(guard)
        }
        Err(error) => {
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(fmt::layer().with_writer(std::io::stderr))
                .try_init();
            tracing::warn!(%error, "no log file");
            None
        }
    }
}
