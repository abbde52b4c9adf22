//! tapedeck: record, replay and analyse crypto exchange market data.
//!
//! The crate is one library and one binary. Read this file as the code map; each module's
//! own `//!` says what it owns and what it must not do.

// Table-driven tests spell their rows as tuples; that is the point of them.
#![cfg_attr(test, allow(clippy::type_complexity))]

/// Alerts: signals as Telegram, stdout or file messages; pacing, cooldown, bot commands, backtest.
pub mod alert;
/// Backfill: kline and trade history over venue REST APIs, resumable, into a recording.
pub mod backfill;
/// Backtesting: strategies over recordings with the simulated broker; metrics, reports, sweeps.
pub mod backtest;
/// Latency benchmarking with HDR histograms (`tapedeck bench`).
pub mod bench;
/// Live capture: connections, normalization and the writer pipeline.
pub mod capture;
/// The command line (the binary is a thin wrapper around `cli::main`).
pub mod cli;
/// Built-in detectors: waves, volatility regimes, volume anomalies.
pub mod detect;
/// The synchronous engine: books, candles, detectors. No IO, no clock.
pub mod engine;
/// Venue adapters: wire formats and normalization, one folder per exchange.
pub mod exchange;
/// Importers that build recordings from files.
pub mod import;
/// The append-only recording (the only module that knows sled).
pub mod log;
/// Exact decimals, instruments and the normalized record model. No IO.
pub mod model;
/// Output sinks: signals JSONL, terminal, digest.
pub mod output;
/// Replay: merged, filtered, paced record streams from recordings.
pub mod replay;
/// Cross-pair scan: top volume ratios and latest waves over all instruments, per bucket.
pub mod scan;
/// Serving recordings back in a venue's own wire protocol (`tapedeck serve`).
pub mod serve;
/// Built-in strategies (`wave-follow`, `volume-breakout`) and the `--strategy` spec.
pub mod strategy;
/// Recording health: checksums, seq, venue ids, timestamps, gap ledger; repair.
pub mod verify;
