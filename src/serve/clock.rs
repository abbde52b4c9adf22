//! The one replay clock: a thread reads the recording through `Merged` and `Pacer`, keeps the
//! served books and candles, renders each record once and broadcasts it to every connection.
//!
//! At a paced speed (1x, 10x) the clock follows the wall and a client that falls more than
//! [`CHANNEL`] messages behind loses them (counted in `drops`, logged) instead of slowing the
//! others. At `max` there is no wall to follow, so the clock runs as fast as the slowest
//! connected client reads: otherwise every client but the fastest would see only drops.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::binance::{self as wire, INTERVALS, KlineFields, StreamKey};
use crate::engine::{CandleBuilder, OrderBook};
use crate::model::{BookSnapshot, Event, InstrumentId, Level, NANOS_PER_MS, Nanos, Record, SymbolTable};
use crate::replay::{Filter, Merged, Pacer, Speed};

/// Messages a client may fall behind before it loses some.
pub const CHANNEL: usize = 16_384;
/// Closed klines kept per series for `GET /api/v3/klines` (Binance's page maximum).
const KLINE_HISTORY: usize = 1000;
/// Records `--loop` keeps in memory between passes (tens of MB for trades and quotes, more
/// with deep books); a longer recording is read from disk on every pass.
const KEEP_RECORDS: usize = 500_000;
/// How long the clock holds at a recorded depth snapshot for a diff subscriber to fetch one.
const SNAPSHOT_HOLD: Duration = Duration::from_secs(5);

/// Closed klines per (instrument, interval): (open time ms, `GET /api/v3/klines` row).
pub type KlineHistory = HashMap<(InstrumentId, u32), VecDeque<(u64, String)>>;

/// One rendered record, as every subscriber of its stream receives it.
pub struct Out {
    /// `None` for all-market streams.
    pub instrument: Option<InstrumentId>,
    pub key: StreamKey,
    /// The raw-stream payload; combined streams wrap it.
    pub payload: String,
}

/// One instrument's book as `GET /api/v3/depth` serves it.
#[derive(Default)]
pub struct ServedBook {
    /// Snapshot plus diffs (diffs before the first snapshot are buffered, as a client does).
    pub book: OrderBook,
    /// The recorded snapshot, while no diff has followed it: served verbatim, so a client gets
    /// exactly what the recording's client got (its lastUpdateId fits the diffs already sent).
    pub recorded: Option<BookSnapshot>,
}

impl ServedBook {
    /// `GET /api/v3/depth` at the current replay time: (lastUpdateId, bids, asks), if known.
    pub fn depth(&self, limit: usize) -> Option<(u64, Vec<Level>, Vec<Level>)> {
        if let Some(s) = &self.recorded
            && let Some(last) = s.last_update_id
        {
            let take = |levels: &[Level]| levels.iter().take(limit).copied().collect();
            return Some((last, take(&s.bids), take(&s.asks)));
        }
        let last = self.book.last_update_id().filter(|_| self.book.is_valid())?;
        Some((last, self.book.bids(limit), self.book.asks(limit)))
    }
}

/// What connections and the clock share.
pub struct State {
    pub protocol: super::Protocol,
    pub symbols: SymbolTable,
    /// Per instrument, the pair as the protocol spells it (`BTC_USDT` on Gate, `btc_usdt` on
    /// LBank, the venue symbol on Binance).
    pub pairs: Vec<String>,
    /// Upper-case venue symbol → instrument.
    pub by_symbol: HashMap<String, InstrumentId>,
    pub tx: broadcast::Sender<Arc<Out>>,
    /// The book at the current replay time, per instrument.
    pub books: Mutex<Vec<ServedBook>>,
    /// Replay time: the ts_recv of the last record sent, ns.
    pub clock: AtomicU64,
    /// Per instrument: diff subscriptions made since the last depth snapshot was served.
    pub awaiting_snapshot: Vec<AtomicU32>,
    /// Bit i set: some client wants klines of `INTERVALS[i]`.
    pub kline_mask: AtomicU32,
    pub klines: Mutex<KlineHistory>,
    pub started: AtomicBool,
    pub finished: AtomicBool,
    pub drops: AtomicU64,
    pub sent: AtomicU64,
}

