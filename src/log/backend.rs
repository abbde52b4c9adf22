//! The log backend trait: where a recording's blocks, symbols and metadata are kept.
//!
//! A recording lives in a sled directory (the default, no setup) or in a NATS JetStream
//! stream, chosen by its location string: `nats://host:4222/STREAM` is JetStream, anything
//! else is a directory. [`Writer`](super::Writer) and [`Reader`](super::Reader) hold a
//! `dyn Backend` and keep all batching, seq assignment and verification to themselves, so
//! both backends store and return exactly the same records. Nothing outside `log` sees this
//! trait or the backends.

use std::path::Path;
use std::sync::Arc;

use super::Result;
use super::block::Compression;
use super::meta::RecordingMeta;
use super::reader::{Block, ScannedBlock};
use crate::model::{Instrument, InstrumentId, Record, SymbolTable};

/// Verified blocks in seq order, as a backend yields them; one error ends the iteration.
pub(crate) type Blocks = Box<dyn Iterator<Item = Result<Block>> + Send>;

/// Storage operations that differ between sled and JetStream.
pub(crate) trait Backend: Send + Sync {
    /// Where the recording is, for messages.
    fn location(&self) -> String;
    fn get_meta(&self) -> Result<RecordingMeta>;
    fn put_meta(&self, meta: &RecordingMeta) -> Result<()>;
    fn load_symbols(&self) -> Result<SymbolTable>;
    fn put_symbol(&self, id: InstrumentId, instrument: &Instrument) -> Result<()>;
    /// The seq after the last stored record (0 when empty). Read-only.
    fn next_seq(&self) -> Result<u64>;
    /// Like `next_seq`, for a writer about to append: a unit cut short by a crash is marked
    /// as abandoned, so its seqs can be written again.
    fn open_for_append(&self) -> Result<u64> {
        self.next_seq()
    }
    /// Stores `records`, whose seqs are consecutive, as one unit: after a crash either all of
    /// them are readable or the reader reports the unit as cut short.
    fn put_records(&self, records: &[Record], compression: Compression, scratch: &mut Vec<u8>) -> Result<()>;
    /// Makes everything stored so far durable.
    fn flush(&self) -> Result<()>;
    /// Free bytes where the recording is stored; `None` when the backend has no such notion.
    fn available_space(&self) -> Option<Result<u64>>;
    /// Stores a block of raw frames (`--keep-raw`) under its first frame index.
    fn put_raw(&self, first: u64, block: Vec<u8>) -> Result<()>;
    /// How many raw frames are stored.
    fn raw_count(&self) -> Result<u64>;
    fn raw_frames(&self) -> Result<Vec<super::RawFrame>>;
    /// How many stored units (blocks) the recording has.
    fn block_count(&self) -> usize;
    /// Verified blocks from the one that holds `seq`.
    fn blocks_from(&self, seq: u64) -> Blocks;
    /// Every block, each verified on its own; a bad one is reported and the scan goes on.
    fn scan_blocks(&self) -> Box<dyn Iterator<Item = ScannedBlock> + Send + '_>;
    /// The last block, verified.
    fn last_block(&self) -> Result<Option<Block>>;
    /// Bytes the recording takes where it is stored (files on disk, or the stream's bytes).
    fn stored_bytes(&self) -> u64;
}

/// Parses a recording location: a JetStream URL or a directory.
pub(crate) enum Location<'a> {
    Dir(&'a Path),
    Nats(super::nats::NatsUrl),
}

impl<'a> Location<'a> {
    /// # Errors
    /// When a `nats://` location is malformed.
    pub fn of(path: &'a Path) -> Result<Location<'a>> {
        match path.to_str() {
            Some(s) if s.starts_with("nats://") => Ok(Location::Nats(super::nats::NatsUrl::parse(s)?)),
            _ => Ok(Location::Dir(path)),
        }
    }
}

/// Opens an existing recording at `path`.
pub(crate) fn open_existing(path: &Path) -> Result<Arc<dyn Backend>> {
    Ok(match Location::of(path)? {
        Location::Dir(dir) => Arc::new(super::store::SledReader::open(dir)?),
        Location::Nats(url) => Arc::new(super::nats::NatsLog::open_existing(&url)?),
    })
}

/// Opens the recording at `path`, creating it with `meta` when there is none; `true` when
/// it was created.
pub(crate) fn open_or_create(path: &Path, meta: &RecordingMeta) -> Result<(Arc<dyn Backend>, bool)> {
    Ok(match Location::of(path)? {
        Location::Dir(dir) => {
            let (store, created) = super::store::Store::open_or_create(dir, meta)?;
            (Arc::new(super::store::SledWriter::new(store)), created)
        }
        Location::Nats(url) => {
            let (log, created) = super::nats::NatsLog::open_or_create(&url, meta)?;
            (Arc::new(log), created)
        }
    })
}

/// Is `path` a JetStream location rather than a directory?
pub fn is_remote(path: &Path) -> bool {
    path.to_str().is_some_and(|s| s.starts_with("nats://"))
}
