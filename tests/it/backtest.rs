//! Backtests end to end through the binary: hand-checked trades on tiny hand-written
//! recordings, a golden run on the sample, determinism, sweeps, stored runs, flag errors.

use std::path::Path;

use tapedeck::log::{RecordingMeta, Writer, WriterConfig};
use tapedeck::model::{Decimal, Event, Exchange, Instrument, InstrumentId, Record, Side, Trade};

use crate::util::{SAMPLE, check_golden, run, tapedeck};

/// Writes trades `(seconds, price, qty)` of BTC/USDT as a recording.
fn recording(dir: &Path, trades: &[(f64, &str, &str)]) {
    let mut writer = Writer::open(dir, RecordingMeta::new("test:hand-written", 0), WriterConfig::default()).unwrap();
    writer.intern(&Instrument::new(Exchange::Binance, "BTC", "USDT", "BTCUSDT")).unwrap();
    for (i, (t, price, qty)) in trades.iter().enumerate() {
        let ts = (t * 1e9).round() as u64 + 1_700_000_000_000_000_000;
        writer
            .append(Record {
                seq: 0,
                ts_exchange: ts,
                ts_recv: ts,
                exchange: Exchange::Binance,
                instrument: InstrumentId(0),
                event: Event::Trade(Trade {
                    price: price.parse::<Decimal>().unwrap(),
                    qty: qty.parse::<Decimal>().unwrap(),
                    side: Side::Buy,
                    trade_id: Some(i as u64),
                }),
            })
            .unwrap();
    }
    writer.close().unwrap();
}

