//! Venue adapters: everything that knows an exchange's wire format lives under here.
//!
//! Each venue has one folder with the same files: `wire.rs` (serde types for its JSON),
//! `normalize.rs` (wire → model, plus venue sequence checks), `rest.rs` (REST bodies and
//! symbol metadata) and `mod.rs`. Nothing outside a venue folder sees its wire types; the
//! rest of tapedeck uses [`Normalizer`] and [`Normalized`]. Normalizers never read the wall
//! clock: `ts_recv` is stamped at the socket and passed in.

pub mod backoff;
pub mod binance;
pub mod gate;
pub mod lbank;

use std::collections::HashMap;

use crate::model::{Candle, Event, Exchange, Instrument, Nanos, Status, Trade};

/// A venue-neutral stream kind, as `--streams` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamKind {
    Trade,
    /// Best bid/ask.
    Quote,
    /// Depth diffs, synced with REST snapshots.
    Depth,
    /// Klines of this many seconds.
    Kline(u32),
    /// All-market 24h tickers.
    Ticker,
}

impl std::str::FromStr for StreamKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "trade" => Ok(StreamKind::Trade),
            "quote" => Ok(StreamKind::Quote),
            "depth" => Ok(StreamKind::Depth),
            "ticker" => Ok(StreamKind::Ticker),
            k if k.starts_with("kline:") => crate::model::time::parse_timeframe(&k[6..]).map(StreamKind::Kline),
            other => Err(format!("unknown stream {other:?} (expected trade, quote, depth, kline:<tf> or ticker)")),
        }
    }
}

/// Where a venue lives; every endpoint can be overridden (tests, proxies, testnets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// WebSocket base, e.g. `wss://stream.binance.com:9443`.
    pub ws: String,
    /// REST base, e.g. `https://api.binance.com`.
    pub rest: String,
}

/// One WebSocket connection to open: its URL, the messages that subscribe it, and the
/// instruments whose depth needs REST snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionPlan {
    pub url: String,
    pub subscribe: Vec<String>,
    /// The venue's stream names, for the `Subscribed` status and the meta.
    pub streams: Vec<String>,
    pub depth: Vec<Instrument>,
}

/// A listed pair, from the venue's symbol list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SymbolInfo {
    pub instrument: Instrument,
    pub status: String,
    pub tradable: bool,
    /// Decimal places of prices and quantities, where the venue says.
    pub price_precision: Option<u32>,
    pub qty_precision: Option<u32>,
}

/// Everything capture needs to know about a venue, without knowing its wire format.
pub trait Venue: Send + Sync {
    fn exchange(&self) -> Exchange;
    fn default_endpoints(&self) -> Endpoints;
    /// REST path (under `Endpoints::rest`) of the symbol list.
    fn symbols_path(&self) -> String;
    /// # Errors
    /// When the body is not the venue's symbol list.
    fn parse_symbols(&self, body: &str) -> Result<Vec<SymbolInfo>, NormalizeError>;
    /// Shards subscriptions over connections within the venue's limits.
    fn plan(&self, endpoints: &Endpoints, instruments: &[Instrument], streams: &[StreamKind]) -> Vec<ConnectionPlan>;
    fn normalizer(&self, symbols: &[SymbolInfo]) -> Box<dyn Normalizer>;
    /// REST path of a depth snapshot for `instrument`.
    fn snapshot_path(&self, instrument: &Instrument) -> String;
    /// # Errors
    /// When the body is not a depth snapshot.
    fn parse_snapshot(&self, body: &str, instrument: &Instrument, ts_recv: Nanos)
    -> Result<Normalized, NormalizeError>;
    /// An application-level ping to send every `ping_interval`, given the unix time in s.
    fn app_ping(&self, _unix_s: u64) -> Option<String> {
        None
    }
    fn ping_interval(&self) -> Option<std::time::Duration> {
        None
    }
    /// A subscribe message as it must go out at `unix_s` (Gate wants a fresh `time`).
    fn stamp(&self, message: &str, _unix_s: u64) -> String {
        message.to_string()
    }
    /// Refuses streams the venue cannot serve (kline lengths it does not offer), so a
    /// subscription is never dropped silently.
    ///
    /// # Errors
    /// A message naming the stream.
    fn check_streams(&self, _streams: &[StreamKind]) -> Result<(), String> {
        Ok(())
    }
    /// A reply the venue requires to a frame (LBank's JSON pings), if any.
    fn reply_to(&self, _frame: &str) -> Option<String> {
        None
    }
    /// Where each stream's `ts_exchange` comes from, for the recording meta.
    fn ts_notes(&self) -> &'static [(&'static str, &'static str)];

