//! Reading a recording in seq order, block by block, with bounded memory.
//!
//! [`BlockIter`] verifies every block (checksum, seq contiguity within and between
//! blocks) and stops at the first problem with an error naming the block and seq range: a
//! corrupt block is never skipped. [`Prefetch`] runs a `BlockIter` on its own thread a few
//! blocks ahead, so decoding overlaps with whatever consumes the records.

use crossbeam_channel::Receiver;

use super::block::{self, BlockError};
use super::meta::RecordingMeta;
use super::store::{Store, key_seq};
use super::{LogError, Result};
use crate::model::{Record, SymbolTable};

/// Blocks the prefetch thread may hold ahead of the consumer.
const PREFETCH_DEPTH: usize = 4;

/// A long read reopens the database every this many blocks. sled 0.34 keeps every page it
/// has paged in, whatever its cache capacity (spacejam/sled#1036), so without this a
/// 10M-record replay grew to 1.3 GiB; reopening drops those pages.
const REOPEN_EVERY_BLOCKS: usize = 128;

/// A read-only view of a recording.
pub struct Reader {
    store: Store,
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
        let store = Store::open_existing(dir)?;
        let meta = store.get_meta()?;
        let symbols = store.load_symbols()?;
        Ok(Reader { store, meta, symbols })
    }

    pub fn meta(&self) -> &RecordingMeta {
        &self.meta
    }

    pub fn symbols(&self) -> &SymbolTable {
        &self.symbols
    }

    /// The number of blocks. O(blocks): sled 0.34 counts by iterating, paging in everything.
    pub fn block_count(&self) -> usize {
        self.store.block_count()
    }

    /// The number of records, from the last block's header.
    ///
    /// # Errors
    /// When the last block is corrupt.
    pub fn record_count(&self) -> Result<u64> {
        match self.store.last_block()? {
            None => Ok(0),
            Some((key, bytes)) => {
                let header = block::verify(&bytes).map_err(|e| LogError::Corrupt {
                    block: self.store.block_count().saturating_sub(1) as u64,
                    seqs: format!("{key}.."),
                    detail: e.to_string(),
                })?;
                Ok(header.first_seq + header.count as u64)
            }
        }
    }

    /// Every raw frame kept with `--keep-raw`, in arrival order.
    ///
    /// # Errors
    /// When a raw block is corrupt.
    pub fn raw_frames(&self) -> Result<Vec<super::RawFrame>> {
        let mut out = Vec::new();
        for item in self.store.raw.iter() {
            let (key, value) = item?;
            let frames = super::raw::decode(&value).map_err(|detail| LogError::Corrupt {
                block: 0,
                seqs: format!("raw frame {}..", key_seq(&key)),
                detail,
            })?;
            out.extend(frames);
        }
        Ok(out)
    }

    /// How many raw frames the recording keeps.
    ///
    /// # Errors
    /// When the last raw block is corrupt.
    pub fn raw_count(&self) -> Result<u64> {
        match self.store.last_raw()? {
            None => Ok(0),
            Some((first, bytes)) => Ok(first
                + super::raw::count(&bytes).map_err(|detail| LogError::Corrupt {
                    block: 0,
                    seqs: format!("raw frame {first}.."),
                    detail,
                })? as u64),
        }
    }

    /// Every stored block in key order, each decoded and verified on its own: unlike
    /// [`Reader::blocks_from`], a bad block is reported and the scan goes on. For `verify`
    /// and `repair` only.
    pub fn scan_blocks(&self) -> impl Iterator<Item = ScannedBlock> + '_ {
        let mut scratch = Vec::new();
        let mut keys = self.store.events.iter().keys().peekable();
        let mut ordinal = 0u64;
        std::iter::from_fn(move || {
            let key = match keys.next()? {
                Ok(k) => key_seq(&k),
                Err(e) => return Some(ScannedBlock { ordinal, first_seq: 0, records: Err(e.to_string()) }),
            };
            let next = keys.peek().and_then(|k| k.as_ref().ok()).map(|k| key_seq(k));
            let value = self.store.events.get(key.to_be_bytes());
            let mut records = Vec::new();
            let result = match value {
                Ok(Some(bytes)) => match block::decode(&bytes, &mut records, &mut scratch) {
                    Ok(h) if h.first_seq == key => Ok(records),
                    Ok(h) => Err(format!("header says seq {} but the key is {key}", h.first_seq)),
                    Err(e) => Err(match next {
                        Some(n) => format!("seq {key}..={}: {e}", n - 1),
                        None => format!("seq {key}..: {e}"),
                    }),
                },
                Ok(None) => Err("block vanished while scanning".into()),
                Err(e) => Err(e.to_string()),
            };
            let scanned = ScannedBlock { ordinal, first_seq: key, records: result };
            ordinal += 1;
            Some(scanned)
        })
    }

    /// The first and last ts_recv, from the first and last blocks; `None` when empty.
    ///
    /// # Errors
    /// When either block is corrupt.
    pub fn ts_recv_span(&self) -> Result<Option<(u64, u64)>> {
        let Some(first) = self.blocks_from(0).next().transpose()? else { return Ok(None) };
        let last_key = self.store.last_block()?.map_or(0, |(k, _)| k);
        let last =
            self.blocks_from(last_key).next().transpose()?.unwrap_or(Block { first_seq: 0, records: Vec::new() });
        let first_ts = first.records.first().map_or(0, |r| r.ts_recv);
        let last_ts = last.records.last().map_or(first_ts, |r| r.ts_recv);
        Ok(Some((first_ts, last_ts)))
    }

    /// Verified blocks in order, starting with the block that holds `seq`.
    pub fn blocks_from(&self, seq: u64) -> BlockIter {
        let start_key = match self.store.events.range(..=seq.to_be_bytes()).next_back() {
            Some(Ok((key, _))) => key_seq(&key),
            _ => 0,
        };
        BlockIter {
            path: self.store.path.clone(),
            store: Some(self.store.clone()),
            since_open: 0,
            next_key: Some(start_key),
            expected: None,
            scratch: Vec::new(),
            failed: false,
        }
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

/// Verified blocks in seq order; yields one error and then stops.
///
/// Each step opens a short-lived sled range instead of holding one iterator for the whole
/// read: a long-lived sled iterator keeps every page it has visited alive, and a 10M-record
/// replay then grew past 1.3 GiB.
pub struct BlockIter {
    path: std::path::PathBuf,
    store: Option<Store>,
    since_open: usize,
    next_key: Option<u64>,
    expected: Option<u64>,
    scratch: Vec<u8>,
    failed: bool,
}

impl BlockIter {
    /// The store, reopened every `REOPEN_EVERY_BLOCKS` to release sled's paged-in pages
    /// (only effective once no other handle in this process keeps the database open).
    fn store(&mut self) -> Result<&Store> {
        if self.since_open >= REOPEN_EVERY_BLOCKS {
            self.store = None;
            self.since_open = 0;
        }
        if self.store.is_none() {
            self.store = Some(Store::open_existing(&self.path)?);
        }
        self.since_open += 1;
        Ok(self.store.as_ref().expect("just opened"))
    }

    fn corrupt(&mut self, key: u64, end: Option<u64>, detail: String) -> LogError {
        self.failed = true;
        let ordinal = match self.store() {
            Ok(store) => store.events.range(..key.to_be_bytes()).count() as u64,
            Err(_) => 0,
        };
        let seqs = match end {
            Some(end) if end >= key => format!("{key}..={end}"),
            _ => format!("{key}.."),
        };
        LogError::Corrupt { block: ordinal, seqs, detail }
    }
}

impl Iterator for BlockIter {
    type Item = Result<Block>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let from = self.next_key?;
        let store = match self.store() {
            Ok(store) => store,
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        let mut range = store.events.range(from.to_be_bytes()..);
        let (key, value) = match range.next()? {
            Ok(kv) => kv,
            Err(e) => {
                self.failed = true;
                return Some(Err(e.into()));
            }
        };
        let key = key_seq(&key);
        let next_key = match range.next() {
            Some(Ok((k, _))) => Some(key_seq(&k)),
            _ => None,
        };
        drop(range);
        self.next_key = next_key;
        if let Some(expected) = self.expected
            && expected != key
        {
            let detail = format!("seq gap between blocks: expected a block starting at seq {expected}");
            return Some(Err(self.corrupt(key, next_key.map(|n| n - 1), detail)));
        }
        let mut records = Vec::new();
        match block::decode(&value, &mut records, &mut self.scratch) {
            Ok(header) if header.first_seq == key && header.count > 0 => {
                let end = key + header.count as u64;
                self.expected = Some(end);
                Some(Ok(Block { first_seq: key, records }))
            }
            Ok(header) => {
                let detail = format!("header says seq {} with {} records", header.first_seq, header.count);
                Some(Err(self.corrupt(key, next_key.map(|n| n - 1), detail)))
            }
            Err(e) => {
                let end = match e {
                    BlockError::Checksum { .. } | BlockError::Truncated(_) | BlockError::Version(_) => {
                        next_key.map(|n| n - 1)
                    }
                    _ => block::verify(&value).ok().map(|h| key + h.count as u64 - 1),
                };
                Some(Err(self.corrupt(key, end, e.to_string())))
            }
        }
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
