//! The simulated spot broker: one cash account, long-only positions per instrument, market
//! and limit orders filled against the recorded trades.
//!
//! Rules (docs/backtest.md): an order submitted while the engine processes record `i` can
//! only fill on a trade of its instrument with seq > i and, with latency, ts_exchange ≥
//! submit ts + latency. Market orders fill at that trade's price moved by the slippage;
//! limit buys fill at the limit when a trade prints at or below it, limit sells at or above.
//! Fees are charged on notional. No shorting and no negative cash: such orders are
//! rejected, never partially forced. Liquidity is unlimited at the trade price.
//!
//! Accounting is f64 (derived values, never stored in a recording). It must not do IO or
//! read a clock: time is the records' `ts_exchange`.

use std::collections::BTreeMap;

use crate::model::{InstrumentId, Nanos};

/// Broker settings: the `backtest` flags.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BrokerConfig {
    /// Starting cash, in the quote currency.
    pub cash: f64,
    /// Fee on notional, basis points.
    pub fee_bps: f64,
    /// Market orders: buys pay this much more, sells get this much less, basis points.
    pub slippage_bps: f64,
    /// An order is active only for trades with ts_exchange ≥ submit ts + latency.
    pub latency_ns: u64,
    /// Round quantities down to a multiple of this lot size, if set.
    pub lot: Option<f64>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig { cash: 10_000.0, fee_bps: 10.0, slippage_bps: 0.0, latency_ns: 0, lot: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct OrderId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderSide {
    Buy,
    Sell,
}

impl OrderSide {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderSide::Buy => "buy",
            OrderSide::Sell => "sell",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderKind {
    Market,
    Limit { price: f64 },
}

/// How much to trade, decided at fill time so it uses the fill price.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// Buys: this fraction of current equity, capped by cash so notional plus fee fits:
    /// `qty = min(equity·f, cash) / (price·(1 + fee))`. Sells: this fraction of the position.
    Fraction(f64),
    /// Exactly this many units of the base asset.
    Qty(f64),
    /// Sells: the whole position.
    All,
}

/// What a strategy asks for.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct OrderRequest {
    pub instrument: InstrumentId,
    pub side: OrderSide,
    pub kind: OrderKind,
    pub size: Size,
}

/// A resting order.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Order {
    pub id: OrderId,
    pub request: OrderRequest,
    pub submit_seq: u64,
    pub submit_ts: Nanos,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Fill {
    pub order: OrderId,
    pub instrument: InstrumentId,
    pub side: OrderSide,
    /// The trade record it filled on.
    pub seq: u64,
    pub ts: Nanos,
    pub price: f64,
    pub qty: f64,
    pub notional: f64,
    pub fee: f64,
    pub cash_after: f64,
    pub position_after: f64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Rejection {
    pub order: OrderId,
    pub request: OrderRequest,
    pub seq: u64,
    pub ts: Nanos,
    pub reason: &'static str,
}

/// What happened to orders while one record was processed, in order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum BrokerEvent {
    Fill(Fill),
    Reject(Rejection),
    Cancel(OrderId),
}

/// The account and its order book of resting orders.
#[derive(Debug, Clone)]
pub struct Broker {
    config: BrokerConfig,
    cash: f64,
    positions: Vec<f64>,
    last_price: Vec<Option<f64>>,
    /// Resting orders by id: ids increase, so iteration is submission order.
    orders: BTreeMap<OrderId, Order>,
    next_id: u64,
    fees_paid: f64,
    fills: u64,
    rejections: u64,
}

impl Broker {
    pub fn new(config: BrokerConfig) -> Broker {
        Broker {
            config,
            cash: config.cash,
            positions: Vec::new(),
            last_price: Vec::new(),
            orders: BTreeMap::new(),
            next_id: 1,
            fees_paid: 0.0,
            fills: 0,
            rejections: 0,
        }
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    pub fn cash(&self) -> f64 {
        self.cash
    }

    pub fn position(&self, instrument: InstrumentId) -> f64 {
        self.positions.get(instrument.0 as usize).copied().unwrap_or(0.0)
    }

    /// The last trade price seen for the instrument.
    pub fn last_price(&self, instrument: InstrumentId) -> Option<f64> {
        self.last_price.get(instrument.0 as usize).copied().flatten()
    }

    /// Cash plus every position marked at its last trade price.
    pub fn equity(&self) -> f64 {
        let marked: f64 = self
            .positions
            .iter()
            .zip(&self.last_price)
            .filter(|(q, _)| **q != 0.0)
            .map(|(q, p)| q * p.unwrap_or(0.0))
            .sum();
        self.cash + marked
    }

    pub fn fees_paid(&self) -> f64 {
        self.fees_paid
    }

    pub fn fill_count(&self) -> u64 {
        self.fills
    }

    pub fn rejection_count(&self) -> u64 {
        self.rejections
    }

    /// Resting orders in submission order.
    pub fn open_orders(&self) -> impl Iterator<Item = &Order> {
        self.orders.values()
    }

    /// Instruments with a non-zero position, by id.
    pub fn positions(&self) -> impl Iterator<Item = (InstrumentId, f64)> + '_ {
        self.positions.iter().enumerate().filter(|(_, q)| **q != 0.0).map(|(i, q)| (InstrumentId(i as u32), *q))
    }

