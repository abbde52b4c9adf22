//! tapedeck: record, replay and analyse crypto exchange market data.
//!
//! The crate is one library and one binary. Read this file as the code map; each module's
//! own `//!` says what it owns and what it must not do.

/// The command line (the binary is a thin wrapper around `cli::main`).
pub mod cli;
/// Venue adapters: wire formats and normalization, one folder per exchange.
pub mod exchange;
/// Importers that build recordings from files.
pub mod import;
/// The append-only recording (the only module that knows sled).
pub mod log;
/// Exact decimals, instruments and the normalized record model. No IO.
pub mod model;
