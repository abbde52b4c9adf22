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
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;

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

const H_FORMAT: &str = "Tapedeck-Format";
const H_SEQ: &str = "Tapedeck-Seq";
const H_BATCH: &str = "Tapedeck-Batch";
const H_SYMBOL: &str = "Tapedeck-Symbol";

/// A parsed `nats://` recording location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NatsUrl {
    /// `nats://host:port`, or several comma-separated hosts of one cluster
    /// (`nats://h1:4222,h2:4222`): the client connects to any and fails over to the others.
    pub server: String,
    pub stream: String,
    pub prefix: String,
    /// Stream replicas when the stream is created (1, or 3 on a cluster).
    pub replicas: usize,
}

impl NatsUrl {
    /// # Errors
    /// `LogError::Remote` naming what is wrong with the location.
    pub fn parse(location: &str) -> Result<NatsUrl> {
        let bad = |detail: String| LogError::Remote { location: location.to_string(), detail };
        let rest = location.strip_prefix("nats://").ok_or_else(|| bad("expected nats://host:port/STREAM".into()))?;
        let (host, path) =
            rest.split_once('/').ok_or_else(|| bad("no stream name: expected nats://host:port/STREAM".into()))?;
        if host.split(',').any(str::is_empty) {
            return Err(bad("no host: expected nats://host:port/STREAM".into()));
        }
        let (stream, query) = path.split_once('?').unwrap_or((path, ""));
        if stream.is_empty() || !stream.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(bad(format!("stream name {stream:?} must be letters, digits, '-' or '_'")));
        }
        let mut url = NatsUrl {
            server: format!("nats://{host}"),
            stream: stream.to_string(),
            prefix: "tapedeck".into(),
            replicas: 1,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("prefix", p)) if valid_token(p) => url.prefix = p.to_string(),
                Some(("prefix", p)) => return Err(bad(format!("prefix {p:?} must be letters, digits, '-' or '_'"))),
                Some(("replicas", n)) => {
                    url.replicas = n
                        .parse()
                        .ok()
                        .filter(|n| (1..=5).contains(n))
                        .ok_or_else(|| bad(format!("replicas={n}: expected 1 to 5")))?;
                }
                _ => return Err(bad(format!("unknown option {pair:?} (known: prefix=, replicas=)"))),
            }
        }
        Ok(url)
    }

    /// Each server of the location, as the client takes them.
    fn addrs(&self) -> Vec<String> {
        let hosts = self.server.strip_prefix("nats://").unwrap_or(&self.server);
        hosts.split(',').map(|h| format!("nats://{h}")).collect()
    }

    fn subject(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.prefix)
    }
}

fn valid_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A subject token for a canonical symbol: `BTC/USDT` → `BTC-USDT`; anything NATS treats
/// specially becomes `_`.
fn symbol_token(symbol: &str) -> String {
    symbol
        .chars()
        .map(|c| match c {
            '/' => '-',
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' => c,
            _ => '_',
        })
        .collect()
}

/// Polls a future on this thread until it completes; for futures that only wait on
/// channels fed by the runtime, so no reactor is needed here.
fn wait<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut fut = std::pin::pin!(fut);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// The client and the runtime it runs on.
struct Link {
    runtime: tokio::runtime::Runtime,
    js: jetstream::Context,
    max_payload: usize,
}

impl Link {
    /// Runs `fut` on the link's runtime and waits for it.
    fn run<F, T>(&self, fut: F) -> T
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        wait(rx).expect("the NATS task ended without an answer")
    }
}

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

/// A writer session id: process id and start time, unique enough within the dedup window.
fn session_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{:x}-{nanos:x}", std::process::id())
}

