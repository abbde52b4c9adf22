//! Reading a recording in seq order, block by block, with bounded memory.
//!
//! [`BlockIter`] yields verified blocks (checksum, seq contiguity within and between
//! blocks, checked by the backend) and stops at the first problem with an error naming the
//! block and seq range: a corrupt block is never skipped. [`Prefetch`] runs a `BlockIter` on its own thread a few
//! blocks ahead, so decoding overlaps with whatever consumes the records.

use crossbeam_channel::Receiver;

use super::Result;
use super::backend::Backend;
use super::meta::RecordingMeta;
use crate::model::{Record, SymbolTable};

/// Blocks the prefetch thread may hold ahead of the consumer.
const PREFETCH_DEPTH: usize = 4;

/// A read-only view of a recording.
pub struct Reader {
    backend: std::sync::Arc<dyn Backend>,
    meta: RecordingMeta,
    symbols: SymbolTable,
}

/// One block as `scan_blocks` found it.
#[derive(Debug)]
pub struct ScannedBlock {
    pub ordinal: u64,
    pub first_seq: u64,
    /// The records, or why the block cannot be trusted.
    pub records: std::result::Result<Vec<Record>, String>,
}

/// One decoded block.
#[derive(Debug)]
pub struct Block {
    pub first_seq: u64,
    pub records: Vec<Record>,
}

impl Reader {
    /// Opens an existing recording.
    ///
    /// # Errors
    /// When `dir` is not a recording, or its metadata or symbol table is unreadable.
    pub fn open(dir: &std::path::Path) -> Result<Reader> {
        let backend = super::backend::open_existing(dir)?;
        let meta = backend.get_meta()?;
        let symbols = backend.load_symbols()?;
        Ok(Reader { backend, meta, symbols })
    }

    pub fn meta(&self) -> &RecordingMeta {
        &self.meta
    }

    pub fn symbols(&self) -> &SymbolTable {
        &self.symbols
    }

    /// The number of blocks. For sled this is O(blocks): sled 0.34 counts by iterating.
    pub fn block_count(&self) -> usize {
        self.backend.block_count()
    }

    /// Bytes the recording takes: its files on disk, or its JetStream stream's bytes.
    pub fn stored_bytes(&self) -> u64 {
        self.backend.stored_bytes()
    }

    /// Where the recording is: its directory or JetStream URL.
    pub fn location(&self) -> String {
        self.backend.location()
    }

    /// The number of records, from the last block's header.
    ///
    /// # Errors
    /// When the last block is corrupt.
    pub fn record_count(&self) -> Result<u64> {
        self.backend.next_seq()
    }

    /// Every raw frame kept with `--keep-raw`, in arrival order.
    ///
    /// # Errors
    /// When a raw block is corrupt.
    pub fn raw_frames(&self) -> Result<Vec<super::RawFrame>> {
        self.backend.raw_frames()
    }

    /// How many raw frames the recording keeps.
    ///
    /// # Errors
    /// When the last raw block is corrupt.
    pub fn raw_count(&self) -> Result<u64> {
        self.backend.raw_count()
    }

    /// Every stored block in order, each decoded and verified on its own: unlike
    /// [`Reader::blocks_from`], a bad block is reported and the scan goes on. For `verify`
    /// and `repair` only.
    pub fn scan_blocks(&self) -> impl Iterator<Item = ScannedBlock> + '_ {
        self.backend.scan_blocks()
    }

    /// The first and last ts_recv, from the first and last blocks; `None` when empty.
    ///
    /// # Errors
    /// When either block is corrupt.
    pub fn ts_recv_span(&self) -> Result<Option<(u64, u64)>> {
        let Some(first) = self.blocks_from(0).next().transpose()? else { return Ok(None) };
        let last = self.backend.last_block()?.unwrap_or(Block { first_seq: 0, records: Vec::new() });
        let first_ts = first.records.first().map_or(0, |r| r.ts_recv);
        let last_ts = last.records.last().map_or(first_ts, |r| r.ts_recv);
        Ok(Some((first_ts, last_ts)))
    }

    /// Verified blocks in order, starting with the block that holds `seq`.
    pub fn blocks_from(&self, seq: u64) -> BlockIter {
        BlockIter { inner: self.backend.blocks_from(seq) }
    }

    /// Like [`Reader::blocks_from`], decoded on a prefetch thread.
    pub fn prefetch_from(&self, seq: u64) -> Prefetch {
        let blocks = self.blocks_from(seq);
        let (tx, rx) = crossbeam_channel::bounded(PREFETCH_DEPTH);
        std::thread::Builder::new()
            .name("tapedeck-prefetch".into())
            .spawn(move || {
                for block in blocks {
                    if tx.send(block).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn prefetch thread");
        Prefetch { rx }
    }

    /// Records from `seq` on, in order, decoded on a prefetch thread.
    pub fn records_from(&self, seq: u64) -> RecordIter {
        RecordIter { blocks: self.prefetch_from(seq), current: Vec::new().into_iter(), start: seq, done: false }
    }
}

/// Verified blocks in seq order; yields one error and then stops. Whichever backend holds
/// the recording, the blocks have consecutive seqs and are checked the same way.
pub struct BlockIter {
    inner: super::backend::Blocks,
}

impl Iterator for BlockIter {
    type Item = Result<Block>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}

/// Blocks decoded ahead on a separate thread.
pub struct Prefetch {
    rx: Receiver<Result<Block>>,
}

impl Iterator for Prefetch {
    type Item = Result<Block>;
    fn next(&mut self) -> Option<Self::Item> {
        self.rx.recv().ok()
    }
}

/// Records in seq order, one at a time.
pub struct RecordIter {
    blocks: Prefetch,
    current: std::vec::IntoIter<Record>,
    start: u64,
    done: bool,
}

impl RecordIter {
    /// The rest of the current block, or the next block, whole: for readers that lend
    /// records in place instead of moving each one out.
    pub fn next_batch(&mut self) -> Option<Result<Vec<Record>>> {
        let start = self.start;
        if self.current.len() > 0 {
            return Some(Ok(std::mem::take(&mut self.current).filter(|r| r.seq >= start).collect()));
        }
        if self.done {
            return None;
        }
        match self.blocks.next()? {
            Ok(block) if block.first_seq >= start => Some(Ok(block.records)),
            Ok(block) => Some(Ok(block.records.into_iter().filter(|r| r.seq >= start).collect())),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl Iterator for RecordIter {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.current.next() {
                if record.seq < self.start {
                    continue;
                }
                return Some(Ok(record));
            }
            if self.done {
                return None;
            }
            match self.blocks.next()? {
                Ok(block) => self.current = block.records.into_iter(),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
