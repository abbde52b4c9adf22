//! The writer's handle on a sled recording, reopened every so many stored blocks because
//! sled 0.34 keeps every page it has written. No reads beyond what appending needs.

use std::path::PathBuf;

use super::{Store, scan};
use crate::log::backend::{Backend, Blocks};
use crate::log::block::Compression;
use crate::log::meta::RecordingMeta;
use crate::log::reader::{Block, ScannedBlock};
use crate::log::{LogError, Result};
use crate::model::{Instrument, InstrumentId, Record, SymbolTable};

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
    fn raw_frames(&self) -> Result<Vec<crate::log::RawFrame>> {
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
        crate::log::disk_size(&self.path)
    }
}
