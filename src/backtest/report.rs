//! Backtest reports as self-contained SVG charts and one HTML page.
//!
//! This module owns presentation only: it receives everything already computed in
//! [`ReportData`] and must not compute metrics or read recordings. The one derived series it
//! draws, drawdown from the running equity peak, is a view of `equity` computed here.
//!
//! The SVG is written by hand (no plotting crate). Output is deterministic: the same data
//! renders to the same bytes (coordinates at fixed precision, no clock, no hash maps), all
//! text is escaped, non-finite values are skipped, long series are reduced to min/max per
//! pixel bucket so spikes stay visible, and the HTML has inline CSS only: no scripts and no
//! links to the network.

use std::fmt::{self, Write as _};
use std::path::Path;

use crate::model::time::format_utc;
use crate::model::{NANOS_PER_MS, NANOS_PER_SEC, Nanos};

/// A point of interest on the price chart: a wave pivot, a volume anomaly or a fill.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub ts: Nanos,
    pub price: f64,
    /// Shown as the marker's tooltip.
    pub label: String,
}

/// Everything a report shows, already computed and formatted by the backtester.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportData {
    /// E.g. "wave-follow on binance BTC/USDT".
    pub title: String,
    /// E.g. the recording path(s) and parameters.
    pub subtitle: String,
    /// The charted instrument.
    pub symbol: String,
    /// Candle closes of the charted instrument, time-ordered.
    pub price: Vec<(Nanos, f64)>,
    /// Wave pivots: small circles joined by a thin zigzag line.
    pub pivots: Vec<Marker>,
    /// Volume anomalies: orange diamonds.
    pub anomalies: Vec<Marker>,
    /// Buy fills: green up-triangles.
    pub buys: Vec<Marker>,
    /// Sell fills: red down-triangles.
    pub sells: Vec<Marker>,
    /// The equity curve.
    pub equity: Vec<(Nanos, f64)>,
    /// (label, already-formatted value), shown as a table.
    pub metrics: Vec<(String, String)>,
    /// Rows of the trades table, the first row being the header.
    pub trades: Vec<Vec<String>>,
}

/// Most points a drawn series keeps (see [`downsample`]).
pub const MAX_POLYLINE_POINTS: usize = 2000;
/// Most trade rows (after the header) the HTML page lists.
pub const MAX_TRADE_ROWS: usize = 200;

const WIDTH: f64 = 1200.0;
const MARGIN_RIGHT: f64 = 48.0;
const MARGIN_BOTTOM: f64 = 56.0;
const MARGIN_TOP: f64 = 44.0;
/// Extra top margin when the legend does not fit beside the title.
const LEGEND_ROW: f64 = 20.0;
/// Left margin when the y labels are short; wider labels widen it (same for all charts).
const MIN_MARGIN_LEFT: f64 = 76.0;
const PRICE_HEIGHT: f64 = 460.0;
const EQUITY_HEIGHT: f64 = 280.0;
const DRAWDOWN_HEIGHT: f64 = 220.0;
/// Approximate advance of one character at the 12 px label size.
const CHAR_W: f64 = 6.8;
const FONT: &str = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', Arial, sans-serif";

const C_TEXT: &str = "#111827";
const C_MUTED: &str = "#4b5563";
const C_GRID: &str = "#e5e7eb";
const C_AXIS: &str = "#9ca3af";
const C_PRICE: &str = "#2563eb";
const C_PIVOT: &str = "#7c3aed";
const C_ANOMALY: &str = "#f59e0b";
const C_ANOMALY_EDGE: &str = "#b45309";
const C_BUY: &str = "#16a34a";
const C_SELL: &str = "#dc2626";
const C_EQUITY: &str = "#0f766e";
const C_DRAWDOWN: &str = "#dc2626";

const MINUTE: u64 = 60 * NANOS_PER_SEC;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// Writes into a `String` (which cannot fail).
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

// ---------------------------------------------------------------------------------------------
// Public entry points
// ---------------------------------------------------------------------------------------------

/// The price chart: closes, wave pivots joined by a zigzag, volume anomalies, buys and sells,
/// with a legend.
pub fn price_svg(data: &ReportData) -> String {
    let frame = Frame::new(data);
    let mut out = String::new();
    let symbol = if data.symbol.is_empty() { "price" } else { data.symbol.as_str() };
    let legend = vec![
        (Swatch::Line(C_PRICE), format!("{symbol} close")),
        (Swatch::Pivot, format!("wave pivots ({})", count_finite(&data.pivots))),
        (Swatch::Anomaly, format!("volume anomalies ({})", count_finite(&data.anomalies))),
        (Swatch::Buy, format!("buys ({})", count_finite(&data.buys))),
        (Swatch::Sell, format!("sells ({})", count_finite(&data.sells))),
    ];
    let spec = Spec {
        id: "price",
        doc_title: doc_title(data, &format!("{symbol} price")),
        title: format!("{symbol}: candle closes and signals"),
        y_title: "price",
        height: PRICE_HEIGHT,
        legend,
    };
    if let Some(plot) = begin(&mut out, &spec, &frame, frame.price.as_ref()) {
        let closes = downsample(&data.price, plot.buckets());
        polyline(&mut out, &plot, &closes, C_PRICE, 1.3, None);

        let mut pivots: Vec<&Marker> = finite_markers(&data.pivots).collect();
        pivots.sort_by_key(|m| m.ts);
        let zigzag: Vec<(Nanos, f64)> = pivots.iter().map(|m| (m.ts, m.price)).collect();
        polyline(&mut out, &plot, &zigzag, C_PIVOT, 1.0, Some("0.75"));
        put!(out, "<g fill=\"#ffffff\" stroke=\"{C_PIVOT}\" stroke-width=\"1.5\">\n");
        for m in &pivots {
            put!(out, "<circle cx=\"{}\" cy=\"{}\" r=\"3.5\">", C(plot.x(m.ts)), C(plot.y(m.price)));
            tooltip(&mut out, "pivot", m);
            out.push_str("</circle>\n");
        }
        out.push_str("</g>\n");

        put!(out, "<g fill=\"{C_ANOMALY}\" stroke=\"{C_ANOMALY_EDGE}\" stroke-width=\"1\">\n");
        for m in finite_markers(&data.anomalies) {
            let (x, y) = (plot.x(m.ts), plot.y(m.price));
            put!(out, "<path d=\"{}\">", shape(Swatch::Anomaly, x, y));
            tooltip(&mut out, "volume anomaly", m);
            out.push_str("</path>\n");
        }
        out.push_str("</g>\n");

        for (markers, kind, color, name) in
            [(&data.buys, Swatch::Buy, C_BUY, "buy"), (&data.sells, Swatch::Sell, C_SELL, "sell")]
        {
            put!(out, "<g fill=\"{color}\" stroke=\"#ffffff\" stroke-width=\"0.8\">\n");
            for m in finite_markers(markers) {
                put!(out, "<path d=\"{}\">", shape(kind, plot.x(m.ts), plot.y(m.price)));
                tooltip(&mut out, name, m);
                out.push_str("</path>\n");
            }
            out.push_str("</g>\n");
        }
    }
    out.push_str("</svg>\n");
    out
}

