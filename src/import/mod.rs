//! Building recordings from files: captures made by other tools, and public data dumps.
//!
//! Importers read files and feed venue normalizers, then append through the log's
//! [`Writer`](crate::log::Writer), so an imported recording is an ordinary one. They never
//! know a wire format themselves beyond the file framing.

pub mod binance;
pub mod hftbacktest;

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}:{line}: {detail}")]
    Line { path: String, line: u64, detail: String },
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
}

/// Counters an import reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportStats {
    pub lines: u64,
    pub records: u64,
    pub parse_errors: u64,
    pub control_frames: u64,
}