fn backtest(rec: &Path, report: &Path, args: &[&str]) -> serde_json::Value {
    let results = report.join("results");
    let mut all = vec!["backtest", rec.to_str().unwrap(), "--json", "--report", report.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = tapedeck().args(&all).env("TAPEDECK_RESULTS", &results).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `trades.csv` rows as (entry_seq, entry_price, exit_seq, exit_price, qty, pnl).
fn trades(report: &Path) -> Vec<(u64, f64, u64, f64, f64, f64)> {
    let text = std::fs::read_to_string(report.join("trades.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (
                c[2].parse().unwrap(),
                c[4].parse().unwrap(),
                c[5].parse().unwrap(),
                c[7].parse().unwrap(),
                c[8].parse().unwrap(),
                c[10].parse().unwrap(),
            )
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + b.abs())
}

#[test]
fn wave_follow_trades_match_the_hand_computation() {
    // One trade a second. Closes 100, 98, 97, 99 confirm a down wave (97 → 99 is ≥ 1%) when
    // the candle of 99 closes, at seq 4; the buy fills on the next trade (seq 5, 102).
    // Closes then rise to 104 and 102.9 ≤ 104·0.99 confirms the up wave at seq 8; the sell
    // fills at seq 9 (101).
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let prices = ["100", "98", "97", "99", "100", "102", "104", "102.9", "103", "101", "101", "101"];
    let trades_in: Vec<(f64, &str, &str)> = prices.iter().enumerate().map(|(k, p)| (k as f64 + 0.5, *p, "1")).collect();
    recording(&rec, &trades_in);
    let report = dir.path().join("report");
    let out =
        backtest(&rec, &report, &["--strategy", "wave-follow", "--param", "amplitude=1", "--param", "timeframe=1s"]);
    // By hand, fee 10 bps: qty = 10000 / (102 · 1.001) = 97.94127441186265; the buy spends all
    // the cash; the sell returns qty · 101 · 0.999 = 9882.17664688253.
    let qty = 10_000.0 / (102.0 * 1.001);
    let got = trades(&report);
    assert_eq!(got.len(), 1, "{got:?}");
    let (entry_seq, entry_price, exit_seq, exit_price, q, pnl) = got[0];
    assert_eq!((entry_seq, entry_price, exit_seq, exit_price), (5, 102.0, 9, 101.0));
    assert!(close(q, 97.94127441186265), "{q}");
    assert!(close(pnl, 9882.17664688253 - 10_000.0), "{pnl}");
    let m = &out["metrics"];
    assert!(close(m["final_equity"].as_f64().unwrap(), qty * 101.0 * 0.999));
    assert!(close(m["fees_paid"].as_f64().unwrap(), qty * 102.0 * 0.001 + qty * 101.0 * 0.001));
    assert_eq!((m["trades"].as_u64(), m["fills"].as_u64(), m["win_rate_pct"].as_f64()), (Some(1), Some(2), Some(0.0)));
}

#[test]
fn volume_breakout_exits_by_hold_take_and_stop_as_computed_by_hand() {
    // timeframe 1s, ma 3, k 2, hold 2, stop 1%, take 2%, no fee. Each entry is a candle with
    // ≥ 2× the mean volume of the previous three that closed above its open.
    let t: &[(f64, &str, &str)] = &[
        (0.5, "100", "1"),
        (1.5, "100", "1"),
        (2.5, "100", "1"),
        (3.1, "100", "1.5"),
        (3.9, "101", "1.5"), // bucket 3: volume 3, 100 → 101
        (4.5, "101", "1"),   // seq 5 closes bucket 3: anomaly, buy
        (4.7, "100", "1"),   // seq 6: buy fills at 100, qty 100
        (5.5, "100.5", "1"), // closes bucket 4: held 1
        (6.5, "100.8", "1"), // closes bucket 5: held 2, sell
        (7.5, "100.6", "1"), // seq 9: sell fills, pnl 60
        (8.5, "100", "1"),
        (9.5, "100", "1"),
        (10.5, "100", "1"),
        (11.2, "100", "3"),
        (11.8, "100.5", "2"), // bucket 11: volume 5, up
        (12.2, "100.5", "1"), // seq 15: anomaly, buy
        (12.4, "100", "1"),   // seq 16: fills at 100, qty 100.6
        (12.6, "102.5", "1"), // seq 17: ≥ 102 take, sell
        (12.8, "102.1", "1"), // seq 18: fills, pnl 100.6 · 2.1 = 211.26
        (13.5, "100", "1"),
        (14.5, "100", "1"),
        (15.5, "100", "1"),
        (16.2, "100", "2"),
        (16.8, "100.2", "2"), // bucket 16: volume 4, up
        (17.1, "100.2", "1"), // seq 24: anomaly, buy
        (17.3, "100", "1"),   // seq 25: fills at 100, qty 102.7126
        (17.5, "98.9", "1"),  // seq 26: ≤ 99 stop, sell
        (17.7, "98.5", "1"),  // seq 27: fills, pnl −154.0689
    ];
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    recording(&rec, t);
    let report = dir.path().join("report");
    let params = ["timeframe=1s", "ma=3", "k=2", "hold=2", "stop_pct=1", "take_pct=2"];
    let mut args = vec!["--strategy", "volume-breakout", "--fee-bps", "0"];
    for p in &params {
        args.extend(["--param", p]);
    }
    let out = backtest(&rec, &report, &args);
    let want = [
        (6, 100.0, 9, 100.6, 100.0, 60.0),
        (16, 100.0, 18, 102.1, 100.6, 211.26),
        (25, 100.0, 27, 98.5, 102.7126, -154.0689),
    ];
    let got = trades(&report);
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0, g.1, g.2, g.3), (w.0, w.1, w.2, w.3), "{g:?}");
        assert!(close(g.4, w.4) && close(g.5, w.5), "{g:?} vs {w:?}");
    }
    let m = &out["metrics"];
    assert!(close(m["final_equity"].as_f64().unwrap(), 10117.1911), "{m}");
    assert!(close(m["profit_factor"].as_f64().unwrap(), 271.26 / 154.0689), "{m}");
    assert_eq!(m["fees_paid"].as_f64(), Some(0.0));
}