impl State {
    pub fn new(symbols: SymbolTable, first_ts: Nanos, protocol: super::Protocol) -> State {
        let n = symbols.len();
        let pairs: Vec<String> = symbols
            .iter()
            .map(|(_, i)| match protocol {
                super::Protocol::Binance => i.venue_symbol.to_uppercase(),
                super::Protocol::Gate => super::gate::pair(&i.symbol),
                super::Protocol::LBank => super::lbank::pair(&i.symbol),
            })
            .collect();
        let by_symbol = symbols.iter().map(|(id, _)| (pairs[id.0 as usize].clone(), id)).collect();
        State {
            protocol,
            symbols,
            pairs,
            by_symbol,
            tx: broadcast::channel(CHANNEL).0,
            books: Mutex::new((0..n).map(|_| ServedBook::default()).collect()),
            clock: AtomicU64::new(first_ts),
            awaiting_snapshot: (0..n).map(|_| AtomicU32::new(0)).collect(),
            kline_mask: AtomicU32::new(0),
            klines: Mutex::new(HashMap::new()),
            started: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            drops: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.load(Ordering::Relaxed) / NANOS_PER_MS
    }

    /// Asks the clock to build klines of `interval_s` from trades from now on.
    pub fn want_klines(&self, interval_s: u32) {
        if let Some(bit) = INTERVALS.iter().position(|s| *s == interval_s) {
            self.kline_mask.fetch_or(1 << bit, Ordering::Relaxed);
        }
    }
}

/// The clock thread's settings.
pub struct ClockConfig {
    pub recordings: Vec<PathBuf>,
    pub speed: Speed,
    pub repeat: bool,
    pub start_on_connect: bool,
}

/// Runs the clock until the recording ends (or forever with `repeat`). Blocking: call it on
/// its own thread.
///
/// # Errors
/// When a recording cannot be opened or a block is corrupt.
pub fn run(state: &State, config: &ClockConfig) -> Result<(), crate::log::LogError> {
    while config.start_on_connect && !state.started.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(2));
    }
    // With --loop, a recording small enough is kept in memory after the first pass, so later
    // passes neither reopen nor decode it (reopening dominated a pass of the sample at --speed max).
    let mut kept: Option<Vec<Record>> = None;
    loop {
        let mut pass = Pass::new(state);
        let mut pacer = Pacer::new(config.speed);
        let mut text = String::with_capacity(4096);
        let mut serve_one = |n: usize, record: &Record| {
            pacer.wait(record.ts_recv);
            // Checked every 64 records: `len` takes the channel's lock.
            if config.speed == Speed::Max && n % 64 == 0 {
                // Follow the slowest client instead of overrunning it (see the module doc).
                while state.tx.len() > CHANNEL * 3 / 4 {
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
            state.clock.store(record.ts_recv, Ordering::Relaxed);
            pass.on_record(record, &mut text);
        };
        if let Some(records) = &kept {
            records.iter().enumerate().for_each(|(n, r)| serve_one(n, r));
        } else {
            let mut merged = Merged::open(&config.recordings, Filter::default()).map_err(|(_, e)| e)?;
            let mut keep = config.repeat.then(Vec::new);
            for (n, record) in merged.by_ref().enumerate() {
                serve_one(n, &record);
                if let Some(k) = &mut keep {
                    if k.len() < KEEP_RECORDS {
                        k.push(record);
                    } else {
                        keep = None;
                    }
                }
            }
            if let Some(e) = merged.take_error() {
                return Err(e);
            }
            kept = keep;
        }
        if !config.repeat {
            state.finished.store(true, Ordering::Release);
            tracing::info!(sent = state.sent.load(Ordering::Relaxed), "recording served to the end");
            return Ok(());
        }
        tracing::info!("recording ended; starting again (--loop)");
    }
}

/// One pass over the recording: books and candle builders start empty each time round.
struct Pass<'a> {
    state: &'a State,
    builders: Vec<Vec<Option<CandleBuilder>>>,
    bars: Vec<crate::engine::Bar>,
}

