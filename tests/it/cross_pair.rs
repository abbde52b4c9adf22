//! Detectors across pairs on real data: the 10 Bittrex 5m files imported into one recording
//! (`import ohlcv`), replayed with volume, waves and volatility, and scanned (`scan`).
//! Signals are checked against golden files and recomputed from the CSV files themselves.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::util::*;

const DIR: &str = "tests/fixtures/bittrex_5m_multi";
const PAIRS: [&str; 10] = ["ADA", "DASH", "ETC", "ETH", "LTC", "NXT", "TRX", "XLM", "XMR", "ZEC"];
/// In this order on the command line, so signals of one record come in this order.
const DETECTORS: [&str; 3] =
    ["volume:timeframe=5m,ma=20,k=3", "waves:amplitude=5,timeframe=5m", "volatility:timeframe=5m"];
const FIVE_MIN_NS: u64 = 300_000_000_000;

fn files() -> Vec<String> {
    PAIRS.iter().map(|p| format!("{DIR}/{p}_BTC-5m.csv")).collect()
}

/// One CSV row: open time (ns) and the close and volume strings.
struct Row {
    open_ns: u64,
    close: String,
    volume: String,
}

fn csv(pair: &str) -> Vec<Row> {
    std::fs::read_to_string(root().join(format!("{DIR}/{pair}_BTC-5m.csv")))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            Row { open_ns: c[0].parse::<u64>().unwrap() * 1_000_000, close: c[5].into(), volume: c[6].into() }
        })
        .collect()
}

/// Imports every file into `dir/rec` in one command (in `order`) and returns its path.
fn import_all(dir: &std::path::Path, reverse: bool) -> String {
    let rec = dir.join(if reverse { "rev" } else { "rec" }).to_str().unwrap().to_string();
    let mut files = files();
    if reverse {
        files.reverse();
    }
    let mut args = vec!["import", "ohlcv"];
    args.extend(files.iter().map(String::as_str));
    args.extend_from_slice(&["--exchange", "bittrex", "--symbol-from-filename", "--out", &rec]);
    let out = run(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("imported 57546 records (seq 0..57546, 10 instruments)"), "{}", out.stderr);
    rec
}

/// The raw text of `symbol`'s object in the `list` array of a snapshot line.
fn raw_row<'a>(snapshot: &'a str, list: &str, symbol: &str) -> Option<&'a str> {
    let (volume, waves) = snapshot.split_once("\"recent_waves\":").unwrap();
    let part = if list == "top_volume" { volume } else { waves };
    let start = part.find(&format!("{{\"symbol\":\"{symbol}\""))?;
    Some(&part[start..start + part[start..].find('}').unwrap() + 1])
}

/// The text of a numeric field of a JSON line, as written: exact, no float re-parsing.
fn num<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line.find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("{key} in {line}")) + key.len() + 3;
    let rest = &line[start..];
    &rest[..rest.find([',', '}']).unwrap()]
}

/// How serde_json writes `x` (the signal rendering uses the same).
fn json_f64(x: f64) -> String {
    serde_json::to_string(&x).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn ohlcv_import_merges_pairs_by_time_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let rec = import_all(dir.path(), false);
    let info: Value = serde_json::from_str(&run(&["inspect", &rec, "--json"]).stdout).unwrap();
    assert_eq!(info["source"], "import:ohlcv");
    let records = tapedeck::log::read_all(std::path::Path::new(&rec)).unwrap();
    let reader = tapedeck::log::Reader::open(std::path::Path::new(&rec)).unwrap();
    let symbols = reader.symbols();
    let names: Vec<String> =
        symbols.iter().map(|(_, i)| format!("{} {} {}", i.exchange, i.symbol, i.venue_symbol)).collect();
    let expected: Vec<String> = PAIRS.iter().map(|p| format!("bittrex {p}/BTC {p}/BTC")).collect();
    assert_eq!(names, expected, "interned in instrument order; OHLCV files carry no venue spelling");
    // seq order is time order, ties by instrument; ts = the candle's last millisecond.
    let mut per_pair: BTreeMap<String, Vec<(u64, String, String)>> = BTreeMap::new();
    let mut previous = None;
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64);
        assert_eq!(r.ts_recv, r.ts_exchange);
        assert_eq!(r.exchange, tapedeck::model::Exchange::Bittrex);
        let key = (r.ts_exchange, r.instrument);
        assert!(previous.is_none_or(|p| p < key), "seq {}: {key:?} after {previous:?}", r.seq);
        previous = Some(key);
        let tapedeck::model::Event::Candle(c) = &r.event else { panic!("seq {}: not a candle", r.seq) };
        assert_eq!(r.ts_exchange, c.open_time + FIVE_MIN_NS - 1_000_000);
        assert!(c.closed && c.interval_s == 300 && c.quote_volume.is_none());
        let pair = symbols.get(r.instrument).unwrap().symbol.trim_end_matches("/BTC").to_string();
        per_pair.entry(pair).or_default().push((c.open_time, c.close.to_string(), c.volume.to_string()));
    }
    // Every row of every file, with its decimals exactly as written.
    for pair in PAIRS {
        let from_csv: Vec<(u64, String, String)> =
            csv(pair).into_iter().map(|r| (r.open_ns, r.close, r.volume)).collect();
        assert_eq!(per_pair[pair], from_csv, "{pair}");
    }
    // The file order on the command line changes nothing.
    let reversed = tapedeck::log::read_all(std::path::Path::new(&import_all(dir.path(), true))).unwrap();
    assert!(records == reversed, "importing the files in reverse order gives the same records");
}