    /// Backfill: the REST request for the next page of `kind` history of `instrument`.
    ///
    /// # Errors
    /// A message naming what the venue cannot serve (the default: no REST history at all).
    fn history_request(
        &self,
        _instrument: &Instrument,
        kind: HistoryKind,
        _cursor: &HistoryCursor,
    ) -> Result<HistoryRequest, String> {
        Err(format!("{} has no REST {kind} history for backfill", self.exchange()))
    }
    /// Backfill: the rows of a history page, oldest first.
    ///
    /// # Errors
    /// When the body is not a page of `kind` history (venue error bodies are named).
    fn parse_history(&self, _body: &str, kind: HistoryKind) -> Result<Vec<HistoryRow>, NormalizeError> {
        Err(NormalizeError::Unknown(format!("{} has no REST {kind} history", self.exchange())))
    }
    /// The documented REST rate limit, for pacing backfill requests. The default is a
    /// cautious 10 requests per second for venues that document none.
    fn rest_budget(&self) -> RestBudget {
        RestBudget { limit: 10, window: std::time::Duration::from_secs(1), ..RestBudget::default() }
    }
    /// Whether an HTTP 200 body is the venue's throttle signal (LBank's `error_code` 10004);
    /// HTTP 429 and 418 are handled by the caller.
    fn rest_throttled(&self, _body: &str) -> bool {
        false
    }
    /// Whether trade ids in REST history are consecutive per instrument, so a jump is a gap.
    fn history_trade_ids_consecutive(&self) -> bool {
        false
    }
    /// Where backfilled rows come from (endpoints, which time becomes `ts_exchange`), for the meta.
    fn history_notes(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
}

/// What backfill asks a venue for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HistoryKind {
    /// Klines of this many seconds.
    Klines(u32),
    /// Public trades (aggregate trades on Binance).
    Trades,
}

impl std::fmt::Display for HistoryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HistoryKind::Klines(s) => write!(f, "kline_{}", crate::model::time::format_timeframe(*s)),
            HistoryKind::Trades => f.write_str("trades"),
        }
    }
}

/// Where the next page of history starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryCursor {
    /// First time wanted, ms since the epoch (inclusive): a kline open time or a trade time.
    pub from_ms: u64,
    /// Trades only: the last trade id already held; the page starts after it when the venue
    /// can page by id.
    pub after_id: Option<u64>,
    /// End of the whole range, ms (exclusive).
    pub end_ms: u64,
}

/// One REST page to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRequest {
    /// Path and query under [`Endpoints::rest`].
    pub path: String,
    /// What the request costs against [`RestBudget::limit`].
    pub weight: u32,
    /// The page covers times before this (ms, exclusive): when it holds nothing newer than
    /// the cursor, the venue has nothing before this time and the cursor moves here.
    pub window_end_ms: u64,
}

/// One row of REST history, in model terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryRow {
    /// `closed` is the venue's own flag where it sends one, else true: the caller decides
    /// from the clock whether the bucket is over.
    Candle(Candle),
    Trade {
        ts_exchange: Nanos,
        trade: Trade,
    },
}

/// A venue's documented REST rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestBudget {
    /// Weight (or requests) allowed per window.
    pub limit: u32,
    /// The window; limits reset at multiples of it since the epoch (Binance: each minute).
    pub window: std::time::Duration,
    /// Weight of the symbol-list request.
    pub symbols_weight: u32,
    /// Response header with the weight used so far in the current window (Binance).
    pub used_header: Option<&'static str>,
    /// Response header with the requests left in the current window (Gate).
    pub remaining_header: Option<&'static str>,
    /// Response header with when the window resets, Unix s or ms (Gate).
    pub reset_header: Option<&'static str>,
}

impl Default for RestBudget {
    fn default() -> Self {
        RestBudget {
            limit: 10,
            window: std::time::Duration::from_secs(1),
            symbols_weight: 1,
            used_header: None,
            remaining_header: None,
            reset_header: None,
        }
    }
}

/// The capture adapter for `exchange`; `None` for import-only venues (Bittrex).
pub fn venue(exchange: Exchange) -> Option<Box<dyn Venue>> {
    match exchange {
        Exchange::Binance => Some(Box::new(binance::BinanceVenue)),
        Exchange::Gate => Some(Box::new(gate::GateVenue)),
        Exchange::Lbank => Some(Box::new(lbank::LbankVenue)),
        Exchange::Bittrex => None,
    }
}

/// One model event produced from a venue frame, before the log assigns its seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub instrument: Option<Instrument>,
    pub ts_exchange: Nanos,
    pub event: Event,
}

