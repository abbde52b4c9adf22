//! Backfill: kline and trade history over the venues' REST APIs, appended to a recording as
//! ordinary records.
//!
//! Owns paging, resume, gap detection and the merge of streams into one time-ordered log; the
//! HTTP side (pacing under the documented budget, rate-limit headers, 429/418 `Retry-After`,
//! 5xx backoff) is in `backfill/http.rs`, the resume scan in `backfill/held.rs`. Venues come in
//! through the [`Venue`] history hooks, so nothing here knows a wire format. Must not touch sled
//! (it uses [`Reader`](crate::log::Reader) and [`Writer`]),
//! write a record older than what the recording holds for the same stream, or record a candle
//! whose bucket was not over when the run started.
//!
//! - **Records.** Candles (always `closed`) and trades, with `ts_recv = ts_exchange`: REST history
//!   has no receive time. A candle is stamped at its bucket end (open + interval), when it became
//!   final; a trade at its trade time. Streams (symbol × kind) are merged by that time, so the
//!   recording is in time order across streams, as replay expects.
//! - **Resume.** Progress is read back from the recording: per stream, the newest candle open
//!   time or trade (time, id) it holds. A rerun with the same arguments continues right after
//!   it; the writer is flushed before every request, so a kill loses at most pages that are
//!   fetched again, and nothing is written twice.
//! - **Gaps.** Buckets the venue skips between two klines it returned become
//!   `Status::Gap { stream: "<venue symbol>:kline_<tf>", expected, got }` with **bucket open
//!   times in ms since the epoch**: the first missing bucket and the next bucket returned
//!   (`got − expected` is the missing span). On venues with consecutive trade ids (Binance
//!   aggregate trades) a jump becomes a gap on `"<venue symbol>:trades"` in **trade ids**.

mod held;
mod http;

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::exchange::{HistoryCursor, HistoryKind, HistoryRow, RestBudget, Venue};
use crate::log::{LogError, RecordingMeta, Writer};
use crate::model::time::format_utc;
use crate::model::{Event, Exchange, Instrument, InstrumentId, NANOS_PER_MS, Nanos, Record, Status};

use held::{Held, read_back, select};
pub use http::Retry;

/// A bucket must have ended this long before the run started to be recorded: the venue's
/// clock and ours differ, and a just-ended bucket may still take a late trade.
pub const SETTLE_MS: u64 = 5_000;

/// What to backfill.
#[derive(Debug, Clone)]
pub struct Config {
    pub exchange: Exchange,
    /// REST base URL, e.g. `https://api.binance.com`.
    pub rest_url: String,
    /// Venue (ADABTC, BTC_USDT) or canonical (ADA/BTC) symbols.
    pub symbols: Vec<String>,
    /// Kline length in seconds, if klines are wanted.
    pub kline_s: Option<u32>,
    pub trades: bool,
    /// Range start, ms since the epoch (inclusive).
    pub from_ms: u64,
    /// Range end, ms since the epoch (exclusive).
    pub to_ms: u64,
    /// The wall clock when the run started, ms: buckets ending after `now_ms − SETTLE_MS` are left out.
    pub now_ms: u64,
    /// The venue's documented budget when `None`; set it to use a smaller share of the limit.
    pub budget: Option<RestBudget>,
    pub retry: Retry,
}

/// Why a backfill could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The venue cannot serve `kind` (or not at that length); `detail` says why.
    #[error("{detail}")]
    Unsupported { kind: HistoryKind, detail: String },
    #[error("{exchange}: unknown symbol {symbol} (see `tapedeck symbols --exchange {exchange}`)")]
    UnknownSymbol { exchange: Exchange, symbol: String },
    #[error("{url}: {detail}")]
    Http { url: String, detail: String },
    #[error("{url}: unexpected body: {detail}")]
    Body { url: String, detail: String },
    #[error("{path}: holds {found} data; backfill {exchange} into a recording of its own (replay merges recordings)")]
    Foreign { path: String, found: String, exchange: Exchange },
    #[error("{stream}: the venue returned nothing new after {cursor} (no progress)")]
    NoProgress { stream: String, cursor: String },
    #[error("{exchange}: import-only venue, no REST history to fetch")]
    NoAdapter { exchange: Exchange },
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Progress so far, for a progress bar.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// History covered in this run and the whole of it, summed over streams, in ms.
    pub done_ms: u64,
    pub total_ms: u64,
    pub records: u64,
    pub requests: u64,
    /// Set while waiting on a rate limit: why and how long.
    pub waiting: Option<String>,
}