#[test]
fn ohlcv_single_pair_and_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("ada");
    let rec_s = rec.to_str().unwrap();
    let ada = format!("{DIR}/ADA_BTC-5m.csv");
    let out = run(&[
        "import",
        "ohlcv",
        &ada,
        "--exchange",
        "bittrex",
        "--symbol",
        "ADA/BTC",
        "--interval",
        "5m",
        "--out",
        rec_s,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let first: Value = serde_json::from_str(run(&["export", rec_s, "--limit", "1"]).stdout.trim()).unwrap();
    assert_eq!(
        (&first["exchange"], &first["symbol"], &first["open"], &first["volume"]),
        (&Value::from("bittrex"), &Value::from("ADA/BTC"), &Value::from("0.00005330"), &Value::from("431401.97869504"))
    );

    // A damaged row in the third of three files: the error names it, and nothing is written,
    // neither to a new recording nor to an existing one.
    let mut text = std::fs::read_to_string(root().join(DIR).join("ETC_BTC-5m.csv")).unwrap();
    text = text.replacen("0.00267392,10483.26501446", "0.00267392,10483.2650x446", 1);
    let bad = dir.path().join("ETC_BTC-5m.csv");
    std::fs::write(&bad, text).unwrap();
    let bad_s = bad.to_str().unwrap();
    let dash = format!("{DIR}/DASH_BTC-5m.csv");
    // Appending, the bad file goes first: the good ones would fail the overlap check.
    for (out_dir, files) in [
        (dir.path().join("new"), [ada.as_str(), dash.as_str(), bad_s]),
        (rec.clone(), [bad_s, ada.as_str(), dash.as_str()]),
    ] {
        let before = tapedeck::log::read_all(&out_dir).map(|r| r.len()).ok();
        let mut args = vec!["import", "ohlcv"];
        args.extend(files);
        args.extend_from_slice(&[
            "--exchange",
            "bittrex",
            "--symbol-from-filename",
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        let out = run(&args);
        assert_eq!(out.code, 2);
        assert!(out.stderr.contains(&format!("{bad_s}:2: column volume: invalid character 'x'")), "{}", out.stderr);
        assert_eq!(tapedeck::log::read_all(&out_dir).map(|r| r.len()).ok(), before, "nothing written");
    }
    assert!(!dir.path().join("new").exists(), "no partial recording is left behind");

    // Appending the same pair again goes back in time.
    let again = run(&["import", "ohlcv", &ada, "--exchange", "bittrex", "--symbol", "ADA/BTC", "--out", rec_s]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("starts before the end of what the recording already holds"), "{}", again.stderr);
}

/// Bittrex is an import-only venue: commands that need its network refuse it in one line.
#[test]
fn bittrex_is_import_only() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("rec");
    let out_s = out_dir.to_str().unwrap();
    let cases: [&[&str]; 5] = [
        &["record", "--exchange", "bittrex", "--symbols", "ADA/BTC", "--out", out_s],
        &["live", "--exchange", "bittrex", "--symbols", "ADA/BTC", "--detect", "volume"],
        &["symbols", "--exchange", "bittrex"],
        &[
            "backfill",
            "--exchange",
            "bittrex",
            "--symbols",
            "ADA/BTC",
            "--kline",
            "5m",
            "--from",
            "2018-01-10",
            "--to",
            "2018-01-11",
            "--out",
            out_s,
        ],
        &[
            "import",
            "binance-klines",
            "tests/fixtures/bittrex_5m_multi/ADA_BTC-5m.csv",
            "--symbol",
            "ADABTC",
            "--exchange",
            "bittrex",
            "--out",
            out_s,
        ],
    ];
    for args in cases {
        let out = run(args);
        assert_eq!(out.code, 2, "{args:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.starts_with("error: --exchange bittrex: "), "{args:?}: {}", out.stderr);
        assert!(!out_dir.exists(), "{args:?} created {out_s}");
    }
    let out = run(&[
        "import",
        "ohlcv",
        "tests/fixtures/bittrex_5m_multi/ADA_BTC-5m.csv",
        "--symbol",
        "ADA/BTC",
        "--out",
        out_s,
    ]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--exchange is required for ohlcv files"), "{}", out.stderr);
}

/// Replays the recording with [`DETECTORS`]; returns the signal lines.
fn replay_signals(rec: &str) -> (Vec<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signals.jsonl");
    let mut args = vec!["replay", rec, "--quiet", "--signals-out", path.to_str().unwrap()];
    for spec in DETECTORS {
        args.extend_from_slice(&["--detect", spec]);
    }
    let out = run(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = std::fs::read_to_string(path).unwrap();
    let digest = out.stderr.lines().find_map(|l| l.strip_prefix("digest: ")).expect("a digest line").to_string();
    assert_eq!(digest, sha256_hex(text.as_bytes()));
    (text.lines().map(str::to_string).collect(), text)
}

/// The signals of the 10 pairs: golden files, the ordering rule, and every volume anomaly
/// and wave recomputed from the CSV files.
#[test]
fn cross_pair_signals_golden_and_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    let rec = import_all(dir.path(), false);
    let (lines, text) = replay_signals(&rec);
    let parsed: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let detector = |v: &Value| v["detector"].as_str().unwrap().to_string();
    let symbol = |v: &Value| v["symbol"].as_str().unwrap().to_string();

    // Ordering: by seq (the record that closed the candle), then detector order as given.
    let rank = |v: &Value| DETECTORS.iter().position(|d| d.starts_with(&format!("{}:", detector(v)))).unwrap();
    for pair in parsed.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let key = |v: &Value| (v["seq"].as_u64().unwrap(), rank(v));
        assert!(key(a) < key(b), "order: {a} then {b}");
        if a["seq"] == b["seq"] {
            assert_eq!(symbol(a), symbol(b), "one record is one candle of one pair");
        }
    }

    // Coverage: signals about every pair, from every detector, and waves on several pairs.
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for v in &parsed {
        *counts.entry((symbol(v), detector(v))).or_default() += 1;
    }
    let with = |d: &str| counts.keys().filter(|(_, det)| det == d).map(|(s, _)| s.clone()).collect::<BTreeSet<_>>();
    assert_eq!(with("volume").len(), 10, "{counts:?}");
    assert_eq!(with("volatility").len(), 10, "{counts:?}");
    assert!(with("waves").len() >= 5, "{counts:?}");

    // Golden: a summary with the digest of the whole file and of each detector's lines,
    // counts per pair, every wave, and the first volume and volatility signals. The volume
    // and wave lines are also recomputed from the CSV files below.
    let of = |d: &str| -> Vec<&str> {
        lines.iter().zip(&parsed).filter(|(_, v)| detector(v) == d).map(|(l, _)| l.as_str()).collect()
    };
    let mut summary = format!("records 57546\nsignals {} sha256 {}\n", lines.len(), sha256_hex(text.as_bytes()));
    for d in ["volume", "waves", "volatility"] {
        let joined: String = of(d).iter().map(|l| format!("{l}\n")).collect();
        summary += &format!("{d} {} sha256 {}\n", of(d).len(), sha256_hex(joined.as_bytes()));
    }
    summary += &format!("{:<10} {:>7} {:>6} {:>11}\n", "symbol", "volume", "waves", "volatility");
    for pair in PAIRS {
        let s = format!("{pair}/BTC");
        let n = |d: &str| counts.get(&(s.clone(), d.to_string())).copied().unwrap_or(0);
        summary += &format!("{s:<10} {:>7} {:>6} {:>11}\n", n("volume"), n("waves"), n("volatility"));
    }
    check_golden("bittrex_5m_signals_summary.txt", &summary);
    check_golden("bittrex_5m_signals_waves.jsonl", &of("waves").iter().map(|l| format!("{l}\n")).collect::<String>());
    let head: String = of("volume")
        .iter()
        .take(10)
        .chain(of("volatility").iter().take(10))
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    check_golden("bittrex_5m_signals_head.jsonl", &head);

    // By hand, one anomaly: ADA/BTC's 06:40 candle against the 20 candles before it.
    let ada = csv("ADA");
    let i = ada.iter().position(|r| r.open_ns == 1_515_566_400_000_000_000).unwrap();
    let baseline = ada[i - 20..i].iter().map(|r| r.volume.parse::<f64>().unwrap()).sum::<f64>() / 20.0;
    let first = of("volume")[0];
    assert!(first.contains("\"symbol\":\"ADA/BTC\""), "{first}");
    assert_eq!(num(first, "bucket_start"), "1515566400000000000");
    assert_eq!(num(first, "volume"), "2110968.53534837");
    assert_eq!(num(first, "baseline"), json_f64(baseline));
    assert!((baseline - 642_100.677_617_996_6).abs() < 1e-6, "{baseline}");

    // Every volume anomaly, recomputed per pair from its CSV rows (the engine sees one candle
    // per row, so the baseline is the mean of the previous 20 rows).
    let mut expected = Vec::new();
    for pair in PAIRS {
        let rows = csv(pair);
        let volumes: Vec<f64> = rows.iter().map(|r| r.volume.parse().unwrap()).collect();
        for i in 20..rows.len() {
            let baseline = volumes[i - 20..i].iter().sum::<f64>() / 20.0;
            if baseline > 0.0 && volumes[i] >= 3.0 * baseline {
                let start = rows[i].open_ns;
                expected.push(format!(
                    "\"ts\":{},\"exchange\":\"bittrex\",\"symbol\":\"{pair}/BTC\",\"detector\":\"volume\",\"params\":\"timeframe=5m,ma=20,k=3,min_quote=0\",\"bucket_start\":{start},\"volume\":{},\"baseline\":{},\"ratio\":{},\"quote_volume\":null}}",
                    start + FIVE_MIN_NS - 1_000_000,
                    json_f64(volumes[i]),
                    json_f64(baseline),
                    json_f64(volumes[i] / baseline),
                ));
            }
        }
    }
    let mut got: Vec<String> = of("volume").iter().map(|l| l.split_once(',').unwrap().1.to_string()).collect();
    expected.sort();
    got.sort();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "volume signals differ from the recomputation");

    // Every wave: its ends are real closes, consecutive waves of a pair chain and alternate,
    // and each is at least the 5% amplitude.
    let closes: BTreeMap<(String, u64), f64> = PAIRS
        .iter()
        .flat_map(|p| csv(p).into_iter().map(move |r| ((format!("{p}/BTC"), r.open_ns), r.close.parse().unwrap())))
        .collect();
    let mut last: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for line in of("waves") {
        let v: Value = serde_json::from_str(line).unwrap();
        let s = symbol(&v);
        let (start_ts, end_ts): (u64, u64) =
            (num(line, "start_ts").parse().unwrap(), num(line, "end_ts").parse().unwrap());
        let (start, end) = (closes[&(s.clone(), start_ts)], closes[&(s.clone(), end_ts)]);
        assert_eq!(num(line, "start_price"), json_f64(start), "{line}");
        assert_eq!(num(line, "end_price"), json_f64(end), "{line}");
        let change = (end / start - 1.0) * 100.0;
        assert_eq!(num(line, "change_pct"), json_f64(change), "{line}");
        assert!(change.abs() >= 5.0, "{line}");
        let dir = v["dir"].as_str().unwrap().to_string();
        assert_eq!(dir, if change > 0.0 { "up" } else { "down" }, "{line}");
        if let Some((previous_end, previous_dir)) = last.get(&s) {
            assert_eq!(start_ts, *previous_end, "waves of {s} chain: {line}");
            assert_ne!(&dir, previous_dir, "waves of {s} alternate: {line}");
        }
        last.insert(s, (end_ts, dir));
    }
}

/// Runs `scan --json` with [`DETECTORS`]; returns the snapshot lines.
fn scan(rec: &str, top: &str) -> Vec<String> {
    let mut args = vec!["scan", rec, "--json", "--top", top];
    for spec in DETECTORS {
        args.extend_from_slice(&["--detect", spec]);
    }
    let out = run(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("scanned 57546 records; 5760 snapshots of 5m buckets"), "{}", out.stderr);
    out.stdout.lines().map(str::to_string).collect()
}

/// `scan --json`: one snapshot per 5m bucket, golden on the first three hours and the last
/// bucket, and consistent with the replay's signals.
#[test]
fn scan_snapshots_golden_and_consistent_with_replay() {
    let dir = tempfile::tempdir().unwrap();
    let rec = import_all(dir.path(), false);
    let top3 = scan(&rec, "3");
    assert_eq!(top3.len(), 5760, "one snapshot per bucket: every 5m bucket of the window has candles");
    let golden: String = top3.iter().take(36).chain(top3.last()).map(|l| format!("{l}\n")).collect();
    check_golden("scan_bittrex_5m.jsonl", &golden);
    assert_eq!(scan(&rec, "3"), top3, "a scan is deterministic");

    // With room for every pair, each volume anomaly and wave of the replay shows in the
    // snapshot of the bucket its candle closed in, with the same numbers.
    let all = scan(&rec, "10");
    let snapshots: BTreeMap<u64, &str> =
        all.iter().map(|l| (num(l, "bucket_start").parse().unwrap(), l.as_str())).collect();
    let starts: Vec<u64> = snapshots.keys().copied().collect();
    assert!(starts.windows(2).all(|w| w[1] - w[0] == FIVE_MIN_NS), "consecutive 5m buckets");
    for line in &all {
        let v: Value = serde_json::from_str(line).unwrap();
        let rows = v["top_volume"].as_array().unwrap();
        for pair in rows.windows(2) {
            let key = |r: &Value| (-r["ratio"].as_f64().unwrap(), r["symbol"].as_str().unwrap().to_string());
            assert!(key(&pair[0]) <= key(&pair[1]), "ranked by ratio, then symbol: {line}");
        }
    }
    let (lines, _) = replay_signals(&rec);
    let mut checked = 0;
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap();
        let bucket = v["ts"].as_u64().unwrap() / FIVE_MIN_NS * FIVE_MIN_NS;
        let snapshot = snapshots[&bucket];
        let find = |list: &str| {
            raw_row(snapshot, list, v["symbol"].as_str().unwrap())
                .unwrap_or_else(|| panic!("{} missing from the {list} of bucket {bucket}: {line}", v["symbol"]))
        };
        match v["detector"].as_str().unwrap() {
            "volume" => {
                let row = find("top_volume");
                for key in ["ratio", "volume", "baseline"] {
                    assert_eq!(num(row, key), num(line, key), "{key}: {row} vs {line}");
                }
                checked += 1;
            }
            "waves" => {
                let row = find("recent_waves");
                assert_eq!(num(row, "end_ts"), num(line, "end_ts"), "{row} vs {line}");
                assert_eq!(num(row, "change_pct"), num(line, "change_pct"), "{row} vs {line}");
                checked += 1;
            }
            _ => {}
        }
    }
    assert!(checked > 3000, "{checked}");
}

/// `replay --threads`: instruments shared out among engines on rayon, signals merged back in
/// input order. The 10-pair recording gives the same signal bytes for any thread count, with
/// RAYON_NUM_THREADS=1, and with the single engine; so do two recordings merged.
#[test]
fn replay_signals_are_identical_for_any_engine_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let rec = import_all(dir.path(), false);
    let replay = |recs: &[&str], threads: &str, rayon: Option<&str>| {
        let out = dir.path().join(format!("signals-{}-{threads}-{rayon:?}.jsonl", recs.len()));
        let mut cmd = tapedeck();
        cmd.arg("replay").args(recs).args(["--threads", threads, "--quiet", "--json"]);
        cmd.args(["--signals-out", out.to_str().unwrap()]);
        for spec in DETECTORS {
            cmd.args(["--detect", spec]);
        }
        if let Some(n) = rayon {
            cmd.env("RAYON_NUM_THREADS", n);
        }
        let output = cmd.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
        (std::fs::read_to_string(out).unwrap(), summary["threads"].as_u64().unwrap(), summary["engine"].clone())
    };
    let (single, used, stats) = replay(&[&rec], "1", None);
    assert_eq!(used, 1);
    assert!(single.lines().count() > 100, "the detectors fire across the pairs");
    for (threads, rayon, expected_threads) in [("2", None, 2), ("3", None, 3), ("8", None, 8), ("0", Some("1"), 1)] {
        let (signals, used, engine) = replay(&[&rec], threads, rayon);
        assert_eq!(used, expected_threads, "--threads {threads}, RAYON_NUM_THREADS={rayon:?}");
        assert!(signals == single, "--threads {threads}, RAYON_NUM_THREADS={rayon:?}: signals differ");
        assert_eq!(engine, stats, "engine counters are summed over the shards");
    }
    // Two recordings merged: each counts seq from 0, so merge order (not seq) orders signals.
    let rev = import_all(dir.path(), true);
    let (merged_single, _, _) = replay(&[&rec, &rev], "1", None);
    let (merged_sharded, _, _) = replay(&[&rec, &rev], "2", None);
    assert!(merged_single == merged_sharded, "merged recordings: signals differ between 1 and 2 threads");
}
