//! The HTML page's tables: metrics and trades, with numeric cells right-aligned.

use super::*;

pub(super) const CSS: &str = "\
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
pub(super) fn metrics_table(out: &mut String, metrics: &[(String, String)]) {
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
pub(super) fn trades_table(out: &mut String, trades: &[Vec<String>]) {
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
pub(super) fn looks_numeric(cell: &str) -> bool {
    let t = cell.trim();
    let t = t.strip_suffix('%').unwrap_or(t);
    let t = t.strip_prefix(['+', '-']).unwrap_or(t);
    !t.is_empty()
        && t.chars().all(|c| c.is_ascii_digit() || c == ',' || c == '.')
        && t.chars().any(|c| c.is_ascii_digit())
}