    /// Accepts an order submitted while processing record `seq` at event time `ts`.
    /// Requests that can never fill (non-positive or non-finite sizes or limits) are
    /// rejected at once.
    pub fn submit(&mut self, request: OrderRequest, seq: u64, ts: Nanos, events: &mut Vec<BrokerEvent>) -> OrderId {
        let id = OrderId(self.next_id);
        self.next_id += 1;
        let bad_size = match request.size {
            Size::Fraction(f) => !(f.is_finite() && f > 0.0 && f <= 1.0),
            Size::Qty(q) => !(q.is_finite() && q > 0.0),
            Size::All => request.side == OrderSide::Buy,
        };
        let bad_limit = matches!(request.kind, OrderKind::Limit { price } if !(price.is_finite() && price > 0.0));
        if bad_size || bad_limit {
            let reason = if bad_limit { "invalid limit price" } else { "invalid size" };
            self.reject(Order { id, request, submit_seq: seq, submit_ts: ts }, seq, ts, reason, events);
        } else {
            self.orders.insert(id, Order { id, request, submit_seq: seq, submit_ts: ts });
        }
        id
    }

    /// Cancels a resting order; false if it is no longer open.
    pub fn cancel(&mut self, id: OrderId, events: &mut Vec<BrokerEvent>) -> bool {
        let found = self.orders.remove(&id).is_some();
        if found {
            events.push(BrokerEvent::Cancel(id));
        }
        found
    }

    /// A trade printed: mark the instrument, then fill every order it triggers, in
    /// submission order.
    pub fn on_trade(
        &mut self,
        instrument: InstrumentId,
        seq: u64,
        ts: Nanos,
        price: f64,
        events: &mut Vec<BrokerEvent>,
    ) {
        let idx = instrument.0 as usize;
        if self.last_price.len() <= idx {
            self.last_price.resize(idx + 1, None);
            self.positions.resize(idx + 1, 0.0);
        }
        self.last_price[idx] = Some(price);
        if self.orders.is_empty() {
            return;
        }
        let latency = self.config.latency_ns;
        let triggered: Vec<(OrderId, f64)> = self
            .orders
            .values()
            .filter(|o| o.request.instrument == instrument && seq > o.submit_seq)
            .filter(|o| ts >= o.submit_ts.saturating_add(latency))
            .filter_map(|o| {
                let slip = self.config.slippage_bps / 10_000.0;
                match (o.request.kind, o.request.side) {
                    (OrderKind::Market, OrderSide::Buy) => Some((o.id, price * (1.0 + slip))),
                    (OrderKind::Market, OrderSide::Sell) => Some((o.id, price * (1.0 - slip))),
                    (OrderKind::Limit { price: limit }, OrderSide::Buy) => (price <= limit).then_some((o.id, limit)),
                    (OrderKind::Limit { price: limit }, OrderSide::Sell) => (price >= limit).then_some((o.id, limit)),
                }
            })
            .collect();
        for (id, fill_price) in triggered {
            let order = self.orders.remove(&id).expect("triggered orders are open");
            self.execute(order, seq, ts, fill_price, events);
        }
    }

