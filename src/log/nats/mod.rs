//! The NATS JetStream backend: a recording kept in a JetStream stream instead of a sled
//! directory, selected by a location `nats://host:4222/STREAM[?prefix=P&replicas=N]`.
//!
//! Layout. The stream owns the subjects `P.>` (P defaults to `tapedeck`):
//! - `P.<exchange>.<kind>.<symbol>`: records, as sparse blocks of the same block codec the
//!   sled backend uses (`block.rs`). The writer hands over a run of consecutive seqs (a
//!   *batch*); it is split by subject, one message per subject (more when a message would
//!   exceed the server's payload limit), published in a row. Headers: `Nats-Msg-Id`
//!   (writer session and first seq, so a retry after a lost ack is deduplicated by the
//!   server), `Tapedeck-Format`, `Tapedeck-Seq` (first seq in the message) and
//!   `Tapedeck-Batch` (`first-last` of the batch).
//! - `P._meta`: the recording metadata as JSON; the last message wins.
//! - `P._symbols`: one message per interned instrument, JSON, header `Tapedeck-Symbol`.
//! - `P._abandon`: a batch cut short by a crash, published by the next writer before it
//!   reuses those seqs, so readers drop it (and `verify` counts it) instead of failing.
//!
//! Reading goes through the stream in stream-sequence order and reassembles each batch into
//! one block of consecutive seqs, so replay from JetStream feeds the engine exactly the
//! records, in exactly the order, that replay from sled would. Every network call has a
//! timeout. The client runs on this module's own tokio runtime, so the synchronous
//! [`Backend`] calls work from any thread, inside another runtime or not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::stream;

mod batch;
mod client;
mod location;

use self::batch::{Assembler, Batch, Fetched, H_BATCH, H_FORMAT, Step, parse_batch, publish_headers};
use self::client::{Link, open_stream, publish_acked, publish_all, session_id, spawn_reader, wait};
pub(crate) use self::location::NatsUrl;
use self::location::symbol_token;
use super::backend::{Backend, Blocks};
use super::block::{self, Compression};
use super::meta::{FORMAT_VERSION, RecordingMeta};
use super::reader::{Block, ScannedBlock};
use super::{LogError, Result};
use crate::model::{Instrument, InstrumentId, Record, SymbolTable};

/// How long a publish may wait for its acknowledgement, retries included: long enough for a
/// cluster to elect a new leader when one node dies.
const PUBLISH_PATIENCE: Duration = Duration::from_secs(30);
/// Timeout of one JetStream API request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The server deduplicates a repeated `Nats-Msg-Id` within this window.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Headroom below the server's payload limit for the headers.
const HEADER_ROOM: usize = 4096;
/// Messages the reading task may hold ahead of the consumer.
const READ_AHEAD: usize = 256;

const H_SYMBOL: &str = "Tapedeck-Symbol";

/// A recording in a JetStream stream.
pub(crate) struct NatsLog {
    url: NatsUrl,
    link: Arc<Link>,
    stream: stream::Stream,
    /// Subject suffix (`exchange.kind.` is added per record) of each interned instrument.
    symbols: Mutex<HashMap<InstrumentId, String>>,
    /// Unique per writer, so message ids of a batch rewritten after a crash never collide
    /// with the abandoned one's inside the deduplication window.
    session: String,
}

impl NatsLog {
    fn remote(&self, detail: impl std::fmt::Display) -> LogError {
        LogError::Remote { location: self.location(), detail: detail.to_string() }
    }

    fn connect(url: &NatsUrl, create: bool) -> Result<(Arc<Link>, stream::Stream, bool)> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tapedeck-nats")
            .enable_all()
            .build()?;
        let location = format!("{}/{}", url.server, url.stream);
        let remote = |detail: String| LogError::Remote { location: location.clone(), detail };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task_url = url.clone();
        runtime.spawn(async move {
            let _ = tx.send(open_stream(task_url, create).await);
        });
        let (js, max_payload, stream, created) =
            wait(rx).map_err(|_| remote("connection task ended".into()))?.map_err(remote)?;
        Ok((Arc::new(Link { runtime, js, max_payload }), stream, created))
    }

    pub fn open_existing(url: &NatsUrl) -> Result<NatsLog> {
        let (link, stream, _) = NatsLog::connect(url, false)?;
        let log = NatsLog::new(url, link, stream);
        log.get_meta()?;
        Ok(log)
    }

    pub fn open_or_create(url: &NatsUrl, meta: &RecordingMeta) -> Result<(NatsLog, bool)> {
        let (link, stream, _) = NatsLog::connect(url, true)?;
        let log = NatsLog::new(url, link, stream);
        match log.try_meta()? {
            Some(_) => Ok((log, false)),
            None => {
                log.put_meta(meta)?;
                Ok((log, true))
            }
        }
    }

    fn new(url: &NatsUrl, link: Arc<Link>, stream: stream::Stream) -> NatsLog {
        NatsLog { url: url.clone(), link, stream, symbols: Mutex::new(HashMap::new()), session: session_id() }
    }
}