/// Connects and finds (or creates) the stream.
async fn open_stream(
    url: NatsUrl,
    create: bool,
) -> std::result::Result<(jetstream::Context, usize, stream::Stream, bool), String> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(CONNECT_TIMEOUT)
        .request_timeout(Some(REQUEST_TIMEOUT))
        .max_reconnects(None)
        .connect(url.addrs());
    let client = tokio::time::timeout(CONNECT_TIMEOUT * 2, client)
        .await
        .map_err(|_| format!("cannot connect to {} within {:?}", url.server, CONNECT_TIMEOUT * 2))?
        .map_err(|e| format!("cannot connect to {}: {e}", url.server))?;
    // The server's INFO arrives asynchronously: a round trip makes sure it is in.
    tokio::time::timeout(REQUEST_TIMEOUT, client.flush())
        .await
        .map_err(|_| format!("{}: no answer within {REQUEST_TIMEOUT:?}", url.server))?
        .map_err(|e| format!("{}: {e}", url.server))?;
    let max_payload = match client.server_info().max_payload {
        0 => 1 << 20,
        n => n,
    };
    let mut js = jetstream::new(client);
    js.set_timeout(REQUEST_TIMEOUT);
    let wanted = format!("{}.>", url.prefix);
    match js.get_stream(&url.stream).await {
        Ok(mut stream) => {
            let info = stream.info().await.map_err(|e| format!("stream info: {e}"))?;
            if !info.config.subjects.contains(&wanted) {
                return Err(format!(
                    "stream {} holds subjects {:?}, not {wanted}; pick its prefix with ?prefix=",
                    url.stream, info.config.subjects
                ));
            }
            Ok((js, max_payload, stream, false))
        }
        Err(e)
            if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(ref je)
                if je.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            if !create {
                return Err(format!("no such stream ({e})"));
            }
            let config = stream::Config {
                name: url.stream.clone(),
                subjects: vec![wanted.clone()],
                storage: stream::StorageType::File,
                num_replicas: url.replicas,
                duplicate_window: DUPLICATE_WINDOW,
                description: Some("a tapedeck recording".into()),
                ..Default::default()
            };
            let stream = js.create_stream(config).await.map_err(|e| {
                let text = e.to_string();
                if text.contains("overlap") {
                    format!("cannot create stream: subjects {wanted} already belong to another stream; choose another prefix with ?prefix= ({text})")
                } else {
                    format!("cannot create stream: {text}")
                }
            })?;
            Ok((js, max_payload, stream, true))
        }
        Err(e) => Err(format!("cannot look up stream {}: {e}", url.stream)),
    }
}

/// A batch: its seq range, first to last inclusive, and the writer session that stored it
/// (a batch rewritten after a crash may cover the same seqs as the abandoned one).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Batch {
    first: u64,
    last: u64,
    writer: String,
}

impl Batch {
    fn len(&self) -> usize {
        (self.last - self.first + 1) as usize
    }

    fn header(&self) -> String {
        format!("{}-{}@{}", self.first, self.last, self.writer)
    }
}

/// One stored message, as the reader needs it.
#[derive(Clone)]
struct Fetched {
    subject: String,
    sequence: u64,
    batch: Option<Batch>,
    payload: bytes::Bytes,
}

fn parse_batch(headers: &HeaderMap) -> Option<Batch> {
    let value = headers.get(H_BATCH)?.as_str();
    let (range, writer) = value.split_once('@').unwrap_or((value, ""));
    let (first, last) = range.split_once('-')?;
    let batch = Batch { first: first.parse().ok()?, last: last.parse().ok()?, writer: writer.to_string() };
    (batch.last >= batch.first).then_some(batch)
}

fn publish_headers(id: &str, first_seq: u64, batch: &Batch) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", id);
    headers.insert(H_FORMAT, FORMAT_VERSION.to_string().as_str());
    headers.insert(H_SEQ, first_seq.to_string().as_str());
    headers.insert(H_BATCH, batch.header().as_str());
    headers
}

/// Publishes one message and waits for its acknowledgement, retrying with the same
/// message id (so the server drops a copy that did arrive) until `PUBLISH_PATIENCE`.
async fn publish_acked(
    js: jetstream::Context,
    subject: String,
    headers: HeaderMap,
    payload: bytes::Bytes,
) -> std::result::Result<(), String> {
    let deadline = tokio::time::Instant::now() + PUBLISH_PATIENCE;
    let mut backoff = Duration::from_millis(50);
    loop {
        let attempt = async {
            js.publish_with_headers(subject.clone(), headers.clone(), payload.clone())
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())
        };
        match attempt.await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() + backoff < deadline => {
                tracing::warn!(subject, error = %e, "JetStream publish not acknowledged; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Err(e) => return Err(format!("publish to {subject} not acknowledged within {PUBLISH_PATIENCE:?}: {e}")),
        }
    }
}