/// What one stream got.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamSummary {
    pub stream: String,
    pub symbol: String,
    /// Records of this stream the recording held before the run.
    pub held_before: u64,
    pub candles: u64,
    pub trades: u64,
    pub gaps: u64,
    /// Rows the venue sent again that the recording already holds (skipped).
    pub duplicates_skipped: u64,
    /// Rows older than the newest held for the stream (refused; should stay 0).
    pub refused_older: u64,
    /// The whole range is in the recording (or the run reached a bucket still open).
    pub complete: bool,
    pub stopped_at_open_candle: bool,
    /// `ts_exchange` of the first and last record written in this run.
    pub first: Option<String>,
    pub last: Option<String>,
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub exchange: String,
    pub records_written: u64,
    pub requests: u64,
    /// Requests repeated after a throttle, a 5xx or a network error.
    pub retries: u64,
    /// 429/418 answers and venue throttle bodies.
    pub throttled: u64,
    /// Pauses taken to stay under the documented budget.
    pub paced: u64,
    /// Time spent waiting on limits and backoff, ms.
    pub waited_ms: u64,
    pub interrupted: bool,
    pub streams: Vec<StreamSummary>,
}

/// A prepared backfill: symbols resolved, progress read back from the recording.
pub struct Backfill {
    venue: Box<dyn Venue>,
    config: Config,
    client: http::Client,
    streams: Vec<Stream>,
}

struct Stream {
    instrument: Instrument,
    id: Option<InstrumentId>,
    kind: HistoryKind,
    name: String,
    cursor: HistoryCursor,
    /// Where this run started, for progress.
    start_ms: u64,
    /// Klines: the newest bucket held, when the run continues right after it (for gaps).
    prev_open_ms: Option<u64>,
    /// Trades: the newest id held, when the run continues right after it (for gaps).
    prev_id: Option<u64>,
    /// The newest `ts_exchange` held: nothing older is written.
    last_ts: Nanos,
    /// The newest `got` of a gap held for this stream, so a rerun does not repeat a gap.
    gap_got: Option<u64>,
    buffer: VecDeque<(Nanos, Event)>,
    done: bool,
    summary: StreamSummary,
}

impl Backfill {
    /// Checks the request against the venue and the recording at `out`, resolves the symbols
    /// over REST and reads back what the recording holds. Writes nothing.
    ///
    /// # Errors
    /// An unsupported kind or interval, an unknown symbol, a recording from another source, or
    /// a symbol list that cannot be fetched.
    pub async fn prepare(config: Config, out: &Path) -> Result<Backfill, BackfillError> {
        let venue =
            crate::exchange::venue(config.exchange).ok_or(BackfillError::NoAdapter { exchange: config.exchange })?;
        let kinds: Vec<HistoryKind> = config
            .kline_s
            .map(HistoryKind::Klines)
            .into_iter()
            .chain(config.trades.then_some(HistoryKind::Trades))
            .collect();
        let probe = Instrument::new(config.exchange, "BASE", "QUOTE", "BASEQUOTE");
        let cursor = HistoryCursor { from_ms: config.from_ms, after_id: None, end_ms: config.to_ms };
        for kind in &kinds {
            venue
                .history_request(&probe, *kind, &cursor)
                .map_err(|detail| BackfillError::Unsupported { kind: *kind, detail })?;
        }
        let (held, gaps) = read_back(out, config.exchange)?;
        let budget = config.budget.unwrap_or_else(|| venue.rest_budget());
        let mut client = http::Client::new(budget, config.retry);
        let url = format!("{}{}", config.rest_url.trim_end_matches('/'), venue.symbols_path());
        let never = || false;
        // A venue that cannot be reached at all is reported quickly, before anything is written.
        let attempts = config.retry.attempts.min(3);
        let body = client.get(&url, budget.symbols_weight, attempts, venue.as_ref(), &never, &mut |_| {}).await?;
        let symbols = venue
            .parse_symbols(&body.unwrap_or_default())
            .map_err(|e| BackfillError::Body { url: url.clone(), detail: e.to_string() })?;
        let instruments = select(config.exchange, &config.symbols, &symbols)?;
        let mut streams = Vec::new();
        for instrument in instruments {
            for kind in &kinds {
                let held = held.get(&(instrument.clone(), *kind)).copied().unwrap_or_default();
                let name = format!("{}:{kind}", instrument.venue_symbol);
                let gap_got = gaps.get(&name).copied();
                streams.push(Stream::new(instrument.clone(), *kind, name, &config, held, gap_got));
            }
        }
        Ok(Backfill { venue, config, client, streams })
    }

