//! Backtesting: a strategy driven over recorded records through the one `Engine` with the
//! simulated broker, then round trips, the equity curve, metrics, CSV files and the report.
//!
//! `run` takes records from anywhere (a merged recording stream, or a shared in-memory
//! slice for sweeps), so backtest, sweep and paper trading share the engine code path. It
//! does no IO itself; `write_csv` and `report::write` write files when asked. Equity is
//! sampled after each record that closes a candle of the strategy's timeframe, plus the
//! first and the last record.

pub mod metrics;
pub mod report;
pub mod sweep;

use std::borrow::Borrow;

use serde::Serialize;

use crate::detect::DetectorSpec;
use crate::engine::{
    BrokerConfig, BrokerEvent, Detector, Engine, EngineStats, Fill, OrderSide, Rejection, Signal, SignalBody, Strategy,
};
use crate::model::{InstrumentId, Nanos, Record, SymbolTable};
use crate::strategy::StrategySpec;
pub use metrics::{EquityPoint, Metrics, RoundTrip};

/// What to run.
#[derive(Debug, Clone)]
pub struct BacktestConfig {
    pub strategy: StrategySpec,
    pub broker: BrokerConfig,
    /// Detectors to run besides the strategy's own (their signals reach the strategy too).
    pub detectors: Vec<DetectorSpec>,
    /// Keep candles and signals for charts.
    pub keep_chart_data: bool,
}

/// A closed candle of the strategy's timeframe, kept for charts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ChartBar {
    pub instrument: InstrumentId,
    pub open_time: Nanos,
    pub close: f64,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub strategy: &'static str,
    pub params: String,
    pub broker: BrokerConfig,
    pub metrics: Metrics,
    pub records: u64,
    /// The candle timeframe equity is sampled on, seconds.
    pub timeframe_s: u32,
    pub engine: EngineStats,
    #[serde(skip)]
    pub fills: Vec<Fill>,
    #[serde(skip)]
    pub rejections: Vec<Rejection>,
    #[serde(skip)]
    pub trips: Vec<RoundTrip>,
    #[serde(skip)]
    pub curve: Vec<EquityPoint>,
    #[serde(skip)]
    pub bars: Vec<ChartBar>,
    #[serde(skip)]
    pub signals: Vec<Signal>,
    #[serde(skip)]
    pub symbols: SymbolTable,
}

/// An open position being built into a round trip.
#[derive(Debug, Default, Clone)]
struct Open {
    entry_seq: u64,
    entry_ts: Nanos,
    bought: f64,
    cost: f64,
    sold: f64,
    proceeds: f64,
    buy_notional: f64,
    sell_notional: f64,
    /// The price of each side's only fill, so a single fill prints exactly.
    buy_price: Option<f64>,
    buys: u32,
    sell_price: Option<f64>,
    sells: u32,
    fees: f64,
}

/// Runs a built-in strategy `config` over `records` (in order) with instruments `symbols`.
pub fn run<I>(records: I, symbols: &SymbolTable, config: &BacktestConfig) -> Outcome
where
    I: IntoIterator,
    I::Item: Borrow<Record>,
{
    let mut detectors: Vec<DetectorSpec> = config.strategy.detectors();
    for extra in &config.detectors {
        if !detectors.contains(extra) {
            detectors.push(extra.clone());
        }
    }
    let detectors = detectors.iter().map(|d| d.build()).collect();
    run_strategy(records, symbols, config.strategy.build(), detectors, config.broker, config.keep_chart_data)
}