/// The equity curve, with a dashed line at its starting value.
pub fn equity_svg(data: &ReportData) -> String {
    let frame = Frame::new(data);
    let mut out = String::new();
    let spec = Spec {
        id: "equity",
        doc_title: doc_title(data, "equity"),
        title: "Equity".to_string(),
        y_title: "equity",
        height: EQUITY_HEIGHT,
        legend: Vec::new(),
    };
    if let Some(plot) = begin(&mut out, &spec, &frame, frame.equity.as_ref()) {
        let points = downsample(&data.equity, plot.buckets());
        if let Some(&(_, start)) = data.equity.iter().find(|p| p.1.is_finite()) {
            let y = plot.y(start);
            put!(
                out,
                "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{C_MUTED}\" stroke-width=\"1\" \
                 stroke-dasharray=\"4 4\"/>\n",
                C(plot.x0),
                C(y),
                C(plot.x1),
                C(y)
            );
        }
        area(&mut out, &plot, &points, plot.y1, C_EQUITY, "0.08");
        polyline(&mut out, &plot, &points, C_EQUITY, 1.5, None);
    }
    out.push_str("</svg>\n");
    out
}

/// Drawdown in % from the running equity peak (see [`drawdown`]), as a filled area below 0.
pub fn drawdown_svg(data: &ReportData) -> String {
    let frame = Frame::new(data);
    let mut out = String::new();
    let spec = Spec {
        id: "drawdown",
        doc_title: doc_title(data, "drawdown"),
        title: "Drawdown from running equity peak".to_string(),
        y_title: "drawdown (%)",
        height: DRAWDOWN_HEIGHT,
        legend: Vec::new(),
    };
    if let Some(plot) = begin(&mut out, &spec, &frame, frame.drawdown.as_ref()) {
        let points = downsample(&drawdown(&data.equity), plot.buckets());
        area(&mut out, &plot, &points, plot.y(0.0), C_DRAWDOWN, "0.25");
        polyline(&mut out, &plot, &points, C_DRAWDOWN, 1.2, None);
    }
    out.push_str("</svg>\n");
    out
}

/// The whole report as one page: title, subtitle, metrics, the three charts inline, trades.
pub fn html(data: &ReportData) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    put!(out, "<title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<main>\n", esc(&data.title));
    put!(out, "<header>\n<h1>{}</h1>\n", esc(&data.title));
    if !data.subtitle.is_empty() {
        put!(out, "<p class=\"sub\">{}</p>\n", esc(&data.subtitle));
    }
    out.push_str("</header>\n");

    out.push_str("<section>\n<h2>Metrics</h2>\n");
    metrics_table(&mut out, &data.metrics);
    out.push_str("</section>\n");

    for svg in [price_svg(data), equity_svg(data), drawdown_svg(data)] {
        out.push_str("<section class=\"chart\">\n");
        out.push_str(&svg);
        out.push_str("</section>\n");
    }

    out.push_str("<section>\n<h2>Trades</h2>\n");
    trades_table(&mut out, &data.trades);
    out.push_str("</section>\n");
    put!(out, "<footer>Rendered by tapedeck {}.</footer>\n", esc(env!("CARGO_PKG_VERSION")));
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

/// Creates `dir` and writes `report.html`, `price.svg`, `equity.svg` and `drawdown.svg`.
///
/// # Errors
/// When the directory cannot be created or a file cannot be written.
pub fn write(dir: &Path, data: &ReportData) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.html"), html(data))?;
    std::fs::write(dir.join("price.svg"), price_svg(data))?;
    std::fs::write(dir.join("equity.svg"), equity_svg(data))?;
    std::fs::write(dir.join("drawdown.svg"), drawdown_svg(data))?;
    Ok(())
}

/// A standalone SVG's `<title>`: the report title, then which chart.
fn doc_title(data: &ReportData, chart: &str) -> String {
    if data.title.is_empty() { chart.to_string() } else { format!("{}: {chart}", data.title) }
}

/// Drawdown in % from the running peak of `equity` (0 at a new peak, negative below it).
///
/// Non-finite values are skipped. While the running peak is not positive the drawdown is
/// undefined and reported as 0.
pub fn drawdown(equity: &[(Nanos, f64)]) -> Vec<(Nanos, f64)> {
    let mut peak = f64::NEG_INFINITY;
    equity
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|&(ts, v)| {
            peak = peak.max(v);
            let dd = if peak > 0.0 { (v - peak) / peak * 100.0 } else { 0.0 };
            (ts, dd)
        })
        .collect()
}

/// Reduces a series to at most `max_points` points for drawing.
///
/// Non-finite values are dropped and the series is put in time order. When more than
/// `max_points` remain, time is cut into `max_points / 2` equal buckets and each bucket keeps
/// its minimum and maximum (in time order), so spikes survive.
pub fn downsample(points: &[(Nanos, f64)], max_points: usize) -> Vec<(Nanos, f64)> {
    let mut finite: Vec<(Nanos, f64)> = points.iter().copied().filter(|(_, v)| v.is_finite()).collect();
    if !finite.is_sorted_by_key(|p| p.0) {
        finite.sort_by_key(|p| p.0);
    }
    let max_points = max_points.max(2);
    if finite.len() <= max_points {
        return finite;
    }
    let buckets = (max_points / 2) as u128;
    let (t0, t1) = (finite[0].0, finite[finite.len() - 1].0);
    let span = u128::from(t1 - t0) + 1;
    let n = finite.len() as u128;
    let mut out = Vec::with_capacity(max_points);
    let mut start = 0;
    while start < finite.len() {
        // Equal time buckets; if every point shares one timestamp, equal count buckets.
        let bucket = |i: usize| {
            if t1 > t0 { u128::from(finite[i].0 - t0) * buckets / span } else { i as u128 * buckets / n }
        };
        let b = bucket(start);
        let mut end = start + 1;
        while end < finite.len() && bucket(end) == b {
            end += 1;
        }
        let group = &finite[start..end];
        let (mut lo, mut hi) = (0, 0);
        for (i, p) in group.iter().enumerate() {
            if p.1 < group[lo].1 {
                lo = i;
            }
            if p.1 > group[hi].1 {
                hi = i;
            }
        }
        let (a, b) = (lo.min(hi), lo.max(hi));
        out.push(group[a]);
        if b != a {
            out.push(group[b]);
        }
        start = end;
    }
    out
}

