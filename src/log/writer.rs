//! Appending to a recording: the synchronous [`Writer`] and its dedicated thread.
//!
//! The writer assigns seq, packs records into blocks and stores each block once. Durability
//! follows an explicit flush policy (every `flush_interval` or `flush_records` records,
//! whichever comes first): a crash loses at most the records since the last flush, and the
//! recording reopens as a clean prefix. Reopening recovers the last seq and appends after it.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::backend::Backend;
use super::block::Compression;
use super::meta::RecordingMeta;
use super::raw::RawFrame;
use super::{LogError, Result};
use crate::model::{Instrument, InstrumentId, Record, SymbolTable};

/// Block size and flush policy.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Records per stored block; larger blocks replay faster and compress better.
    pub block_records: usize,
    pub compression: Compression,
    /// Longest time a record may wait before it is made durable.
    pub flush_interval: Duration,
    /// Most records that may wait before a flush.
    pub flush_records: usize,
    /// Stop with `LogError::DiskFull` after a flush that leaves less free space than this on
    /// the recording's filesystem: stopping while there is room keeps the recording whole,
    /// whereas sled 0.34 can hang on a write that hit a full disk.
    pub min_free_bytes: Option<u64>,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            block_records: 1024,
            compression: Compression::None,
            flush_interval: Duration::from_millis(100),
            flush_records: 16_384,
            min_free_bytes: None,
        }
    }
}

/// Counters reported when a writer closes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub records: u64,
    pub blocks: u64,
    pub flushes: u64,
    pub next_seq: u64,
}

/// Appends records to one recording. Not shared: one writer per recording.
pub struct Writer {
    store: std::sync::Arc<dyn Backend>,
    config: WriterConfig,
    meta: RecordingMeta,
    symbols: SymbolTable,
    next_seq: u64,
    pending: Vec<Record>,
    raw_pending: Vec<RawFrame>,
    next_raw: u64,
    unflushed: usize,
    last_flush: Instant,
    scratch: Vec<u8>,
    stats: WriterStats,
}

impl Writer {
    /// Opens `dir` for appending, creating the recording with `meta` when it does not exist.
    /// For an existing recording, `meta`'s command lines are appended to the stored ones.
    ///
    /// # Errors
    /// When the directory cannot be opened, is another format, or its last block is corrupt.
    pub fn open(dir: &std::path::Path, meta: RecordingMeta, config: WriterConfig) -> Result<Writer> {
        let (store, created) = super::backend::open_or_create(dir, &meta)?;
        let meta = if created {
            meta
        } else {
            let mut stored = store.get_meta()?;
            stored.command_lines.extend(meta.command_lines);
            for sub in meta.subscriptions {
                if !stored.subscriptions.contains(&sub) {
                    stored.subscriptions.push(sub);
                }
            }
            stored.notes.extend(meta.notes);
            store.put_meta(&stored)?;
            stored
        };
        let next_seq = store.open_for_append()?;
        let symbols = store.load_symbols()?;
        let next_raw = store.raw_count()?;
        Ok(Writer {
            store,
            config,
            meta,
            symbols,
            next_seq,
            pending: Vec::with_capacity(config.block_records),
            raw_pending: Vec::new(),
            next_raw,
            unflushed: 0,
            last_flush: Instant::now(),
            scratch: Vec::new(),
            stats: WriterStats { next_seq, ..WriterStats::default() },
        })
    }

    pub fn meta(&self) -> &RecordingMeta {
        &self.meta
    }

    /// Replaces the stored metadata (notes and subscriptions discovered while capturing).
    ///
    /// # Errors
    /// On storage failure.
    pub fn update_meta(&mut self, update: impl FnOnce(&mut RecordingMeta)) -> Result<()> {
        update(&mut self.meta);
        self.store.put_meta(&self.meta)
    }

    pub fn symbols(&self) -> &SymbolTable {
        &self.symbols
    }