/// Runs any strategy (a user's own, say) with `detectors` over `records`. Equity is
/// sampled on the strategy's candle timeframe (1m if it has none).
pub fn run_strategy<I>(
    records: I,
    symbols: &SymbolTable,
    strategy: Box<dyn Strategy>,
    detectors: Vec<Box<dyn Detector>>,
    broker: BrokerConfig,
    keep_chart_data: bool,
) -> Outcome
where
    I: IntoIterator,
    I::Item: Borrow<Record>,
{
    let tf = strategy.timeframe_s().unwrap_or(60);
    let (name, params) = (strategy.name(), strategy.params());
    let mut engine = Engine::new(symbols.clone(), detectors).with_strategies(vec![strategy], broker);
    let mut out = Outcome {
        strategy: name,
        params,
        broker,
        metrics: metrics::compute(broker.cash, &[], &[], tf, 0.0, 0, 0),
        records: 0,
        timeframe_s: tf,
        engine: EngineStats::default(),
        fills: Vec::new(),
        rejections: Vec::new(),
        trips: Vec::new(),
        curve: Vec::new(),
        bars: Vec::new(),
        signals: Vec::new(),
        symbols: SymbolTable::new(),
    };
    let mut trips = RoundTrips::default();
    let mut last_bucket_end: Nanos = 0;
    let mut last_ts: Nanos = 0;
    let tf_ns = u64::from(tf) * crate::model::NANOS_PER_SEC;
    for record in records {
        let record = record.borrow();
        let signals = engine.on_record(record);
        if keep_chart_data && !signals.is_empty() {
            out.signals.extend_from_slice(signals);
        }
        out.records += 1;
        last_ts = record.ts_exchange;
        for event in engine.order_events() {
            match event {
                BrokerEvent::Fill(fill) => {
                    out.fills.push(*fill);
                    if let Some(trip) = trips.on_fill(fill, engine.symbols()) {
                        out.trips.push(trip);
                    }
                }
                BrokerEvent::Reject(r) => out.rejections.push(r.clone()),
                BrokerEvent::Cancel(_) => {}
            }
        }
        let broker = engine.broker().expect("a backtest engine has a broker");
        let mut sample = out.curve.is_empty();
        for bar in engine.closed_bars().iter().filter(|b| b.timeframe_s == tf) {
            if keep_chart_data {
                out.bars.push(ChartBar {
                    instrument: bar.instrument,
                    open_time: bar.open_time,
                    close: bar.close.to_f64(),
                });
            }
            if bar.open_time + tf_ns > last_bucket_end {
                last_bucket_end = bar.open_time + tf_ns;
                sample = true;
            }
        }
        if sample {
            out.curve.push(point(broker, record.ts_exchange));
        }
    }
    if let Some(broker) = engine.broker()
        && out.records > 0
        && out.curve.last().is_some_and(|p| p.ts != last_ts)
    {
        out.curve.push(point(broker, last_ts));
    }
    let account = engine.broker().expect("a backtest engine has a broker");
    out.metrics = metrics::compute(
        broker.cash,
        &out.curve,
        &out.trips,
        tf,
        account.fees_paid(),
        account.fill_count(),
        account.rejection_count(),
    );
    out.engine = engine.stats();
    out.symbols = engine.symbols().clone();
    out
}

fn point(broker: &crate::engine::Broker, ts: Nanos) -> EquityPoint {
    EquityPoint { ts, equity: broker.equity(), cash: broker.cash(), exposed: broker.positions().next().is_some() }
}

/// Builds round trips (flat to flat, per instrument) from fills.
#[derive(Debug, Default, Clone)]
pub struct RoundTrips {
    open: Vec<Option<Open>>,
}

impl RoundTrips {
    /// Folds a fill into its instrument's open position; returns the round trip it closes.
    pub fn on_fill(&mut self, fill: &Fill, symbols: &SymbolTable) -> Option<RoundTrip> {
        track(&mut self.open, fill, symbols)
    }
}