/// What a frame turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameKind {
    /// Market data; the events were pushed to the output.
    Data,
    /// A subscription ack, pong or other control reply with no market data.
    Control,
    /// The venue reported an error in-band.
    VenueError(String),
}

/// Why a frame could not be normalized. The capture counts these and records a sample.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("unknown message type: {0}")]
    Unknown(String),
    #[error("bad number in field {field}: {detail}")]
    Number { field: &'static str, detail: String },
    #[error("unknown symbol {0}")]
    Symbol(String),
    /// Parsed, but outside what any market produces (negative quantity, too many levels).
    #[error("rejected: {0}")]
    Rejected(String),
}

/// Most price levels accepted per side in one book update; Binance's largest snapshot has 5000.
pub const DEFAULT_MAX_LEVELS: usize = 5000;

/// Refuses events no venue can mean: negative or zero prices, negative quantities, and book
/// updates with more than `max_levels` levels a side. Capture counts a refusal like a parse
/// failure (a `ParseError` record with a sample), so nothing is dropped silently.
///
/// # Errors
/// The first problem found.
pub fn check_event(event: &Event, max_levels: usize) -> Result<(), NormalizeError> {
    use crate::model::{Decimal, Level};
    let price = |p: &Decimal, what: &str| {
        if p.is_negative() || p.is_zero() {
            Err(NormalizeError::Rejected(format!("{what} price {p} is not positive")))
        } else {
            Ok(())
        }
    };
    let qty = |q: &Decimal, what: &str| {
        if q.is_negative() { Err(NormalizeError::Rejected(format!("{what} quantity {q} is negative"))) } else { Ok(()) }
    };
    let levels = |side: &[Level], what: &str| -> Result<(), NormalizeError> {
        if side.len() > max_levels {
            return Err(NormalizeError::Rejected(format!(
                "{} {what} levels, more than the limit of {max_levels}",
                side.len()
            )));
        }
        side.iter().try_for_each(|l| price(&l.price, what).and_then(|_| qty(&l.qty, what)))
    };
    match event {
        Event::Trade(t) => price(&t.price, "trade").and_then(|_| qty(&t.qty, "trade")),
        Event::Quote(q) => {
            qty(&q.bid_qty, "bid")?;
            qty(&q.ask_qty, "ask")?;
            if q.bid_price.is_negative() || q.ask_price.is_negative() {
                return Err(NormalizeError::Rejected("negative best bid/ask price".into()));
            }
            Ok(())
        }
        Event::BookDelta(d) => levels(&d.bids, "bid").and_then(|_| levels(&d.asks, "ask")),
        Event::BookSnapshot(s) => levels(&s.bids, "bid").and_then(|_| levels(&s.asks, "ask")),
        Event::Candle(c) => {
            [&c.open, &c.high, &c.low, &c.close].into_iter().try_for_each(|p| price(p, "candle"))?;
            qty(&c.volume, "candle")
        }
        Event::Ticker(t) => price(&t.last, "ticker").and_then(|_| qty(&t.volume_24h, "ticker")),
        Event::Status(_) => Ok(()),
    }
}

/// Turns one venue frame into model events. Stateful per connection, for sequence checks.
pub trait Normalizer: Send {
    /// Normalizes `frame`, received at `ts_recv`, appending events to `out`.
    ///
    /// # Errors
    /// When the frame cannot be parsed; nothing is appended then.
    fn normalize(
        &mut self,
        frame: &str,
        ts_recv: Nanos,
        out: &mut Vec<Normalized>,
    ) -> Result<FrameKind, NormalizeError>;

    /// Forgets per-connection sequence state; called on every (re)connect.
    fn reset(&mut self) {}
}

/// Milliseconds since the epoch to ns, saturating instead of wrapping on absurd input.
pub(crate) fn ms_to_ns(ms: u64) -> Nanos {
    ms.saturating_mul(crate::model::NANOS_PER_MS)
}

/// Counts frames that failed to normalize and turns them into `ParseError` status records:
/// at most one per `every` ns of receive time, carrying the count since the last one and
/// the first failure as a sample, so a flood of garbage is visible without bloating the log.
#[derive(Debug)]
pub struct ParseErrors {
    every: Nanos,
    pending: u64,
    sample: Option<String>,
    last_emit: Option<Nanos>,
    pub total: u64,
}

impl ParseErrors {
    pub fn new(every: Nanos) -> Self {
        ParseErrors { every, pending: 0, sample: None, last_emit: None, total: 0 }
    }

