//! Long reads of a sled recording: blocks fetched in order on one thread and decoded a few
//! at a time on rayon's pool, `scan` for verify and repair, and the reader's handle. Every
//! long read reopens the database now and then, because sled 0.34 keeps every page it has
//! read. No writes.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Store, key_seq};
use crate::log::backend::{Backend, Blocks};
use crate::log::block::{self, BlockError, Compression};
use crate::log::meta::RecordingMeta;
use crate::log::reader::{Block, ScannedBlock};
use crate::log::{LogError, Result};
use crate::model::{Instrument, InstrumentId, Record, SymbolTable};

/// A long read reopens the database after reading this many bytes of blocks. sled 0.34
/// keeps every page it has paged in, whatever its cache capacity (spacejam/sled#1036), so
/// without this a 10M-record replay grew to 1.3 GiB; reopening drops those pages, and
/// costs the read a pause. Counted in bytes, not blocks, so the bound holds whatever the
/// records' size. Replaying the looped sample (10.3M records, 1.7 GiB): every 64 MiB,
/// 105 MB peak RSS in 1.24–1.31 s; every 128 MiB, 171 MB in 1.20–1.24 s; every 160 MiB,
/// 204 MB in 1.16–1.18 s; every 340 MiB, 310 MB. The speed is not worth the memory. (Those
/// were version 1 blocks; version 2 holds the same records in 508 MiB, so a read reopens 8
/// times instead of 26, at 93 MB peak.)
///
/// Unit tests reopen every MiB, so that reads of the sample cross reopens.
const REOPEN_EVERY_BYTES: usize = if cfg!(test) { 1 << 20 } else { 64 << 20 };

/// Blocks decoded at once on rayon's pool by a long read. Each decoded block of a
/// book-heavy recording is about half a megabyte, so this bounds the extra memory.
const MAX_PARALLEL_DECODE: usize = 8;

/// Verified blocks in seq order; yields one error and then stops.
///
/// Each step opens a short-lived sled range instead of holding one iterator for the whole
/// read: a long-lived sled iterator keeps every page it has visited alive, and a 10M-record
/// replay then grew past 1.3 GiB.
pub(super) struct SledBlocks {
    path: std::path::PathBuf,
    store: Option<Store>,
    /// Bytes of blocks read since the store was opened.
    since_open: usize,
    next_key: Option<u64>,
    /// The block at `next_key`, already read.
    pending: Option<(u64, sled::IVec)>,
    expected: Option<u64>,
    /// Blocks fetched and being decoded on rayon's pool, in order, each with the channel
    /// its result comes back on.
    inflight: std::collections::VecDeque<(Fetched, crossbeam_channel::Receiver<Decoded>)>,
    fetch_done: bool,
    /// A failed fetch, reported after the blocks before it.
    fetch_error: Option<LogError>,
    failed: bool,
}

/// A stored block fetched but not yet decoded: its key, bytes, and the next block's key.
type Fetched = (u64, sled::IVec, Option<u64>);

type Decoded = std::result::Result<(block::Header, Vec<Record>), BlockError>;

/// Largest lz4 buffer a decoding thread keeps between blocks (a 1024-record block of a
/// book-heavy recording is about half a megabyte).
const KEEP_SCRATCH_BYTES: usize = 16 << 20;