    /// The seq the next appended record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Returns the id of `instrument`, storing it in the symbol table if new.
    ///
    /// # Errors
    /// On storage failure.
    pub fn intern(&mut self, instrument: &Instrument) -> Result<InstrumentId> {
        let (id, new) = self.symbols.intern(instrument);
        if new {
            self.store.put_symbol(id, instrument)?;
        }
        Ok(id)
    }

    /// Stores a symbol interned elsewhere (by a [`WriterHandle`]) under the same id.
    fn adopt_symbol(&mut self, id: InstrumentId, instrument: &Instrument) -> Result<()> {
        let (assigned, new) = self.symbols.intern(instrument);
        if assigned != id {
            return Err(LogError::CorruptMeta(format!("symbol {} interned as {} by the writer", id.0, assigned.0)));
        }
        if new {
            self.store.put_symbol(id, instrument)?;
        }
        Ok(())
    }

    /// Appends a record, overwriting its `seq` with the next one, and returns that seq.
    ///
    /// # Errors
    /// When a full block cannot be stored.
    pub fn append(&mut self, mut record: Record) -> Result<u64> {
        let seq = self.next_seq;
        record.seq = seq;
        self.next_seq += 1;
        self.unflushed += 1;
        self.stats.records += 1;
        self.pending.push(record);
        if self.pending.len() >= self.config.block_records {
            self.store_pending()?;
        }
        if self.unflushed >= self.config.flush_records {
            self.flush()?;
        }
        Ok(seq)
    }

    /// Keeps a raw frame as received (`--keep-raw`), for re-normalizing after a parser fix.
    ///
    /// # Errors
    /// When a full raw block cannot be stored.
    pub fn append_raw(&mut self, frame: RawFrame) -> Result<()> {
        self.raw_pending.push(frame);
        self.unflushed += 1;
        if self.raw_pending.len() >= self.config.block_records {
            self.store_raw()?;
        }
        Ok(())
    }

    fn store_raw(&mut self) -> Result<()> {
        if self.raw_pending.is_empty() {
            return Ok(());
        }
        let bytes = super::raw::encode(&self.raw_pending).map_err(LogError::Encode)?;
        self.store.put_raw(self.next_raw, bytes)?;
        self.next_raw += self.raw_pending.len() as u64;
        self.raw_pending.clear();
        Ok(())
    }

    /// Flushes when the interval has passed; call it when idle.
    ///
    /// # Errors
    /// On storage failure.
    pub fn tick(&mut self) -> Result<()> {
        if self.unflushed > 0 && self.last_flush.elapsed() >= self.config.flush_interval {
            self.flush()?;
        }
        Ok(())
    }

    /// Time until the flush interval elapses, for the writer thread's wait.
    pub fn until_flush(&self) -> Duration {
        if self.unflushed == 0 {
            return self.config.flush_interval;
        }
        self.config.flush_interval.saturating_sub(self.last_flush.elapsed())
    }

    /// Stores the partial block and makes everything appended so far durable.
    ///
    /// # Errors
    /// On storage failure.
    pub fn flush(&mut self) -> Result<()> {
        self.store_pending()?;
        self.store_raw()?;
        self.store.flush()?;
        self.unflushed = 0;
        self.last_flush = Instant::now();
        self.stats.flushes += 1;
        Ok(())
    }

    fn store_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.store.put_records(&self.pending, self.config.compression, &mut self.scratch)?;
        self.stats.blocks += 1;
        self.pending.clear();
        self.check_space()
    }

    /// After every stored block (a flush interval can write megabytes at full speed): below
    /// the reserve, make what is stored durable while there is room, then stop.
    fn check_space(&mut self) -> Result<()> {
        let Some(required) = self.config.min_free_bytes else { return Ok(()) };
        let Some(available) = self.store.available_space() else { return Ok(()) };
        let available = available?;
        if available >= required {
            return Ok(());
        }
        self.store.flush()?;
        self.unflushed = 0;
        Err(LogError::DiskFull { available, required })
    }

    /// Flushes and returns the counters.
    ///
    /// # Errors
    /// On storage failure.
    pub fn close(mut self) -> Result<WriterStats> {
        self.flush()?;
        self.stats.next_seq = self.next_seq;
        Ok(self.stats)
    }
}

