//! A user-defined strategy built on the library alone: a moving-average crossover on
//! candle closes, backtested over a recording with the same engine and simulated broker
//! the `backtest` command uses.
//!
//! ```text
//! cargo run --release --example sma_cross -- recordings/binance-btcusdt-20240808 [FAST SLOW]
//! ```

use std::collections::VecDeque;
use std::path::PathBuf;

use tapedeck::backtest;
use tapedeck::engine::{Bar, BrokerConfig, Context, OrderSide, Size, Strategy};
use tapedeck::replay::{Filter, Merged};

/// Buys when the fast mean of closes crosses above the slow one, sells all when it crosses
/// back below. State per instrument would live in a Vec indexed by instrument id; this
/// example trades whichever instrument its candles come from and keeps one window.
struct SmaCross {
    fast: usize,
    slow: usize,
    timeframe_s: u32,
    closes: VecDeque<f64>,
    was_above: Option<bool>,
}

impl Strategy for SmaCross {
    fn name(&self) -> &'static str {
        "sma-cross"
    }

    fn params(&self) -> String {
        format!("fast={},slow={},timeframe={}s", self.fast, self.slow, self.timeframe_s)
    }

    fn timeframe_s(&self) -> Option<u32> {
        Some(self.timeframe_s)
    }

    fn on_candle(&mut self, ctx: &mut Context, bar: &Bar) {
        self.closes.push_back(bar.close.to_f64());
        if self.closes.len() > self.slow {
            self.closes.pop_front();
        }
        if self.closes.len() < self.slow {
            return;
        }
        let mean = |n: usize| self.closes.iter().rev().take(n).sum::<f64>() / n as f64;
        let above = mean(self.fast) > mean(self.slow);
        let crossed = self.was_above.is_some_and(|was| was != above);
        self.was_above = Some(above);
        if !crossed {
            return;
        }
        if above && ctx.is_flat(bar.instrument) {
            ctx.market(bar.instrument, OrderSide::Buy, Size::Fraction(1.0));
        } else if !above && ctx.position(bar.instrument) > 0.0 {
            ctx.market(bar.instrument, OrderSide::Sell, Size::All);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let rec = PathBuf::from(args.next().ok_or("usage: sma_cross REC [FAST SLOW]")?);
    let fast: usize = args.next().map_or(Ok(3), |s| s.parse())?;
    let slow: usize = args.next().map_or(Ok(8), |s| s.parse())?;
    let mut merged = Merged::open(&[rec], Filter::default()).map_err(|(path, e)| format!("{}: {e}", path.display()))?;
    let symbols = merged.symbols().clone();
    let strategy = SmaCross { fast, slow, timeframe_s: 10, closes: VecDeque::new(), was_above: None };
    let out =
        backtest::run_strategy(&mut merged, &symbols, Box::new(strategy), Vec::new(), BrokerConfig::default(), false);
    if let Some(e) = merged.take_error() {
        return Err(e.into());
    }
    println!("{} {}: {} records", out.strategy, out.params, out.records);
    println!(
        "return {:.3}%, max drawdown {:.3}%, {} round trips, fees {:.4}",
        out.metrics.total_return_pct, out.metrics.max_drawdown_pct, out.metrics.trades, out.metrics.fees_paid
    );
    print!("{}", backtest::trades_csv(&out));
    Ok(())
}
