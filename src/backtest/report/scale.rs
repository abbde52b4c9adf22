//! Scales and ticks for the report's charts: nice numeric steps, time steps and labels,
//! number formatting, and the one derived series (drawdown). Pure functions; no drawing.

use super::*;

/// The 1-2-5 step that cuts `range` into at most `max_ticks` intervals.
pub(super) fn nice_step(range: f64, max_ticks: usize) -> f64 {
    let raw = range / max_ticks.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let factor = if norm <= 1.0 + 1e-9 {
        1.0
    } else if norm <= 2.0 + 1e-9 {
        2.0
    } else if norm <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    factor * mag
}

/// Decimals needed to tell ticks `step` apart.
pub(super) fn decimals_for(step: f64) -> usize {
    if !(step.is_finite() && step > 0.0) {
        return 0;
    }
    (-step.log10() - 1e-9).ceil().clamp(0.0, 10.0) as usize
}

/// A value with fixed decimals and thousands separators: `61,234.50`.
pub(super) fn fmt_num(v: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, if v == 0.0 { 0.0 } else { v });
    let (sign, body) = match text.strip_prefix('-') {
        Some(rest) if rest.chars().any(|c| c.is_ascii_digit() && c != '0') => ("-", rest),
        Some(rest) => ("", rest),
        None => ("", text.as_str()),
    };
    let (int, frac) = body.split_once('.').map_or((body, None), |(i, f)| (i, Some(f)));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// A vertical value axis: domain, tick values and how to label them.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Axis {
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) ticks: Vec<f64>,
    pub(super) decimals: usize,
    pub(super) suffix: &'static str,
}

impl Axis {
    /// An axis over `[lo, hi]` (finite, `lo < hi`) for a plot `plot_h` pixels tall.
    pub(super) fn new(lo: f64, hi: f64, plot_h: f64, suffix: &'static str) -> Axis {
        let target = ((plot_h / 28.0) as usize).max(4);
        let step = nice_step(hi - lo, target);
        Axis { lo, hi, ticks: nice_ticks(lo, hi, target), decimals: decimals_for(step), suffix }
    }

    /// An axis fitting `values` with 5% headroom; `None` when no value is finite.
    pub(super) fn fit(values: impl Iterator<Item = f64>, plot_h: f64) -> Option<Axis> {
        let (lo, hi) = min_max(values)?;
        let (lo, hi) = if lo == hi {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.01 };
            (lo - pad, hi + pad)
        } else {
            let pad = (hi - lo) * 0.05;
            (lo - pad, hi + pad)
        };
        Some(Axis::new(lo, hi, plot_h, ""))
    }

    pub(super) fn label(&self, v: f64) -> String {
        format!("{}{}", fmt_num(v, self.decimals), self.suffix)
    }

    pub(super) fn widest_label(&self) -> usize {
        self.ticks.iter().map(|&v| self.label(v).chars().count()).max().unwrap_or(0)
    }
}

pub(super) fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Time steps for x ticks, smallest first.
pub(super) const TIME_STEPS: &[u64] = &[
    NANOS_PER_MS,
    2 * NANOS_PER_MS,
    5 * NANOS_PER_MS,
    10 * NANOS_PER_MS,
    20 * NANOS_PER_MS,
    50 * NANOS_PER_MS,
    100 * NANOS_PER_MS,
    200 * NANOS_PER_MS,
    500 * NANOS_PER_MS,
    NANOS_PER_SEC,
    2 * NANOS_PER_SEC,
    5 * NANOS_PER_SEC,
    10 * NANOS_PER_SEC,
    15 * NANOS_PER_SEC,
    30 * NANOS_PER_SEC,
    MINUTE,
    2 * MINUTE,
    5 * MINUTE,
    10 * MINUTE,
    15 * MINUTE,
    30 * MINUTE,
    HOUR,
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    7 * DAY,
    14 * DAY,
    30 * DAY,
    60 * DAY,
    90 * DAY,
    180 * DAY,
    365 * DAY,
];

/// The tick step for a span and the ticks (multiples of the step, UTC-aligned) inside it.
pub(super) fn time_ticks(t0: Nanos, t1: Nanos, max_ticks: usize) -> (u64, Vec<Nanos>) {
    let span = t1.saturating_sub(t0);
    let max_ticks = max_ticks.max(1) as u64;
    let step = match TIME_STEPS.iter().find(|&&s| span / s <= max_ticks) {
        Some(&s) => s,
        None => {
            let years = nice_step((span / (365 * DAY)) as f64, max_ticks as usize).max(1.0) as u64;
            years.saturating_mul(365 * DAY)
        }
    };
    let mut ticks = Vec::new();
    let mut t = t0.div_ceil(step).saturating_mul(step);
    while t <= t1 && ticks.len() <= 1000 {
        ticks.push(t);
        match t.checked_add(step) {
            Some(next) => t = next,
            None => break,
        }
    }
    (step, ticks)
}

/// A short UTC label for an x tick: the finest unit the step needs, the date only when the
/// span crosses more than a day.
pub(super) fn time_label(t: Nanos, step: u64, span: u64) -> String {
    let s = format_utc(t); // 2024-08-08T23:54:15.342Z
    let part = |a: usize, b: usize| s.get(a..b).unwrap_or(&s).to_string();
    if step < NANOS_PER_SEC {
        part(11, 23)
    } else if span <= DAY {
        if step % MINUTE == 0 { part(11, 16) } else { part(11, 19) }
    } else if step < DAY {
        format!("{} {}", part(5, 10), part(11, 16))
    } else {
        part(0, 10)
    }
}

/// `2024-08-08 23:54:15` (UTC).
pub(super) fn full_time(t: Nanos) -> String {
    let s = format_utc(t);
    s.get(0..19).map_or(s.clone(), |p| p.replace('T', " "))
}
