//! Live capture: venue connections → normalize → the log writer (and, in live mode, the
//! engine through the writer's tap).
//!
//! One tokio task per WebSocket connection. `ts_recv` is stamped once, when a frame is read.
//! Connects, subscriptions, disconnects, sequence gaps, resyncs and parse failures become
//! status records, so nothing is lost silently. Reconnects use [`Backoff`]; a silent
//! connection is dropped by a stale-data watchdog. Records go to the writer over a bounded
//! channel whose send blocks: backpressure reaches the socket instead of dropping data.
//! This module knows no wire format: venues come in through the `Venue` trait.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::exchange::backoff::Backoff;
use crate::exchange::{
    ConnectionPlan, Endpoints, FrameKind, Normalized, ParseErrors, StreamKind, SymbolInfo, Venue, venue,
};
use crate::log::{RawFrame, WriterHandle, WriterMsg};
use crate::model::{Event, EventKind, Exchange, Instrument, InstrumentId, NANOS_PER_SEC, Nanos, Record, Status};

/// Why capture could not start.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{exchange}: no capture adapter yet")]
    NoAdapter { exchange: Exchange },
    #[error("{exchange}: cannot fetch the symbol list from {url}: {detail}")]
    Symbols { exchange: Exchange, url: String, detail: String },
    #[error("{exchange}: unknown symbol {symbol} (see `tapedeck symbols --exchange {exchange}`)")]
    UnknownSymbol { exchange: Exchange, symbol: String },
    #[error("{exchange}: no symbols selected")]
    NoSymbols { exchange: Exchange },
    #[error("--streams: {0}")]
    Streams(String),
}

/// What to capture from one venue.
#[derive(Debug, Clone)]
pub struct VenueConfig {
    pub exchange: Exchange,
    pub endpoints: Endpoints,
    /// Venue (BTCUSDT) or canonical (BTC/USDT) symbols; empty with `all_symbols`.
    pub symbols: Vec<String>,
    pub all_symbols: bool,
    /// With `all_symbols`: only pairs quoted in this asset.
    pub quote: Option<String>,
    pub streams: Vec<StreamKind>,
}

/// Tunables shared by every connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A connection with no frame for this long is reconnected.
    pub stale_after: Duration,
    pub connect_timeout: Duration,
    pub max_message_bytes: usize,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Keep every frame as received in the recording's raw tree.
    pub keep_raw: bool,
    /// Most levels a side accepted in one book update.
    pub max_levels: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            stale_after: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_message_bytes: 16 << 20,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            keep_raw: false,
            max_levels: crate::exchange::DEFAULT_MAX_LEVELS,
        }
    }
}

/// Live counters per exchange, readable while capture runs.
#[derive(Debug, Default)]
pub struct Counters {
    pub frames: AtomicU64,
    pub records: AtomicU64,
    pub parse_errors: AtomicU64,
    pub venue_errors: AtomicU64,
    pub control: AtomicU64,
    pub connects: AtomicU64,
    pub disconnects: AtomicU64,
    pub gaps: AtomicU64,
    pub resyncs: AtomicU64,
    pub per_kind: [AtomicU64; 7],
}

impl Counters {
    pub fn get(&self, c: &AtomicU64) -> u64 {
        let _ = self;
        c.load(Ordering::Relaxed)
    }

    /// Records per kind so far, by name.
    pub fn kinds(&self) -> BTreeMap<&'static str, u64> {
        EventKind::ALL.iter().zip(&self.per_kind).map(|(k, n)| (k.as_str(), n.load(Ordering::Relaxed))).collect()
    }
}

/// A running capture's shared state.
pub struct Capture {
    pub counters: BTreeMap<Exchange, Arc<Counters>>,
    /// Venue stream names, for the recording meta.
    pub streams: Vec<String>,
    pub ts_notes: Vec<(&'static str, &'static str)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Venues with their symbols resolved, ready to connect.
pub struct Prepared {
    venues: Vec<PreparedVenue>,
    http: reqwest::Client,
}

struct PreparedVenue {
    config: VenueConfig,
    venue: Arc<dyn Venue>,
    symbols: Arc<Vec<SymbolInfo>>,
    instruments: Vec<Instrument>,
}

impl Prepared {
    /// Venue stream names that `start` will subscribe to, for the recording meta.
    pub fn streams(&self) -> Vec<String> {
        self.venues
            .iter()
            .flat_map(|v| v.venue.plan(&v.config.endpoints, &v.instruments, &v.config.streams))
            .flat_map(|plan| plan.streams)
            .collect()
    }

