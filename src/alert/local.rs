//! Local notifiers: stdout, a JSONL file, and the Telegram dry run that replay uses unless
//! `--send-alerts` is given.
//!
//! They own only writing; they must not pace or coalesce (the queue does that) and must not
//! write from the engine's thread: writes run on tokio's blocking pool, so a slow pipe holds
//! up nothing but its own queue.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::format::to_plain;
use super::{AlertError, Notifier, Outgoing, OutgoingKind, SendError, SendFuture};

/// Runs a blocking write off the async thread.
fn blocking_write(write: impl FnOnce() -> std::io::Result<()> + Send + 'static) -> SendFuture<'static> {
    Box::pin(async move {
        match tokio::task::spawn_blocking(write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SendError::Fatal(e.to_string())),
            Err(e) => Err(SendError::Fatal(e.to_string())),
        }
    })
}

/// One line per message on stdout: `alert: ...` with the message's lines joined by ` | `.
#[derive(Debug, Default)]
pub struct Stdout;

/// The stdout line for a message.
pub fn stdout_line(message: &Outgoing) -> String {
    let kind = match message.kind {
        OutgoingKind::Alert => "alert",
        OutgoingKind::Digest => "alert digest",
        OutgoingKind::Reply => "reply",
    };
    format!("{kind}: {}", to_plain(&message.html).lines().collect::<Vec<_>>().join(" | "))
}

impl Notifier for Stdout {
    fn target(&self) -> String {
        "stdout".into()
    }

    fn send<'a>(&'a self, message: &'a Outgoing) -> SendFuture<'a> {
        let line = stdout_line(message);
        blocking_write(move || {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{line}")?;
            out.flush()
        })
    }
}

/// One JSON object per message: `kind`, `alerts`, `text` (plain), `html`, and for single
/// alerts the signal exactly as the signals file has it.
#[derive(Debug)]
pub struct JsonlFile {
    path: PathBuf,
    file: Arc<Mutex<std::io::BufWriter<std::fs::File>>>,
}

impl JsonlFile {
    /// Creates (truncates) the file, like `--signals-out`.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn create(path: &Path) -> Result<JsonlFile, AlertError> {
        let file = std::fs::File::create(path).map_err(|source| AlertError::File { path: path.into(), source })?;
        Ok(JsonlFile { path: path.into(), file: Arc::new(Mutex::new(std::io::BufWriter::new(file))) })
    }
}

/// The JSONL line for a message.
pub fn jsonl_line(message: &Outgoing) -> String {
    let mut row = serde_json::Map::new();
    row.insert("kind".into(), serde_json::to_value(message.kind).unwrap_or_default());
    row.insert("alerts".into(), message.alerts.into());
    row.insert("text".into(), to_plain(&message.html).into());
    row.insert("html".into(), message.html.clone().into());
    if let Some(alert) = &message.alert {
        let signal = serde_json::from_str(&alert.json).unwrap_or(serde_json::Value::Null);
        row.insert("signal".into(), signal);
    }
    serde_json::Value::Object(row).to_string()
}

impl Notifier for JsonlFile {
    fn target(&self) -> String {
        format!("file:{}", self.path.display())
    }

    fn send<'a>(&'a self, message: &'a Outgoing) -> SendFuture<'a> {
        let line = jsonl_line(message);
        let file = self.file.clone();
        // Flushed per line: a live run is stopped with Ctrl-C, and alerts are rare.
        blocking_write(move || {
            let mut file = file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            writeln!(file, "{line}")?;
            file.flush()
        })
    }
}

/// Replay's `--alert telegram` without `--send-alerts`: prints each message as it would be
/// sent (HTML and all) on stderr, so stdout stays the signals stream.
#[derive(Debug, Default)]
pub struct DryRun {
    pub chat_id: Option<i64>,
}

impl Notifier for DryRun {
    fn target(&self) -> String {
        "telegram (dry run)".into()
    }

    fn send<'a>(&'a self, message: &'a Outgoing) -> SendFuture<'a> {
        let chat = self.chat_id.map_or_else(|| "no chat configured".to_string(), |c| format!("chat {c}"));
        let text = format!("--- telegram message, not sent ({chat}; --send-alerts sends it) ---\n{}", message.html);
        blocking_write(move || {
            let mut err = std::io::stderr().lock();
            writeln!(err, "{text}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let message = Outgoing {
            kind: OutgoingKind::Digest,
            html: "<b>+3 more:</b> a &amp; b\n<i>x &lt; y</i>".into(),
            alerts: 3,
            alert: None,
        };
        assert_eq!(stdout_line(&message), "alert digest: +3 more: a & b | x < y");
        let v: serde_json::Value = serde_json::from_str(&jsonl_line(&message)).unwrap();
        assert_eq!(v["kind"], "digest");
        assert_eq!(v["alerts"], 3);
        assert_eq!(v["text"], "+3 more: a & b\nx < y");
        assert_eq!(v["html"], message.html);
        assert!(v.get("signal").is_none());
    }
}