#[test]
fn latency_and_slippage_move_the_fill() {
    // As the wave-follow case, but 1500 ms of latency skips seq 5 (at 5.5 s, only 1 s after
    // the signal at 4.5 s): the buy fills at seq 6 (104) plus 50 bps.
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let prices = ["100", "98", "97", "99", "100", "102", "104", "102.9", "103", "101", "101", "101"];
    let trades_in: Vec<(f64, &str, &str)> = prices.iter().enumerate().map(|(k, p)| (k as f64 + 0.5, *p, "1")).collect();
    recording(&rec, &trades_in);
    let report = dir.path().join("report");
    backtest(
        &rec,
        &report,
        &[
            "--strategy",
            "wave-follow",
            "--param",
            "amplitude=1",
            "--param",
            "timeframe=1s",
            "--latency-ms",
            "1500",
            "--slippage-bps",
            "50",
        ],
    );
    let got = trades(&report);
    assert_eq!((got[0].0, got[0].2), (6, 10), "{got:?}");
    assert!(close(got[0].1, 104.0 * 1.005) && close(got[0].3, 101.0 * 0.995), "{got:?}");
}

#[test]
fn wave_follow_on_the_sample_is_golden_and_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for round in 0..2 {
        let report = dir.path().join(format!("r{round}"));
        let out = backtest(
            Path::new(SAMPLE),
            &report,
            &["--strategy", "wave-follow", "--param", "amplitude=0.05", "--param", "timeframe=10s"],
        );
        outputs.push((out, std::fs::read_to_string(report.join("trades.csv")).unwrap()));
        for file in ["equity.csv", "fills.csv", "report.html", "price.svg", "equity.svg", "drawdown.svg"] {
            assert!(report.join(file).is_file(), "{file} missing");
        }
    }
    assert_eq!(outputs[0].1, outputs[1].1, "trades.csv differs between identical runs");
    assert_eq!(outputs[0].0["metrics"], outputs[1].0["metrics"]);
    check_golden(
        "backtest_wave_follow_metrics.json",
        &(serde_json::to_string_pretty(&outputs[0].0["metrics"]).unwrap() + "\n"),
    );
    check_golden("backtest_wave_follow_trades.csv", &outputs[0].1);
}

#[test]
fn runs_are_stored_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let env = |args: &[&str]| {
        let out = tapedeck().args(args).env("TAPEDECK_RESULTS", &results).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    env(&["backtest", SAMPLE, "--strategy", "wave-follow", "--param", "amplitude=0.05", "--param", "timeframe=10s"]);
    env(&[
        "sweep",
        SAMPLE,
        "--strategy",
        "wave-follow",
        "--param",
        "timeframe=10s",
        "--grid",
        "amplitude=0.05,0.1",
        "--threads",
        "1",
    ]);
    let list: serde_json::Value = serde_json::from_str(&env(&["runs", "--json"])).unwrap();
    let kinds: Vec<&str> = list.as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["backtest", "sweep"]);
    let shown: serde_json::Value = serde_json::from_str(&env(&["runs", "show", "1", "--json"])).unwrap();
    assert_eq!(shown["strategy"], "wave-follow");
    assert_eq!(shown["params"], "amplitude=0.05,timeframe=10s,ma=1,size=1");
    assert_eq!(shown["recordings"][0]["path"], SAMPLE);
    assert!(shown["metrics"]["final_equity"].is_number());
    assert!(env(&["runs", "show", "2"]).contains("ranked points (2)"));
    let missing = tapedeck().args(["runs", "show", "9"]).env("TAPEDECK_RESULTS", &results).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such run"));
}