    /// The recording's metadata for this run: source `backfill:<exchange>`, the stream names as
    /// subscriptions, and notes on where every time comes from.
    pub fn meta(&self, command_line: Vec<String>, created_ns: u64) -> RecordingMeta {
        let mut meta = RecordingMeta::new(&source(self.config.exchange), created_ns);
        meta.command_lines.push(command_line);
        meta.subscriptions = self.streams.iter().map(|s| s.name.clone()).collect();
        let notes: &[(&str, &str)] = &[
            ("backfill.ts_recv", "ts_recv = ts_exchange: history fetched over REST has no receive time"),
            (
                "backfill.candle.ts_exchange",
                "bucket end (open_time + interval), when the candle became final; buckets not over 5 s before \
                 the run started are never recorded, so every candle is closed",
            ),
            ("backfill.trade.ts_exchange", "trade time"),
            (
                "backfill.gap",
                "kline streams: expected/got are bucket open times in ms since the epoch (first missing bucket, \
                 next bucket returned); trade streams: trade ids",
            ),
        ];
        for (key, value) in notes.iter().chain(self.venue.history_notes()) {
            meta.notes.insert(key.to_string(), value.to_string());
        }
        meta
    }

    /// Fetches every stream to the end of the range (or until `stop` returns true), appending
    /// to `writer` in time order. The writer is flushed before every request and at the end.
    ///
    /// # Errors
    /// A request that keeps failing, a body that does not parse, or a storage failure. What was
    /// written before stays, and a rerun continues from it.
    pub async fn run(
        &mut self,
        writer: &mut Writer,
        stop: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Summary, BackfillError> {
        let mut written = 0u64;
        let mut dirty = false;
        let mut interrupted = false;
        loop {
            if stop() {
                interrupted = true;
                break;
            }
            if let Some(i) = self.streams.iter().position(|s| s.buffer.is_empty() && !s.done) {
                if dirty {
                    writer.flush()?;
                    dirty = false;
                }
                if !self.fetch(i, stop, written, progress).await? {
                    interrupted = true;
                    break;
                }
                progress(&self.progress(written, None));
                continue;
            }
            let next =
                (0..self.streams.len()).filter_map(|i| self.streams[i].buffer.front().map(|(ts, _)| (*ts, i))).min();
            let Some((_, i)) = next else { break };
            if self.write(i, writer)? {
                written += 1;
                dirty = true;
            }
        }
        writer.flush()?;
        progress(&self.progress(written, None));
        let stats = self.client.stats;
        Ok(Summary {
            exchange: self.config.exchange.to_string(),
            records_written: written,
            requests: stats.requests,
            retries: stats.retries,
            throttled: stats.throttled,
            paced: stats.paced,
            waited_ms: stats.waited_ms,
            interrupted,
            streams: self.streams.iter().map(|s| s.summary.clone()).collect(),
        })
    }

    /// Fetches one page for stream `i`; false when `stop` interrupted a wait.
    async fn fetch(
        &mut self,
        i: usize,
        stop: &dyn Fn() -> bool,
        written: u64,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<bool, BackfillError> {
        let (stream, kind) = (&self.streams[i], self.streams[i].kind);
        let request = self
            .venue
            .history_request(&stream.instrument, kind, &stream.cursor)
            .map_err(|detail| BackfillError::Unsupported { kind, detail })?;
        let url = format!("{}{}", self.config.rest_url.trim_end_matches('/'), request.path);
        let base = self.progress(written, None);
        let mut report = |waiting: &str| {
            progress(&Progress { waiting: (!waiting.is_empty()).then(|| waiting.to_string()), ..base.clone() })
        };
        let attempts = self.config.retry.attempts;
        let Some(body) =
            self.client.get(&url, request.weight, attempts, self.venue.as_ref(), stop, &mut report).await?
        else {
            return Ok(false);
        };
        let rows = self
            .venue
            .parse_history(&body, self.streams[i].kind)
            .map_err(|e| BackfillError::Body { url: url.clone(), detail: e.to_string() })?;
        let settled_ms = self.config.now_ms.saturating_sub(SETTLE_MS);
        let consecutive = self.venue.history_trade_ids_consecutive();
        self.streams[i].take_page(rows, request.window_end_ms, settled_ms, consecutive)?;
        Ok(true)
    }

    /// Appends the head of stream `i`'s buffer; false when it was refused as older than held.
    fn write(&mut self, i: usize, writer: &mut Writer) -> Result<bool, BackfillError> {
        let stream = &mut self.streams[i];
        let Some((ts, event)) = stream.buffer.pop_front() else { return Ok(false) };
        if ts < stream.last_ts {
            stream.summary.refused_older += 1;
            return Ok(false);
        }
        let id = match stream.id {
            Some(id) => id,
            None => *stream.id.insert(writer.intern(&stream.instrument)?),
        };
        match &event {
            Event::Candle(_) => stream.summary.candles += 1,
            Event::Trade(_) => stream.summary.trades += 1,
            _ => stream.summary.gaps += 1,
        }
        if !matches!(event, Event::Status(_)) {
            stream.last_ts = ts;
        }
        stream.summary.first.get_or_insert_with(|| format_utc(ts));
        stream.summary.last = Some(format_utc(ts));
        let exchange = self.config.exchange;
        writer.append(Record { seq: 0, ts_exchange: ts, ts_recv: ts, exchange, instrument: id, event })?;
        Ok(true)
    }

    fn progress(&self, records: u64, waiting: Option<String>) -> Progress {
        let (mut done_ms, mut total_ms) = (0, 0);
        for s in &self.streams {
            let span = s.cursor.end_ms.saturating_sub(s.start_ms);
            total_ms += span;
            done_ms += if s.done { span } else { s.cursor.from_ms.min(s.cursor.end_ms).saturating_sub(s.start_ms) };
        }
        Progress { done_ms, total_ms, records, requests: self.client.stats.requests, waiting }
    }
}

impl Stream {
    fn new(
        instrument: Instrument,
        kind: HistoryKind,
        name: String,
        config: &Config,
        held: Held,
        gap: Option<u64>,
    ) -> Self {
        let mut cursor = HistoryCursor { from_ms: config.from_ms, after_id: None, end_ms: config.to_ms };
        let (mut prev_open_ms, mut prev_id) = (None, None);
        if let Some(last) = held.last_time.map(|t| t / NANOS_PER_MS) {
            match kind {
                HistoryKind::Klines(s) if last + u64::from(s) * 1000 >= config.from_ms => {
                    cursor.from_ms = last + u64::from(s) * 1000;
                    prev_open_ms = Some(last);
                }
                HistoryKind::Trades if last >= config.from_ms => {
                    (cursor.from_ms, cursor.after_id, prev_id) = (last, held.last_id, held.last_id);
                }
                _ => {}
            }
        }
        let summary = StreamSummary {
            stream: name.clone(),
            symbol: instrument.symbol.clone(),
            held_before: held.count,
            complete: cursor.from_ms >= cursor.end_ms,
            ..StreamSummary::default()
        };
        Stream {
            instrument,
            id: None,
            kind,
            name,
            start_ms: cursor.from_ms.min(cursor.end_ms),
            cursor,
            prev_open_ms,
            prev_id,
            last_ts: held.last_ts,
            gap_got: gap,
            buffer: VecDeque::new(),
            done: summary.complete,
            summary,
        }
    }

    /// Takes a page: drops rows already held, stops at the range end or at a bucket not over by
    /// `settled_ms`, records missing ranges as gaps, and moves the cursor on.
    fn take_page(
        &mut self,
        mut rows: Vec<HistoryRow>,
        window_end_ms: u64,
        settled_ms: u64,
        consecutive_ids: bool,
    ) -> Result<(), BackfillError> {
        rows.sort_by_key(|row| match row {
            HistoryRow::Candle(c) => (c.open_time, 0),
            HistoryRow::Trade { ts_exchange, trade } => (*ts_exchange, trade.trade_id.unwrap_or(0)),
        });
        let mut accepted = 0;
        for row in rows {
            match (row, self.kind) {
                (HistoryRow::Candle(candle), HistoryKind::Klines(s)) if candle.interval_s == s => {
                    let open_ms = candle.open_time / NANOS_PER_MS;
                    let end_ms = open_ms + u64::from(s) * 1000;
                    if open_ms < self.cursor.from_ms {
                        self.summary.duplicates_skipped += 1;
                        continue;
                    }
                    if open_ms >= self.cursor.end_ms {
                        self.done = true;
                        break;
                    }
                    if !candle.closed || end_ms > settled_ms {
                        self.summary.stopped_at_open_candle = true;
                        self.done = true;
                        break;
                    }
                    if let Some(prev) = self.prev_open_ms
                        && open_ms > prev + u64::from(s) * 1000
                    {
                        self.gap(prev + u64::from(s) * 1000, open_ms, open_ms * NANOS_PER_MS);
                    }
                    self.buffer.push_back((end_ms * NANOS_PER_MS, Event::Candle(Box::new(candle))));
                    (self.prev_open_ms, self.cursor.from_ms) = (Some(open_ms), end_ms);
                    accepted += 1;
                }
                (HistoryRow::Trade { ts_exchange, trade }, HistoryKind::Trades) => {
                    let ts_ms = ts_exchange / NANOS_PER_MS;
                    let held = match (self.cursor.after_id, trade.trade_id) {
                        (Some(after), Some(id)) => id <= after,
                        _ => ts_ms < self.cursor.from_ms,
                    };
                    if held {
                        self.summary.duplicates_skipped += 1;
                        continue;
                    }
                    if ts_ms >= self.cursor.end_ms {
                        self.done = true;
                        break;
                    }
                    if let (true, Some(prev), Some(id)) = (consecutive_ids, self.prev_id, trade.trade_id)
                        && id > prev + 1
                    {
                        self.gap(prev + 1, id, ts_exchange);
                    }
                    (self.cursor.from_ms, self.cursor.after_id) = (ts_ms, trade.trade_id.or(self.cursor.after_id));
                    self.prev_id = trade.trade_id.or(self.prev_id);
                    self.buffer.push_back((ts_exchange, Event::Trade(trade)));
                    accepted += 1;
                }
                (row, kind) => {
                    return Err(BackfillError::Body {
                        url: self.name.clone(),
                        detail: format!("a {kind} page held {row:?}"),
                    });
                }
            }
        }
        if accepted == 0 && !self.done {
            if window_end_ms <= self.cursor.from_ms {
                let cursor = format_utc(self.cursor.from_ms * NANOS_PER_MS);
                return Err(BackfillError::NoProgress { stream: self.name.clone(), cursor });
            }
            self.cursor.from_ms = window_end_ms;
        }
        if self.cursor.from_ms >= self.cursor.end_ms {
            self.done = true;
        }
        self.summary.complete = self.done;
        Ok(())
    }

    fn gap(&mut self, expected: u64, got: u64, ts: Nanos) {
        if self.gap_got.is_some_and(|held| got <= held) {
            return;
        }
        self.gap_got = Some(got);
        let stream = self.name.clone();
        self.buffer.push_back((ts, Event::Status(Status::Gap { stream, expected, got })));
    }
}

/// The recording's `meta.source` for a backfill from `exchange`.
pub fn source(exchange: Exchange) -> String {
    format!("backfill:{exchange}")
}

/// The wall clock in ms, for pacing and the settle rule.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Waits `duration` in short slices; false when `stop` asked to end.
async fn pause(duration: Duration, stop: &dyn Fn() -> bool) -> bool {
    let until = tokio::time::Instant::now() + duration;
    while tokio::time::Instant::now() < until {
        if stop() {
            return false;
        }
        tokio::time::sleep((until - tokio::time::Instant::now()).min(Duration::from_millis(50))).await;
    }
    !stop()
}

#[cfg(test)]
mod tests;