    fn execute(&mut self, order: Order, seq: u64, ts: Nanos, price: f64, events: &mut Vec<BrokerEvent>) {
        let fee_rate = self.config.fee_bps / 10_000.0;
        let idx = order.request.instrument.0 as usize;
        let held = self.positions[idx];
        let qty = match (order.request.side, order.request.size) {
            (OrderSide::Buy, Size::Fraction(f)) => (self.equity() * f).min(self.cash) / (price * (1.0 + fee_rate)),
            (OrderSide::Buy, Size::Qty(q)) => q,
            (OrderSide::Sell, Size::Fraction(f)) => held * f,
            (OrderSide::Sell, Size::Qty(q)) => q,
            (_, Size::All) => held,
        };
        let qty = self.round_lot(qty);
        if qty.is_nan() || qty <= 0.0 {
            let reason = match order.request.side {
                OrderSide::Buy => "no cash",
                OrderSide::Sell => "no position",
            };
            return self.reject(order, seq, ts, reason, events);
        }
        let (qty, notional, fee) = match order.request.side {
            OrderSide::Buy => {
                let Some(qty) = self.affordable(qty, price, fee_rate) else {
                    return self.reject(order, seq, ts, "insufficient cash", events);
                };
                let notional = qty * price;
                let fee = notional * fee_rate;
                self.cash = (self.cash - notional - fee).max(0.0);
                self.positions[idx] += qty;
                (qty, notional, fee)
            }
            OrderSide::Sell => {
                if qty > held {
                    return self.reject(order, seq, ts, "would short", events);
                }
                let notional = qty * price;
                let fee = notional * fee_rate;
                self.cash += notional - fee;
                // Selling the whole holding must leave exactly zero, not a rounding residue.
                self.positions[idx] = if qty == held { 0.0 } else { held - qty };
                (qty, notional, fee)
            }
        };
        self.fees_paid += fee;
        self.fills += 1;
        events.push(BrokerEvent::Fill(Fill {
            order: order.id,
            instrument: order.request.instrument,
            side: order.request.side,
            seq,
            ts,
            price,
            qty,
            notional,
            fee,
            cash_after: self.cash,
            position_after: self.positions[idx],
        }));
    }

    /// The largest quantity ≤ `qty` whose notional plus fee fits in cash, if it is the
    /// requested one up to float rounding (a sizing that lands one ulp over cash is nudged
    /// down; a real shortfall is a rejection).
    fn affordable(&self, qty: f64, price: f64, fee_rate: f64) -> Option<f64> {
        let cost = |q: f64| q * price + q * price * fee_rate;
        let mut q = qty;
        for _ in 0..64 {
            if cost(q) <= self.cash {
                return Some(q);
            }
            if (cost(qty) - self.cash) > self.cash.abs() * 1e-12 + f64::MIN_POSITIVE {
                return None;
            }
            q = next_down(q);
        }
        None
    }

    fn round_lot(&self, qty: f64) -> f64 {
        match self.config.lot {
            Some(lot) if lot > 0.0 => (qty / lot).floor() * lot,
            _ => qty,
        }
    }

    fn reject(&mut self, order: Order, seq: u64, ts: Nanos, reason: &'static str, events: &mut Vec<BrokerEvent>) {
        self.rejections += 1;
        events.push(BrokerEvent::Reject(Rejection { order: order.id, request: order.request, seq, ts, reason }));
    }
}