impl<'a> Pass<'a> {
    fn new(state: &'a State) -> Self {
        let n = state.symbols.len();
        state.books.lock().expect("books lock").iter_mut().for_each(|b| *b = ServedBook::default());
        Pass {
            state,
            builders: (0..n).map(|_| (0..INTERVALS.len()).map(|_| None).collect()).collect(),
            bars: Vec::new(),
        }
    }

    fn send(&self, instrument: Option<InstrumentId>, key: StreamKey, payload: String) {
        // An error only means nobody is connected right now.
        if self.state.tx.send(Arc::new(Out { instrument, key, payload })).is_ok() {
            self.state.sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn on_record(&mut self, record: &Record, text: &mut String) {
        let id = record.instrument;
        let Some(inst) = self.state.symbols.get(id) else { return };
        let sym = inst.venue_symbol.as_str();
        let state = self.state;
        text.clear();
        match state.protocol {
            super::Protocol::Gate => return self.on_record_gate(record, text),
            super::Protocol::LBank => return self.on_record_lbank(record, text),
            super::Protocol::Binance => {}
        }
        match &record.event {
            Event::Trade(t) => {
                wire::trade(text, sym, record.ts_exchange, t);
                self.send(Some(id), StreamKey::Trade, text.clone());
                self.candles(id, sym, record.ts_exchange, t);
            }
            Event::Quote(q) => {
                wire::book_ticker(text, sym, q);
                self.send(Some(id), StreamKey::BookTicker, text.clone());
            }
            Event::BookDelta(d) => {
                let served = &mut state.books.lock().expect("books lock")[id.0 as usize];
                served.book.apply_delta(d);
                served.recorded = None;
                wire::depth_update(text, sym, record.ts_exchange, d);
                self.send(Some(id), StreamKey::Depth, text.clone());
            }
            Event::BookSnapshot(s) => {
                {
                    let served = &mut state.books.lock().expect("books lock")[id.0 as usize];
                    served.book.apply_snapshot(s);
                    served.recorded = Some(s.clone());
                }
                // Not under the books lock: the fetch this waits for needs it.
                self.hold_for_snapshot_fetch(id);
            }
            Event::Candle(c) => {
                let k = KlineFields::from_candle(c);
                wire::kline(text, sym, record.ts_exchange, &k);
                self.send(Some(id), StreamKey::Kline(c.interval_s), text.clone());
                if c.closed {
                    self.keep_kline(id, &k);
                }
            }
            Event::Ticker(t) => {
                wire::mini_ticker_arr(text, sym, record.ts_exchange, t);
                self.send(None, StreamKey::MiniTickerArr, text.clone());
            }
            Event::Status(_) => {}
        }
    }

    /// Gate: trades, book tickers and depth diffs; the served book as for Binance. Klines and
    /// tickers are not served on this protocol yet.
    fn on_record_gate(&mut self, record: &Record, text: &mut String) {
        let id = record.instrument;
        let pair = &self.state.pairs[id.0 as usize];
        let ts = record.ts_exchange;
        match &record.event {
            Event::Trade(t) => {
                super::gate::trade(text, pair, ts, t);
                self.send(Some(id), StreamKey::Trade, text.clone());
            }
            Event::Quote(q) => {
                super::gate::book_ticker(text, pair, ts, q);
                self.send(Some(id), StreamKey::BookTicker, text.clone());
            }
            Event::BookDelta(d) => {
                let served = &mut self.state.books.lock().expect("books lock")[id.0 as usize];
                served.book.apply_delta(d);
                served.recorded = None;
                super::gate::depth_update(text, pair, ts, d);
                self.send(Some(id), StreamKey::Depth, text.clone());
            }
            Event::BookSnapshot(s) => {
                {
                    let served = &mut self.state.books.lock().expect("books lock")[id.0 as usize];
                    served.book.apply_snapshot(s);
                    served.recorded = Some(s.clone());
                }
                self.hold_for_snapshot_fetch(id);
            }
            Event::Candle(_) | Event::Ticker(_) | Event::Status(_) => {}
        }
    }

    /// LBank: trades, and after every book change the served book's top levels as a whole-book
    /// `depth` push (LBank has no diffs, so clients never fetch a snapshot to sync).
    fn on_record_lbank(&mut self, record: &Record, text: &mut String) {
        use super::lbank;
        let id = record.instrument;
        let pair = &self.state.pairs[id.0 as usize];
        let ts = record.ts_exchange;
        match &record.event {
            Event::Trade(t) => {
                lbank::trade(text, pair, ts, t);
                self.send(Some(id), StreamKey::Trade, text.clone());
            }
            Event::BookDelta(_) | Event::BookSnapshot(_) => {
                let book = {
                    let served = &mut self.state.books.lock().expect("books lock")[id.0 as usize];
                    match &record.event {
                        Event::BookDelta(d) => {
                            served.book.apply_delta(d);
                        }
                        Event::BookSnapshot(s) => {
                            served.book.apply_snapshot(s);
                        }
                        _ => {}
                    }
                    served.recorded = None;
                    served
                        .book
                        .is_valid()
                        .then(|| (served.book.bids(lbank::DEPTH_LEVELS), served.book.asks(lbank::DEPTH_LEVELS)))
                };
                if let Some((bids, asks)) = book {
                    lbank::depth(text, pair, ts, &bids, &asks);
                    self.send(Some(id), StreamKey::Depth, text.clone());
                }
            }
            Event::Quote(_) | Event::Candle(_) | Event::Ticker(_) | Event::Status(_) => {}
        }
    }

    /// A client that subscribed to diffs fetches its snapshot next; holding the clock at the
    /// recorded snapshot lets it get exactly the book the recording's own client got (at
    /// `--speed max` the clock would otherwise be far past it by the time the GET arrives).
    fn hold_for_snapshot_fetch(&self, id: InstrumentId) {
        let awaiting = &self.state.awaiting_snapshot[id.0 as usize];
        let until = Instant::now() + SNAPSHOT_HOLD;
        while awaiting.load(Ordering::Acquire) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_micros(200));
        }
        awaiting.store(0, Ordering::Release);
    }

