//! `volume-breakout`: on a volume anomaly whose candle closed above its open, buy at market
//! if flat; exit at market after `hold` candles, or on the first trade at or beyond the stop
//! (`entry·(1 − stop_pct/100)`) or take (`entry·(1 + take_pct/100)`) price. A stop or take of
//! 0 is off. The entry price is the fill price; held candles are those ending after the
//! entry fill (the candle the fill falls in is the first).
//!
//! It trades on the signals of its own `volume` detector, picked out by detector name and
//! canonical params. Per-instrument state lives in a Vec indexed by instrument id. No IO,
//! no clock.

use crate::detect::{Args, DetectorSpec, slot, volume};
use crate::engine::{Bar, BrokerEvent, Context, OrderId, OrderSide, Signal, SignalBody, Size, Strategy};
use crate::model::{Event, Nanos, Record};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub volume: volume::Params,
    /// Candles to hold a position before exiting.
    pub hold: usize,
    pub size: f64,
    pub stop_pct: f64,
    pub take_pct: f64,
}

impl Params {
    pub(crate) fn from_args(args: &mut Args) -> Result<Params, String> {
        let p = Params {
            volume: volume::Params::from_args(args)?,
            hold: args.usize("hold", 5)?,
            size: super::size(args)?,
            stop_pct: args.f64("stop_pct", 1.0)?,
            take_pct: args.f64("take_pct", 2.0)?,
        };
        if p.hold == 0 {
            return Err("hold must be at least 1 (candles)".into());
        }
        if p.stop_pct < 0.0 || p.stop_pct >= 100.0 {
            return Err(format!("stop_pct must be >= 0 and < 100, got {}", p.stop_pct));
        }
        if p.take_pct < 0.0 {
            return Err(format!("take_pct must be >= 0, got {}", p.take_pct));
        }
        Ok(p)
    }
}

#[derive(Debug, Default)]
struct State {
    /// The last closed candle of the strategy's timeframe: (bucket start, closed above open).
    last_bar: Option<(Nanos, bool)>,
    entry: Option<f64>,
    entry_ts: Nanos,
    held: usize,
    exit: Option<OrderId>,
}

pub struct VolumeBreakout {
    params: Params,
    volume_params: String,
    states: Vec<State>,
}

impl VolumeBreakout {
    pub fn new(params: Params) -> Self {
        VolumeBreakout {
            params,
            volume_params: DetectorSpec::Volume(params.volume).build().params(),
            states: Vec::new(),
        }
    }

    fn exit(&mut self, ctx: &mut Context, instrument: crate::model::InstrumentId) {
        let state = slot(&mut self.states, instrument);
        if state.exit.is_none() && ctx.position(instrument) > 0.0 {
            state.exit = Some(ctx.market(instrument, OrderSide::Sell, Size::All));
        }
    }
}

impl Strategy for VolumeBreakout {
    fn name(&self) -> &'static str {
        "volume-breakout"
    }

    fn params(&self) -> String {
        let p = &self.params;
        format!(
            "{},hold={},size={},stop_pct={},take_pct={}",
            self.volume_params, p.hold, p.size, p.stop_pct, p.take_pct
        )
    }

    fn timeframe_s(&self) -> Option<u32> {
        Some(self.params.volume.timeframe_s)
    }

    fn on_order_event(&mut self, ctx: &mut Context, event: &BrokerEvent) {
        match event {
            BrokerEvent::Fill(fill) => {
                let state = slot(&mut self.states, fill.instrument);
                match fill.side {
                    OrderSide::Buy => {
                        state.entry = Some(fill.price);
                        state.entry_ts = fill.ts;
                        state.held = 0;
                    }
                    OrderSide::Sell if ctx.position(fill.instrument) == 0.0 => {
                        state.entry = None;
                        state.exit = None;
                    }
                    OrderSide::Sell => {}
                }
            }
            BrokerEvent::Reject(r) => {
                let state = slot(&mut self.states, r.request.instrument);
                if state.exit == Some(r.order) {
                    state.exit = None;
                }
            }
            BrokerEvent::Cancel(_) => {}
        }
    }

    fn on_record(&mut self, ctx: &mut Context, record: &Record) {
        let Event::Trade(trade) = &record.event else { return };
        let Some(entry) = self.states.get(record.instrument.0 as usize).and_then(|s| s.entry) else { return };
        let price = trade.price.to_f64();
        let p = &self.params;
        let stopped = p.stop_pct > 0.0 && price <= entry * (1.0 - p.stop_pct / 100.0);
        let taken = p.take_pct > 0.0 && price >= entry * (1.0 + p.take_pct / 100.0);
        if stopped || taken {
            self.exit(ctx, record.instrument);
        }
    }

    fn on_candle(&mut self, ctx: &mut Context, bar: &Bar) {
        let state = slot(&mut self.states, bar.instrument);
        state.last_bar = Some((bar.open_time, bar.close > bar.open));
        // Candles closed by the entry's own trade cover time before it and are not held.
        let bar_end = bar.open_time + bar.timeframe_s as u64 * crate::model::NANOS_PER_SEC;
        if state.entry.is_some() && bar_end > state.entry_ts {
            state.held += 1;
            if state.held >= self.params.hold {
                self.exit(ctx, bar.instrument);
            }
        }
    }

    fn on_signal(&mut self, ctx: &mut Context, signal: &Signal) {
        if signal.detector != "volume" || signal.params != self.volume_params {
            return;
        }
        let SignalBody::Volume { bucket_start, .. } = &signal.body else { return };
        let up = slot(&mut self.states, signal.instrument).last_bar == Some((*bucket_start, true));
        if up && ctx.is_flat(signal.instrument) {
            ctx.market(signal.instrument, OrderSide::Buy, Size::Fraction(self.params.size));
        }
    }
}
