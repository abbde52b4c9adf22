//! Importing Binance public dumps: exact values, candles against the venue's own, bad rows,
//! overlaps, µs timestamps and zip archives.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::Value;
use tapedeck::engine::{Bar, Detector, Engine, Signal, View};
use tapedeck::model::{Decimal, Event, Record};

use crate::util::*;

const DUMPS: &str = "tests/fixtures/historical/binance_spot";

fn import(args: &[&str]) -> Run {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    run(&all)
}

fn first_and_last(rec: &str, count: u64) -> (Value, Value) {
    let first = run(&["export", rec, "--limit", "1"]);
    let last = run(&["export", rec, "--from", &(count - 1).to_string()]);
    (serde_json::from_str(first.stdout.trim()).unwrap(), serde_json::from_str(last.stdout.trim()).unwrap())
}

#[test]
fn real_dumps_import_exactly() {
    // (source, files, symbol, records, first fields, last fields)
    let cases: [(&str, &[&str], &str, u64, [(&str, &str); 2], [(&str, &str); 2]); 4] = [
        (
            "binance-aggtrades",
            &["xrpeth_freqtrade/XRPETH-aggTrades-2019-10-11_2019-10-13.csv"],
            "XRPETH",
            12_477,
            [("price", "0.00141342"), ("qty", "23.00000000")],
            [("price", "0.00152787"), ("qty", "130.00000000")],
        ),
        (
            "binance-trades",
            &["trades_from_ws/BTCUSDT-trades-20240808T2354Z-20240809T0000Z-derived.csv"],
            "BTCUSDT",
            9738,
            [("price", "61837.63000000"), ("qty", "0.02000000")],
            [("price", "61685.99000000"), ("qty", "0.01801000")],
        ),
        (
            "binance-klines",
            &["klines_1m/ADABTC-1m-2021-11-27.csv", "klines_1m/ADABTC-1m-2021-11-28.csv"],
            "ADABTC",
            21,
            [("open", "0.00002853"), ("quote_volume", "1.03547608")],
            [("close", "0.00002814"), ("volume", "12248.30000000")],
        ),
        (
            "binance-klines",
            &["xrpeth_freqtrade/XRPETH-1m-2019-10-11_2019-10-13.csv"],
            "XRPETH",
            2469,
            [("open", "0.00141342"), ("volume", "1482.00000000")],
            [("close", "0.00152787"), ("volume", "785.00000000")],
        ),
    ];
    for (source, files, symbol, count, first_fields, last_fields) in cases {
        let dir = tempfile::tempdir().unwrap();
        let rec = dir.path().join("rec");
        let rec = rec.to_str().unwrap();
        let paths: Vec<String> = files.iter().map(|f| format!("{DUMPS}/{f}")).collect();
        let mut args = vec![source];
        args.extend(paths.iter().map(String::as_str));
        args.extend_from_slice(&["--symbol", symbol, "--out", rec]);
        let out = import(&args);
        assert_eq!(out.code, 0, "{source}: {}", out.stderr);
        let info: Value = serde_json::from_str(&run(&["inspect", rec, "--json"]).stdout).unwrap();
        assert_eq!(info["records"], count, "{source} {files:?}");
        assert_eq!(info["source"], format!("import:{source}"));
        let (first, last) = first_and_last(rec, count);
        for (k, v) in first_fields {
            assert_eq!(first[k], v, "{source} first {k}");
        }
        for (k, v) in last_fields {
            assert_eq!(last[k], v, "{source} last {k}");
        }
        assert_eq!(first["ts_recv"], first["ts_exchange"], "imports set ts_recv = ts_exchange");
    }
}

/// Collects every closed candle the engine builds.
struct Collect(std::sync::Arc<std::sync::Mutex<Vec<Bar>>>);

impl Detector for Collect {
    fn name(&self) -> &'static str {
        "collect"
    }
    fn params(&self) -> String {
        String::new()
    }
    fn timeframe_s(&self) -> Option<u32> {
        Some(60)
    }
    fn on_candle(&mut self, _view: &View, bar: &Bar, _cause: &Record, _out: &mut Vec<Signal>) {
        self.0.lock().unwrap().push(bar.clone());
    }
}

/// Candles the engine builds from the real aggTrades equal Binance's own 1m candles.
#[test]
fn candles_from_imported_agg_trades_match_the_real_1m_candles() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let file = format!("{DUMPS}/xrpeth_freqtrade/XRPETH-aggTrades-2019-10-11_2019-10-13.csv");
    assert_eq!(import(&["binance-aggtrades", &file, "--symbol", "XRPETH", "--out", rec.to_str().unwrap()]).code, 0);
    let reader = tapedeck::log::Reader::open(&rec).unwrap();
    let bars = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut engine = Engine::new(reader.symbols().clone(), vec![Box::new(Collect(bars.clone()))]);
    for record in reader.records_from(0) {
        engine.on_record(&record.unwrap());
    }
    let real: BTreeMap<u64, Vec<Decimal>> =
        std::fs::read_to_string(root().join(DUMPS).join("xrpeth_freqtrade/XRPETH-1m-2019-10-11_2019-10-13.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let c: Vec<&str> = l.split(',').collect();
                let t = c[0].parse::<u64>().unwrap() * 1_000_000;
                (t, c[2..7].iter().map(|x| x.parse().unwrap()).collect())
            })
            .collect();
    let bars = bars.lock().unwrap();
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for bar in bars.iter().filter(|b| !b.flat) {
        let ours = vec![bar.open, bar.high, bar.low, bar.close, bar.volume];
        match real.get(&bar.open_time) {
            Some(theirs) if *theirs == ours => compared += 1,
            Some(theirs) => mismatches.push(format!("{}: ours {ours:?} theirs {theirs:?}", bar.open_time)),
            None => mismatches.push(format!("{}: no real candle for a bucket with trades", bar.open_time)),
        }
    }
    // Buckets with no trades are flat candles on our side and absent from the real file.
    let flat_with_real_row = bars.iter().filter(|b| b.flat && real.contains_key(&b.open_time)).count();
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
    assert_eq!(flat_with_real_row, 0);
    assert_eq!(compared, real.len() - 1, "every real candle but the last (still open at the end of the trades)");
}

