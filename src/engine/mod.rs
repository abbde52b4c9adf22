//! The engine: one synchronous state machine that every mode (live, replay, backtest,
//! bench) feeds with records, so detectors and strategies cannot tell which one drives them.
//!
//! `Engine::on_record` keeps per-instrument order books and event-time candles, then runs
//! detectors and strategies. It must not do IO, read the wall clock, await, or let hash
//! order reach its outputs: time comes only from the records, and outputs are ordered by
//! record, then detector, then candle.

pub mod book;
pub mod broker;
pub mod candles;
mod ladder;
pub mod sharded;
pub mod signal;
pub mod strategy;

use crate::model::{Event, InstrumentId, Record, Status, SymbolTable};
pub use book::{Applied, Invalid, OrderBook};
pub use broker::{
    Broker, BrokerConfig, BrokerEvent, Fill, Order, OrderId, OrderKind, OrderRequest, OrderSide, Rejection, Size,
};
pub use candles::{Bar, CandleBuilder};
pub use signal::{Signal, SignalBody};
pub use strategy::{Context, Strategy};

/// What detectors may read besides the record: the instruments and their books.
pub struct View<'a> {
    pub symbols: &'a SymbolTable,
    books: &'a [OrderBook],
}

impl<'a> View<'a> {
    /// A view with no books, for detector unit tests.
    pub fn for_tests(symbols: &'a SymbolTable) -> View<'a> {
        View { symbols, books: &[] }
    }

    /// The instrument's book, if it has had any book data.
    pub fn book(&self, instrument: InstrumentId) -> Option<&OrderBook> {
        self.books.get(instrument.0 as usize)
    }
}

/// An analysis that turns records and closed candles into signals.
pub trait Detector: Send {
    /// The name signals carry in their `detector` field.
    fn name(&self) -> &'static str;
    /// Canonical parameters, carried in the `params` field.
    fn params(&self) -> String;
    /// The candle timeframe (seconds) this detector wants, if any.
    fn timeframe_s(&self) -> Option<u32>;
    /// Called for every record, before any candle it closed.
    fn on_record(&mut self, _view: &View, _record: &Record, _out: &mut Vec<Signal>) {}
    /// Called for every closed candle of `timeframe_s`, with the record that closed it.
    fn on_candle(&mut self, view: &View, bar: &Bar, cause: &Record, out: &mut Vec<Signal>);
}

/// Counters the engine keeps about its input.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct EngineStats {
    pub records: u64,
    pub trades: u64,
    pub candles_closed: u64,
    pub late_trades: u64,
    pub book_updates: u64,
    pub book_invalidations: u64,
}

/// Per-instrument candle state: built from trades; else taken from closed kline records;
/// else, for instruments seen only through tickers (all-market ticker streams), derived from
/// consecutive 24h-volume snapshots (docs/detectors.md, "Ticker-only instruments").
#[derive(Default)]
struct Series {
    has_trades: bool,
    has_candles: bool,
    /// The previous ticker's 24h base volume, for ticker-derived candles.
    last_volume_24h: Option<crate::model::Decimal>,
    builders: Vec<CandleBuilder>,
}

/// The one engine.
pub struct Engine {
    symbols: SymbolTable,
    books: Vec<OrderBook>,
    series: Vec<Series>,
    timeframes: Vec<u32>,
    detectors: Vec<Box<dyn Detector>>,
    bars: Vec<Bar>,
    signals: Vec<Signal>,
    stats: EngineStats,
    trading: Option<Trading>,
}

/// Strategies and the simulated account they share.
struct Trading {
    strategies: Vec<(Box<dyn Strategy>, String)>,
    broker: Broker,
    /// Order events of the current record, in order.
    events: Vec<BrokerEvent>,
    /// Signals strategies emitted for the current record.
    signals: Vec<Signal>,
}

impl Engine {
    /// An engine over instruments `symbols` running `detectors` in the given order.
    pub fn new(symbols: SymbolTable, detectors: Vec<Box<dyn Detector>>) -> Self {
        let mut timeframes: Vec<u32> = detectors.iter().filter_map(|d| d.timeframe_s()).collect();
        timeframes.sort_unstable();
        timeframes.dedup();
        Engine {
            symbols,
            books: Vec::new(),
            series: Vec::new(),
            timeframes,
            detectors,
            bars: Vec::new(),
            signals: Vec::new(),
            stats: EngineStats::default(),
            trading: None,
        }
    }

    /// Adds strategies trading one simulated account. They run after the detectors, in the
    /// given order, and see the detectors' signals.
    pub fn with_strategies(mut self, strategies: Vec<Box<dyn Strategy>>, broker: BrokerConfig) -> Self {
        self.timeframes.extend(strategies.iter().filter_map(|s| s.timeframe_s()));
        self.timeframes.sort_unstable();
        self.timeframes.dedup();
        let strategies = strategies
            .into_iter()
            .map(|s| {
                let params = s.params();
                (s, params)
            })
            .collect();
        self.trading =
            Some(Trading { strategies, broker: Broker::new(broker), events: Vec::new(), signals: Vec::new() });
        self
    }

