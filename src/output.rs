//! Where engine outputs go: the signals JSONL file, the terminal, and the digest that
//! proves two runs produced the same bytes.
//!
//! Every sink receives the same rendered line (`Signal::to_json`), so the file, the digest
//! and what scripts read from stdout never disagree. Sinks do IO; the engine never does.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::engine::{Signal, SignalBody};
use crate::model::SymbolTable;
use crate::model::time::format_utc;

/// How signals are shown on the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminal {
    Off,
    /// One human-readable line per signal.
    Human,
    /// The JSONL line itself, for pipes.
    Json,
}

/// Fans every signal out to the configured sinks and keeps the run's digest and counts.
pub struct Signals {
    file: Option<std::io::BufWriter<std::fs::File>>,
    terminal: Terminal,
    stdout: std::io::BufWriter<std::io::Stdout>,
    hasher: Sha256,
    results: Option<crate::log::RunWriter>,
    pub per_detector: BTreeMap<String, u64>,
    pub total: u64,
}

impl Signals {
    /// # Errors
    /// When the signals file cannot be created.
    pub fn new(path: Option<&Path>, terminal: Terminal) -> std::io::Result<Signals> {
        let file = match path {
            Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
            None => None,
        };
        Ok(Signals {
            file,
            terminal,
            stdout: std::io::BufWriter::new(std::io::stdout()),
            hasher: Sha256::new(),
            results: None,
            per_detector: BTreeMap::new(),
            total: 0,
        })
    }

    /// Also stores every signal as a run in the results store.
    pub fn with_results(mut self, run: crate::log::RunWriter) -> Self {
        self.results = Some(run);
        self
    }

    /// Ends the results-store run with `summary`, if one is open; returns its id.
    ///
    /// # Errors
    /// On storage failure.
    pub fn finish_run(&mut self, summary: &serde_json::Value) -> std::io::Result<Option<u64>> {
        match self.results.take() {
            None => Ok(None),
            Some(run) => {
                let id = run.id;
                run.finish(summary).map_err(std::io::Error::other)?;
                Ok(Some(id))
            }
        }
    }

    /// # Errors
    /// When writing to the file or the terminal fails.
    pub fn emit(&mut self, signal: &Signal, symbols: &SymbolTable) -> std::io::Result<()> {
        let mut line = signal.to_json(symbols);
        line.push('\n');
        self.hasher.update(line.as_bytes());
        *self.per_detector.entry(signal.detector.to_string()).or_default() += 1;
        self.total += 1;
        if let Some(file) = &mut self.file {
            file.write_all(line.as_bytes())?;
        }
        if let Some(run) = &mut self.results {
            run.signal(&line).map_err(std::io::Error::other)?;
        }
        match self.terminal {
            Terminal::Off => {}
            Terminal::Json => self.stdout.write_all(line.as_bytes())?,
            Terminal::Human => writeln!(self.stdout, "{}", human(signal, symbols))?,
        }
        Ok(())
    }

    /// Flushes every sink and returns the hex SHA-256 of the signals JSONL.
    ///
    /// # Errors
    /// When flushing fails.
    pub fn finish(&mut self) -> std::io::Result<String> {
        if let Some(file) = &mut self.file {
            file.flush()?;
        }
        self.stdout.flush()?;
        let digest = std::mem::take(&mut self.hasher).finalize();
        Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// A one-line human description of a signal.
pub fn human(signal: &Signal, symbols: &SymbolTable) -> String {
    let symbol = symbols.get(signal.instrument).map_or("-", |i| i.symbol.as_str());
    let head = format!("{} {} {:<10} {:<10}", format_utc(signal.ts), signal.exchange, symbol, signal.detector);
    match &signal.body {
        SignalBody::Wave { dir, start_price, end_price, change_pct, .. } => {
            format!("{head} {dir:<4} {start_price:.8} -> {end_price:.8} ({change_pct:+.3}%)")
        }
        SignalBody::Volatility { regime, ratio, .. } => format!("{head} regime {regime} (ratio {ratio:.3})"),
        SignalBody::Volume { volume, baseline, ratio, .. } => {
            format!("{head} volume {volume} is {ratio:.2}x the baseline {baseline:.8}")
        }
        SignalBody::Custom(fields) => format!("{head} {}", serde_json::Value::Object(fields.clone())),
    }
}