fn track(open: &mut Vec<Option<Open>>, fill: &Fill, symbols: &SymbolTable) -> Option<RoundTrip> {
    let idx = fill.instrument.0 as usize;
    if open.len() <= idx {
        open.resize(idx + 1, None);
    }
    let o = open[idx].get_or_insert_with(|| Open { entry_seq: fill.seq, entry_ts: fill.ts, ..Open::default() });
    o.fees += fill.fee;
    match fill.side {
        OrderSide::Buy => {
            o.bought += fill.qty;
            o.buy_notional += fill.notional;
            o.buys += 1;
            o.buy_price = Some(fill.price);
            o.cost += fill.notional + fill.fee;
        }
        OrderSide::Sell => {
            o.sold += fill.qty;
            o.sell_notional += fill.notional;
            o.sells += 1;
            o.sell_price = Some(fill.price);
            o.proceeds += fill.notional - fill.fee;
        }
    }
    if fill.position_after != 0.0 {
        return None;
    }
    let o = open[idx].take()?;
    let pnl = o.proceeds - o.cost;
    Some(RoundTrip {
        symbol: symbols.get(fill.instrument).map_or_else(String::new, |i| i.symbol.as_str().to_string()),
        entry_seq: o.entry_seq,
        entry_ts: o.entry_ts,
        entry_price: vwap(o.buys, o.buy_price, o.buy_notional, o.bought),
        exit_seq: fill.seq,
        exit_ts: fill.ts,
        exit_price: vwap(o.sells, o.sell_price, o.sell_notional, o.sold),
        qty: o.bought,
        fees: o.fees,
        pnl,
        return_pct: if o.cost > 0.0 { pnl / o.cost * 100.0 } else { 0.0 },
    })
}

fn vwap(fills: u32, only: Option<f64>, notional: f64, qty: f64) -> f64 {
    match (fills, only) {
        (1, Some(price)) => price,
        _ if qty > 0.0 => notional / qty,
        _ => 0.0,
    }
}

/// `trades.csv`: one closed round trip per row.
pub fn trades_csv(out: &Outcome) -> String {
    let mut s = String::from(
        "trade,symbol,entry_seq,entry_time,entry_price,exit_seq,exit_time,exit_price,qty,fees,pnl,return_pct\n",
    );
    for (i, t) in out.trips.iter().enumerate() {
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            i + 1,
            t.symbol,
            t.entry_seq,
            crate::model::time::format_utc(t.entry_ts),
            t.entry_price,
            t.exit_seq,
            crate::model::time::format_utc(t.exit_ts),
            t.exit_price,
            t.qty,
            t.fees,
            t.pnl,
            t.return_pct
        ));
    }
    s
}

/// `fills.csv`: every fill, in order.
pub fn fills_csv(out: &Outcome) -> String {
    let mut s = String::from("seq,time,symbol,side,price,qty,notional,fee,cash_after,position_after\n");
    for f in &out.fills {
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            f.seq,
            crate::model::time::format_utc(f.ts),
            out.symbols.get(f.instrument).map_or("", |i| i.symbol.as_str()),
            f.side.as_str(),
            f.price,
            f.qty,
            f.notional,
            f.fee,
            f.cash_after,
            f.position_after
        ));
    }
    s
}

/// `equity.csv`: the sampled equity curve with its drawdown.
pub fn equity_csv(out: &Outcome) -> String {
    let mut s = String::from("ts,time,equity,cash,exposed,drawdown_pct\n");
    for (p, dd) in out.curve.iter().zip(metrics::drawdowns(&out.curve)) {
        s.push_str(&format!(
            "{},{},{},{},{},{}\n",
            p.ts,
            crate::model::time::format_utc(p.ts),
            p.equity,
            p.cash,
            u8::from(p.exposed),
            dd
        ));
    }
    s
}

/// Writes trades.csv, fills.csv, equity.csv (and rejections.csv when any) into `dir`.
///
/// # Errors
/// When the directory or a file cannot be written.
pub fn write_csv(dir: &std::path::Path, out: &Outcome) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("trades.csv"), trades_csv(out))?;
    std::fs::write(dir.join("fills.csv"), fills_csv(out))?;
    std::fs::write(dir.join("equity.csv"), equity_csv(out))?;
    let mut rejected = String::from("seq,time,order,side,reason\n");
    for r in &out.rejections {
        rejected.push_str(&format!(
            "{},{},{},{},{}\n",
            r.seq,
            crate::model::time::format_utc(r.ts),
            r.order.0,
            r.request.side.as_str(),
            r.reason
        ));
    }
    std::fs::write(dir.join("rejections.csv"), rejected)
}

