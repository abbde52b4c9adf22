//! The sled database behind a recording. Nothing outside `log` sees these types.
//!
//! This folder and `results.rs` are the only sled code in the project: `mod.rs` opens a
//! recording's database and stores into it, `read.rs` streams its blocks with bounded
//! memory, `write.rs` is the writer's handle, reopened to bound memory too.
//!
//! Trees: `meta` (key `meta` → JSON, key `format` → u32 BE), `symbols` (u32 BE id → JSON
//! instrument) and `events` (u64 BE first seq → block). Big-endian keys keep sled's byte
//! order equal to numeric order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::log::backend::{Backend, Blocks};
use crate::log::block::{self, Compression};
use crate::log::meta::{FORMAT_VERSION, RecordingMeta};
use crate::log::reader::{Block, ScannedBlock};
use crate::log::{LogError, Result};
use crate::model::{Instrument, InstrumentId, Record, SymbolTable};

mod read;
mod write;
pub(crate) use read::SledReader;
use read::{SledBlocks, scan};
pub(crate) use write::SledWriter;

const META_KEY: &[u8] = b"meta";
const FORMAT_KEY: &[u8] = b"format";

/// sled's page cache. Reads stream each block once, so a large cache only costs memory
/// (sled's 1 GiB default made a 10M-record replay peak at 1.3 GiB RSS).
const CACHE_BYTES: u64 = 4 * 1024 * 1024;

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

    fn raw_frames(&self) -> Result<Vec<crate::log::RawFrame>> {
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
        Box::new(SledBlocks::new(self.clone(), start_key))
    }

    fn scan_blocks(&self) -> Box<dyn Iterator<Item = ScannedBlock> + Send + '_> {
        Box::new(scan(self.clone()))
    }

    fn last_block(&self) -> Result<Option<Block>> {
        let Some((key, _)) = Store::last_block(self)? else { return Ok(None) };
        Backend::blocks_from(self, key).next().transpose()
    }

    fn stored_bytes(&self) -> u64 {
        crate::log::disk_size(&self.path)
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
