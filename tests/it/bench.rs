//! `tapedeck bench`: the --json schema is stable (golden), and the .hlog it writes is a valid
//! HdrHistogram interval log whose histograms hold the reported counts.

use std::collections::BTreeMap;

use base64::Engine as _;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use serde_json::Value;

use crate::util::*;

/// `path: type` for every field, with map keys that vary by data replaced by `*`.
fn schema(value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            out.push(format!("{path}: object"));
            let dynamic = [
                "latency",
                "latency_by_kind",
                "events_per_second",
                "recording_latency_us",
                "recording_latency_negative",
            ]
            .iter()
            .any(|k| path.ends_with(k));
            let mut seen = BTreeMap::new();
            for (k, v) in map {
                let key = if dynamic { "*".to_string() } else { k.clone() };
                let mut lines = Vec::new();
                schema(v, &format!("{path}.{key}"), &mut lines);
                seen.entry(key).or_insert(lines);
            }
            for lines in seen.into_values() {
                out.extend(lines);
            }
        }
        Value::Number(n) if n.is_u64() => out.push(format!("{path}: integer")),
        Value::Number(_) => out.push(format!("{path}: number")),
        Value::String(_) => out.push(format!("{path}: string")),
        Value::Bool(_) => out.push(format!("{path}: bool")),
        Value::Array(_) => out.push(format!("{path}: array")),
        Value::Null => out.push(format!("{path}: null")),
    }
}

#[test]
fn json_schema_is_stable_and_the_hlog_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let hlog = dir.path().join("bench.hlog");
    let out = run(&[
        "bench",
        SAMPLE,
        "--detect",
        "waves:amplitude=0.05,timeframe=10s",
        "--detect",
        "volume:timeframe=10s",
        "--iterations",
        "1",
        "--json",
        "--hist-out",
        hlog.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let mut lines = Vec::new();
    schema(&report, "$", &mut lines);
    check_golden("bench_schema.txt", &(lines.join("\n") + "\n"));
    assert_eq!(report["records"], 41_249);
    let measured = 41_249 - report["warmup"].as_u64().unwrap();
    // The split by kind covers every timed record of `total`, and the sample's three hot kinds.
    let by_kind = report["latency_by_kind"].as_object().unwrap();
    let split: u64 = by_kind.values().map(|p| p["count"].as_u64().unwrap()).sum();
    assert_eq!(split, report["latency"]["total"]["count"].as_u64().unwrap());
    for kind in ["book_delta", "quote", "trade"] {
        assert!(by_kind[kind]["count"].as_u64().unwrap() > 1000, "{kind}: {by_kind:?}");
    }
    let bytes = std::fs::read(&hlog).unwrap();
    let mut tags = BTreeMap::new();
    for entry in IntervalLogIterator::new(&bytes) {
        if let LogEntry::Interval(interval) = entry.unwrap() {
            let raw = base64::engine::general_purpose::STANDARD.decode(interval.encoded_histogram()).unwrap();
            let h: hdrhistogram::Histogram<u64> = Deserializer::new().deserialize(&mut raw.as_slice()).unwrap();
            tags.insert(interval.tag().unwrap().as_str().to_string(), h.len());
        }
    }
    let expected: BTreeMap<String, u64> =
        ["total", "volume", "waves"].iter().map(|t| (t.to_string(), measured)).collect();
    assert_eq!(tags, expected);
    for (tag, count) in &tags {
        assert_eq!(report["latency"][tag]["count"].as_u64(), Some(*count), "{tag}");
    }
}

#[test]
fn a_strategy_joins_the_total_and_gets_its_own_row() {
    let out = run(&[
        "bench",
        SAMPLE,
        "--detect",
        "volume:timeframe=10s",
        "--strategy",
        "wave-follow",
        "--param",
        "amplitude=0.05",
        "--param",
        "timeframe=10s",
        "--iterations",
        "1",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let names: Vec<&String> = report["latency"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["strategy:wave-follow", "total", "volume"]);
    let measured = 41_249 - report["warmup"].as_u64().unwrap();
    assert_eq!(report["latency"]["strategy:wave-follow"]["count"].as_u64(), Some(measured));
}