/// A message to the writer thread.
#[derive(Debug)]
pub enum WriterMsg {
    Symbol(InstrumentId, Instrument),
    Record(Record),
    Meta(Box<RecordingMeta>),
    Raw(RawFrame),
    Flush,
}

/// The producer side of a writer thread: interning plus a channel.
#[derive(Clone)]
pub struct WriterHandle {
    symbols: std::sync::Arc<std::sync::Mutex<SymbolTable>>,
    tx: Sender<WriterMsg>,
}

impl WriterHandle {
    /// Returns the id for `instrument`; a new symbol is queued before any record that uses it.
    ///
    /// # Errors
    /// When the writer thread has stopped.
    pub fn intern(&self, instrument: &Instrument) -> Result<InstrumentId> {
        let mut table = self.symbols.lock().unwrap_or_else(|p| p.into_inner());
        let (id, new) = table.intern(instrument);
        if new {
            // Sent while holding the lock, so no thread can queue a record using `id` first.
            self.tx.send(WriterMsg::Symbol(id, instrument.clone())).map_err(|_| LogError::WriterGone)?;
        }
        Ok(id)
    }

    /// Queues a record; its seq is assigned by the writer.
    ///
    /// # Errors
    /// When the writer thread has stopped.
    pub fn send(&self, record: Record) -> Result<()> {
        self.tx.send(WriterMsg::Record(record)).map_err(|_| LogError::WriterGone)
    }

    /// Messages queued but not yet taken by the writer: the writer's lag.
    pub fn backlog(&self) -> usize {
        self.tx.len()
    }

    /// Queues a message of any kind.
    ///
    /// # Errors
    /// When the writer thread has stopped.
    pub fn send_msg(&self, msg: WriterMsg) -> Result<()> {
        self.tx.send(msg).map_err(|_| LogError::WriterGone)
    }
}

/// What the writer thread forwards to a tap, in log order: new symbols before the records
/// that use them, and every record with its assigned seq.
#[derive(Debug, Clone)]
pub enum Tapped {
    Symbol(InstrumentId, Instrument),
    Record(Record),
}

/// Runs `writer` on its own thread. Every stored record (with its seq) is also sent to
/// `tap`, which is how live mode feeds the engine exactly what the log holds. The thread
/// ends, flushing, when every handle is dropped.
pub fn spawn_writer(
    writer: Writer,
    capacity: usize,
    tap: Option<Sender<Tapped>>,
) -> (WriterHandle, std::thread::JoinHandle<Result<WriterStats>>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    let handle = WriterHandle { symbols: std::sync::Arc::new(std::sync::Mutex::new(writer.symbols.clone())), tx };
    let join = std::thread::Builder::new()
        .name("tapedeck-writer".into())
        .spawn(move || run_writer(writer, rx, tap))
        .expect("spawn writer thread");
    (handle, join)
}

fn run_writer(mut writer: Writer, rx: Receiver<WriterMsg>, tap: Option<Sender<Tapped>>) -> Result<WriterStats> {
    loop {
        match rx.recv_timeout(writer.until_flush()) {
            Ok(WriterMsg::Record(record)) => match &tap {
                None => {
                    writer.append(record)?;
                }
                Some(tap) => {
                    let mut copy = record.clone();
                    copy.seq = writer.append(record)?;
                    // A vanished consumer must not stop the recording.
                    let _ = tap.send(Tapped::Record(copy));
                }
            },
            Ok(WriterMsg::Symbol(id, instrument)) => {
                writer.adopt_symbol(id, &instrument)?;
                if let Some(tap) = &tap {
                    let _ = tap.send(Tapped::Symbol(id, instrument));
                }
            }
            Ok(WriterMsg::Meta(meta)) => writer.update_meta(|m| *m = *meta)?,
            Ok(WriterMsg::Flush) => writer.flush()?,
            Ok(WriterMsg::Raw(frame)) => writer.append_raw(frame)?,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return writer.close(),
        }
        writer.tick()?;
    }
}