impl NatsLog {
    fn try_meta(&self) -> Result<Option<RecordingMeta>> {
        let stream = self.stream.clone();
        let subject = self.url.subject("_meta");
        let found = self.link.run(async move { stream.get_last_raw_message_by_subject(&subject).await });
        match found {
            Ok(message) => serde_json::from_slice(&message.payload)
                .map(Some)
                .map_err(|e| LogError::CorruptMeta(format!("metadata: {e}"))),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(self.remote(format!("reading metadata: {e}"))),
        }
    }

    fn last_sequence(&self) -> Result<u64> {
        let mut stream = self.stream.clone();
        self.link
            .run(async move { stream.info().await.map(|i| i.state.last_sequence).map_err(|e| e.to_string()) })
            .map_err(|e| self.remote(format!("stream info: {e}")))
    }

    fn get(&self, sequence: u64) -> Result<Option<async_nats::jetstream::message::StreamMessage>> {
        let stream = self.stream.clone();
        match self.link.run(async move { stream.get_raw_message(sequence).await }) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(self.remote(format!("reading message {sequence}: {e}"))),
        }
    }

    fn publish_control(&self, suffix: &str, headers: HeaderMap, payload: Vec<u8>) -> Result<()> {
        let js = self.link.js.clone();
        let subject = self.url.subject(suffix);
        self.link.run(publish_acked(js, subject, headers, payload.into())).map_err(|e| self.remote(e))
    }

    fn is_data(&self, subject: &str) -> bool {
        subject.strip_prefix(&self.url.prefix).and_then(|s| s.strip_prefix('.')).is_some_and(|s| !s.starts_with('_'))
    }

    /// The last batch that was not abandoned, walking back from the stream's end: the batch
    /// and its records, in stream order. With `complete_only`, a batch cut short (by a writer
    /// that died mid-batch) is passed over for the one before it, as readers do.
    fn last_batch(&self, complete_only: bool) -> Result<Option<(Batch, Vec<Record>)>> {
        let mut abandoned: Vec<Batch> = Vec::new();
        let mut found: Option<(Batch, Vec<Record>)> = None;
        let mut scratch = Vec::new();
        let mut sequence = self.last_sequence()?;
        while sequence > 0 {
            let message = self.get(sequence)?;
            sequence -= 1;
            let Some(message) = message else { continue };
            let subject = message.subject.to_string();
            if subject == self.url.subject("_abandon") {
                abandoned.extend(parse_batch(&message.headers));
                continue;
            }
            if !self.is_data(&subject) {
                continue;
            }
            let Some(batch) = parse_batch(&message.headers) else {
                return Err(self.remote(format!("message {} has no {H_BATCH} header", message.sequence)));
            };
            if abandoned.contains(&batch) {
                continue;
            }
            match &found {
                Some((b, _)) if *b == batch => {}
                Some((b, records)) if !complete_only || records.len() == b.len() => break,
                _ => found = Some((batch, Vec::new())),
            }
            let records = &mut found.as_mut().expect("just set").1;
            block::decode(&message.payload, records, &mut scratch)
                .map_err(|e| self.remote(format!("message {}: {e}", message.sequence)))?;
        }
        Ok(found.filter(|(b, records)| !complete_only || records.len() == b.len()))
    }
}

/// Messages of the whole stream, fed through an [`Assembler`].
struct Batches {
    rx: tokio::sync::mpsc::Receiver<std::result::Result<Fetched, String>>,
    assembler: Assembler,
    location: String,
    done: bool,
}

impl Batches {
    fn next_step(&mut self) -> Option<std::result::Result<Step, String>> {
        if self.done {
            return None;
        }
        loop {
            match wait(self.rx.recv()) {
                Some(Ok(message)) => match self.assembler.take(message) {
                    Step::Nothing => continue,
                    step => return Some(Ok(step)),
                },
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                None => {
                    self.done = true;
                    self.assembler.finish();
                    return None;
                }
            }
        }
    }
}