/// The chart data of a run, for `report::write`: the instrument traded first (or the first
/// with candles), its closes, wave pivots, anomalies and fills.
pub fn report_data(out: &Outcome, title: String, subtitle: String) -> report::ReportData {
    let charted = out.fills.first().map(|f| f.instrument).or_else(|| out.bars.first().map(|b| b.instrument));
    let symbol = charted.and_then(|i| out.symbols.get(i)).map_or_else(String::new, |i| i.symbol.as_str().to_string());
    let mine = |i: InstrumentId| Some(i) == charted;
    // A close is plotted at the end of its bucket, where fills after it happen.
    let tf_ns = u64::from(out.timeframe_s) * crate::model::NANOS_PER_SEC;
    let price: Vec<(Nanos, f64)> =
        out.bars.iter().filter(|b| mine(b.instrument)).map(|b| (b.open_time + tf_ns, b.close)).collect();
    let close_at = |t: Nanos| price.iter().find(|(ts, _)| *ts == t + tf_ns).map(|(_, c)| (t + tf_ns, *c));
    let mut pivots = Vec::new();
    let mut anomalies = Vec::new();
    for s in out.signals.iter().filter(|s| mine(s.instrument)) {
        match &s.body {
            SignalBody::Wave { dir, start_ts, start_price, end_ts, end_price, .. } => {
                if pivots.is_empty() {
                    pivots.push(report::Marker { ts: *start_ts + tf_ns, price: *start_price, label: "pivot".into() });
                }
                let label = if *dir == "up" { "peak" } else { "trough" };
                pivots.push(report::Marker { ts: *end_ts + tf_ns, price: *end_price, label: label.into() });
            }
            SignalBody::Volume { bucket_start, ratio, .. } => {
                if let Some((ts, close)) = close_at(*bucket_start) {
                    anomalies.push(report::Marker { ts, price: close, label: format!("{ratio:.1}x") });
                }
            }
            _ => {}
        }
    }
    let marker =
        |f: &Fill| report::Marker { ts: f.ts, price: f.price, label: format!("{} {}", f.side.as_str(), f.qty) };
    let m = &out.metrics;
    let opt = |v: Option<f64>, unit: &str| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}{unit}"));
    let metrics = vec![
        ("initial cash".to_string(), format!("{:.2}", m.initial_cash)),
        ("final equity".to_string(), format!("{:.2}", m.final_equity)),
        ("total return".to_string(), format!("{:.3}%", m.total_return_pct)),
        ("max drawdown".to_string(), format!("{:.3}%", m.max_drawdown_pct)),
        ("sharpe (annualized)".to_string(), opt(m.sharpe, "")),
        ("sortino (annualized)".to_string(), opt(m.sortino, "")),
        ("trades".to_string(), m.trades.to_string()),
        ("win rate".to_string(), opt(m.win_rate_pct, "%")),
        ("profit factor".to_string(), opt(m.profit_factor, "")),
        ("average trade".to_string(), opt(m.average_trade, "")),
        ("exposure".to_string(), format!("{:.1}%", m.exposure_pct)),
        ("fees paid".to_string(), format!("{:.4}", m.fees_paid)),
    ];
    let mut trades: Vec<Vec<String>> =
        trades_csv(out).lines().map(|l| l.split(',').map(str::to_string).collect()).collect();
    if trades.len() == 1 {
        trades.clear();
    }
    report::ReportData {
        title,
        subtitle,
        symbol,
        price,
        pivots,
        anomalies,
        buys: out.fills.iter().filter(|f| mine(f.instrument) && f.side == OrderSide::Buy).map(marker).collect(),
        sells: out.fills.iter().filter(|f| mine(f.instrument) && f.side == OrderSide::Sell).map(marker).collect(),
        equity: out.curve.iter().map(|p| (p.ts, p.equity)).collect(),
        metrics,
        trades,
    }
}
