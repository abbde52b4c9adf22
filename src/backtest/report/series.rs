//! What is drawn inside a chart: polylines and areas of (time, value) points, marker shapes,
//! legend swatches and tooltips. Writes SVG text only.

use super::*;

/// A line through `points` (already finite and downsampled); a dot when there is only one.
pub(super) fn polyline(
    out: &mut String,
    plot: &Plot,
    points: &[(Nanos, f64)],
    color: &str,
    width: f64,
    opacity: Option<&str>,
) {
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
pub(super) fn area(out: &mut String, plot: &Plot, points: &[(Nanos, f64)], base: f64, color: &str, opacity: &str) {
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
pub(super) enum Swatch {
    Line(&'static str),
    Pivot,
    Anomaly,
    Buy,
    Sell,
}

/// The path of a marker shape centred (diamond) or pointing (triangles) at `(x, y)`: a buy's
/// apex touches its price from below, a sell's from above.
pub(super) fn shape(kind: Swatch, x: f64, y: f64) -> String {
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
pub(super) fn legend_swatch(out: &mut String, kind: Swatch, cx: f64, cy: f64) {
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
pub(super) fn tooltip(out: &mut String, kind: &str, m: &Marker) {
    put!(out, "<title>{kind} {} UTC @ {}", full_time(m.ts), m.price);
    if !m.label.is_empty() {
        put!(out, ": {}", esc(&m.label));
    }
    out.push_str("</title>");
}

pub(super) fn finite_markers(markers: &[Marker]) -> impl Iterator<Item = &Marker> {
    markers.iter().filter(|m| m.price.is_finite())
}

pub(super) fn count_finite(markers: &[Marker]) -> usize {
    finite_markers(markers).count()
}