impl Backend for NatsLog {
    fn location(&self) -> String {
        format!("{}/{}", self.url.server, self.url.stream)
    }

    fn get_meta(&self) -> Result<RecordingMeta> {
        self.try_meta()?.ok_or_else(|| LogError::NotARecording { path: self.location().into() })
    }

    fn put_meta(&self, meta: &RecordingMeta) -> Result<()> {
        let json = serde_json::to_vec(meta).map_err(|e| LogError::Encode(e.to_string()))?;
        let mut headers = HeaderMap::new();
        headers.insert(H_FORMAT, FORMAT_VERSION.to_string().as_str());
        self.publish_control("_meta", headers, json)
    }

    fn load_symbols(&self) -> Result<SymbolTable> {
        let stream = self.stream.clone();
        let subject = self.url.subject("_symbols");
        let last = match self.link.run(async move { stream.get_last_raw_message_by_subject(&subject).await }) {
            Ok(m) => m.sequence,
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => return Ok(SymbolTable::new()),
            Err(e) => return Err(self.remote(format!("reading symbols: {e}"))),
        };
        let mut rx = spawn_reader(&self.link, self.stream.clone(), self.url.subject("_symbols"), 1, last);
        let mut table = SymbolTable::new();
        let mut subjects = self.symbols.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(message) = wait(rx.recv()) {
            let message = message.map_err(|e| self.remote(e))?;
            let instrument: Instrument = serde_json::from_slice(&message.payload)
                .map_err(|e| LogError::CorruptMeta(format!("symbol message {}: {e}", message.sequence)))?;
            let (id, _) = table.intern(&instrument);
            subjects.insert(id, symbol_token(&instrument.symbol));
            if message.sequence >= last {
                break;
            }
        }
        Ok(table)
    }