    fn candles(&mut self, id: InstrumentId, sym: &str, ts: Nanos, t: &crate::model::Trade) {
        let mask = self.state.kline_mask.load(Ordering::Relaxed);
        if mask == 0 {
            return;
        }
        for (bit, interval) in INTERVALS.iter().enumerate() {
            if mask & (1 << bit) == 0 {
                continue;
            }
            let builder = self.builders[id.0 as usize][bit].get_or_insert_with(|| CandleBuilder::new(id, *interval));
            builder.on_trade(ts, t.price, t.qty, &mut self.bars);
        }
        for bar in std::mem::take(&mut self.bars) {
            let k = KlineFields::from_bar(&bar);
            let mut text = String::new();
            wire::kline(&mut text, sym, ts, &k);
            self.send(Some(id), StreamKey::Kline(bar.timeframe_s), text);
            self.keep_kline(id, &k);
        }
    }

    fn keep_kline(&self, id: InstrumentId, k: &KlineFields) {
        let mut klines = self.state.klines.lock().expect("klines lock");
        let series = klines.entry((id, k.interval_s)).or_default();
        if series.len() == KLINE_HISTORY {
            series.pop_front();
        }
        series.push_back((k.open_time / NANOS_PER_MS, wire::kline_row(k)));
    }
}
