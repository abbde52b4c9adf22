//! Report rendering tests: well-formed, deterministic, escaped output and the scale helpers.

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
        ["#", "entry (UTC)", "exit (UTC)", "side", "entry", "exit", "pnl (USDT)", "return"].map(String::from).to_vec(),
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
    for (name, data) in [("empty", &empty), ("single", &single), ("flat", &flat), ("nan", &non_finite), ("huge", &huge)]
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
