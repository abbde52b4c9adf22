//! The sled database behind a recording. Nothing outside `log` sees these types.
//!
//! Trees: `meta` (key `meta` → JSON, key `format` → u32 BE), `symbols` (u32 BE id → JSON
//! instrument) and `events` (u64 BE first seq → block). Big-endian keys keep sled's byte
//! order equal to numeric order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::backend::{Backend, Blocks};
use super::block::{self, BlockError, Compression};
use super::meta::{FORMAT_VERSION, RecordingMeta};
use super::reader::{Block, ScannedBlock};
use super::{LogError, Result};
use crate::model::{Instrument, InstrumentId, Record, SymbolTable};

const META_KEY: &[u8] = b"meta";
const FORMAT_KEY: &[u8] = b"format";

/// sled's page cache. Reads stream each block once, so a large cache only costs memory
/// (sled's 1 GiB default made a 10M-record replay peak at 1.3 GiB RSS).
const CACHE_BYTES: u64 = 4 * 1024 * 1024;

/// A long read reopens the database every this many blocks. sled 0.34 keeps every page it
/// has paged in, whatever its cache capacity (spacejam/sled#1036), so without this a
/// 10M-record replay grew to 1.3 GiB; reopening drops those pages. Every 128 blocks held a
/// 10M replay at 48 MiB but took 2.76 s; every 512, 100 MiB and 2.26 s; every 2048, 310 MiB.
const REOPEN_EVERY_BLOCKS: usize = 512;

/// Blocks decoded at once on rayon's pool by a long read. Each decoded block of a
/// book-heavy recording is about half a megabyte, so this bounds the extra memory.
const MAX_PARALLEL_DECODE: usize = 8;

/// How long to wait for another process to release a recording before giving up.
const LOCK_PATIENCE: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub(crate) struct Store {
    pub path: PathBuf,
    inner: Arc<Trees>,
    meta: sled::Tree,
    symbols: sled::Tree,
    pub events: sled::Tree,
    /// Raw frames as received (`--keep-raw`): u64 BE first frame index → block of frames.
    pub raw: sled::Tree,
}

struct Trees {
    db: sled::Db,
}

/// Databases open in this process. sled locks a database for one opener, so readers and
/// writers in one process share the handle instead of locking each other out.
static OPEN: Mutex<Option<HashMap<PathBuf, Weak<Trees>>>> = Mutex::new(None);