/// Publishes several messages pipelined, then makes sure each is acknowledged.
async fn publish_all(
    js: jetstream::Context,
    messages: Vec<(String, HeaderMap, bytes::Bytes)>,
) -> std::result::Result<(), String> {
    let mut pending = Vec::with_capacity(messages.len());
    for (subject, headers, payload) in &messages {
        pending.push(js.publish_with_headers(subject.clone(), headers.clone(), payload.clone()).await);
    }
    for (sent, (subject, headers, payload)) in pending.into_iter().zip(messages) {
        let acked = match sent {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        if !acked {
            publish_acked(js.clone(), subject, headers, payload).await?;
        }
    }
    Ok(())
}

/// Streams the messages of `filter` with stream sequence in `from..=to` into a channel.
fn spawn_reader(
    link: &Link,
    stream: stream::Stream,
    filter: String,
    from: u64,
    to: u64,
) -> tokio::sync::mpsc::Receiver<std::result::Result<Fetched, String>> {
    let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
    link.runtime.spawn(async move {
        if to < from {
            return;
        }
        let config = jetstream::consumer::pull::OrderedConfig {
            filter_subject: filter,
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence: from },
            ..Default::default()
        };
        let consumer = match stream.create_consumer(config).await {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(Err(format!("cannot create a consumer: {e}"))).await;
                return;
            }
        };
        let mut messages = match consumer.messages().await {
            Ok(m) => m,
            Err(e) => {
                let _ = tx.send(Err(format!("cannot read messages: {e}"))).await;
                return;
            }
        };
        loop {
            let next = tokio::time::timeout(REQUEST_TIMEOUT * 2, messages.next()).await;
            let message = match next {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => {
                    let _ = tx.send(Err(format!("reading the stream: {e}"))).await;
                    return;
                }
                Ok(None) => return,
                Err(_) => {
                    let _ = tx.send(Err(format!("no message within {:?} before seq {to}", REQUEST_TIMEOUT * 2))).await;
                    return;
                }
            };
            let (sequence, pending) = match message.info() {
                Ok(info) => (info.stream_sequence, info.pending),
                Err(e) => {
                    let _ = tx.send(Err(format!("message without stream info: {e}"))).await;
                    return;
                }
            };
            let batch = message.headers.as_ref().and_then(parse_batch);
            let fetched =
                Fetched { subject: message.subject.to_string(), sequence, batch, payload: message.payload.clone() };
            if tx.send(Ok(fetched)).await.is_err() || sequence >= to || pending == 0 {
                return;
            }
        }
    });
    rx
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

/// Reassembles batches from messages in stream order.
struct Assembler {
    prefix: String,
    abandon: String,
    current: Option<Batch>,
    records: Vec<Record>,
    /// The seq the next batch must start at.
    expected: u64,
    scratch: Vec<u8>,
    ordinal: u64,
    abandoned_records: u64,
}

/// What one message contributed.
enum Step {
    Nothing,
    Done(Block),
    /// A unit that cannot be trusted: (ordinal, first seq, detail).
    Bad(u64, u64, String),
}

impl Assembler {
    fn new(url: &NatsUrl) -> Assembler {
        Assembler {
            prefix: format!("{}.", url.prefix),
            abandon: url.subject("_abandon"),
            current: None,
            records: Vec::new(),
            expected: 0,
            scratch: Vec::new(),
            ordinal: 0,
            abandoned_records: 0,
        }
    }