#[test]
fn sweep_is_identical_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut csvs = Vec::new();
    for threads in ["1", "2", "3"] {
        let out = dir.path().join(format!("sweep{threads}.csv"));
        let r = run(&[
            "sweep",
            SAMPLE,
            "--strategy",
            "wave-follow",
            "--param",
            "timeframe=10s",
            "--grid",
            "amplitude=0.02:0.1:0.02",
            "--grid",
            "ma=1,2",
            "--threads",
            threads,
            "--no-store",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        csvs.push(std::fs::read_to_string(out).unwrap());
    }
    assert_eq!(csvs[0], csvs[1]);
    assert_eq!(csvs[0], csvs[2]);
    let lines: Vec<&str> = csvs[0].lines().collect();
    assert_eq!(
        lines[0],
        "rank,amplitude,ma,value,total_return_pct,max_drawdown_pct,sharpe,sortino,trades,win_rate_pct,profit_factor,fees_paid,final_equity"
    );
    assert_eq!(lines.len(), 1 + 10);
}

#[test]
fn bad_trading_flags_get_one_line_naming_the_flag() {
    let cases: [(&[&str], &str); 6] = [
        (&["--strategy", "nope"], "--strategy nope: unknown strategy"),
        (&["--strategy", "wave-follow", "--param", "size=2"], "--param: size must be in (0, 1]"),
        (&["--strategy", "wave-follow", "--param", "bogus"], "--param"),
        (&["--strategy", "wave-follow", "--cash", "-5"], "--cash"),
        (&["--strategy", "wave-follow", "--fee-bps", "x"], "--fee-bps"),
        (&["--strategy", "wave-follow", "--latency-ms", "-1"], "--latency-ms"),
    ];
    for (args, want) in cases {
        let mut all = vec!["backtest", SAMPLE, "--no-store"];
        all.extend_from_slice(args);
        let r = run(&all);
        assert_eq!(r.code, 2, "{args:?}");
        assert_eq!(r.stderr.trim().lines().count(), 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
    }
    let r = run(&["sweep", SAMPLE, "--strategy", "wave-follow", "--grid", "amplitude=1:0:1", "--no-store"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--grid") && r.stderr.contains("end 0 is below start 1"), "{}", r.stderr);
}

#[test]
fn paper_trading_live_equals_a_backtest_of_its_own_recording() {
    use crate::mock_binance::{self, Options};
    let mock = mock_binance::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let (ws, rest) = (mock.ws_url(), mock.rest_url());
    let strategy = ["--strategy", "wave-follow", "--param", "amplitude=0.02", "--param", "timeframe=5s"];
    let mut args = vec![
        "live",
        "--exchange",
        "binance",
        "--symbols",
        "BTCUSDT",
        "--ws-url",
        &ws,
        "--rest-url",
        &rest,
        "--duration",
        "4s",
        "--record",
        rec.to_str().unwrap(),
        "--quiet",
        "--json",
    ];
    args.extend_from_slice(&strategy);
    let live = run(&args);
    assert_eq!(live.code, 0, "{}", live.stderr);
    let summary: serde_json::Value = serde_json::from_str(&live.stdout).unwrap();
    // Live keeps latency histograms: one frame-read → signal sample per signal.
    let signals = summary["signals"].as_u64().unwrap();
    assert!(signals > 0);
    assert_eq!(summary["latency"]["read_to_signal"]["count"].as_u64(), Some(signals), "{summary}");
    assert_eq!(summary["latency"]["signal_to_alert"]["count"].as_u64(), Some(signals));
    let paper = &summary["paper"];
    let fills = paper["fills"].as_u64().unwrap();
    assert!(fills >= 2, "the capture should trade: {paper}\n{}", live.stderr);
    // Every fill was printed as it happened.
    let printed = live.stderr.lines().filter(|l| l.starts_with("paper ") && l.contains(" fill ")).count();
    assert_eq!(printed as u64, fills, "{}", live.stderr);
    let report = dir.path().join("report");
    let bt = backtest(&rec, &report, &strategy);
    assert_eq!(bt["metrics"]["fills"].as_u64(), Some(fills));
    assert_eq!(bt["metrics"]["final_equity"].as_f64(), paper["equity"].as_f64(), "{paper}");
    assert_eq!(bt["metrics"]["fees_paid"].as_f64(), paper["fees_paid"].as_f64());
    assert_eq!(bt["metrics"]["trades"].as_u64(), paper["closed_trades"].as_u64());
}
