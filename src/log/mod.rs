//! The recording: an append-only log of [`Record`]s in a sled database directory, or in a
//! NATS JetStream stream (`nats://host:4222/STREAM`, see `nats/`).
//!
//! This module is the only place that knows sled or JetStream exists. Everything else uses
//! [`Writer`], [`Reader`] and [`RecordingMeta`], which hold a backend (`backend.rs`). A recording holds three trees: `meta` (JSON metadata and
//! the format version), `symbols` (the interned instrument table) and `events`, whose keys
//! are the big-endian first seq of a block of records and whose values are checksummed,
//! optionally compressed blocks (see `block.rs`). Blocks are never rewritten once stored.
//! The results store of runs and signals (`results.rs`) is a separate sled database.

mod backend;
mod block;
mod copy;
pub mod fault;
mod meta;
mod nats;
mod raw;
mod reader;
mod results;
mod store;
mod writer;

use std::path::PathBuf;

pub use backend::is_remote;
pub use block::Compression;
pub use copy::{CopyReport, copy};
pub use meta::{FORMAT_VERSION, RecordingMeta};
pub use raw::RawFrame;
pub use reader::{Block, BlockIter, Prefetch, Reader, RecordIter, ScannedBlock};
pub use results::{ResultsStore, RunWriter, StoredRun};
pub use writer::{Tapped, Writer, WriterConfig, WriterHandle, WriterMsg, WriterStats, spawn_writer};

use crate::model::Record;

/// Everything that can go wrong reading or writing a recording.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{path}: not a tapedeck recording (no metadata found)")]
    NotARecording { path: PathBuf },
    #[error("{path}: recording format {found} is not supported (this build reads format {supported})")]
    UnsupportedFormat { path: PathBuf, found: u32, supported: u32 },
    /// `block` is the block's ordinal in the recording; `seqs` its seq range, as far as known.
    #[error("corrupt block {block} (seq {seqs}): {detail}")]
    Corrupt { block: u64, seqs: String, detail: String },
    #[error("{path}: recording is in use by another process (one process may open it at a time)")]
    Busy { path: PathBuf },
    #[error("corrupt recording: {0}")]
    CorruptMeta(String),
    #[error("storage error: {0}")]
    Storage(#[from] sled::Error),
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    #[error("encode error: {0}")]
    Encode(String),
    #[error("{location}: {detail}")]
    Remote { location: String, detail: String },
    #[error("the writer thread has stopped")]
    WriterGone,
    #[error(
        "disk full: {available} bytes free, below the {required}-byte reserve (--min-free-space); everything up to here is flushed"
    )]
    DiskFull { available: u64, required: u64 },
    #[error("storage stalled: a flush did not finish within {seconds} s (a full or failing disk does this)")]
    Stalled { seconds: u64 },
}

impl LogError {
    /// The storage ran out of space: our own reserve check, or ENOSPC from the filesystem.
    pub fn is_disk_full(&self) -> bool {
        match self {
            LogError::DiskFull { .. } => true,
            LogError::Io(e) | LogError::Storage(sled::Error::Io(e)) => e.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
    }
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;

/// Reads a whole recording into memory; for tests, sweeps and small files.
///
/// # Errors
/// Any [`LogError`] met while reading.
pub fn read_all(dir: &std::path::Path) -> Result<Vec<Record>> {
    let reader = Reader::open(dir)?;
    reader.records_from(0).collect()
}

/// Total size of the files under `dir`, in bytes.
pub fn disk_size(dir: &std::path::Path) -> u64 {
    fn walk(path: &std::path::Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(path) else { return 0 };
        entries
            .flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => walk(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    walk(dir)
}

#[cfg(test)]
mod tests;

/// Fuzzing entry (fuzz/): seals `bytes` with a valid checksum when they hold a header, then
/// decodes them as a block. Returns how many records decoded, or None on an error.
#[doc(hidden)]
pub fn fuzz_decode_block(bytes: &mut [u8]) -> Option<usize> {
    if bytes.len() >= block::HEADER_LEN {
        bytes[block::CRC_AT..block::CRC_AT + 4].copy_from_slice(&[0; 4]);
        let crc = crc32fast::hash(bytes);
        bytes[block::CRC_AT..block::CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    }
    let mut out = Vec::new();
    block::decode(bytes, &mut out, &mut Vec::new()).ok().map(|_| out.len())
}