    /// Where each stream's `ts_exchange` comes from, for the recording meta.
    pub fn ts_notes(&self) -> Vec<(&'static str, &'static str)> {
        self.venues.iter().flat_map(|v| v.venue.ts_notes().iter().copied()).collect()
    }
}

impl Capture {
    /// Resolves every venue's symbols over REST, before anything is written.
    ///
    /// # Errors
    /// When a venue has no adapter, its symbol list cannot be fetched, or a symbol is unknown.
    pub async fn prepare(configs: &[VenueConfig]) -> Result<Prepared, CaptureError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("tapedeck/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("http client");
        let mut venues = Vec::new();
        for config in configs {
            let venue: Arc<dyn Venue> =
                Arc::from(venue(config.exchange).ok_or(CaptureError::NoAdapter { exchange: config.exchange })?);
            venue.check_streams(&config.streams).map_err(CaptureError::Streams)?;
            let symbols = Arc::new(fetch_symbols(&http, venue.as_ref(), &config.endpoints).await?);
            let instruments = select(config, &symbols)?;
            venues.push(PreparedVenue { config: config.clone(), venue, symbols, instruments });
        }
        Ok(Prepared { venues, http })
    }

    /// Starts every connection.
    pub fn start(prepared: Prepared, limits: Limits, sink: WriterHandle, shutdown: watch::Receiver<bool>) -> Capture {
        let mut capture =
            Capture { counters: BTreeMap::new(), streams: Vec::new(), ts_notes: Vec::new(), tasks: Vec::new() };
        for PreparedVenue { config, venue, symbols, instruments } in prepared.venues {
            let counters = Arc::new(Counters::default());
            capture.counters.insert(config.exchange, counters.clone());
            capture.ts_notes.extend_from_slice(venue.ts_notes());
            for (index, plan) in venue.plan(&config.endpoints, &instruments, &config.streams).into_iter().enumerate() {
                capture.streams.extend(plan.streams.iter().cloned());
                let connection = Connection {
                    venue: venue.clone(),
                    endpoints: config.endpoints.clone(),
                    plan,
                    symbols: symbols.clone(),
                    sink: Sink { handle: sink.clone(), exchange: config.exchange, counters: counters.clone() },
                    http: prepared.http.clone(),
                    limits,
                    seed: (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ now_ns(),
                };
                capture.tasks.push(tokio::spawn(connection.run(shutdown.clone())));
            }
        }
        capture
    }

    /// Waits for every connection task to end (after shutdown was signalled).
    pub async fn join(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn fetch_symbols(
    http: &reqwest::Client,
    venue: &dyn Venue,
    endpoints: &Endpoints,
) -> Result<Vec<SymbolInfo>, CaptureError> {
    let url = format!("{}{}", endpoints.rest.trim_end_matches('/'), venue.symbols_path());
    let fail = |detail: String| CaptureError::Symbols { exchange: venue.exchange(), url: url.clone(), detail };
    let response = http.get(&url).send().await.map_err(|e| fail(e.to_string()))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| fail(e.to_string()))?;
    if !status.is_success() {
        return Err(fail(format!("HTTP {status}: {}", body.chars().take(200).collect::<String>())));
    }
    venue.parse_symbols(&body).map_err(|e| fail(e.to_string()))
}

/// Fetches the venue's symbol list, for `tapedeck symbols`.
///
/// # Errors
/// When the venue has no adapter or the list cannot be fetched.
pub async fn list_symbols(exchange: Exchange, endpoints: &Endpoints) -> Result<Vec<SymbolInfo>, CaptureError> {
    let venue = venue(exchange).ok_or(CaptureError::NoAdapter { exchange })?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().expect("http client");
    fetch_symbols(&http, venue.as_ref(), endpoints).await
}

/// Resolves the requested symbols against the venue's list (never by splitting strings).
fn select(config: &VenueConfig, symbols: &[SymbolInfo]) -> Result<Vec<Instrument>, CaptureError> {
    let chosen: Vec<Instrument> = if config.all_symbols {
        symbols
            .iter()
            .filter(|s| s.tradable)
            .filter(|s| {
                config.quote.as_ref().is_none_or(|q| s.instrument.symbol.ends_with(&format!("/{}", q.to_uppercase())))
            })
            .map(|s| s.instrument.clone())
            .collect()
    } else {
        config
            .symbols
            .iter()
            .map(|wanted| {
                let upper = wanted.to_uppercase();
                symbols
                    .iter()
                    .find(|s| s.instrument.venue_symbol.to_uppercase() == upper || s.instrument.symbol == upper)
                    .map(|s| s.instrument.clone())
                    .ok_or_else(|| CaptureError::UnknownSymbol { exchange: config.exchange, symbol: wanted.clone() })
            })
            .collect::<Result<_, _>>()?
    };
    if chosen.is_empty() {
        return Err(CaptureError::NoSymbols { exchange: config.exchange });
    }
    Ok(chosen)
}

/// Appends normalized events to the log, counting them.
#[derive(Clone)]
struct Sink {
    handle: WriterHandle,
    exchange: Exchange,
    counters: Arc<Counters>,
}

impl Sink {
    fn emit(&self, n: Normalized, ts_recv: Nanos) {
        let instrument = match &n.instrument {
            Some(i) => self.handle.intern(i).unwrap_or(InstrumentId::NONE),
            None => InstrumentId::NONE,
        };
        let kind = n.event.kind();
        match &n.event {
            Event::Status(Status::Gap { .. }) => self.counters.gaps.fetch_add(1, Ordering::Relaxed),
            Event::Status(Status::Resync { .. }) => self.counters.resyncs.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        let record =
            Record { seq: 0, ts_exchange: n.ts_exchange, ts_recv, exchange: self.exchange, instrument, event: n.event };
        // A stopped writer means capture is ending; there is nowhere else to put the record.
        if self.handle.send(record).is_ok() {
            self.counters.records.fetch_add(1, Ordering::Relaxed);
            self.counters.per_kind[EventKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)]
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn status(&self, status: Status, instrument: Option<Instrument>) {
        let ts = now_ns();
        self.emit(Normalized { instrument, ts_exchange: ts, event: Event::Status(status) }, ts);
    }
}

struct Connection {
    venue: Arc<dyn Venue>,
    endpoints: Endpoints,
    plan: ConnectionPlan,
    symbols: Arc<Vec<SymbolInfo>>,
    sink: Sink,
    http: reqwest::Client,
    limits: Limits,
    seed: u64,
}

impl Connection {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(self.limits.backoff_base, self.limits.backoff_max, self.seed);
        let mut normalizer = self.venue.normalizer(&self.symbols);
        let mut errors = ParseErrors::new(NANOS_PER_SEC);
        let mut reconnect = false;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let reason = self.session(&mut normalizer, &mut errors, &mut backoff, &mut shutdown, reconnect).await;
            reconnect = true;
            if let Some(n) = errors.take(now_ns()) {
                self.sink.emit(n, now_ns());
            }
            self.sink.counters.disconnects.fetch_add(1, Ordering::Relaxed);
            self.sink.status(Status::Disconnected { reason: reason.clone() }, None);
            if *shutdown.borrow() {
                return;
            }
            let delay = backoff.next_delay();
            tracing::warn!(exchange = %self.sink.exchange, %reason, ?delay, "disconnected; reconnecting");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// One connection's life; returns why it ended.
    async fn session(
        &self,
        normalizer: &mut Box<dyn crate::exchange::Normalizer>,
        errors: &mut ParseErrors,
        backoff: &mut Backoff,
        shutdown: &mut watch::Receiver<bool>,
        reconnect: bool,
    ) -> String {
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(self.limits.max_message_bytes))
            .max_frame_size(Some(self.limits.max_message_bytes));
        let connect = tokio_tungstenite::connect_async_with_config(self.plan.url.as_str(), Some(config), false);
        let ws = match tokio::time::timeout(self.limits.connect_timeout, connect).await {
            Err(_) => return format!("connect timed out after {:?}", self.limits.connect_timeout),
            Ok(Err(e)) => return format!("connect failed: {e}"),
            Ok(Ok((ws, _))) => ws,
        };
        backoff.reset();
        self.sink.counters.connects.fetch_add(1, Ordering::Relaxed);
        self.sink.status(Status::Connected { url: self.plan.url.clone() }, None);
        let (mut write, mut read) = ws.split();
        for message in &self.plan.subscribe {
            let message = self.venue.stamp(message, now_ns() / NANOS_PER_SEC);
            if let Err(e) = write.send(Message::text(message)).await {
                return format!("subscribe failed: {e}");
            }
        }
        self.sink.status(Status::Subscribed { streams: self.plan.streams.clone() }, None);
        normalizer.reset();
        // Diffs are already flowing; the engine buffers them until each snapshot arrives.
        for instrument in &self.plan.depth {
            if reconnect {
                let stream = format!("{}:depth", instrument.venue_symbol);
                self.sink.status(Status::Resync { stream }, Some(instrument.clone()));
            }
            self.snapshot(instrument).await;
        }
        let mut ping = self.venue.ping_interval().map(tokio::time::interval);
        let mut out: Vec<Normalized> = Vec::new();
        let mut last_frame = tokio::time::Instant::now();
        loop {
            let stale_at = last_frame + self.limits.stale_after;
            tokio::select! {
                message = read.next() => {
                    let ts_recv = now_ns();
                    last_frame = tokio::time::Instant::now();
                    let text = match message {
                        None => return "closed by the server".into(),
                        Some(Err(e)) => return format!("read failed: {e}"),
                        Some(Ok(Message::Text(t))) => t.to_string(),
                        Some(Ok(Message::Binary(b))) => match String::from_utf8(b.to_vec()) {
                            Ok(t) => t,
                            Err(_) => {
                                let err = crate::exchange::NormalizeError::Malformed("binary frame is not UTF-8".into());
                                self.count_error("<binary>", &err, ts_recv, errors);
                                continue;
                            }
                        },
                        Some(Ok(Message::Ping(payload))) => {
                            let _ = write.send(Message::Pong(payload)).await;
                            continue;
                        }
                        Some(Ok(Message::Close(frame))) => {
                            return format!("closed by the server: {}", frame.map_or_else(String::new, |f| f.reason.to_string()));
                        }
                        Some(Ok(_)) => continue,
                    };
                    self.sink.counters.frames.fetch_add(1, Ordering::Relaxed);
                    if self.limits.keep_raw {
                        let frame = RawFrame { ts_recv, exchange: self.sink.exchange, text: text.clone() };
                        let _ = self.sink.handle.send_msg(WriterMsg::Raw(frame));
                    }
                    if let Some(reply) = self.venue.reply_to(&text) {
                        let _ = write.send(Message::text(reply)).await;
                    }
                    out.clear();
                    match normalizer.normalize(&text, ts_recv, &mut out) {
                        Ok(FrameKind::Data) => {
                            let mut resync = Vec::new();
                            for n in out.drain(..) {
                                if let Err(e) = crate::exchange::check_event(&n.event, self.limits.max_levels) {
                                    self.count_error(&text, &e, ts_recv, errors);
                                    continue;
                                }
                                if let (Event::Status(Status::Gap { .. }), Some(i)) = (&n.event, &n.instrument)
                                    && self.plan.depth.contains(i)
                                {
                                    resync.push(i.clone());
                                }
                                self.sink.emit(n, ts_recv);
                            }
                            for instrument in resync {
                                self.sink.status(Status::Resync { stream: format!("{}:depth", instrument.venue_symbol) }, Some(instrument.clone()));
                                self.snapshot(&instrument).await;
                            }
                        }
                        Ok(FrameKind::Control) => {
                            self.sink.counters.control.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(FrameKind::VenueError(message)) => {
                            self.sink.counters.venue_errors.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(exchange = %self.sink.exchange, %message, "venue reported an error");
                        }
                        Err(e) => self.count_error(&text, &e, ts_recv, errors),
                    }
                }
                _ = async { ping.as_mut().expect("guarded").tick().await }, if ping.is_some() => {
                    if let Some(message) = self.venue.app_ping(now_ns() / NANOS_PER_SEC) {
                        let _ = write.send(Message::text(message)).await;
                    }
                }
                _ = tokio::time::sleep_until(stale_at) => {
                    return format!("no data for {:?} (stale watchdog)", self.limits.stale_after);
                }
                _ = shutdown.changed() => {
                    let _ = write.send(Message::Close(None)).await;
                    return "shutdown".into();
                }
            }
        }
    }

    fn count_error(
        &self,
        frame: &str,
        error: &crate::exchange::NormalizeError,
        ts_recv: Nanos,
        errors: &mut ParseErrors,
    ) {
        self.sink.counters.parse_errors.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(exchange = %self.sink.exchange, %error, "skipping a frame that does not normalize");
        if let Some(n) = errors.failed(frame, error, ts_recv) {
            self.sink.emit(n, ts_recv);
        }
    }

    /// Fetches and records a REST depth snapshot; a failure is logged and the book stays
    /// invalid until the next resync.
    async fn snapshot(&self, instrument: &Instrument) {
        // REST snapshots pass the same input checks as stream frames.
        let url = format!("{}{}", self.endpoints.rest.trim_end_matches('/'), self.venue.snapshot_path(instrument));
        let body = match self.http.get(&url).send().await {
            Ok(response) if response.status().is_success() => response.text().await,
            Ok(response) => {
                tracing::warn!(%url, status = %response.status(), "depth snapshot refused");
                return;
            }
            Err(e) => Err(e),
        };
        let ts_recv = now_ns();
        match body
            .map_err(|e| e.to_string())
            .and_then(|b| self.venue.parse_snapshot(&b, instrument, ts_recv).map_err(|e| e.to_string()))
        {
            Ok(snapshot) => match crate::exchange::check_event(&snapshot.event, self.limits.max_levels) {
                Ok(()) => self.sink.emit(snapshot, ts_recv),
                Err(e) => tracing::warn!(%url, error = %e, "depth snapshot rejected"),
            },
            Err(e) => tracing::warn!(%url, error = %e, "depth snapshot failed"),
        }
    }
}

/// Wall-clock ns: capture is the one place that stamps receive times.
pub fn now_ns() -> Nanos {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