thread_local! {
    /// lz4 output buffer per decoding thread: a fresh one per block would be a large
    /// allocation (and, past glibc's mmap threshold, page faults) every block.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl SledBlocks {
    /// Blocks from the one whose key is `start_key`.
    pub(super) fn new(store: Store, start_key: u64) -> SledBlocks {
        SledBlocks {
            path: store.path.clone(),
            store: Some(store),
            since_open: 0,
            next_key: Some(start_key),
            pending: None,
            expected: None,
            inflight: std::collections::VecDeque::new(),
            fetch_done: false,
            fetch_error: None,
            failed: false,
        }
    }

    /// The store, reopened every `REOPEN_EVERY_BYTES` to release sled's paged-in pages
    /// (only effective once no other handle in this process keeps the database open).
    fn store(&mut self) -> Result<&Store> {
        if self.since_open >= REOPEN_EVERY_BYTES {
            self.store = None;
            self.since_open = 0;
        }
        if self.store.is_none() {
            self.store = Some(Store::open_existing(&self.path)?);
        }
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

impl SledBlocks {
    /// The next stored block, undecoded; `None` at the end.
    ///
    /// The step that finds the next block's key also reads its bytes, which the next call
    /// takes from `pending` rather than reading them a second time.
    fn fetch(&mut self) -> Option<Result<Fetched>> {
        let from = self.next_key?;
        let pending = self.pending.take();
        let store = match self.store() {
            Ok(store) => store,
            Err(e) => return Some(Err(e)),
        };
        let (key, value) = match pending {
            Some(kv) => kv,
            None => match store.events.range(from.to_be_bytes()..).next()? {
                Ok((k, v)) => (key_seq(&k), v),
                Err(e) => return Some(Err(e.into())),
            },
        };
        let next = match key.checked_add(1).map(|after| store.events.range(after.to_be_bytes()..).next()) {
            Some(Some(Ok((k, v)))) => Some((key_seq(&k), v)),
            // The look-ahead failing is this read failing: it must not end the recording early.
            Some(Some(Err(e))) => return Some(Err(e.into())),
            _ => None,
        };
        let next_key = next.as_ref().map(|(k, _)| *k);
        self.next_key = next_key;
        self.pending = next;
        self.since_open += value.len();
        Some(Ok((key, value, next_key)))
    }

    /// Checks one decoded block against the blocks before it, in order.
    fn check(&mut self, (key, value, next_key): &Fetched, decoded: Decoded) -> Result<Block> {
        let (key, next_key) = (*key, *next_key);
        if let Some(expected) = self.expected
            && expected != key
        {
            let detail = format!("seq gap between blocks: expected a block starting at seq {expected}");
            return Err(self.corrupt(key, next_key.map(|n| n - 1), detail));
        }
        match decoded {
            Ok((header, records)) if header.first_seq == key && header.count > 0 && !header.sparse => {
                self.expected = Some(key + header.count as u64);
                Ok(Block { first_seq: key, records })
            }
            Ok((header, _)) => {
                let detail = format!("header says seq {} with {} records", header.first_seq, header.count);
                Err(self.corrupt(key, next_key.map(|n| n - 1), detail))
            }
            Err(e) => {
                let end = match e {
                    BlockError::Checksum { .. } | BlockError::Truncated(_) | BlockError::Version(_) => {
                        next_key.map(|n| n - 1)
                    }
                    _ => block::verify(value).ok().map(|h| key + h.count as u64 - 1),
                };
                Err(self.corrupt(key, end, e.to_string()))
            }
        }
    }
}

fn decode_value(value: &[u8]) -> Decoded {
    SCRATCH.with_borrow_mut(|scratch| {
        let mut records = Vec::new();
        let decoded = block::decode(value, &mut records, scratch).map(|header| (header, records));
        // The buffer outlives the read on rayon's threads: do not keep an outsized one.
        if scratch.capacity() > KEEP_SCRATCH_BYTES {
            *scratch = Vec::new();
        }
        decoded
    })
}

impl Iterator for SledBlocks {
    type Item = Result<Block>;

    /// Fetches blocks in order on this thread (one sled handle, for the reopen above) and
    /// hands each to rayon's pool to decode, keeping a few in flight, then checks them in
    /// order as they are taken. With one thread in the pool this is the plain sequential
    /// read.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let threads = rayon::current_num_threads();
        let window = (2 * threads).clamp(1, MAX_PARALLEL_DECODE);
        while self.inflight.len() < window && !self.fetch_done {
            match self.fetch() {
                None => self.fetch_done = true,
                Some(Ok(fetched)) => {
                    let (tx, rx) = crossbeam_channel::bounded(1);
                    let value = fetched.1.clone();
                    let job = move || {
                        let _ = tx.send(decode_value(&value));
                    };
                    if threads > 1 {
                        rayon::spawn(job);
                    } else {
                        job();
                    }
                    self.inflight.push_back((fetched, rx));
                }
                Some(Err(e)) => {
                    self.fetch_done = true;
                    self.fetch_error = Some(e);
                }
            }
        }
        let Some((fetched, rx)) = self.inflight.pop_front() else {
            self.failed = true;
            return self.fetch_error.take().map(Err);
        };
        let decoded = rx.recv().expect("a decode job sends its result (it cannot panic on any input)");
        let block = self.check(&fetched, decoded);
        if block.is_err() {
            self.failed = true;
            self.inflight.clear();
        }
        Some(block)
    }
}

/// Every block in key order, each decoded and verified on its own, for `verify` and `repair`.
///
/// One short-lived range per step and a reopen every `REOPEN_EVERY_BYTES`, as in
/// [`SledBlocks`]: a long-lived sled iterator or handle keeps every page it visits, and
/// `verify` of 10M records peaked at 1.3 GiB.
pub(super) fn scan(store: Store) -> impl Iterator<Item = ScannedBlock> + Send + 'static {
    let path = store.path.clone();
    let mut store = Some(store);
    let mut since_open = 0usize;
    let mut scratch = Vec::new();
    let mut from = Some(0u64);
    let mut ordinal = 0u64;
    std::iter::from_fn(move || {
        let start = from?;
        if since_open >= REOPEN_EVERY_BYTES {
            store = None;
            since_open = 0;
        }
        if store.is_none() {
            match Store::open_existing(&path) {
                Ok(s) => store = Some(s),
                Err(e) => {
                    from = None;
                    return Some(ScannedBlock { ordinal, first_seq: start, records: Err(e.to_string()) });
                }
            }
        }
        let events = &store.as_ref().expect("just opened").events;
        let mut range = events.range(start.to_be_bytes()..);
        let (key, value) = match range.next()? {
            Ok((k, v)) => (key_seq(&k), v),
            Err(e) => {
                from = None;
                return Some(ScannedBlock { ordinal, first_seq: start, records: Err(e.to_string()) });
            }
        };
        since_open += value.len();
        let next = match range.next() {
            Some(Ok((k, _))) => Some(key_seq(&k)),
            _ => None,
        };
        drop(range);
        from = next;
        let mut records = Vec::new();
        let result = match block::decode(&value, &mut records, &mut scratch) {
            Ok(h) if h.first_seq == key && !h.sparse => Ok(records),
            Ok(h) => Err(format!("header says seq {} (sparse: {}) but the key is {key}", h.first_seq, h.sparse)),
            Err(e) => Err(match next {
                Some(n) => format!("seq {key}..={}: {e}", n - 1),
                None => format!("seq {key}..: {e}"),
            }),
        };
        let scanned = ScannedBlock { ordinal, first_seq: key, records: result };
        ordinal += 1;
        Some(scanned)
    })
}

