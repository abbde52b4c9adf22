//! Chart layout: the shared time axis and left margin of every chart, and the frame, axes,
//! grid, titles and legend each chart is drawn in. Writes SVG text only.

use super::*;

/// What the three charts share, so they line up on the page: the time domain and the left
/// margin. Also each chart's value axis.
pub(super) struct Frame {
    pub(super) time: Option<(Nanos, Nanos)>,
    pub(super) left: f64,
    pub(super) price: Option<Axis>,
    pub(super) equity: Option<Axis>,
    pub(super) drawdown: Option<Axis>,
}

impl Frame {
    pub(super) fn new(data: &ReportData) -> Frame {
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

pub(super) fn plot_height(height: f64, top: f64) -> f64 {
    height - top - MARGIN_BOTTOM
}

pub(super) fn legend_item_width(chars: usize) -> f64 {
    // Legend text is mostly lower case, a little narrower than the labels' digits.
    22.0 + chars as f64 * 6.2 + 20.0
}

/// What distinguishes one chart from another.
pub(super) struct Spec {
    pub(super) id: &'static str,
    /// The SVG's `<title>` (tooltip and accessible name).
    pub(super) doc_title: String,
    /// Drawn at the top left.
    pub(super) title: String,
    pub(super) y_title: &'static str,
    pub(super) height: f64,
    pub(super) legend: Vec<(Swatch, String)>,
}

/// The plot area and its mapping from (time, value) to pixels.
pub(super) struct Plot {
    pub(super) x0: f64,
    pub(super) x1: f64,
    pub(super) y0: f64,
    pub(super) y1: f64,
    pub(super) t0: Nanos,
    pub(super) t1: Nanos,
    pub(super) lo: f64,
    pub(super) hi: f64,
}

impl Plot {
    pub(super) fn x(&self, t: Nanos) -> f64 {
        let frac = (i128::from(t) - i128::from(self.t0)) as f64 / (i128::from(self.t1) - i128::from(self.t0)) as f64;
        self.x0 + frac * (self.x1 - self.x0)
    }

    pub(super) fn y(&self, v: f64) -> f64 {
        self.y1 - (v - self.lo) / (self.hi - self.lo) * (self.y1 - self.y0)
    }

    /// Two points per pixel column at most, and never more than [`MAX_POLYLINE_POINTS`].
    pub(super) fn buckets(&self) -> usize {
        (((self.x1 - self.x0) as usize) * 2).min(MAX_POLYLINE_POINTS)
    }
}

/// A coordinate at fixed precision; anything non-finite is drawn at 0 rather than as "NaN".
pub(super) struct C(pub(super) f64);

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
pub(super) fn begin(out: &mut String, spec: &Spec, frame: &Frame, axis: Option<&Axis>) -> Option<Plot> {
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