/// The next representable f64 below a positive finite `x`.
fn next_down(x: f64) -> f64 {
    if x <= 0.0 { x } else { f64::from_bits(x.to_bits() - 1) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const I: InstrumentId = InstrumentId(0);

    fn market(side: OrderSide, size: Size) -> OrderRequest {
        OrderRequest { instrument: I, side, kind: OrderKind::Market, size }
    }

    fn fills(events: &[BrokerEvent]) -> Vec<Fill> {
        events
            .iter()
            .filter_map(|e| match e {
                BrokerEvent::Fill(f) => Some(*f),
                _ => None,
            })
            .collect()
    }

    fn rejects(events: &[BrokerEvent]) -> Vec<&'static str> {
        events
            .iter()
            .filter_map(|e| match e {
                BrokerEvent::Reject(r) => Some(r.reason),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn market_order_fills_on_the_next_trade_with_slippage_and_fee() {
        let mut b =
            Broker::new(BrokerConfig { cash: 1000.0, fee_bps: 10.0, slippage_bps: 100.0, ..Default::default() });
        let mut ev = Vec::new();
        b.on_trade(I, 1, 10, 100.0, &mut ev);
        b.submit(market(OrderSide::Buy, Size::Qty(2.0)), 1, 10, &mut ev);
        // Same seq never fills its own order.
        b.on_trade(I, 1, 10, 100.0, &mut ev);
        assert!(fills(&ev).is_empty());
        b.on_trade(I, 2, 20, 200.0, &mut ev);
        let f = fills(&ev);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].seq, f[0].price, f[0].qty), (2, 202.0, 2.0));
        assert!((f[0].fee - 0.404).abs() < 1e-12);
        assert!((b.cash() - (1000.0 - 404.0 - 0.404)).abs() < 1e-9);
        ev.clear();
        b.submit(market(OrderSide::Sell, Size::All), 2, 20, &mut ev);
        b.on_trade(I, 3, 30, 300.0, &mut ev);
        let f = fills(&ev);
        assert_eq!((f[0].price, f[0].qty, f[0].position_after), (297.0, 2.0, 0.0));
        assert!((b.cash() - (1000.0 - 404.404 + 594.0 - 0.594)).abs() < 1e-9);
    }

    #[test]
    fn limits_fill_at_the_limit_when_a_trade_crosses_it() {
        let cases: [(OrderSide, f64, &[f64], Option<usize>); 4] = [
            (OrderSide::Buy, 99.0, &[100.0, 99.5, 99.0], Some(2)),
            (OrderSide::Buy, 99.0, &[100.0, 98.0], Some(1)),
            (OrderSide::Sell, 101.0, &[100.0, 101.5], Some(1)),
            (OrderSide::Sell, 101.0, &[100.0, 100.9], None),
        ];
        for (side, limit, prices, filled_at) in cases {
            let mut b = Broker::new(BrokerConfig { cash: 1000.0, fee_bps: 0.0, ..Default::default() });
            let mut ev = Vec::new();
            if side == OrderSide::Sell {
                b.on_trade(I, 0, 0, 100.0, &mut ev);
                b.submit(market(OrderSide::Buy, Size::Qty(1.0)), 0, 0, &mut ev);
                b.on_trade(I, 1, 1, 100.0, &mut ev);
                ev.clear();
            }
            b.submit(
                OrderRequest { instrument: I, side, kind: OrderKind::Limit { price: limit }, size: Size::Qty(1.0) },
                1,
                1,
                &mut ev,
            );
            for (k, p) in prices.iter().enumerate() {
                b.on_trade(I, 2 + k as u64, 2, *p, &mut ev);
            }
            let f = fills(&ev);
            match filled_at {
                None => assert!(f.is_empty(), "{side:?} {limit}"),
                Some(k) => {
                    assert_eq!(f.len(), 1, "{side:?} {limit}");
                    assert_eq!((f[0].seq, f[0].price), (2 + k as u64, limit));
                }
            }
        }
    }

    #[test]
    fn latency_delays_activation() {
        let mut b = Broker::new(BrokerConfig { latency_ns: 1_000, ..Default::default() });
        let mut ev = Vec::new();
        b.submit(market(OrderSide::Buy, Size::Qty(1.0)), 1, 5_000, &mut ev);
        b.on_trade(I, 2, 5_999, 10.0, &mut ev);
        assert!(fills(&ev).is_empty());
        b.on_trade(I, 3, 6_000, 11.0, &mut ev);
        assert_eq!(fills(&ev)[0].price, 11.0);
    }

    #[test]
    fn no_shorting_and_no_negative_cash() {
        let cases = [
            (market(OrderSide::Sell, Size::Qty(1.0)), "would short"),
            (market(OrderSide::Sell, Size::All), "no position"),
            (market(OrderSide::Buy, Size::Qty(1000.0)), "insufficient cash"),
            (market(OrderSide::Buy, Size::All), "invalid size"),
            (market(OrderSide::Buy, Size::Fraction(1.5)), "invalid size"),
            (
                OrderRequest {
                    instrument: I,
                    side: OrderSide::Buy,
                    kind: OrderKind::Limit { price: -1.0 },
                    size: Size::Qty(1.0),
                },
                "invalid limit price",
            ),
        ];
        for (request, reason) in cases {
            let mut b = Broker::new(BrokerConfig { cash: 100.0, ..Default::default() });
            let mut ev = Vec::new();
            b.submit(request, 1, 1, &mut ev);
            b.on_trade(I, 2, 2, 10.0, &mut ev);
            assert_eq!(rejects(&ev), vec![reason], "{request:?}");
            assert_eq!(b.cash(), 100.0);
            assert_eq!(b.open_orders().count(), 0);
        }
    }

    #[test]
    fn fraction_sizing_spends_all_cash_including_the_fee() {
        let mut b = Broker::new(BrokerConfig { cash: 10_000.0, fee_bps: 10.0, ..Default::default() });
        let mut ev = Vec::new();
        b.submit(market(OrderSide::Buy, Size::Fraction(1.0)), 1, 1, &mut ev);
        b.on_trade(I, 2, 2, 61_234.56, &mut ev);
        let f = fills(&ev)[0];
        assert!(b.cash() >= 0.0 && b.cash() < 1e-6, "cash {}", b.cash());
        assert!((f.qty - 10_000.0 / (61_234.56 * 1.001)).abs() < 1e-12);
    }

    #[test]
    fn lot_rounding_floors_quantities() {
        let mut b = Broker::new(BrokerConfig { cash: 1000.0, fee_bps: 0.0, lot: Some(0.01), ..Default::default() });
        let mut ev = Vec::new();
        b.submit(market(OrderSide::Buy, Size::Fraction(1.0)), 1, 1, &mut ev);
        b.on_trade(I, 2, 2, 300.0, &mut ev);
        assert!((fills(&ev)[0].qty - 3.33).abs() < 1e-9);
    }

    #[derive(Debug, Clone)]
    enum Step {
        Trade(f64),
        Buy(f64),
        BuyQty(f64),
        Sell(f64),
        SellAll,
        Limit(bool, f64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (1.0f64..1000.0).prop_map(Step::Trade),
            (0.01f64..=1.0).prop_map(Step::Buy),
            (0.001f64..50.0).prop_map(Step::BuyQty),
            (0.01f64..=1.0).prop_map(Step::Sell),
            Just(Step::SellAll),
            (any::<bool>(), 1.0f64..1000.0).prop_map(|(b, p)| Step::Limit(b, p)),
        ]
    }

    proptest! {
        /// Against a model of the account: equity = cash + position·last price, cash never
        /// negative, total fees = Σ notional·fee over fills.
        #[test]
        fn accounting_invariants(steps in proptest::collection::vec(step(), 1..200), fee in 0.0f64..100.0, slip in 0.0f64..50.0) {
            let mut b = Broker::new(BrokerConfig { cash: 10_000.0, fee_bps: fee, slippage_bps: slip, ..Default::default() });
            let mut ev = Vec::new();
            let (mut seq, mut last) = (0u64, None);
            let (mut cash, mut pos, mut fees) = (10_000.0f64, 0.0f64, 0.0f64);
            for s in steps {
                seq += 1;
                ev.clear();
                match s {
                    Step::Trade(p) => { b.on_trade(I, seq, seq, p, &mut ev); last = Some(p); }
                    Step::Buy(f) => { b.submit(market(OrderSide::Buy, Size::Fraction(f)), seq, seq, &mut ev); }
                    Step::BuyQty(q) => { b.submit(market(OrderSide::Buy, Size::Qty(q)), seq, seq, &mut ev); }
                    Step::Sell(f) => { b.submit(market(OrderSide::Sell, Size::Fraction(f)), seq, seq, &mut ev); }
                    Step::SellAll => { b.submit(market(OrderSide::Sell, Size::All), seq, seq, &mut ev); }
                    Step::Limit(buy, p) => {
                        let side = if buy { OrderSide::Buy } else { OrderSide::Sell };
                        b.submit(OrderRequest { instrument: I, side, kind: OrderKind::Limit { price: p }, size: Size::Qty(1.0) }, seq, seq, &mut ev);
                    }
                }
                for f in fills(&ev) {
                    prop_assert!((f.fee - f.notional * fee / 10_000.0).abs() <= 1e-9 * f.notional.max(1.0));
                    fees += f.fee;
                    match f.side {
                        OrderSide::Buy => { cash -= f.notional + f.fee; pos += f.qty; }
                        OrderSide::Sell => { cash += f.notional - f.fee; pos -= f.qty; }
                    }
                    prop_assert!(b.cash() >= 0.0, "cash went negative: {}", b.cash());
                    prop_assert!(b.position(I) >= 0.0);
                }
                prop_assert!((b.cash() - cash.max(0.0)).abs() <= 1e-6 * (1.0 + cash.abs()));
                prop_assert!((b.position(I) - pos).abs() <= 1e-9 * (1.0 + pos.abs()));
                prop_assert!((b.fees_paid() - fees).abs() <= 1e-9 * (1.0 + fees));
                let marked = b.position(I) * last.unwrap_or(0.0);
                prop_assert!((b.equity() - (b.cash() + marked)).abs() <= 1e-9 * (1.0 + b.equity().abs()));
            }
        }
    }
}