    fn put_symbol(&self, id: InstrumentId, instrument: &Instrument) -> Result<()> {
        let json = serde_json::to_vec(instrument).map_err(|e| LogError::Encode(e.to_string()))?;
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("{}-sym-{}", self.session, id.0).as_str());
        headers.insert(H_SYMBOL, id.0.to_string().as_str());
        self.publish_control("_symbols", headers, json)?;
        self.symbols.lock().unwrap_or_else(|p| p.into_inner()).insert(id, symbol_token(&instrument.symbol));
        Ok(())
    }

    fn next_seq(&self) -> Result<u64> {
        Ok(self.last_batch(true)?.map_or(0, |(batch, _)| batch.last + 1))
    }

    fn open_for_append(&self) -> Result<u64> {
        let Some((batch, records)) = self.last_batch(false)? else { return Ok(0) };
        if records.len() == batch.len() {
            return Ok(batch.last + 1);
        }
        // A writer died mid-batch: mark the partial batch so readers drop it, and reuse its seqs.
        tracing::warn!(
            location = %self.location(),
            first = batch.first,
            last = batch.last,
            stored = records.len(),
            "the last batch was cut short by a crash; abandoning it"
        );
        let mut headers = HeaderMap::new();
        headers.insert(H_BATCH, batch.header().as_str());
        self.publish_control("_abandon", headers, Vec::new())?;
        Ok(batch.first)
    }

    fn put_records(&self, records: &[Record], compression: Compression, scratch: &mut Vec<u8>) -> Result<()> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else { return Ok(()) };
        let batch = Batch { first: first.seq, last: last.seq, writer: self.session.clone() };
        let names = self.symbols.lock().unwrap_or_else(|p| p.into_inner()).clone();
        // Group by subject, in order of each subject's first record.
        let mut order: Vec<(String, Vec<Record>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for record in records {
            let symbol = names.get(&record.instrument).map_or("_", String::as_str);
            let subject =
                format!("{}.{}.{}.{symbol}", self.url.prefix, record.exchange.as_str(), record.event.kind().as_str());
            let at = *index.entry(subject.clone()).or_insert_with(|| {
                order.push((subject, Vec::new()));
                order.len() - 1
            });
            order[at].1.push(record.clone());
        }
        let limit = self.link.max_payload.saturating_sub(HEADER_ROOM).max(1024);
        let mut messages = Vec::new();
        for (subject, group) in order {
            let mut parts = vec![group.as_slice()];
            while let Some(part) = parts.pop() {
                let bytes = block::encode_sparse(part, compression, scratch).map_err(LogError::Encode)?;
                if bytes.len() > limit && part.len() > 1 {
                    let (a, b) = part.split_at(part.len() / 2);
                    parts.push(b);
                    parts.push(a);
                    continue;
                }
                if bytes.len() > limit {
                    return Err(self.remote(format!(
                        "record {} encodes to {} bytes, over the server's {}-byte payload limit",
                        part[0].seq,
                        bytes.len(),
                        self.link.max_payload
                    )));
                }
                let id = format!("{}-{}", self.session, part[0].seq);
                messages.push((subject.clone(), publish_headers(&id, part[0].seq, &batch), bytes::Bytes::from(bytes)));
            }
        }
        let js = self.link.js.clone();
        self.link.run(publish_all(js, messages)).map_err(|e| self.remote(e))
    }

    fn flush(&self) -> Result<()> {
        // Every publish has been acknowledged, which is JetStream's durability.
        Ok(())
    }

    fn available_space(&self) -> Option<Result<u64>> {
        None
    }

    fn put_raw(&self, _first: u64, _block: Vec<u8>) -> Result<()> {
        Err(self.remote("--keep-raw needs a sled recording (a directory), not JetStream"))
    }

    fn raw_count(&self) -> Result<u64> {
        Ok(0)
    }

    fn raw_frames(&self) -> Result<Vec<super::RawFrame>> {
        Ok(Vec::new())
    }

    fn block_count(&self) -> usize {
        let mut stream = self.stream.clone();
        self.link.run(async move { stream.info().await.map(|i| i.state.messages as usize).unwrap_or(0) })
    }

    fn blocks_from(&self, seq: u64) -> Blocks {
        let to = match self.last_sequence() {
            Ok(to) => to,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        let rx = spawn_reader(&self.link, self.stream.clone(), format!("{}.>", self.url.prefix), 1, to);
        let mut batches = Batches { rx, assembler: Assembler::new(&self.url), location: self.location(), done: false };
        let _link = self.link.clone();
        let mut failed = false;
        Box::new(std::iter::from_fn(move || {
            let _keep_runtime_alive = &_link;
            if failed {
                return None;
            }
            loop {
                match batches.next_step()? {
                    Ok(Step::Done(block)) if block.first_seq + block.records.len() as u64 <= seq => continue,
                    Ok(Step::Done(block)) => return Some(Ok(block)),
                    Ok(Step::Nothing) => continue,
                    Ok(Step::Bad(ordinal, first, detail)) => {
                        failed = true;
                        return Some(Err(LogError::Corrupt { block: ordinal, seqs: format!("{first}.."), detail }));
                    }
                    Err(e) => {
                        failed = true;
                        return Some(Err(LogError::Remote { location: batches.location.clone(), detail: e }));
                    }
                }
            }
        }))
    }

    fn scan_blocks(&self) -> Box<dyn Iterator<Item = ScannedBlock> + Send + '_> {
        let to = match self.last_sequence() {
            Ok(to) => to,
            Err(e) => {
                return Box::new(std::iter::once(ScannedBlock {
                    ordinal: 0,
                    first_seq: 0,
                    records: Err(e.to_string()),
                }));
            }
        };
        let rx = spawn_reader(&self.link, self.stream.clone(), format!("{}.>", self.url.prefix), 1, to);
        let mut batches = Batches { rx, assembler: Assembler::new(&self.url), location: self.location(), done: false };
        Box::new(std::iter::from_fn(move || match batches.next_step()? {
            Ok(Step::Done(block)) => Some(ScannedBlock {
                ordinal: batches.assembler.ordinal - 1,
                first_seq: block.first_seq,
                records: Ok(block.records),
            }),
            Ok(Step::Nothing) => None,
            Ok(Step::Bad(ordinal, first, detail)) => {
                Some(ScannedBlock { ordinal, first_seq: first, records: Err(detail) })
            }
            Err(e) => Some(ScannedBlock {
                ordinal: batches.assembler.ordinal,
                first_seq: batches.assembler.expected,
                records: Err(e),
            }),
        }))
    }

    fn stored_bytes(&self) -> u64 {
        let mut stream = self.stream.clone();
        self.link.run(async move { stream.info().await.map(|i| i.state.bytes).unwrap_or(0) })
    }

    fn last_block(&self) -> Result<Option<Block>> {
        let Some((batch, mut records)) = self.last_batch(true)? else { return Ok(None) };
        records.sort_by_key(|r| r.seq);
        Ok(Some(Block { first_seq: batch.first, records }))
    }
}
