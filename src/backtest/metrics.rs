//! Backtest metrics from an equity curve and closed round trips (formulas in
//! docs/backtest.md). Pure arithmetic: no IO, no clock, no hash order.

use serde::Serialize;

use crate::model::Nanos;

/// Seconds in a (crypto, 24/7) year, for annualizing per-candle returns.
pub const SECONDS_PER_YEAR: f64 = 365.0 * 86_400.0;

/// A closed position: from flat to flat in one instrument.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundTrip {
    pub symbol: String,
    pub entry_seq: u64,
    pub entry_ts: Nanos,
    /// Volume-weighted buy price.
    pub entry_price: f64,
    pub exit_seq: u64,
    pub exit_ts: Nanos,
    /// Volume-weighted sell price.
    pub exit_price: f64,
    pub qty: f64,
    pub fees: f64,
    /// Sell proceeds minus buy cost, fees included.
    pub pnl: f64,
    /// `pnl` over the buy cost (notional plus fees), percent.
    pub return_pct: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub initial_cash: f64,
    pub final_equity: f64,
    pub total_return_pct: f64,
    pub max_drawdown_pct: f64,
    /// Annualized; `null` with fewer than two returns or zero variance.
    pub sharpe: Option<f64>,
    /// Annualized; `null` with fewer than two returns or no downside.
    pub sortino: Option<f64>,
    /// Closed round trips.
    pub trades: u64,
    pub win_rate_pct: Option<f64>,
    /// Gross profit over gross loss; `null` without a losing trade.
    pub profit_factor: Option<f64>,
    pub average_trade: Option<f64>,
    /// Share of equity samples taken while holding a position, percent.
    pub exposure_pct: f64,
    pub fees_paid: f64,
    pub fills: u64,
    pub rejections: u64,
    /// Equity samples (one per candle close, plus the start and the end).
    pub samples: u64,
    pub periods_per_year: f64,
}

/// One point of the equity curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EquityPoint {
    pub ts: Nanos,
    pub equity: f64,
    pub cash: f64,
    pub exposed: bool,
}

/// Per-period simple returns of the curve.
pub fn returns(curve: &[EquityPoint]) -> Vec<f64> {
    curve.windows(2).map(|w| if w[0].equity > 0.0 { w[1].equity / w[0].equity - 1.0 } else { 0.0 }).collect()
}

/// Drawdown of each point from the running peak, as a negative percentage (0 at a peak).
pub fn drawdowns(curve: &[EquityPoint]) -> Vec<f64> {
    let mut peak = f64::NEG_INFINITY;
    curve
        .iter()
        .map(|p| {
            peak = peak.max(p.equity);
            if peak > 0.0 { (p.equity / peak - 1.0) * 100.0 } else { 0.0 }
        })
        .collect()
}

/// Sharpe and Sortino of `returns`, annualized with `periods_per_year` (risk-free rate 0).
pub fn sharpe_sortino(returns: &[f64], periods_per_year: f64) -> (Option<f64>, Option<f64>) {
    let n = returns.len();
    if n < 2 {
        return (None, None);
    }
    let mean = returns.iter().sum::<f64>() / n as f64;
    let var = returns.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / (n - 1) as f64;
    let down = (returns.iter().map(|r| r.min(0.0) * r.min(0.0)).sum::<f64>() / n as f64).sqrt();
    let annual = periods_per_year.sqrt();
    let sharpe = (var > 0.0).then(|| mean / var.sqrt() * annual);
    let sortino = (down > 0.0).then(|| mean / down * annual);
    (sharpe, sortino)
}

