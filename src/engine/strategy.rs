//! The `Strategy` trait and the `Context` a strategy trades through.
//!
//! A strategy sees every record, every closed candle of its timeframe, every signal, and
//! what happened to its orders; through the context it reads the account and event time
//! and submits or cancels orders on the simulated broker. The same code runs in backtests,
//! sweeps and paper trading, and cannot tell which drives it. Nothing here does IO or reads
//! a clock: `now()` is the current record's `ts_exchange`.

use super::broker::{Broker, BrokerEvent, Order, OrderId, OrderKind, OrderRequest, OrderSide, Size};
use super::{Bar, Signal, SignalBody, View};
use crate::model::{InstrumentId, Nanos, Record};

/// A trading strategy. Implementing one needs only the library (see examples/).
pub trait Strategy: Send {
    /// The name its signals carry in their `detector` field.
    fn name(&self) -> &'static str;
    /// Canonical parameters.
    fn params(&self) -> String;
    /// The candle timeframe (seconds) whose closes it wants, if any.
    fn timeframe_s(&self) -> Option<u32> {
        None
    }
    /// Every record, after the broker has filled orders on it and detectors have run.
    fn on_record(&mut self, _ctx: &mut Context, _record: &Record) {}
    /// Every closed candle of `timeframe_s`, after `on_record` of the record that closed it.
    fn on_candle(&mut self, _ctx: &mut Context, _bar: &Bar) {}
    /// Every signal the detectors emitted for this record, after the candles.
    fn on_signal(&mut self, _ctx: &mut Context, _signal: &Signal) {}
    /// A fill or rejection of one of the account's orders, before the record that caused it
    /// reaches `on_record`.
    fn on_order_event(&mut self, _ctx: &mut Context, _event: &BrokerEvent) {}
}

/// The strategy's window on the account, the market and event time.
pub struct Context<'a> {
    pub(super) broker: &'a mut Broker,
    pub(super) view: &'a View<'a>,
    pub(super) record: &'a Record,
    pub(super) events: &'a mut Vec<BrokerEvent>,
    pub(super) signals: &'a mut Vec<Signal>,
    pub(super) name: &'static str,
    pub(super) params: &'a str,
}

impl Context<'_> {
    /// Event time: the current record's `ts_exchange`.
    pub fn now(&self) -> Nanos {
        self.record.ts_exchange
    }

    /// The seq of the record being processed.
    pub fn seq(&self) -> u64 {
        self.record.seq
    }

    /// Instruments and books.
    pub fn view(&self) -> &View<'_> {
        self.view
    }

    pub fn submit(&mut self, request: OrderRequest) -> OrderId {
        self.broker.submit(request, self.record.seq, self.record.ts_exchange, self.events)
    }

    pub fn market(&mut self, instrument: InstrumentId, side: OrderSide, size: Size) -> OrderId {
        self.submit(OrderRequest { instrument, side, kind: OrderKind::Market, size })
    }

    pub fn limit(&mut self, instrument: InstrumentId, side: OrderSide, price: f64, size: Size) -> OrderId {
        self.submit(OrderRequest { instrument, side, kind: OrderKind::Limit { price }, size })
    }

    /// Cancels a resting order; false if it already filled, was rejected or cancelled.
    pub fn cancel(&mut self, id: OrderId) -> bool {
        self.broker.cancel(id, self.events)
    }

    pub fn position(&self, instrument: InstrumentId) -> f64 {
        self.broker.position(instrument)
    }

    pub fn cash(&self) -> f64 {
        self.broker.cash()
    }

    /// Cash plus positions marked at their last trade price.
    pub fn equity(&self) -> f64 {
        self.broker.equity()
    }

    pub fn last_price(&self, instrument: InstrumentId) -> Option<f64> {
        self.broker.last_price(instrument)
    }

    /// Resting orders in submission order.
    pub fn open_orders(&self) -> impl Iterator<Item = &Order> {
        self.broker.open_orders()
    }

    /// No position and no resting order in this instrument.
    pub fn is_flat(&self, instrument: InstrumentId) -> bool {
        self.position(instrument) == 0.0 && !self.open_orders().any(|o| o.request.instrument == instrument)
    }

    /// Emits a signal of the strategy's own, with free-form fields in insertion order.
    pub fn signal(&mut self, instrument: InstrumentId, fields: serde_json::Map<String, serde_json::Value>) {
        let exchange = self.view.symbols.get(instrument).map_or(self.record.exchange, |i| i.exchange);
        self.signals.push(Signal {
            seq: self.record.seq,
            ts: self.record.ts_exchange,
            exchange,
            instrument,
            detector: self.name,
            params: self.params.to_string(),
            body: SignalBody::Custom(fields),
        });
    }
}