#[test]
fn bad_rows_name_file_and_line_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("BTCUSDT-trades-bad.csv");
    std::fs::write(
        &csv,
        "1,61837.63,0.02,1236.75,1723161255342,True,True\n2,61837.63,0.04,1,1723161255617,True,True\n3,6183x.63,0.01,1,1723161255618,False,True\n4,61837.64,0.01,1,1723161255619,False,True\n",
    )
    .unwrap();
    let rec = dir.path().join("rec");
    let (csv_s, rec_s) = (csv.to_str().unwrap(), rec.to_str().unwrap());
    let out = import(&["binance-trades", csv_s, "--symbol", "BTCUSDT", "--out", rec_s]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains(&format!("{csv_s}:3: column price: invalid character 'x'")), "{}", out.stderr);
    assert!(!rec.exists(), "nothing partial is left behind");
    let out = import(&["binance-trades", csv_s, "--symbol", "BTCUSDT", "--out", rec_s, "--skip-bad-rows"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("skipped 1 bad rows"), "{}", out.stderr);
    assert!(out.stderr.contains(":3: column price"), "the skipped row is reported: {}", out.stderr);
    let short = dir.path().join("short.csv");
    std::fs::write(&short, "1,2,3\n").unwrap();
    let out = import(&["binance-trades", short.to_str().unwrap(), "--symbol", "BTCUSDT", "--out", rec_s]);
    assert!(out.stderr.contains(":1: expected 7 columns, found 3"), "{}", out.stderr);
}

#[test]
fn appending_keeps_seq_contiguous_and_refuses_overlaps() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let rec = rec.to_str().unwrap();
    let day1 = format!("{DUMPS}/klines_1m/ADABTC-1m-2021-11-27.csv");
    let day2 = format!("{DUMPS}/klines_1m/ADABTC-1m-2021-11-28.csv");
    assert_eq!(import(&["binance-klines", &day1, "--symbol", "ADABTC", "--out", rec]).code, 0);
    assert_eq!(import(&["binance-klines", &day2, "--symbol", "ADABTC", "--out", rec]).code, 0);
    let again = import(&["binance-klines", &day1, "--symbol", "ADABTC", "--out", rec]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("--allow-overlap"), "{}", again.stderr);
    let records = tapedeck::log::read_all(std::path::Path::new(rec)).unwrap();
    assert_eq!(records.len(), 21);
    assert!(records.iter().enumerate().all(|(i, r)| r.seq == i as u64));
    assert_eq!(import(&["binance-klines", &day1, "--symbol", "ADABTC", "--out", rec, "--allow-overlap"]).code, 0);
    assert_eq!(tapedeck::log::read_all(std::path::Path::new(rec)).unwrap().len(), 31);
}

/// Microsecond timestamps (spot dumps since 2025) and zip archives give the same records.
#[test]
fn microseconds_and_zip_archives_import_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let original = root().join(DUMPS).join("trades_from_ws/BTCUSDT-trades-20240808T2354Z-20240809T0000Z-derived.csv");
    let text = std::fs::read_to_string(&original).unwrap();
    let micros: String = text
        .lines()
        .map(|l| {
            let mut c: Vec<String> = l.split(',').map(str::to_string).collect();
            c[4] = format!("{}000", c[4]);
            c.join(",") + "\n"
        })
        .collect();
    let micros_path = dir.path().join("BTCUSDT-trades-us.csv");
    std::fs::write(&micros_path, micros).unwrap();
    let zip_path = dir.path().join("BTCUSDT-trades.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    zip.start_file("BTCUSDT-trades.csv", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(text.as_bytes()).unwrap();
    zip.finish().unwrap();
    let mut seen = Vec::new();
    for (name, file) in [("csv", original.clone()), ("us", micros_path), ("zip", zip_path)] {
        let rec = dir.path().join(name);
        let out =
            import(&["binance-trades", file.to_str().unwrap(), "--symbol", "BTCUSDT", "--out", rec.to_str().unwrap()]);
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        let records: Vec<(u64, Event)> =
            tapedeck::log::read_all(&rec).unwrap().into_iter().map(|r| (r.ts_exchange, r.event)).collect();
        seen.push(records);
    }
    assert_eq!(seen[0].len(), 9738);
    assert!(seen[0] == seen[1] && seen[0] == seen[2]);
}