    fn take(&mut self, message: Fetched) -> Step {
        if message.subject == self.abandon {
            if message.batch.is_some() && message.batch == self.current {
                self.abandoned_records += self.records.len() as u64;
                tracing::warn!(
                    records = self.records.len(),
                    "a batch cut short by a writer crash was abandoned; those records were never acknowledged"
                );
                self.records.clear();
                self.current = None;
            }
            return Step::Nothing;
        }
        let data = message.subject.strip_prefix(&self.prefix).is_some_and(|s| !s.starts_with('_'));
        if !data {
            return Step::Nothing;
        }
        let Some(batch) = message.batch else {
            return Step::Bad(
                self.ordinal,
                self.expected,
                format!("message {} has no {H_BATCH} header", message.sequence),
            );
        };
        let mut bad = None;
        if let Some(current) = self.current.take()
            && current != batch
        {
            bad = Some(Step::Bad(
                self.ordinal,
                current.first,
                format!(
                    "batch of seq {}..={} is incomplete: {} of {} records are in the stream",
                    current.first,
                    current.last,
                    self.records.len(),
                    current.len()
                ),
            ));
            self.ordinal += 1;
            self.expected = current.last + 1;
            self.records.clear();
        }
        if let Err(e) = block::decode(&message.payload, &mut self.records, &mut self.scratch) {
            self.records.clear();
            let step = Step::Bad(
                self.ordinal,
                batch.first,
                format!("message {} (seq {}..={}): {e}", message.sequence, batch.first, batch.last),
            );
            self.ordinal += 1;
            self.expected = batch.last + 1;
            return bad.unwrap_or(step);
        }
        let want = batch.len();
        if self.records.len() < want {
            self.current = Some(batch);
            return bad.unwrap_or(Step::Nothing);
        }
        if let Some(bad) = bad {
            // The new batch completed in one message, but the broken one is reported first;
            // it is rare enough (only ever on damage) not to need a queue.
            self.records.clear();
            self.expected = batch.last + 1;
            return bad;
        }
        let mut records = std::mem::take(&mut self.records);
        records.sort_by_key(|r| r.seq);
        let ordinal = self.ordinal;
        self.ordinal += 1;
        let contiguous =
            records.len() == want && records.iter().enumerate().all(|(i, r)| r.seq == batch.first + i as u64);
        if !contiguous {
            self.expected = batch.last + 1;
            return Step::Bad(
                ordinal,
                batch.first,
                format!(
                    "batch of seq {}..={} holds {} records, not {want} consecutive ones",
                    batch.first,
                    batch.last,
                    records.len()
                ),
            );
        }
        if batch.first != self.expected {
            let detail = format!(
                "seq gap between batches: expected seq {}, found {}..={}",
                self.expected, batch.first, batch.last
            );
            self.expected = batch.last + 1;
            return Step::Bad(ordinal, batch.first, detail);
        }
        self.expected = batch.last + 1;
        Step::Done(Block { first_seq: batch.first, records })
    }