    /// The simulated account, when strategies run.
    pub fn broker(&self) -> Option<&Broker> {
        self.trading.as_ref().map(|t| &t.broker)
    }

    /// Fills, rejections and cancels caused by the last record, in order.
    pub fn order_events(&self) -> &[BrokerEvent] {
        self.trading.as_ref().map_or(&[], |t| &t.events)
    }

    /// Candles the last record closed, in output order.
    pub fn closed_bars(&self) -> &[Bar] {
        &self.bars
    }

    pub fn strategies(&self) -> impl Iterator<Item = &dyn Strategy> {
        self.trading.iter().flat_map(|t| t.strategies.iter().map(|(s, _)| s.as_ref()))
    }

    pub fn symbols(&self) -> &SymbolTable {
        &self.symbols
    }

    /// Adds instruments discovered after start (live capture of new listings).
    pub fn symbols_mut(&mut self) -> &mut SymbolTable {
        &mut self.symbols
    }

    pub fn stats(&self) -> EngineStats {
        let mut stats = self.stats;
        stats.late_trades = self.series.iter().flat_map(|s| &s.builders).map(|b| b.late_trades).sum();
        stats
    }

    pub fn detectors(&self) -> impl Iterator<Item = &dyn Detector> {
        self.detectors.iter().map(|d| d.as_ref())
    }

    pub fn book(&self, instrument: InstrumentId) -> Option<&OrderBook> {
        self.books.get(instrument.0 as usize)
    }

    /// Processes one record and returns the signals it caused, in output order.
    pub fn on_record(&mut self, record: &Record) -> &[Signal] {
        self.signals.clear();
        self.bars.clear();
        self.stats.records += 1;
        let idx = record.instrument.0 as usize;
        if record.instrument != InstrumentId::NONE {
            if self.books.len() <= idx {
                self.books.resize_with(idx + 1, OrderBook::default);
                self.series.resize_with(idx + 1, Series::default);
            }
            self.update_state(idx, record);
        }
        if let Some(trading) = &mut self.trading {
            trading.events.clear();
            trading.signals.clear();
            if let Event::Trade(trade) = &record.event {
                trading.broker.on_trade(
                    record.instrument,
                    record.seq,
                    record.ts_exchange,
                    trade.price.to_f64(),
                    &mut trading.events,
                );
            }
        }
        let view = View { symbols: &self.symbols, books: &self.books };
        for detector in &mut self.detectors {
            detector.on_record(&view, record, &mut self.signals);
            if let Some(tf) = detector.timeframe_s() {
                for bar in self.bars.iter().filter(|b| b.timeframe_s == tf) {
                    detector.on_candle(&view, bar, record, &mut self.signals);
                }
            }
        }
        if let Some(trading) = &mut self.trading {
            trading.run(&view, record, &self.bars, &self.signals);
            self.signals.append(&mut trading.signals);
        }
        &self.signals
    }

    /// `on_record`, also lending the symbol table the signals refer to.
    pub fn on_record_with_symbols(&mut self, record: &Record) -> (&[Signal], &SymbolTable) {
        self.on_record(record);
        (&self.signals, &self.symbols)
    }