    /// Notes a failure; returns a status event when one is due.
    pub fn failed(&mut self, frame: &str, error: &NormalizeError, ts_recv: Nanos) -> Option<Normalized> {
        self.pending += 1;
        self.total += 1;
        if self.sample.is_none() {
            let head: String = frame.chars().take(160).collect();
            self.sample = Some(format!("{error}: {head}"));
        }
        let due = self.last_emit.is_none_or(|last| ts_recv.saturating_sub(last) >= self.every);
        if due { self.take(ts_recv) } else { None }
    }

    /// The status event for failures not yet reported, if any.
    pub fn take(&mut self, ts_recv: Nanos) -> Option<Normalized> {
        if self.pending == 0 {
            return None;
        }
        self.last_emit = Some(ts_recv);
        let count = std::mem::take(&mut self.pending);
        Some(Normalized {
            instrument: None,
            ts_exchange: ts_recv,
            event: Event::Status(crate::model::Status::ParseError {
                count,
                sample: self.sample.take().unwrap_or_default(),
            }),
        })
    }
}

/// Records a `Gap` when `first` skips past the id after the last one seen for `key` (a symbol or pair). Older or
/// overlapping ids are not gaps (the book sync drops them as stale).
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_seq(
    last: &mut HashMap<String, u64>,
    key: &str,
    first: u64,
    new_last: u64,
    ts: Nanos,
    stream: impl FnOnce() -> String,
    instrument: &Instrument,
    out: &mut Vec<Normalized>,
) {
    match last.get_mut(key) {
        Some(prev) => {
            if first > prev.saturating_add(1) {
                out.push(Normalized {
                    instrument: Some(instrument.clone()),
                    ts_exchange: ts,
                    event: Event::Status(Status::Gap { stream: stream(), expected: *prev + 1, got: first }),
                });
            }
            *prev = (*prev).max(new_last);
        }
        None => {
            last.insert(key.to_string(), new_last);
        }
    }
}

/// Fuzzing entry (fuzz/): one frame through a fresh normalizer of `exchange`, with a few
/// listed symbols so symbol lookups succeed for common pairs. Must never panic.
#[doc(hidden)]
pub fn fuzz_normalize(exchange: crate::model::Exchange, frame: &str) -> usize {
    use crate::model::Instrument;
    let Some(venue) = venue(exchange) else { return 0 };
    let pairs = [("BTC", "USDT"), ("ETH", "BTC"), ("LRC", "BTC")];
    let symbols: Vec<SymbolInfo> = pairs
        .iter()
        .map(|(b, q)| {
            let venue_symbol = match exchange {
                crate::model::Exchange::Gate => format!("{b}_{q}"),
                crate::model::Exchange::Lbank => format!("{}_{}", b.to_lowercase(), q.to_lowercase()),
                _ => format!("{b}{q}"),
            };
            SymbolInfo {
                instrument: Instrument::new(exchange, b, q, &venue_symbol),
                status: "TRADING".into(),
                tradable: true,
                price_precision: None,
                qty_precision: None,
            }
        })
        .collect();
    let mut normalizer = venue.normalizer(&symbols);
    let mut out = Vec::new();
    let _ = normalizer.normalize(frame, 1_700_000_000_000_000_000, &mut out);
    out.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BookDelta, Decimal, Level, Side, Trade};

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn check_event_table() {
        let trade = |p: &str, q: &str| Event::Trade(Trade { price: d(p), qty: d(q), side: Side::Buy, trade_id: None });
        let delta = |n: usize, q: &str| {
            Event::BookDelta(BookDelta {
                first_update_id: 1,
                last_update_id: 1,
                bids: vec![Level { price: d("1"), qty: d(q) }; n],
                asks: vec![],
            })
        };
        let cases = [
            ("a normal trade", trade("61837.63", "0.02"), Ok(())),
            ("negative quantity", trade("1", "-0.5"), Err("rejected: trade quantity -0.5 is negative")),
            ("zero price", trade("0", "1"), Err("rejected: trade price 0 is not positive")),
            ("a deletion (qty 0) is normal", delta(3, "0.00000000"), Ok(())),
            ("too many levels", delta(11, "1"), Err("rejected: 11 bid levels, more than the limit of 10")),
        ];
        for (name, event, expected) in cases {
            let got = check_event(&event, 10).map_err(|e| e.to_string());
            assert_eq!(got, expected.map_err(str::to_string), "{name}");
        }
    }

    /// Import-only venues have no adapter, so capture, backfill and symbols refuse them
    /// instead of reaching a network they do not have.
    #[test]
    fn only_import_only_venues_lack_an_adapter() {
        for exchange in Exchange::ALL {
            assert_eq!(venue(exchange).is_some(), exchange.has_capture(), "{exchange}");
        }
        assert!(venue(Exchange::Bittrex).is_none());
    }
}