/// Round tick values covering `[lo, hi]` in steps of 1, 2 or 5 times a power of ten, at most
/// `max_ticks + 1` of them. `[v]` when `lo == hi`; empty when a bound is not finite.
pub fn nice_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<f64> {
    if !lo.is_finite() || !hi.is_finite() {
        return Vec::new();
    }
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    if lo == hi {
        return vec![lo];
    }
    let step = nice_step(hi - lo, max_ticks);
    if !(step.is_finite() && step > 0.0) {
        return Vec::new();
    }
    let first = (lo / step - 1e-9).ceil();
    let last = (hi / step + 1e-9).floor();
    let mut ticks = Vec::new();
    let mut k = first;
    while k <= last && ticks.len() <= 1000 {
        let v = k * step;
        // No "-0" label, and no 0.30000000000000004 either.
        ticks.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        k += 1.0;
    }
    ticks
}

/// Escapes text for XML and HTML (element content and double-quoted attributes).
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab and newline are not allowed in XML 1.0.
            c if c.is_control() && c != '\t' && c != '\n' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Scales and ticks
// ---------------------------------------------------------------------------------------------

/// The 1-2-5 step that cuts `range` into at most `max_ticks` intervals.
fn nice_step(range: f64, max_ticks: usize) -> f64 {
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
fn decimals_for(step: f64) -> usize {
    if !(step.is_finite() && step > 0.0) {
        return 0;
    }
    (-step.log10() - 1e-9).ceil().clamp(0.0, 10.0) as usize
}

/// A value with fixed decimals and thousands separators: `61,234.50`.
fn fmt_num(v: f64, decimals: usize) -> String {
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
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    decimals: usize,
    suffix: &'static str,
}

impl Axis {
    /// An axis over `[lo, hi]` (finite, `lo < hi`) for a plot `plot_h` pixels tall.
    fn new(lo: f64, hi: f64, plot_h: f64, suffix: &'static str) -> Axis {
        let target = ((plot_h / 28.0) as usize).max(4);
        let step = nice_step(hi - lo, target);
        Axis { lo, hi, ticks: nice_ticks(lo, hi, target), decimals: decimals_for(step), suffix }
    }

    /// An axis fitting `values` with 5% headroom; `None` when no value is finite.
    fn fit(values: impl Iterator<Item = f64>, plot_h: f64) -> Option<Axis> {
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

    fn label(&self, v: f64) -> String {
        format!("{}{}", fmt_num(v, self.decimals), self.suffix)
    }

    fn widest_label(&self) -> usize {
        self.ticks.iter().map(|&v| self.label(v).chars().count()).max().unwrap_or(0)
    }
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Time steps for x ticks, smallest first.
const TIME_STEPS: &[u64] = &[
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
fn time_ticks(t0: Nanos, t1: Nanos, max_ticks: usize) -> (u64, Vec<Nanos>) {
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
fn time_label(t: Nanos, step: u64, span: u64) -> String {
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
fn full_time(t: Nanos) -> String {
    let s = format_utc(t);
    s.get(0..19).map_or(s.clone(), |p| p.replace('T', " "))
}

// ---------------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------------

/// What the three charts share, so they line up on the page: the time domain and the left
/// margin. Also each chart's value axis.
struct Frame {
    time: Option<(Nanos, Nanos)>,
    left: f64,
    price: Option<Axis>,
    equity: Option<Axis>,
    drawdown: Option<Axis>,
}

impl Frame {
    fn new(data: &ReportData) -> Frame {
        let markers =
            || [&data.pivots, &data.anomalies, &data.buys, &data.sells].into_iter().flat_map(|m| finite_markers(m));
        let times = data
            .price
            .iter()
            .chain(&data.equity)
            .filter(|(_, v)| v.is_finite())
            .map(|p| p.0)
            .chain(markers().map(|m| m.ts));
        let time = times.fold(None, |acc: Option<(Nanos, Nanos)>, t| match acc {
            None => Some((t, t)),
            Some((a, b)) => Some((a.min(t), b.max(t))),
        });
        // A single instant gets a minute either side so it sits mid-chart.
        let time =
            time.map(|(a, b)| if a == b { (a.saturating_sub(MINUTE), b.saturating_add(MINUTE)) } else { (a, b) });

        let price = Axis::fit(
            data.price.iter().map(|p| p.1).chain(markers().map(|m| m.price)),
            // Sized as if the legend took its own row; at most a tick more fits when it does not.
            plot_height(PRICE_HEIGHT, MARGIN_TOP + LEGEND_ROW),
        );
        let equity = Axis::fit(data.equity.iter().map(|p| p.1), plot_height(EQUITY_HEIGHT, MARGIN_TOP));
        let dd = drawdown(&data.equity);
        let drawdown = min_max(dd.iter().map(|p| p.1)).map(|(lo, _)| {
            let lo = if lo < 0.0 { lo * 1.06 } else { -1.0 };
            // A little room above 0 so the line at 0 is not hidden by the frame.
            Axis::new(lo, -lo * 0.04, plot_height(DRAWDOWN_HEIGHT, MARGIN_TOP), "%")
        });

        let widest = [&price, &equity, &drawdown].iter().filter_map(|a| a.as_ref()).map(Axis::widest_label).max();
        let left = (40.0 + widest.unwrap_or(0) as f64 * CHAR_W).max(MIN_MARGIN_LEFT).ceil();
        Frame { time, left, price, equity, drawdown }
    }
}

fn plot_height(height: f64, top: f64) -> f64 {
    height - top - MARGIN_BOTTOM
}

fn legend_item_width(chars: usize) -> f64 {
    // Legend text is mostly lower case, a little narrower than the labels' digits.
    22.0 + chars as f64 * 6.2 + 20.0
}

/// What distinguishes one chart from another.
struct Spec {
    id: &'static str,
    /// The SVG's `<title>` (tooltip and accessible name).
    doc_title: String,
    /// Drawn at the top left.
    title: String,
    y_title: &'static str,
    height: f64,
    legend: Vec<(Swatch, String)>,
}

/// The plot area and its mapping from (time, value) to pixels.
struct Plot {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    t0: Nanos,
    t1: Nanos,
    lo: f64,
    hi: f64,
}

impl Plot {
    fn x(&self, t: Nanos) -> f64 {
        let frac = (i128::from(t) - i128::from(self.t0)) as f64 / (i128::from(self.t1) - i128::from(self.t0)) as f64;
        self.x0 + frac * (self.x1 - self.x0)
    }

    fn y(&self, v: f64) -> f64 {
        self.y1 - (v - self.lo) / (self.hi - self.lo) * (self.y1 - self.y0)
    }

    /// Two points per pixel column at most, and never more than [`MAX_POLYLINE_POINTS`].
    fn buckets(&self) -> usize {
        (((self.x1 - self.x0) as usize) * 2).min(MAX_POLYLINE_POINTS)
    }
}

/// A coordinate at fixed precision; anything non-finite is drawn at 0 rather than as "NaN".
struct C(f64);

impl fmt::Display for C {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = if self.0.is_finite() { (self.0 * 10.0).round() / 10.0 } else { 0.0 };
        let v = if v == 0.0 { 0.0 } else { v };
        write!(f, "{v:.1}")
    }
}

/// Opens the SVG and draws the frame, title, legend, grid, ticks and axis titles. Returns the
/// plot mapping, or `None` (after writing a "no data" note) when there is nothing to draw.
/// The caller appends the series and `</svg>`.
fn begin(out: &mut String, spec: &Spec, frame: &Frame, axis: Option<&Axis>) -> Option<Plot> {
    let (w, h) = (WIDTH, spec.height);
    let legend_w: f64 = spec.legend.iter().map(|(_, text)| legend_item_width(text.chars().count())).sum();
    let title_w = spec.title.chars().count() as f64 * 8.0;
    let legend_own_row = !spec.legend.is_empty() && frame.left + title_w + 24.0 + legend_w > w - MARGIN_RIGHT;
    let top = if legend_own_row { MARGIN_TOP + LEGEND_ROW } else { MARGIN_TOP };
    let (x0, x1, y0, y1) = (frame.left, w - MARGIN_RIGHT, top, h - MARGIN_BOTTOM);

    put!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"{id}-chart\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"{FONT}\" font-size=\"12\" fill=\"{C_TEXT}\" role=\"img\" aria-label=\"{t}\">\n\
         <title>{t}</title>\n\
         <rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>\n",
        t = esc(&spec.doc_title),
        id = spec.id
    );
    put!(out, "<text x=\"{}\" y=\"24\" font-size=\"15\" font-weight=\"600\">{}</text>\n", C(x0), esc(&spec.title));
    if !spec.legend.is_empty() {
        let (mut x, y) = if legend_own_row { (x0, 46.0) } else { (x1 - legend_w + 18.0, 24.0) };
        out.push_str("<g class=\"legend\">\n");
        for (swatch, text) in &spec.legend {
            legend_swatch(out, *swatch, x + 8.0, y - 4.0);
            put!(out, "<text x=\"{}\" y=\"{}\" fill=\"{C_MUTED}\">{}</text>\n", C(x + 22.0), C(y), esc(text));
            x += legend_item_width(text.chars().count());
        }
        out.push_str("</g>\n");
    }
    put!(
        out,
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"{C_AXIS}\" stroke-width=\"1\"/>\n",
        C(x0),
        C(y0),
        C(x1 - x0),
        C(y1 - y0)
    );
    // The y axis title, rotated, centred on the plot.
    let ym = (y0 + y1) / 2.0;
    put!(
        out,
        "<text x=\"18\" y=\"{}\" transform=\"rotate(-90 18 {})\" text-anchor=\"middle\" fill=\"{C_MUTED}\">{}</text>\n",
        C(ym),
        C(ym),
        esc(spec.y_title)
    );

    let (Some((t0, t1)), Some(axis)) = (frame.time, axis) else {
        put!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"16\" fill=\"{C_MUTED}\">no data</text>\n",
            C((x0 + x1) / 2.0),
            C(ym)
        );
        put!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{C_MUTED}\">time (UTC)</text>\n",
            C((x0 + x1) / 2.0),
            C(h - 12.0)
        );
        return None;
    };
    let plot = Plot { x0, x1, y0, y1, t0, t1, lo: axis.lo, hi: axis.hi };

    // Horizontal grid and y labels.
    out.push_str("<g class=\"y-axis\">\n");
    for &v in &axis.ticks {
        let y = plot.y(v);
        if !(y0 - 0.5..=y1 + 0.5).contains(&y) {
            continue;
        }
        put!(
            out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{C_GRID}\" stroke-width=\"1\"/>\n",
            C(x0),
            C(y),
            C(x1),
            C(y)
        );
        put!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{C_MUTED}\">{}</text>\n",
            C(x0 - 8.0),
            C(y + 4.0),
            esc(&axis.label(v))
        );
    }
    out.push_str("</g>\n");

    // Vertical grid and time labels.
    let max_ticks = ((x1 - x0) / 120.0) as usize;
    let (step, ticks) = time_ticks(t0, t1, max_ticks);
    out.push_str("<g class=\"x-axis\">\n");
    for &t in &ticks {
        let x = plot.x(t);
        put!(
            out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{C_GRID}\" stroke-width=\"1\"/>\n",
            C(x),
            C(y0),
            C(x),
            C(y1)
        );
        put!(
            out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{C_AXIS}\" stroke-width=\"1\"/>\n",
            C(x),
            C(y1),
            C(x),
            C(y1 + 5.0)
        );
        put!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{C_MUTED}\">{}</text>\n",
            C(x),
            C(y1 + 19.0),
            esc(&time_label(t, step, t1 - t0))
        );
    }
    out.push_str("</g>\n");
    put!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{C_MUTED}\">time (UTC): {} to {}</text>\n",
        C((x0 + x1) / 2.0),
        C(h - 12.0),
        esc(&full_time(t0)),
        esc(&full_time(t1))
    );
    Some(plot)
}

