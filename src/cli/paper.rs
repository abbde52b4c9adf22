//! Paper trading for `live --strategy`: the backtest's strategy and simulated broker on live
//! records, with fills, closed trades and PnL printed as they happen (stderr, so stdout
//! stays the signal stream) and a summary at the end.

use serde::Serialize;

use crate::backtest::RoundTrips;
use crate::engine::{BrokerEvent, Engine};
use crate::model::time::format_utc;

/// What the paper account did over the session.
#[derive(Debug, Clone, Serialize)]
pub struct PaperSummary {
    pub strategy: String,
    pub initial_cash: f64,
    pub cash: f64,
    pub equity: f64,
    pub pnl: f64,
    pub fills: u64,
    pub rejections: u64,
    pub closed_trades: u64,
    pub realized_pnl: f64,
    pub fees_paid: f64,
}

pub struct Paper {
    trips: RoundTrips,
    closed: u64,
    realized: f64,
}

impl Paper {
    pub fn new() -> Paper {
        Paper { trips: RoundTrips::default(), closed: 0, realized: 0.0 }
    }

    /// Reports the order events of the record the engine just processed.
    pub fn after_record(&mut self, engine: &Engine) {
        let Some(broker) = engine.broker() else { return };
        for event in engine.order_events() {
            let symbol = |i: crate::model::InstrumentId| engine.symbols().get(i).map_or("?", |x| x.symbol.as_str());
            match event {
                BrokerEvent::Fill(f) => {
                    eprintln!(
                        "paper {} fill {} {} {} @ {} (fee {:.6}) cash {:.2} equity {:.2}",
                        format_utc(f.ts),
                        f.side.as_str(),
                        f.qty,
                        symbol(f.instrument),
                        f.price,
                        f.fee,
                        broker.cash(),
                        broker.equity()
                    );
                    if let Some(trip) = self.trips.on_fill(f, engine.symbols()) {
                        self.closed += 1;
                        self.realized += trip.pnl;
                        eprintln!(
                            "paper {} closed {} pnl {:+.4} ({:+.3}%), realized {:+.4}, equity {:.2} ({:+.4} since start)",
                            format_utc(f.ts),
                            trip.symbol,
                            trip.pnl,
                            trip.return_pct,
                            self.realized,
                            broker.equity(),
                            broker.equity() - broker.config().cash
                        );
                    }
                }
                BrokerEvent::Reject(r) => {
                    eprintln!(
                        "paper {} rejected {} {}: {}",
                        format_utc(r.ts),
                        r.request.side.as_str(),
                        symbol(r.request.instrument),
                        r.reason
                    );
                }
                BrokerEvent::Cancel(_) => {}
            }
        }
    }

    pub fn summary(&self, engine: &Engine) -> Option<PaperSummary> {
        let broker = engine.broker()?;
        let strategy =
            engine.strategies().map(|s| format!("{} {}", s.name(), s.params())).collect::<Vec<_>>().join("; ");
        Some(PaperSummary {
            strategy,
            initial_cash: broker.config().cash,
            cash: broker.cash(),
            equity: broker.equity(),
            pnl: broker.equity() - broker.config().cash,
            fills: broker.fill_count(),
            rejections: broker.rejection_count(),
            closed_trades: self.closed,
            realized_pnl: self.realized,
            fees_paid: broker.fees_paid(),
        })
    }
}