    fn update_state(&mut self, idx: usize, record: &Record) {
        let book = &mut self.books[idx];
        let applied = match &record.event {
            Event::BookSnapshot(snap) => Some(book.apply_snapshot(snap)),
            Event::BookDelta(delta) => Some(book.apply_delta(delta)),
            Event::Status(Status::Gap { .. }) => Some(book.invalidate(Invalid::Reported)),
            Event::Status(Status::Resync { .. }) => Some(book.invalidate(Invalid::AwaitingSnapshot)),
            Event::Trade(trade) => {
                self.stats.trades += 1;
                let series = &mut self.series[idx];
                if !series.has_trades {
                    series.has_trades = true;
                    series.builders =
                        self.timeframes.iter().map(|tf| CandleBuilder::new(record.instrument, *tf)).collect();
                }
                for builder in &mut series.builders {
                    builder.on_trade(record.ts_exchange, trade.price, trade.qty, &mut self.bars);
                }
                None
            }
            Event::Ticker(ticker) if !self.series[idx].has_trades && !self.series[idx].has_candles => {
                let series = &mut self.series[idx];
                if series.builders.is_empty() {
                    series.builders =
                        self.timeframes.iter().map(|tf| CandleBuilder::new(record.instrument, *tf)).collect();
                }
                // Activity between two snapshots is the rise of the rolling 24h volume; a fall
                // (more volume left the window than came in) counts as none.
                let volume = series
                    .last_volume_24h
                    .and_then(|before| ticker.volume_24h.checked_sub(&before))
                    .filter(|d| !d.is_negative())
                    .unwrap_or(crate::model::Decimal::ZERO);
                series.last_volume_24h = Some(ticker.volume_24h);
                for builder in &mut series.builders {
                    builder.on_trade(record.ts_exchange, ticker.last, volume, &mut self.bars);
                }
                None
            }
            Event::Candle(candle) if candle.closed && !self.series[idx].has_trades => {
                self.series[idx].has_candles = true;
                self.series[idx].builders.clear();
                if self.timeframes.contains(&candle.interval_s) {
                    self.bars.push(Bar {
                        instrument: record.instrument,
                        timeframe_s: candle.interval_s,
                        open_time: candle.open_time,
                        open: candle.open,
                        high: candle.high,
                        low: candle.low,
                        close: candle.close,
                        volume: candle.volume,
                        quote_volume: candle.quote_volume,
                        trades: candle.trade_count.unwrap_or(0),
                        flat: false,
                    });
                }
                None
            }
            _ => None,
        };
        match applied {
            Some(Applied::Updated) => self.stats.book_updates += 1,
            Some(Applied::Invalidated(_)) => self.stats.book_invalidations += 1,
            _ => {}
        }
        self.stats.candles_closed += self.bars.len() as u64;
    }
}

impl Trading {
    /// Order events first (fills on this trade), then the record, its candles and its
    /// signals; events caused along the way are delivered before the record is done.
    fn run(&mut self, view: &View, record: &Record, bars: &[Bar], signals: &[Signal]) {
        let Trading { strategies, broker, events, signals: out } = self;
        let mut delivered = 0;
        macro_rules! each {
            ($strategy:ident, $ctx:ident => $body:expr) => {
                for ($strategy, params) in strategies.iter_mut() {
                    let mut $ctx = Context {
                        broker: &mut *broker,
                        view,
                        record,
                        events: &mut *events,
                        signals: &mut *out,
                        name: $strategy.name(),
                        params,
                    };
                    $body;
                }
            };
        }
        macro_rules! deliver {
            () => {
                while delivered < events.len() {
                    let event = events[delivered].clone();
                    delivered += 1;
                    each!(s, ctx => s.on_order_event(&mut ctx, &event));
                }
            };
        }
        deliver!();
        each!(s, ctx => s.on_record(&mut ctx, record));
        deliver!();
        for bar in bars {
            each!(s, ctx => if s.timeframe_s() == Some(bar.timeframe_s) { s.on_candle(&mut ctx, bar) });
            deliver!();
        }
        for signal in signals {
            each!(s, ctx => s.on_signal(&mut ctx, signal));
            deliver!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Decimal, Exchange, Instrument, Ticker};

    fn ticker(s: u64, last: &str, volume_24h: &str) -> Record {
        Record {
            seq: s,
            ts_exchange: s * crate::model::NANOS_PER_SEC,
            ts_recv: s * crate::model::NANOS_PER_SEC,
            exchange: Exchange::Gate,
            instrument: InstrumentId(0),
            event: Event::Ticker(Box::new(Ticker {
                last: last.parse().unwrap(),
                volume_24h: volume_24h.parse().unwrap(),
                quote_volume_24h: None,
                high_24h: None,
                low_24h: None,
                best_bid: None,
                best_ask: None,
            })),
        }
    }

    /// Ticker-only instruments: candles from `last`, volume from rises of the 24h volume.
    #[test]
    fn ticker_only_instruments_get_candles_from_24h_volume_deltas() {
        let mut symbols = SymbolTable::new();
        symbols.intern(&Instrument::new(Exchange::Gate, "BTC", "USDT", "BTC_USDT"));
        let spec: crate::detect::DetectorSpec = "volume:timeframe=1m".parse().unwrap();
        let mut engine = Engine::new(symbols, vec![spec.build()]);
        let mut bars = Vec::new();
        for r in [
            ticker(10, "1.0", "100"),
            ticker(30, "1.2", "103"),
            ticker(70, "1.1", "103"),
            ticker(130, "1.1", "101"),
            ticker(250, "1.3", "110"),
        ] {
            engine.on_record(&r);
            bars.extend(engine.closed_bars().iter().map(|b| (b.open_time / 1_000_000_000, b.open, b.close, b.volume)));
        }
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let want = vec![
            (0, d("1.0"), d("1.2"), d("3")),
            (60, d("1.1"), d("1.1"), d("0")),
            (120, d("1.1"), d("1.1"), d("0")),
            (180, d("1.1"), d("1.1"), d("0")),
        ];
        assert_eq!(bars, want);
    }
}
