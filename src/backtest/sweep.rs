//! Parameter sweeps: a grid of strategy parameters, each point a backtest over one shared,
//! already-decoded record slice, run in parallel with rayon.
//!
//! Results are collected by grid index and ranked with a total order (metric, then grid
//! index), so the table is identical for any thread count. No IO here.

use rayon::prelude::*;

use super::{BacktestConfig, Outcome};
use crate::engine::BrokerConfig;
use crate::model::{Record, SymbolTable};
use crate::strategy::StrategySpec;

/// One `--grid key=values` axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Axis {
    pub key: String,
    /// Values in their canonical spelling, in order.
    pub values: Vec<String>,
}

/// Parses `key=a:b:step` (inclusive range) or `key=v1,v2,...`.
///
/// Range values are spelled with as many decimals as the start and step have, so
/// `0.1:0.3:0.1` gives `0.1, 0.2, 0.3`, never `0.30000000000000004`.
///
/// # Errors
/// A message naming the problem (the caller prefixes the flag).
pub fn parse_axis(text: &str) -> Result<Axis, String> {
    let (key, spec) = text.split_once('=').ok_or_else(|| format!("expected key=values, got {text:?}"))?;
    let key = key.trim().to_string();
    if key.is_empty() {
        return Err(format!("missing parameter name in {text:?}"));
    }
    let values = if spec.contains(':') {
        let parts: Vec<&str> = spec.split(':').map(str::trim).collect();
        let [a, b, step] = parts[..] else {
            return Err(format!("{key}: a range is start:end:step, got {spec:?}"));
        };
        let num = |s: &str| {
            s.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| format!("{key}: {s:?} is not a number"))
        };
        let (start, end, step_v) = (num(a)?, num(b)?, num(step)?);
        if step_v <= 0.0 {
            return Err(format!("{key}: step must be > 0, got {step}"));
        }
        if end < start {
            return Err(format!("{key}: end {b} is below start {a}"));
        }
        let decimals = |s: &str| s.split_once('.').map_or(0, |(_, f)| f.len());
        let places = decimals(a).max(decimals(step));
        let n = ((end - start) / step_v + 1e-9).floor() as usize;
        if n >= 10_000 {
            return Err(format!("{key}: {} values is too many for one axis", n + 1));
        }
        (0..=n).map(|i| format!("{:.*}", places, start + i as f64 * step_v)).collect()
    } else {
        spec.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_string).collect::<Vec<_>>()
    };
    if values.is_empty() {
        return Err(format!("{key}: no values"));
    }
    Ok(Axis { key, values })
}

/// Every combination of the axes, first axis slowest, as `key=value` lists.
pub fn points(axes: &[Axis]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = vec![Vec::new()];
    for axis in axes {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                axis.values.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push(format!("{}={}", axis.key, v));
                    p
                })
            })
            .collect();
    }
    out
}

/// Metrics a sweep can rank by (higher is better, except drawdown: lower is better).
pub const METRICS: &[&str] =
    &["sharpe", "sortino", "total_return", "max_drawdown", "profit_factor", "win_rate", "final_equity", "trades"];

/// The value ranked on; missing values (no trades, no variance) rank last.
pub fn metric_value(out: &Outcome, metric: &str) -> Option<f64> {
    let m = &out.metrics;
    match metric {
        "sharpe" => m.sharpe,
        "sortino" => m.sortino,
        "total_return" => Some(m.total_return_pct),
        "max_drawdown" => Some(-m.max_drawdown_pct),
        "profit_factor" => m.profit_factor,
        "win_rate" => m.win_rate_pct,
        "final_equity" => Some(m.final_equity),
        "trades" => Some(m.trades as f64),
        _ => None,
    }
    .filter(|v| v.is_finite())
}

/// One grid point's result.
pub struct PointResult {
    pub index: usize,
    pub assignment: Vec<String>,
    pub outcome: Outcome,
}

/// Runs every point of the grid over `records`, on the current rayon pool; `progress` is
/// called once per finished point (from worker threads).
///
/// # Errors
/// The first grid point whose parameters the strategy rejects (checked before running).
pub fn run(
    records: &[Record],
    symbols: &SymbolTable,
    strategy: &str,
    base: &[String],
    axes: &[Axis],
    broker: BrokerConfig,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<PointResult>, crate::strategy::StrategyError> {
    let assignments = points(axes);
    let specs: Vec<StrategySpec> = assignments
        .iter()
        .map(|a| {
            let mut params = base.to_vec();
            // Grid values override --param values of the same key.
            params.retain(|p| !a.iter().any(|g| g.split('=').next() == p.split('=').next()));
            params.extend(a.iter().cloned());
            StrategySpec::parse(strategy, &params)
        })
        .collect::<Result<_, _>>()?;
    let mut results: Vec<PointResult> = specs
        .into_par_iter()
        .zip(assignments.into_par_iter())
        .enumerate()
        .map(|(index, (spec, assignment))| {
            let config = BacktestConfig { strategy: spec, broker, detectors: Vec::new(), keep_chart_data: false };
            let outcome = super::run(records, symbols, &config);
            progress();
            PointResult { index, assignment, outcome }
        })
        .collect();
    results.sort_by_key(|r| r.index);
    Ok(results)
}

/// Ranks results by `metric`, best first; ties and missing values keep grid order.
pub fn rank(results: &mut [PointResult], metric: &str) {
    results.sort_by(|a, b| {
        let (va, vb) = (metric_value(&a.outcome, metric), metric_value(&b.outcome, metric));
        match (va, vb) {
            (Some(x), Some(y)) => y.total_cmp(&x).then(a.index.cmp(&b.index)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.index.cmp(&b.index),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_parse() {
        let cases: [(&str, Result<&[&str], &str>); 7] = [
            ("amplitude=0.1:0.5:0.1", Ok(&["0.1", "0.2", "0.3", "0.4", "0.5"])),
            ("ma=1,5,20", Ok(&["1", "5", "20"])),
            ("ma=1:3:1", Ok(&["1", "2", "3"])),
            ("amplitude=0.1:1.0:0.25", Ok(&["0.10", "0.35", "0.60", "0.85"])),
            ("amplitude", Err("expected key=values")),
            ("amplitude=1:0:0.1", Err("amplitude: end 0 is below start 1")),
            ("amplitude=0:1:0", Err("amplitude: step must be > 0")),
        ];
        for (text, want) in cases {
            match (parse_axis(text), want) {
                (Ok(axis), Ok(values)) => assert_eq!(axis.values, values, "{text}"),
                (Err(e), Err(prefix)) => assert!(e.starts_with(prefix), "{text}: {e}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn points_are_the_cartesian_product_first_axis_slowest() {
        let axes = [parse_axis("a=1,2").unwrap(), parse_axis("b=x,y,z").unwrap()];
        let got: Vec<String> = points(&axes).into_iter().map(|p| p.join(",")).collect();
        assert_eq!(got, ["a=1,b=x", "a=1,b=y", "a=1,b=z", "a=2,b=x", "a=2,b=y", "a=2,b=z"]);
    }
}