/// A reader's sled recording. It keeps the database open between calls, but hands its
/// handle to each long read (`blocks_from`, `scan_blocks`), whose periodic reopen then
/// really releases sled's pages: a handle held here for the whole read would pin them all.
pub(crate) struct SledReader {
    path: PathBuf,
    pinned: Mutex<Option<Store>>,
}

impl SledReader {
    pub fn open(path: &Path) -> Result<SledReader> {
        let store = Store::open_existing(path)?;
        Ok(SledReader { path: path.to_path_buf(), pinned: Mutex::new(Some(store)) })
    }

    fn store(&self) -> Result<Store> {
        let mut pinned = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(store) = pinned.as_ref() {
            return Ok(store.clone());
        }
        let store = Store::open_existing(&self.path)?;
        *pinned = Some(store.clone());
        Ok(store)
    }

    /// The handle, no longer kept here, for a long read to own.
    fn unpin(&self) -> Result<Store> {
        let taken = self.pinned.lock().unwrap_or_else(|p| p.into_inner()).take();
        match taken {
            Some(store) => Ok(store),
            None => Store::open_existing(&self.path),
        }
    }
}

impl Backend for SledReader {
    fn location(&self) -> String {
        self.path.display().to_string()
    }
    fn get_meta(&self) -> Result<RecordingMeta> {
        self.store()?.get_meta()
    }
    fn put_meta(&self, meta: &RecordingMeta) -> Result<()> {
        self.store()?.put_meta(meta)
    }
    fn load_symbols(&self) -> Result<SymbolTable> {
        self.store()?.load_symbols()
    }
    fn put_symbol(&self, id: InstrumentId, instrument: &Instrument) -> Result<()> {
        self.store()?.put_symbol(id, instrument)
    }
    fn next_seq(&self) -> Result<u64> {
        Backend::next_seq(&self.store()?)
    }
    fn put_records(&self, records: &[Record], compression: Compression, scratch: &mut Vec<u8>) -> Result<()> {
        Backend::put_records(&self.store()?, records, compression, scratch)
    }
    fn flush(&self) -> Result<()> {
        self.store()?.flush()
    }
    fn available_space(&self) -> Option<Result<u64>> {
        Some(self.store().and_then(|s| s.available_space()))
    }
    fn put_raw(&self, first: u64, block: Vec<u8>) -> Result<()> {
        self.store()?.put_raw(first, block)
    }
    fn raw_count(&self) -> Result<u64> {
        Backend::raw_count(&self.store()?)
    }
    fn raw_frames(&self) -> Result<Vec<crate::log::RawFrame>> {
        Backend::raw_frames(&self.store()?)
    }
    fn block_count(&self) -> usize {
        self.store().map_or(0, |s| Backend::block_count(&s))
    }
    fn blocks_from(&self, seq: u64) -> Blocks {
        match self.unpin() {
            Ok(store) => Backend::blocks_from(&store, seq),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }
    fn scan_blocks(&self) -> Box<dyn Iterator<Item = ScannedBlock> + Send + '_> {
        match self.unpin() {
            Ok(store) => Box::new(scan(store)),
            Err(e) => Box::new(std::iter::once(ScannedBlock { ordinal: 0, first_seq: 0, records: Err(e.to_string()) })),
        }
    }
    fn last_block(&self) -> Result<Option<Block>> {
        Backend::last_block(&self.store()?)
    }
    fn stored_bytes(&self) -> u64 {
        crate::log::disk_size(&self.path)
    }
}