// ---------------------------------------------------------------------------------------------
// Series and markers
// ---------------------------------------------------------------------------------------------

/// A line through `points` (already finite and downsampled); a dot when there is only one.
fn polyline(out: &mut String, plot: &Plot, points: &[(Nanos, f64)], color: &str, width: f64, opacity: Option<&str>) {
    let opacity = opacity.map(|o| format!(" stroke-opacity=\"{o}\"")).unwrap_or_default();
    match points {
        [] => {}
        [(t, v)] => {
            put!(out, "<circle cx=\"{}\" cy=\"{}\" r=\"2.5\" fill=\"{color}\"/>\n", C(plot.x(*t)), C(plot.y(*v)))
        }
        _ => {
            put!(
                out,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"{width}\" stroke-linejoin=\"round\"{opacity} points=\""
            );
            for (i, &(t, v)) in points.iter().enumerate() {
                if i > 0 {
                    out.push(if i % 8 == 0 { '\n' } else { ' ' });
                }
                put!(out, "{},{}", C(plot.x(t)), C(plot.y(v)));
            }
            out.push_str("\"/>\n");
        }
    }
}

/// The region between `points` and the horizontal line at pixel `base`.
fn area(out: &mut String, plot: &Plot, points: &[(Nanos, f64)], base: f64, color: &str, opacity: &str) {
    let (Some(first), Some(last)) = (points.first(), points.last()) else { return };
    if points.len() < 2 {
        return;
    }
    put!(
        out,
        "<path fill=\"{color}\" fill-opacity=\"{opacity}\" stroke=\"none\" d=\"M{},{}",
        C(plot.x(first.0)),
        C(base)
    );
    for (i, &(t, v)) in points.iter().enumerate() {
        out.push(if i % 8 == 7 { '\n' } else { ' ' });
        put!(out, "L{},{}", C(plot.x(t)), C(plot.y(v)));
    }
    put!(out, " L{},{} Z\"/>\n", C(plot.x(last.0)), C(base));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Swatch {
    Line(&'static str),
    Pivot,
    Anomaly,
    Buy,
    Sell,
}

/// The path of a marker shape centred (diamond) or pointing (triangles) at `(x, y)`: a buy's
/// apex touches its price from below, a sell's from above.
fn shape(kind: Swatch, x: f64, y: f64) -> String {
    match kind {
        Swatch::Anomaly => {
            format!(
                "M{},{} L{},{} L{},{} L{},{} Z",
                C(x),
                C(y - 6.0),
                C(x + 5.0),
                C(y),
                C(x),
                C(y + 6.0),
                C(x - 5.0),
                C(y)
            )
        }
        Swatch::Buy => format!("M{},{} L{},{} L{},{} Z", C(x), C(y), C(x + 6.0), C(y + 11.0), C(x - 6.0), C(y + 11.0)),
        Swatch::Sell => format!("M{},{} L{},{} L{},{} Z", C(x), C(y), C(x + 6.0), C(y - 11.0), C(x - 6.0), C(y - 11.0)),
        Swatch::Line(_) | Swatch::Pivot => String::new(),
    }
}

/// One legend symbol centred at `(cx, cy)`.
fn legend_swatch(out: &mut String, kind: Swatch, cx: f64, cy: f64) {
    match kind {
        Swatch::Line(color) => put!(
            out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{color}\" stroke-width=\"2\"/>\n",
            C(cx - 8.0),
            C(cy),
            C(cx + 8.0),
            C(cy)
        ),
        Swatch::Pivot => put!(
            out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{C_PIVOT}\" stroke-width=\"1\"/>\
             <circle cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"#ffffff\" stroke=\"{C_PIVOT}\" stroke-width=\"1.5\"/>\n",
            C(cx - 8.0),
            C(cy + 4.0),
            C(cx + 8.0),
            C(cy - 4.0),
            C(cx),
            C(cy)
        ),
        Swatch::Anomaly => put!(
            out,
            "<path d=\"{}\" fill=\"{C_ANOMALY}\" stroke=\"{C_ANOMALY_EDGE}\" stroke-width=\"1\"/>\n",
            shape(kind, cx, cy)
        ),
        Swatch::Buy => put!(out, "<path d=\"{}\" fill=\"{C_BUY}\"/>\n", shape(kind, cx, cy - 5.5)),
        Swatch::Sell => put!(out, "<path d=\"{}\" fill=\"{C_SELL}\"/>\n", shape(kind, cx, cy + 5.5)),
    }
}

/// The hover text of a marker: what it is, when, at what price, and its label.
fn tooltip(out: &mut String, kind: &str, m: &Marker) {
    put!(out, "<title>{kind} {} UTC @ {}", full_time(m.ts), m.price);
    if !m.label.is_empty() {
        put!(out, ": {}", esc(&m.label));
    }
    out.push_str("</title>");
}

fn finite_markers(markers: &[Marker]) -> impl Iterator<Item = &Marker> {
    markers.iter().filter(|m| m.price.is_finite())
}

fn count_finite(markers: &[Marker]) -> usize {
    finite_markers(markers).count()
}

// ---------------------------------------------------------------------------------------------
// HTML tables
// ---------------------------------------------------------------------------------------------

const CSS: &str = "\
*{box-sizing:border-box}
body{margin:0;background:#f3f4f6;color:#111827;\
font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',Arial,sans-serif}
main{max-width:1300px;margin:0 auto;padding:24px}
header{margin:0 0 16px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:16px;margin:0 0 10px}
.sub{color:#4b5563;margin:0;overflow-wrap:anywhere}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:16px;margin:0 0 16px}
section.chart{padding:8px 16px}
svg{display:block;max-width:100%;height:auto;margin:0 auto}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
.metrics th{text-align:left;font-weight:400;color:#4b5563;padding:5px 12px 5px 0;white-space:nowrap}
.metrics td{text-align:right;font-weight:600;padding:5px 40px 5px 0;white-space:nowrap}
.metrics tr+tr th,.metrics tr+tr td{border-top:1px solid #f3f4f6}
.trades{width:100%;font-size:12.5px}
.trades th{text-align:left;background:#f9fafb;border-bottom:2px solid #e5e7eb;padding:6px 10px;white-space:nowrap}
.trades td{border-bottom:1px solid #f3f4f6;padding:4px 10px;white-space:nowrap}
.trades .num{text-align:right}
.trades tbody tr:nth-child(even){background:#fafafa}
.scroll{overflow-x:auto}
.note{color:#6b7280;font-size:13px;margin:10px 0 0}
footer{color:#9ca3af;font-size:12px;text-align:center;padding:8px 0 24px}
";

/// Metrics as label/value pairs, three pairs per row.
fn metrics_table(out: &mut String, metrics: &[(String, String)]) {
    if metrics.is_empty() {
        out.push_str("<p class=\"note\">No metrics.</p>\n");
        return;
    }
    const PER_ROW: usize = 3;
    out.push_str("<table class=\"metrics\">\n<tbody>\n");
    for row in metrics.chunks(PER_ROW) {
        out.push_str("<tr>");
        for (label, value) in row {
            put!(out, "<th scope=\"row\">{}</th><td>{}</td>", esc(label), esc(value));
        }
        for _ in row.len()..PER_ROW {
            out.push_str("<th></th><td></td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

/// The trades table: the header row, then at most [`MAX_TRADE_ROWS`] rows and a note on the rest.
fn trades_table(out: &mut String, trades: &[Vec<String>]) {
    let Some((header, rows)) = trades.split_first() else {
        out.push_str("<p class=\"note\">No trades.</p>\n");
        return;
    };
    let shown = &rows[..rows.len().min(MAX_TRADE_ROWS)];
    // A column is right-aligned, header included, when all its non-empty cells are numbers.
    let width = trades.iter().map(Vec::len).max().unwrap_or(0);
    let numeric: Vec<bool> = (0..width)
        .map(|c| {
            let mut cells = shown.iter().filter_map(|r| r.get(c)).filter(|v| !v.trim().is_empty()).peekable();
            cells.peek().is_some() && cells.all(|v| looks_numeric(v))
        })
        .collect();
    let class = |c: usize| if numeric[c] { " class=\"num\"" } else { "" };
    out.push_str("<div class=\"scroll\">\n<table class=\"trades\">\n<thead>\n<tr>");
    for (c, cell) in header.iter().enumerate() {
        put!(out, "<th{}>{}</th>", class(c), esc(cell));
    }
    out.push_str("</tr>\n</thead>\n<tbody>\n");
    for row in shown {
        out.push_str("<tr>");
        for (c, cell) in row.iter().enumerate() {
            put!(out, "<td{}>{}</td>", class(c), esc(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</div>\n");
    if rows.is_empty() {
        out.push_str("<p class=\"note\">No trades.</p>\n");
    } else if rows.len() > MAX_TRADE_ROWS {
        put!(
            out,
            "<p class=\"note\">{} more trades not shown ({} in total).</p>\n",
            rows.len() - MAX_TRADE_ROWS,
            rows.len()
        );
    }
}

/// Whether a cell reads as a number ("-1,234.5", "+3.2%").
fn looks_numeric(cell: &str) -> bool {
    let t = cell.trim();
    let t = t.strip_suffix('%').unwrap_or(t);
    let t = t.strip_prefix(['+', '-']).unwrap_or(t);
    !t.is_empty()
        && t.chars().all(|c| c.is_ascii_digit() || c == ',' || c == '.')
        && t.chars().any(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Nanos = 1_723_161_600_000_000_000; // 2024-08-09T00:00:00Z

    fn marker(ts: Nanos, price: f64, label: &str) -> Marker {
        Marker { ts, price, label: label.to_string() }
    }

    /// Tags balance (void HTML tags, comments and the doctype aside), no NaN or inf sneaks in,
    /// and each `<svg>` is closed.
    fn assert_well_formed(doc: &str) {
        const VOID: &[&str] = &["meta", "br", "hr", "img", "link", "input"];
        assert!(!doc.contains("NaN"), "NaN in output");
        assert!(!doc.contains("inf\""), "inf in output");
        assert_eq!(doc.matches("<svg").count(), doc.matches("</svg>").count());
        let mut stack: Vec<String> = Vec::new();
        let mut rest = doc;
        while let Some(open) = rest.find('<') {
            let close = rest[open..].find('>').expect("unclosed tag") + open;
            let tag = &rest[open + 1..close];
            rest = &rest[close + 1..];
            if tag.starts_with('!') || tag.starts_with('?') || tag.ends_with('/') {
                continue;
            }
            assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
            } else {
                let name = tag.split_whitespace().next().unwrap_or("").to_string();
                if !VOID.contains(&name.as_str()) {
                    stack.push(name);
                }
            }
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
    }

    fn all_outputs(data: &ReportData) -> Vec<String> {
        vec![price_svg(data), equity_svg(data), drawdown_svg(data), html(data)]
    }

    /// Realistic synthetic data: a 12 h random walk around 60,000 at 10 s closes with a flash
    /// dip, zigzag pivots at 0.35% reversals, a long-only strategy that buys when a low is
    /// confirmed and sells when a high is, its mark-to-market equity, a few anomalies.
    fn demo_data() -> ReportData {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rand = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((seed >> 11) as f64) / ((1u64 << 53) as f64)
        };
        let step = 10 * NANOS_PER_SEC;
        let mut price = Vec::new();
        let (mut p, mut drift) = (60_000.0, 0.0);
        for i in 0..4320u64 {
            if i % 300 == 0 {
                drift = (rand() - 0.5) * 9.0;
            }
            p += drift + (rand() - 0.5) * 40.0;
            if i == 3000 {
                p -= 450.0; // a flash dip the downsampling must keep
            }
            price.push((T0 + i * step, p));
        }
        let (start_cash, fee) = (10_000.0, 0.0005);
        let (mut cash, mut qty, mut entry) = (start_cash, 0.0, (0, 0.0, 0.0));
        let (mut pivots, mut buys, mut sells, mut equity) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut trades = vec![
            ["#", "entry (UTC)", "exit (UTC)", "side", "entry", "exit", "pnl (USDT)", "return"]
                .map(String::from)
                .to_vec(),
        ];
        let (mut ext, mut up, mut wins) = (price[0], true, 0);
        for (i, &(t, v)) in price.iter().enumerate() {
            if (up && v > ext.1) || (!up && v < ext.1) {
                ext = (t, v);
            } else if (ext.1 - v).abs() / ext.1 > 0.0035 {
                pivots.push(marker(ext.0, ext.1, if up { "high" } else { "low" }));
                if !up && qty == 0.0 {
                    qty = cash * (1.0 - fee) / v;
                    entry = (t, v, cash);
                    cash = 0.0;
                    buys.push(marker(t, v, "low confirmed: enter long"));
                } else if up && qty > 0.0 {
                    cash = qty * v * (1.0 - fee);
                    qty = 0.0;
                    let pnl = cash - entry.2;
                    wins += usize::from(pnl > 0.0);
                    sells.push(marker(t, v, "high confirmed: exit long"));
                    trades.push(vec![
                        trades.len().to_string(),
                        full_time(entry.0),
                        full_time(t),
                        "long".into(),
                        fmt_num(entry.1, 2),
                        fmt_num(v, 2),
                        format!("{:+.2}", pnl),
                        format!("{:+.2}%", pnl / entry.2 * 100.0),
                    ]);
                }
                ext = (t, v);
                up = !up;
            }
            if i % 6 == 0 || i == price.len() - 1 {
                equity.push((t, cash + qty * v));
            }
        }
        let anomalies =
            [500usize, 1700, 3000, 3900].iter().map(|&i| marker(price[i].0, price[i].1, "volume z=4.2")).collect();
        let end = equity[equity.len() - 1].1;
        let max_dd = drawdown(&equity).iter().map(|p| p.1).fold(0.0, f64::min);
        let n = trades.len() - 1;
        ReportData {
            title: "wave-follow on binance BTC/USDT".into(),
            subtitle: "recordings/binance-2024-08-09 · threshold=0.35% fee=5bp <demo> & \"synthetic\"".into(),
            symbol: "BTC/USDT".into(),
            price,
            pivots,
            anomalies,
            buys,
            sells,
            equity,
            metrics: vec![
                ("net PnL".into(), format!("{:+.2} USDT", end - start_cash)),
                ("return".into(), format!("{:+.2}%", (end / start_cash - 1.0) * 100.0)),
                ("trades".into(), n.to_string()),
                ("max drawdown".into(), format!("{max_dd:.2}%")),
                ("win rate".into(), format!("{:.1}%", wins as f64 / n.max(1) as f64 * 100.0)),
                ("fees".into(), "5 bp per side".into()),
                ("start".into(), full_time(T0)),
            ],
            trades,
        }
    }

    #[test]
    fn nice_ticks_use_1_2_5_steps() {
        let cases: &[(f64, f64, usize, &[f64])] = &[
            (0.0, 10.0, 5, &[0.0, 2.0, 4.0, 6.0, 8.0, 10.0]),
            (0.0, 1.0, 5, &[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
            (0.0, 100.0, 10, &[0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0]),
            (59_873.0, 60_412.0, 6, &[59_900.0, 60_000.0, 60_100.0, 60_200.0, 60_300.0, 60_400.0]),
            (-25.0, 0.0, 5, &[-25.0, -20.0, -15.0, -10.0, -5.0, 0.0]),
            (-0.3, 0.3, 3, &[-0.2, 0.0, 0.2]),
            (0.0013, 0.0041, 4, &[0.002, 0.003, 0.004]),
            (10.0, 0.0, 2, &[0.0, 5.0, 10.0]),
            (7.0, 7.0, 5, &[7.0]),
            (f64::NAN, 1.0, 5, &[]),
            (0.0, f64::INFINITY, 5, &[]),
        ];
        for &(lo, hi, max, want) in cases {
            let got = nice_ticks(lo, hi, max);
            assert_eq!(got.len(), want.len(), "nice_ticks({lo}, {hi}, {max}) = {got:?}");
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-9, "nice_ticks({lo}, {hi}, {max}) = {got:?}, want {want:?}");
            }
            assert!(got.len() <= max + 1);
        }
        let steps: &[(f64, usize, f64)] =
            &[(10.0, 5, 2.0), (7.0, 5, 2.0), (3.0, 5, 1.0), (0.45, 5, 0.1), (2200.0, 4, 1000.0)];
        for &(range, max, want) in steps {
            assert!((nice_step(range, max) - want).abs() < 1e-12, "nice_step({range}, {max})");
        }
    }

    #[test]
    fn number_labels() {
        let cases: &[(f64, usize, &str)] = &[
            (60_100.0, 0, "60,100"),
            (1_234_567.891, 2, "1,234,567.89"),
            (-1_234.5, 1, "-1,234.5"),
            (999.0, 0, "999"),
            (-0.0001, 2, "0.00"),
            (0.0, 0, "0"),
            (0.000_123_4, 6, "0.000123"),
        ];
        for &(v, d, want) in cases {
            assert_eq!(fmt_num(v, d), want, "fmt_num({v}, {d})");
        }
        let decimals: &[(f64, usize)] =
            &[(100.0, 0), (1.0, 0), (5.0, 0), (0.5, 1), (0.2, 1), (0.1, 1), (0.05, 2), (0.001, 3)];
        for &(step, want) in decimals {
            assert_eq!(decimals_for(step), want, "decimals_for({step})");
        }
        assert_eq!(C(f64::NAN).to_string(), "0.0");
        assert_eq!(C(-0.04).to_string(), "0.0");
        assert_eq!(C(12.345).to_string(), "12.3");
    }

    #[test]
    fn escaping() {
        let cases: &[(&str, &str)] = &[
            ("plain BTC/USDT", "plain BTC/USDT"),
            ("a & b", "a &amp; b"),
            ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
            ("say \"hi\" 'there'", "say &quot;hi&quot; &#39;there&#39;"),
            ("&amp;", "&amp;amp;"),
            ("bell\u{7}", "bell\u{fffd}"),
            ("ünïcødé ✓", "ünïcødé ✓"),
        ];
        for &(input, want) in cases {
            assert_eq!(esc(input), want, "esc({input:?})");
        }
        let data = ReportData {
            title: "<b>&\"x\"".into(),
            subtitle: "<i>".into(),
            symbol: "A<B>".into(),
            price: vec![(T0, 1.0), (T0 + NANOS_PER_SEC, 2.0)],
            pivots: vec![marker(T0, 1.0, "<pivot>")],
            metrics: vec![("<m>".into(), "<v>".into())],
            trades: vec![vec!["<h>".into()], vec!["<c>".into()]],
            ..ReportData::default()
        };
        for doc in all_outputs(&data) {
            assert_well_formed(&doc);
            for raw in ["<b>", "<i>", "A<B>", "<pivot>", "<m>", "<v>", "<h>", "<c>"] {
                assert!(!doc.contains(raw), "unescaped {raw}");
            }
        }
    }

    #[test]
    fn drawdown_from_running_peak() {
        let cases: &[(&[f64], &[f64])] = &[
            (&[100.0, 120.0, 90.0, 130.0], &[0.0, 0.0, -25.0, 0.0]),
            (&[100.0, 50.0, 75.0, 100.0], &[0.0, -50.0, -25.0, 0.0]),
            (&[100.0, 100.0], &[0.0, 0.0]),
            (&[100.0, f64::NAN, 80.0, f64::INFINITY], &[0.0, -20.0]),
            (&[0.0, -10.0, 5.0, 4.0], &[0.0, 0.0, 0.0, -20.0]),
            (&[], &[]),
        ];
        for &(equity, want) in cases {
            let series: Vec<(Nanos, f64)> = equity.iter().enumerate().map(|(i, &v)| (i as Nanos, v)).collect();
            let got: Vec<f64> = drawdown(&series).iter().map(|p| p.1).collect();
            assert_eq!(got.len(), want.len(), "drawdown({equity:?}) = {got:?}");
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-9, "drawdown({equity:?}) = {got:?}, want {want:?}");
            }
        }
    }

    #[test]
    fn time_labels_shorten_by_span() {
        let t = T0 + 13 * HOUR + 5 * MINUTE + 7 * NANOS_PER_SEC + 250 * NANOS_PER_MS;
        let cases: &[(u64, u64, &str)] = &[
            (200 * NANOS_PER_MS, 2 * NANOS_PER_SEC, "13:05:07.250"),
            (15 * NANOS_PER_SEC, 2 * MINUTE, "13:05:07"),
            (30 * MINUTE, 6 * HOUR, "13:05"),
            (6 * HOUR, 3 * DAY, "08-09 13:05"),
            (7 * DAY, 60 * DAY, "2024-08-09"),
        ];
        for &(step, span, want) in cases {
            assert_eq!(time_label(t, step, span), want, "step {step} span {span}");
        }
        let (step, ticks) = time_ticks(T0 + 7 * MINUTE, T0 + 12 * HOUR + 3 * MINUTE, 9);
        assert_eq!(step, 2 * HOUR);
        assert_eq!(ticks, (1..=6).map(|h| T0 + 2 * h * HOUR).collect::<Vec<_>>());
        let (_, ticks) = time_ticks(0, 30 * 365 * DAY, 8);
        assert!(!ticks.is_empty() && ticks.len() <= 9);
    }

    #[test]
    fn degenerate_inputs_render_valid_charts() {
        let empty = ReportData::default();
        let single = ReportData {
            price: vec![(T0, 60_000.0)],
            equity: vec![(T0, 10_000.0)],
            buys: vec![marker(T0, 60_000.0, "buy")],
            ..ReportData::default()
        };
        let flat = ReportData {
            price: (0..100).map(|i| (T0 + i * MINUTE, 60_000.0)).collect(),
            equity: (0..100).map(|i| (T0 + i * MINUTE, 0.0)).collect(),
            ..ReportData::default()
        };
        let non_finite = ReportData {
            price: vec![(T0, f64::NAN), (T0 + MINUTE, 5.0), (T0 + 2 * MINUTE, f64::INFINITY), (T0 + 3 * MINUTE, 6.0)],
            equity: vec![(T0, f64::NEG_INFINITY), (T0 + MINUTE, f64::NAN)],
            pivots: vec![marker(T0, f64::NAN, "nan pivot")],
            sells: vec![marker(T0 + MINUTE, f64::INFINITY, "inf sell")],
            ..ReportData::default()
        };
        let huge = ReportData {
            price: vec![(0, -f64::MAX), (u64::MAX, f64::MAX)],
            equity: vec![(0, f64::MIN_POSITIVE), (1, 2.0 * f64::MIN_POSITIVE)],
            ..ReportData::default()
        };
        for (name, data) in
            [("empty", &empty), ("single", &single), ("flat", &flat), ("nan", &non_finite), ("huge", &huge)]
        {
            for doc in all_outputs(data) {
                assert_well_formed(&doc);
                assert!(doc.contains("xmlns=\"http://www.w3.org/2000/svg\""), "{name}");
                assert!(doc.contains("viewBox=\"0 0 1200 "), "{name}");
            }
        }
        assert!(price_svg(&empty).contains("no data"));
        assert!(drawdown_svg(&non_finite).contains("no data"));
        assert!(!price_svg(&single).contains("no data"));
        assert!(price_svg(&single).contains("<circle"), "a single close is drawn as a dot");
        let flat_svg = price_svg(&flat);
        assert!(flat_svg.contains("<polyline") && flat_svg.contains("60,000"), "{flat_svg}");
        assert!(html(&empty).contains("No trades.") && html(&empty).contains("No metrics."));
    }

    #[test]
    fn output_is_deterministic() {
        let data = demo_data();
        assert_eq!(all_outputs(&data), all_outputs(&data.clone()));
        for doc in all_outputs(&data) {
            assert_well_formed(&doc);
        }
        assert!(!html(&data).contains("<script"));
        let page = html(&data).replace("http://www.w3.org/2000/svg", "");
        assert!(!page.contains("http") && !page.contains("href") && !page.contains("src="));
    }

    #[test]
    fn downsampling_is_bounded_and_keeps_spikes() {
        let mut series: Vec<(Nanos, f64)> = (0..100_000u64).map(|i| (T0 + i * NANOS_PER_SEC, (i % 7) as f64)).collect();
        series[54_321].1 = 1_000.0;
        series[77_777].1 = -1_000.0;
        series[100].1 = f64::NAN;
        let out = downsample(&series, MAX_POLYLINE_POINTS);
        assert!(out.len() <= MAX_POLYLINE_POINTS, "{} points", out.len());
        assert!(out.len() >= MAX_POLYLINE_POINTS / 2);
        assert!(out.contains(&series[54_321]) && out.contains(&series[77_777]));
        assert!(out.is_sorted_by_key(|p| p.0) && out.iter().all(|p| p.1.is_finite()));
        // Short series pass through; all-equal timestamps still bound the output.
        assert_eq!(downsample(&series[..10], MAX_POLYLINE_POINTS), series[..10].to_vec());
        let same_time: Vec<(Nanos, f64)> = (0..10_000).map(|i| (T0, f64::from(i))).collect();
        assert!(downsample(&same_time, 100).len() <= 100);
        // Unordered input is put in time order.
        assert_eq!(downsample(&[(3, 1.0), (1, 2.0)], 10), vec![(1, 2.0), (3, 1.0)]);

        let big = ReportData { price: series.clone(), equity: series, ..ReportData::default() };
        let svg = price_svg(&big);
        let drawn = svg.split("points=\"").nth(1).unwrap().split('"').next().unwrap().split_whitespace().count();
        assert!(drawn <= MAX_POLYLINE_POINTS, "{drawn} points drawn");
    }

    #[test]
    fn trades_table_is_capped() {
        let mut trades = vec![vec!["#".to_string(), "pnl".to_string()]];
        trades.extend((0..250).map(|i| vec![i.to_string(), format!("{:+.2}", f64::from(i) - 100.0)]));
        let page = html(&ReportData { trades, ..ReportData::default() });
        assert_well_formed(&page);
        assert_eq!(page.matches("<tr>").count(), 1 + MAX_TRADE_ROWS);
        assert!(page.contains("50 more trades not shown (250 in total)."));
        assert!(page.contains("<td class=\"num\">-100.00</td>") && page.contains("<th class=\"num\">pnl</th>"));
        // A column with any text in it stays left-aligned; ragged rows are fine.
        let mixed = vec![vec!["side".to_string()], vec!["1".to_string(), "x".to_string()], vec!["long".to_string()]];
        let page = html(&ReportData { trades: mixed, ..ReportData::default() });
        assert_well_formed(&page);
        assert!(page.contains("<th>side</th>") && page.contains("<td>1</td>") && page.contains("<td>x</td>"));
        assert!(looks_numeric("+3.2%") && looks_numeric("-1,234.5") && !looks_numeric("long") && !looks_numeric("-"));
    }

    #[test]
    fn write_creates_the_four_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("nested/report");
        write(&target, &demo_data()).unwrap();
        for name in ["report.html", "price.svg", "equity.svg", "drawdown.svg"] {
            let text = std::fs::read_to_string(target.join(name)).unwrap();
            assert!(!text.is_empty(), "{name}");
        }
    }

    /// Writes the demo report for `scripts/report-screenshot.sh`:
    /// `TAPEDECK_REPORT_DEMO=/tmp/report-demo cargo test --lib backtest::report -- --ignored`.
    #[test]
    #[ignore = "writes a demo report for visual checks"]
    fn write_demo_report() {
        let dir = std::env::var("TAPEDECK_REPORT_DEMO").unwrap_or_else(|_| "/tmp/report-demo".to_string());
        write(Path::new(&dir), &demo_data()).unwrap();
    }
}
