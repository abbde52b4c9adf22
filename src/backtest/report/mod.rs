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
//!
//! The entry points are here; `layout.rs` draws frames, axes and legends, `series.rs` what goes
//! inside them, `scale.rs` picks ticks and formats labels, and `html.rs` writes the tables.

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

mod html;
mod layout;
mod scale;
mod series;
#[cfg(test)]
mod tests;

use html::*;
use layout::*;
use scale::*;
use series::*;

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