    /// At the end of the stream, a batch still open was never completed: its writer died
    /// mid-batch or is still publishing it. Like unflushed records in sled, it is not part
    /// of the recording (yet); the next writer abandons it explicitly.
    fn finish(&mut self) {
        if let Some(current) = self.current.take() {
            tracing::warn!(
                first = current.first,
                last = current.last,
                stored = self.records.len(),
                "the stream ends in an incomplete batch (a writer stopped or is still writing); it is not read"
            );
            self.records.clear();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_or_name_the_problem() {
        let ok: [(&str, &str, &str, &str, usize); 4] = [
            ("nats://127.0.0.1:4222/BTC", "nats://127.0.0.1:4222", "BTC", "tapedeck", 1),
            ("nats://h:1/S?prefix=td-2", "nats://h:1", "S", "td-2", 1),
            ("nats://a:1,b:2,c:3/R3?replicas=3", "nats://a:1,b:2,c:3", "R3", "tapedeck", 3),
            ("nats://h:1/s_1?replicas=1&prefix=p", "nats://h:1", "s_1", "p", 1),
        ];
        for (text, server, stream, prefix, replicas) in ok {
            let url = NatsUrl::parse(text).unwrap();
            assert_eq!(
                (url.server.as_str(), url.stream.as_str(), url.prefix.as_str(), url.replicas),
                (server, stream, prefix, replicas),
                "{text}"
            );
        }
        assert_eq!(NatsUrl::parse("nats://a:1,b:2/S").unwrap().addrs(), ["nats://a:1", "nats://b:2"]);
        let bad = [
            ("nats://h:1", "no stream name"),
            ("nats:///S", "no host"),
            ("nats://a:1,/S", "no host"),
            ("nats://h:1/A.B", "must be letters"),
            ("nats://h:1/S?replicas=0", "replicas=0"),
            ("nats://h:1/S?prefix=a.b", "prefix"),
            ("nats://h:1/S?speed=1", "unknown option"),
        ];
        for (text, expected) in bad {
            let err = NatsUrl::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn batch_headers_round_trip_and_reject_nonsense() {
        let batch = Batch { first: 1024, last: 2047, writer: "1f-abc".into() };
        let mut headers = publish_headers("id", 1030, &batch);
        assert_eq!(parse_batch(&headers), Some(batch.clone()));
        assert_eq!(batch.len(), 1024);
        headers.insert(H_BATCH, "9-3@w");
        assert_eq!(parse_batch(&headers), None, "last before first");
        headers.insert(H_BATCH, "x-3");
        assert_eq!(parse_batch(&headers), None);
    }

    /// The messages a writer publishes for seqs `first..=last`: split by event kind, sparse.
    fn messages(first: u64, last: u64, writer: &str) -> Vec<Fetched> {
        let batch = Batch { first, last, writer: writer.into() };
        let records: Vec<Record> = (first..=last).map(|i| Record { seq: i, ..crate::log::tests::record(i) }).collect();
        let mut kinds: Vec<_> = records.iter().map(|r| r.event.kind()).collect();
        kinds.dedup();
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for kind in kinds {
            if seen.contains(&kind) {
                continue;
            }
            seen.push(kind);
            let part: Vec<Record> = records.iter().filter(|r| r.event.kind() == kind).cloned().collect();
            let bytes = block::encode_sparse(&part, Compression::None, &mut Vec::new()).unwrap();
            out.push(Fetched {
                subject: format!("tapedeck.binance.{}.BTC-USDT", kind.as_str()),
                sequence: 0,
                batch: Some(batch.clone()),
                payload: bytes.into(),
            });
        }
        out
    }

    fn abandon(first: u64, last: u64, writer: &str) -> Fetched {
        let batch = Batch { first, last, writer: writer.into() };
        Fetched { subject: "tapedeck._abandon".into(), sequence: 0, batch: Some(batch), payload: Default::default() }
    }

    /// Feeds messages through an assembler: the blocks' seq ranges, and each problem.
    fn assemble(input: Vec<Fetched>) -> (Vec<(u64, usize)>, Vec<String>) {
        let url = NatsUrl::parse("nats://h:1/S").unwrap();
        let mut assembler = Assembler::new(&url);
        let (mut blocks, mut bad) = (Vec::new(), Vec::new());
        for message in input {
            match assembler.take(message) {
                Step::Done(block) => {
                    assert!(block.records.iter().enumerate().all(|(i, r)| r.seq == block.first_seq + i as u64));
                    blocks.push((block.first_seq, block.records.len()));
                }
                Step::Bad(_, _, detail) => bad.push(detail),
                Step::Nothing => {}
            }
        }
        assembler.finish();
        (blocks, bad)
    }

    #[test]
    fn batches_reassemble_in_seq_order_and_damage_is_named() {
        let whole = |a, b| messages(a, b, "w1");
        let cut = |a, b, keep: usize| messages(a, b, "w1").into_iter().take(keep).collect::<Vec<_>>();
        let cases: Vec<(&str, Vec<Fetched>, Vec<(u64, usize)>, &str)> = vec![
            ("two whole batches", [whole(0, 9), whole(10, 19)].concat(), vec![(0, 10), (10, 10)], ""),
            (
                "a batch cut by a crash, abandoned, rewritten by the next writer",
                [whole(0, 9), cut(10, 19, 2), vec![abandon(10, 19, "w1")], messages(10, 14, "w2")].concat(),
                vec![(0, 10), (10, 5)],
                "",
            ),
            ("a trailing incomplete batch is not read", [whole(0, 9), cut(10, 19, 2)].concat(), vec![(0, 10)], ""),
            (
                "an incomplete batch in the middle is corruption",
                [whole(0, 9), cut(10, 19, 2), whole(20, 29)].concat(),
                vec![(0, 10), (20, 10)],
                "batch of seq 10..=19 is incomplete",
            ),
            (
                "a missing batch is a gap",
                [whole(0, 9), whole(20, 29)].concat(),
                vec![(0, 10)],
                "seq gap between batches",
            ),
            (
                "an abandon marker for another writer's batch changes nothing",
                [whole(0, 9), vec![abandon(0, 9, "w0")], whole(10, 19)].concat(),
                vec![(0, 10), (10, 10)],
                "",
            ),
        ];
        for (name, input, blocks, problem) in cases {
            let (got, bad) = assemble(input);
            assert_eq!(got, blocks, "{name}: {bad:?}");
            match problem {
                "" => assert!(bad.is_empty(), "{name}: {bad:?}"),
                p => assert!(bad.len() == 1 && bad[0].contains(p), "{name}: {bad:?}"),
            }
        }
    }

    #[test]
    fn symbols_become_subject_tokens() {
        for (symbol, token) in [("BTC/USDT", "BTC-USDT"), ("1000PEPE/USDT", "1000PEPE-USDT"), ("A.B/C*", "A_B-C_")] {
            assert_eq!(symbol_token(symbol), token);
        }
    }
}