impl Store {
    /// Opens an existing recording; refuses directories that are not one.
    pub fn open_existing(path: &Path) -> Result<Store> {
        if !path.join("conf").is_file() {
            return Err(LogError::NotARecording { path: path.to_path_buf() });
        }
        let store = Store::open_raw(path)?;
        match store.meta.get(FORMAT_KEY)? {
            None => Err(LogError::NotARecording { path: path.to_path_buf() }),
            Some(v) => {
                let found = u32::from_be_bytes(
                    v.as_ref().try_into().map_err(|_| LogError::CorruptMeta("format version is not 4 bytes".into()))?,
                );
                if found != FORMAT_VERSION {
                    return Err(LogError::UnsupportedFormat {
                        path: path.to_path_buf(),
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
                Ok(store)
            }
        }
    }

    /// Opens a recording, creating it with `meta` if the directory holds none.
    pub fn open_or_create(path: &Path, meta: &RecordingMeta) -> Result<(Store, bool)> {
        if path.join("conf").is_file() {
            return Ok((Store::open_existing(path)?, false));
        }
        let store = Store::open_raw(path)?;
        store.put_meta(meta)?;
        store.meta.insert(FORMAT_KEY, &FORMAT_VERSION.to_be_bytes())?;
        store.inner.db.flush()?;
        Ok((store, true))
    }

    fn open_raw(path: &Path) -> Result<Store> {
        std::fs::create_dir_all(path)?;
        let key = path.canonicalize()?;
        let mut registry = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        let map = registry.get_or_insert_with(HashMap::new);
        let inner = match map.get(&key).and_then(Weak::upgrade) {
            Some(inner) => inner,
            None => {
                let inner = Arc::new(Trees { db: open_db(path)? });
                map.retain(|_, weak| weak.strong_count() > 0);
                map.insert(key, Arc::downgrade(&inner));
                inner
            }
        };
        drop(registry);
        let db = &inner.db;
        Ok(Store {
            path: path.to_path_buf(),
            meta: db.open_tree("meta")?,
            symbols: db.open_tree("symbols")?,
            events: db.open_tree("events")?,
            raw: db.open_tree("raw")?,
            inner,
        })
    }

    pub fn get_meta(&self) -> Result<RecordingMeta> {
        let bytes = self.meta.get(META_KEY)?.ok_or_else(|| LogError::NotARecording { path: self.path.clone() })?;
        serde_json::from_slice(&bytes).map_err(|e| LogError::CorruptMeta(format!("metadata: {e}")))
    }

    pub fn put_meta(&self, meta: &RecordingMeta) -> Result<()> {
        let json = serde_json::to_vec(meta).map_err(|e| LogError::Encode(e.to_string()))?;
        self.meta.insert(META_KEY, json)?;
        Ok(())
    }

    pub fn load_symbols(&self) -> Result<SymbolTable> {
        let mut table = SymbolTable::new();
        for item in self.symbols.iter() {
            let (key, value) = item?;
            let id = u32::from_be_bytes(
                key.as_ref().try_into().map_err(|_| LogError::CorruptMeta("symbol key is not 4 bytes".into()))?,
            );
            let instrument: Instrument =
                serde_json::from_slice(&value).map_err(|e| LogError::CorruptMeta(format!("symbol {id}: {e}")))?;
            let (assigned, _) = table.intern(&instrument);
            if assigned.0 != id {
                return Err(LogError::CorruptMeta(format!("symbol table has a hole before id {id}")));
            }
        }
        Ok(table)
    }

    pub fn put_symbol(&self, id: InstrumentId, instrument: &Instrument) -> Result<()> {
        let json = serde_json::to_vec(instrument).map_err(|e| LogError::Encode(e.to_string()))?;
        self.symbols.insert(id.0.to_be_bytes(), json)?;
        Ok(())
    }

    /// Stores a block; refuses to overwrite one, because blocks are immutable.
    pub fn put_block(&self, first_seq: u64, block: Vec<u8>) -> Result<()> {
        let swapped = self.events.compare_and_swap(first_seq.to_be_bytes(), None as Option<&[u8]>, Some(block))?;
        swapped.map_err(|_| LogError::CorruptMeta(format!("a block starting at seq {first_seq} already exists")))
    }

    pub fn last_block(&self) -> Result<Option<(u64, sled::IVec)>> {
        Ok(self.events.last()?.map(|(k, v)| (key_seq(&k), v)))
    }

    /// Stores a block of raw frames under its first frame index.
    pub fn put_raw(&self, first: u64, block: Vec<u8>) -> Result<()> {
        let swapped = self.raw.compare_and_swap(first.to_be_bytes(), None as Option<&[u8]>, Some(block))?;
        swapped.map_err(|_| LogError::CorruptMeta(format!("a raw block starting at frame {first} already exists")))
    }

    pub fn last_raw(&self) -> Result<Option<(u64, sled::IVec)>> {
        Ok(self.raw.last()?.map(|(k, v)| (key_seq(&k), v)))
    }

    /// Free space on the filesystem holding the recording, bytes.
    ///
    /// # Errors
    /// When the filesystem cannot be queried.
    pub fn available_space(&self) -> Result<u64> {
        Ok(fs2::available_space(&self.path)?)
    }

    /// Makes everything written so far durable.
    ///
    /// # Errors
    /// On storage failure, or `Stalled` when sled does not finish within `FLUSH_TIMEOUT`:
    /// on a full disk sled 0.34 sometimes waits forever for a write that failed, and a
    /// capture must stop with an error rather than hang.
    pub fn flush(&self) -> Result<()> {
        let db = self.inner.db.clone();
        let (tx, rx) = crossbeam_channel::bounded(1);
        std::thread::Builder::new().name("tapedeck-flush".into()).spawn(move || {
            let _ = tx.send(db.flush());
        })?;
        match rx.recv_timeout(FLUSH_TIMEOUT) {
            Ok(result) => {
                result?;
                Ok(())
            }
            Err(_) => Err(LogError::Stalled { seconds: FLUSH_TIMEOUT.as_secs() }),
        }
    }
}

impl Backend for Store {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn get_meta(&self) -> Result<RecordingMeta> {
        Store::get_meta(self)
    }

    fn put_meta(&self, meta: &RecordingMeta) -> Result<()> {
        Store::put_meta(self, meta)
    }

    fn load_symbols(&self) -> Result<SymbolTable> {
        Store::load_symbols(self)
    }

    fn put_symbol(&self, id: InstrumentId, instrument: &Instrument) -> Result<()> {
        Store::put_symbol(self, id, instrument)
    }

    fn next_seq(&self) -> Result<u64> {
        match self.last_block()? {
            None => Ok(0),
            Some((key, bytes)) => {
                let header = block::verify(&bytes).map_err(|e| LogError::Corrupt {
                    block: self.events.len().saturating_sub(1) as u64,
                    seqs: format!("{key}.."),
                    detail: format!("last block: {e}"),
                })?;
                Ok(header.first_seq + header.count as u64)
            }
        }
    }

    fn put_records(&self, records: &[Record], compression: Compression, scratch: &mut Vec<u8>) -> Result<()> {
        let Some(first) = records.first() else { return Ok(()) };
        let bytes = block::encode(records, compression, scratch).map_err(LogError::Encode)?;
        self.put_block(first.seq, bytes)
    }

    fn flush(&self) -> Result<()> {
        Store::flush(self)
    }

    fn available_space(&self) -> Option<Result<u64>> {
        Some(Store::available_space(self))
    }

    fn put_raw(&self, first: u64, block: Vec<u8>) -> Result<()> {
        Store::put_raw(self, first, block)
    }

    fn raw_count(&self) -> Result<u64> {
        match self.last_raw()? {
            None => Ok(0),
            Some((first, bytes)) => Ok(first
                + super::raw::count(&bytes).map_err(|detail| LogError::Corrupt {
                    block: 0,
                    seqs: format!("raw frame {first}.."),
                    detail,
                })? as u64),
        }
    }

    fn raw_frames(&self) -> Result<Vec<super::RawFrame>> {
        let mut out = Vec::new();
        for item in self.raw.iter() {
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

    fn block_count(&self) -> usize {
        self.events.len()
    }

    fn blocks_from(&self, seq: u64) -> Blocks {
        let start_key = match self.events.range(..=seq.to_be_bytes()).next_back() {
            Some(Ok((key, _))) => key_seq(&key),
            _ => 0,
        };
        Box::new(SledBlocks {
            path: self.path.clone(),
            store: Some(self.clone()),
            since_open: 0,
            next_key: Some(start_key),
            pending: None,
            expected: None,
            inflight: std::collections::VecDeque::new(),
            fetch_done: false,
            fetch_error: None,
            failed: false,
        })
    }

    fn scan_blocks(&self) -> Box<dyn Iterator<Item = ScannedBlock> + Send + '_> {
        Box::new(scan(self.clone()))
    }

    fn last_block(&self) -> Result<Option<Block>> {
        let Some((key, _)) = Store::last_block(self)? else { return Ok(None) };
        Backend::blocks_from(self, key).next().transpose()
    }

    fn stored_bytes(&self) -> u64 {
        super::disk_size(&self.path)
    }
}

/// Verified blocks in seq order; yields one error and then stops.
///
/// Each step opens a short-lived sled range instead of holding one iterator for the whole
/// read: a long-lived sled iterator keeps every page it has visited alive, and a 10M-record
/// replay then grew past 1.3 GiB.
pub(crate) struct SledBlocks {
    path: std::path::PathBuf,
    store: Option<Store>,
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
/// One short-lived range per step and a reopen every `REOPEN_EVERY_BLOCKS`, as in
/// [`SledBlocks`]: a long-lived sled iterator or handle keeps every page it visits, and
/// `verify` of 10M records peaked at 1.3 GiB.
fn scan(store: Store) -> impl Iterator<Item = ScannedBlock> + Send + 'static {
    let path = store.path.clone();
    let mut store = Some(store);
    let mut since_open = 0usize;
    let mut scratch = Vec::new();
    let mut from = Some(0u64);
    let mut ordinal = 0u64;
    std::iter::from_fn(move || {
        let start = from?;
        if since_open >= REOPEN_EVERY_BLOCKS {
            store = None;
            since_open = 0;
        }
        since_open += 1;
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
    fn raw_frames(&self) -> Result<Vec<super::RawFrame>> {
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
        super::disk_size(&self.path)
    }
}

/// A writer's sled recording, reopened every `REOPEN_EVERY_BLOCKS_WRITTEN` stored blocks.
/// sled 0.34 keeps every page it has written in memory too (spacejam/sled#1036): copying
/// 1M records into a directory peaked at 300 MB, and a 30-minute capture grew without bound.
/// Dropping the database (the writer holds the only handle) releases those pages.
pub(crate) struct SledWriter {
    path: PathBuf,
    store: std::sync::RwLock<Option<Store>>,
    written: std::sync::atomic::AtomicUsize,
}

/// Blocks stored between reopens: 256 blocks of 1024 records, a fraction of a second of
/// reopening per quarter million records.
const REOPEN_EVERY_BLOCKS_WRITTEN: usize = 256;

impl SledWriter {
    pub fn new(store: Store) -> SledWriter {
        SledWriter {
            path: store.path.clone(),
            store: std::sync::RwLock::new(Some(store)),
            written: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        let guard = self.store.read().unwrap_or_else(|p| p.into_inner());
        f(guard.as_ref().ok_or_else(|| LogError::Storage(sled::Error::ReportableBug("store not reopened".into())))?)
    }

    fn reopen(&self) -> Result<()> {
        let mut guard = self.store.write().unwrap_or_else(|p| p.into_inner());
        if let Some(store) = guard.take() {
            store.flush()?;
        }
        *guard = Some(Store::open_existing(&self.path)?);
        Ok(())
    }
}

impl Backend for SledWriter {
    fn location(&self) -> String {
        self.path.display().to_string()
    }
    fn get_meta(&self) -> Result<RecordingMeta> {
        self.with(Store::get_meta)
    }
    fn put_meta(&self, meta: &RecordingMeta) -> Result<()> {
        self.with(|s| s.put_meta(meta))
    }
    fn load_symbols(&self) -> Result<SymbolTable> {
        self.with(Store::load_symbols)
    }
    fn put_symbol(&self, id: InstrumentId, instrument: &Instrument) -> Result<()> {
        self.with(|s| s.put_symbol(id, instrument))
    }
    fn next_seq(&self) -> Result<u64> {
        self.with(Backend::next_seq)
    }
    fn put_records(&self, records: &[Record], compression: Compression, scratch: &mut Vec<u8>) -> Result<()> {
        self.with(|s| Backend::put_records(s, records, compression, scratch))?;
        let written = self.written.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if written % REOPEN_EVERY_BLOCKS_WRITTEN == 0 {
            self.reopen()?;
        }
        Ok(())
    }
    fn flush(&self) -> Result<()> {
        self.with(Store::flush)
    }
    fn available_space(&self) -> Option<Result<u64>> {
        Some(self.with(Store::available_space))
    }
    fn put_raw(&self, first: u64, block: Vec<u8>) -> Result<()> {
        self.with(|s| s.put_raw(first, block))
    }
    fn raw_count(&self) -> Result<u64> {
        self.with(Backend::raw_count)
    }
    fn raw_frames(&self) -> Result<Vec<super::RawFrame>> {
        self.with(Backend::raw_frames)
    }
    fn block_count(&self) -> usize {
        self.with(|s| Ok(Backend::block_count(s))).unwrap_or(0)
    }
    fn blocks_from(&self, seq: u64) -> Blocks {
        match self.with(|s| Ok(Backend::blocks_from(s, seq))) {
            Ok(blocks) => blocks,
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }
    fn scan_blocks(&self) -> Box<dyn Iterator<Item = ScannedBlock> + Send + '_> {
        match self.with(|s| Ok(s.clone())) {
            Ok(store) => Box::new(scan(store)),
            Err(e) => Box::new(std::iter::once(ScannedBlock { ordinal: 0, first_seq: 0, records: Err(e.to_string()) })),
        }
    }
    fn last_block(&self) -> Result<Option<Block>> {
        self.with(Backend::last_block)
    }
    fn stored_bytes(&self) -> u64 {
        super::disk_size(&self.path)
    }
}

/// How long a flush may take before the storage counts as stalled.
pub const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Opens the database, waiting while another process holds its lock.
fn open_db(path: &Path) -> Result<sled::Db> {
    let started = Instant::now();
    let mut warned = false;
    loop {
        // Flushing is the writer's explicit policy, not sled's background timer.
        match sled::Config::new().path(path).cache_capacity(CACHE_BYTES).flush_every_ms(None).open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if started.elapsed() > LOCK_PATIENCE {
                    return Err(LogError::Busy { path: path.to_path_buf() });
                }
                if !warned && started.elapsed() > Duration::from_secs(1) {
                    tracing::warn!(path = %path.display(), "waiting for another process to close the recording");
                    warned = true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

pub(crate) fn key_seq(key: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = key.len().min(8);
    buf[8 - n..].copy_from_slice(&key[key.len() - n..]);
    u64::from_be_bytes(buf)
}