/// Every metric of a run.
pub fn compute(
    initial_cash: f64,
    curve: &[EquityPoint],
    trips: &[RoundTrip],
    timeframe_s: u32,
    fees_paid: f64,
    fills: u64,
    rejections: u64,
) -> Metrics {
    let final_equity = curve.last().map_or(initial_cash, |p| p.equity);
    let periods_per_year = SECONDS_PER_YEAR / f64::from(timeframe_s.max(1));
    let (sharpe, sortino) = sharpe_sortino(&returns(curve), periods_per_year);
    let max_drawdown_pct = -drawdowns(curve).into_iter().fold(0.0, f64::min);
    let wins = trips.iter().filter(|t| t.pnl > 0.0).count();
    let gross_profit: f64 = trips.iter().map(|t| t.pnl.max(0.0)).sum();
    let gross_loss: f64 = -trips.iter().map(|t| t.pnl.min(0.0)).sum::<f64>();
    let n = trips.len();
    Metrics {
        initial_cash,
        final_equity,
        total_return_pct: if initial_cash > 0.0 { (final_equity / initial_cash - 1.0) * 100.0 } else { 0.0 },
        max_drawdown_pct,
        sharpe,
        sortino,
        trades: n as u64,
        win_rate_pct: (n > 0).then(|| wins as f64 / n as f64 * 100.0),
        profit_factor: (gross_loss > 0.0).then(|| gross_profit / gross_loss),
        average_trade: (n > 0).then(|| trips.iter().map(|t| t.pnl).sum::<f64>() / n as f64),
        exposure_pct: if curve.is_empty() {
            0.0
        } else {
            curve.iter().filter(|p| p.exposed).count() as f64 / curve.len() as f64 * 100.0
        },
        fees_paid,
        fills,
        rejections,
        samples: curve.len() as u64,
        periods_per_year,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(values: &[f64]) -> Vec<EquityPoint> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| EquityPoint { ts: i as u64, equity: *v, cash: *v, exposed: i % 2 == 1 })
            .collect()
    }

    fn trip(pnl: f64) -> RoundTrip {
        RoundTrip {
            symbol: "BTC/USDT".into(),
            entry_seq: 0,
            entry_ts: 0,
            entry_price: 1.0,
            exit_seq: 1,
            exit_ts: 1,
            exit_price: 1.0,
            qty: 1.0,
            fees: 0.0,
            pnl,
            return_pct: 0.0,
        }
    }

    #[test]
    fn drawdowns_from_the_running_peak() {
        let cases: [(&[f64], &[f64]); 3] = [
            (&[100.0, 120.0, 90.0, 130.0], &[0.0, 0.0, -25.0, 0.0]),
            (&[100.0, 50.0, 75.0], &[0.0, -50.0, -25.0]),
            (&[], &[]),
        ];
        for (values, want) in cases {
            assert_eq!(drawdowns(&curve(values)), want, "{values:?}");
        }
    }

    #[test]
    fn sharpe_and_sortino_by_hand() {
        // Returns 0.1, -0.1, 0.2: mean 0.0666…, sample sd 0.1527…, downside sqrt(0.01/3).
        let (sharpe, sortino) = sharpe_sortino(&[0.1, -0.1, 0.2], 4.0);
        let mean: f64 = 0.2 / 3.0;
        let sd = ((0.1 - mean).powi(2) + (-0.1 - mean).powi(2) + (0.2 - mean).powi(2)) / 2.0;
        assert!((sharpe.unwrap() - mean / sd.sqrt() * 2.0).abs() < 1e-12);
        assert!((sortino.unwrap() - mean / (0.01f64 / 3.0).sqrt() * 2.0).abs() < 1e-12);
        assert_eq!(sharpe_sortino(&[0.1], 4.0), (None, None));
        assert_eq!(sharpe_sortino(&[0.1, 0.1], 4.0), (None, None));
    }

    #[test]
    fn trade_statistics() {
        let m =
            compute(100.0, &curve(&[100.0, 110.0, 99.0, 121.0]), &[trip(30.0), trip(-10.0), trip(5.0)], 60, 1.5, 6, 1);
        assert!((m.total_return_pct - 21.0).abs() < 1e-9);
        assert!((m.max_drawdown_pct - 10.0).abs() < 1e-9);
        assert_eq!(m.trades, 3);
        assert!((m.win_rate_pct.unwrap() - 200.0 / 3.0).abs() < 1e-9);
        assert_eq!(m.profit_factor, Some(3.5));
        assert!((m.average_trade.unwrap() - 25.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.exposure_pct, 50.0);
        assert_eq!(m.periods_per_year, 525_600.0);
        let empty = compute(100.0, &[], &[], 60, 0.0, 0, 0);
        assert_eq!((empty.final_equity, empty.trades, empty.win_rate_pct, empty.profit_factor), (100.0, 0, None, None));
    }
}
