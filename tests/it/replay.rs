//! Replay through the engine: determinism, pacing, books and golden signals on real data.

use std::collections::BTreeMap;
use std::time::Instant;

use tapedeck::engine::Engine;
use tapedeck::model::{Decimal, Event};
use tapedeck::replay::{Filter, Merged};

use crate::util::*;

const GOLDEN_SPECS: [(&str, &str); 4] = [
    ("signals_waves_0.1_1m.jsonl", "waves:amplitude=0.1,timeframe=1m"),
    ("signals_waves_0.05_10s.jsonl", "waves:amplitude=0.05,timeframe=10s"),
    ("signals_volume_10s.jsonl", "volume:timeframe=10s,ma=20,k=3"),
    ("signals_volatility_10s.jsonl", "volatility:timeframe=10s,short=5,long=20"),
];

fn replay_signals(extra: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("signals.jsonl");
    let mut args = vec!["replay", SAMPLE, "--quiet", "--signals-out", out_path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    let digest = out.stderr.lines().find_map(|l| l.strip_prefix("digest: ")).expect("a digest line").to_string();
    (std::fs::read_to_string(out_path).unwrap(), digest)
}

#[test]
fn golden_signals_on_the_sample() {
    for (file, spec) in GOLDEN_SPECS {
        let (signals, digest) = replay_signals(&["--detect", spec]);
        check_golden(file, &signals);
        assert!(!signals.is_empty(), "{spec}: the sample should produce signals");
        let sha = sha256_hex(signals.as_bytes());
        assert_eq!(digest, sha, "the digest is the SHA-256 of the signals file");
    }
}

#[test]
fn same_recording_twice_and_any_thread_count_give_identical_bytes() {
    let all: Vec<&str> = GOLDEN_SPECS.iter().flat_map(|(_, s)| ["--detect", *s]).collect();
    let (first, d1) = replay_signals(&all);
    let (second, d2) = replay_signals(&all);
    assert_eq!(first, second);
    assert_eq!(d1, d2);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.jsonl");
    let mut args = vec!["replay", SAMPLE, "--quiet", "--signals-out", path.to_str().unwrap()];
    args.extend_from_slice(&all);
    let out = tapedeck().args(&args).env("RAYON_NUM_THREADS", "1").output().unwrap();
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(path).unwrap(), first);
}

/// The sample ships in block version 1; `copy` rewrites it in the current, compact
/// version. The copy holds exactly the same records, takes under a third of the bytes, and
/// replays to byte-identical signals.
#[test]
fn the_sample_rewritten_in_the_compact_format_is_the_same_recording() {
    let dir = tempfile::tempdir().unwrap();
    let compact = dir.path().join("compact");
    let out = run(&["copy", SAMPLE, compact.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let original = tapedeck::log::read_all(std::path::Path::new(SAMPLE)).unwrap();
    assert_eq!(tapedeck::log::read_all(&compact).unwrap(), original);
    let encoded = |records: &[tapedeck::model::Record]| -> Vec<String> {
        records.iter().map(|r| serde_json::to_string(&r.event).unwrap()).collect()
    };
    assert_eq!(encoded(&tapedeck::log::read_all(&compact).unwrap()), encoded(&original), "the same spellings");
    let size = |p: &str| tapedeck::log::Reader::open(std::path::Path::new(p)).unwrap().stored_bytes();
    let (old, new) = (size(SAMPLE), size(compact.to_str().unwrap()));
    assert!(new * 3 < old, "{new} bytes against {old}");

    let all: Vec<&str> = GOLDEN_SPECS.iter().flat_map(|(_, s)| ["--detect", *s]).collect();
    let (expected, _) = replay_signals(&all);
    let path = dir.path().join("s.jsonl");
    let mut args = vec!["replay", compact.to_str().unwrap(), "--quiet", "--signals-out", path.to_str().unwrap()];
    args.extend_from_slice(&all);
    let out = run(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(path).unwrap(), expected);
}

/// A 60 s span at --speed 10 takes about 6 s, and gives the same signals as --speed max.
#[test]
fn speed_ten_paces_and_changes_nothing() {
    let window = ["--from", "2024-08-08T23:56:00Z", "--to", "2024-08-08T23:57:00Z"];
    let spec = ["--detect", "waves:amplitude=0.02,timeframe=1s", "--detect", "volume:timeframe=1s,ma=10,k=2"];
    let mut fast_args = window.to_vec();
    fast_args.extend_from_slice(&spec);
    let (fast, _) = replay_signals(&fast_args);
    let mut slow_args = fast_args.clone();
    slow_args.extend_from_slice(&["--speed", "10"]);
    let started = Instant::now();
    let (slow, _) = replay_signals(&slow_args);
    let took = started.elapsed().as_secs_f64();
    assert!(!fast.is_empty(), "the window should produce signals");
    assert_eq!(fast, slow, "pacing must not change outputs");
    assert!((5.0..9.0).contains(&took), "60 s at 10x took {took:.2} s");
}

/// The engine's book after the real capture equals the snapshot plus every diff ending
/// after it (including the ones that arrived before it), applied with plain map operations.
#[test]
fn book_from_the_real_capture_matches_snapshot_plus_diffs() {
    let mut merged = Merged::open(&[root().join(SAMPLE)], Filter::default()).unwrap();
    let mut engine = Engine::new(merged.symbols().clone(), vec![]);
    let records: Vec<_> = merged.by_ref().collect();
    assert!(merged.take_error().is_none());
    for record in &records {
        engine.on_record(record);
    }
    let snapshot = records
        .iter()
        .find_map(|r| match &r.event {
            Event::BookSnapshot(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap();
    let mut bids: BTreeMap<Decimal, Decimal> = snapshot.bids.iter().map(|l| (l.price, l.qty)).collect();
    let mut asks: BTreeMap<Decimal, Decimal> = snapshot.asks.iter().map(|l| (l.price, l.qty)).collect();
    let mut last_id = snapshot.last_update_id.unwrap();
    let mut applied = 0;
    for record in &records {
        let Event::BookDelta(d) = &record.event else { continue };
        if d.last_update_id <= last_id {
            continue;
        }
        assert!(d.first_update_id <= last_id + 1, "the capture is gap-free");
        for (side, levels) in [(&mut bids, &d.bids), (&mut asks, &d.asks)] {
            for l in levels {
                if l.qty.is_zero() {
                    side.remove(&l.price);
                } else {
                    side.insert(l.price, l.qty);
                }
            }
        }
        last_id = d.last_update_id;
        applied += 1;
    }
    assert!(applied > 3000, "most diffs come after the snapshot ({applied})");
    let book = engine.book(tapedeck::model::InstrumentId(0)).unwrap();
    assert!(book.is_valid(), "{:?}", book.invalid_reason());
    assert_eq!(book.last_update_id(), Some(last_id));
    let got_bids: Vec<_> = book.bids(usize::MAX).into_iter().map(|l| (l.price, l.qty)).collect();
    let got_asks: Vec<_> = book.asks(usize::MAX).into_iter().map(|l| (l.price, l.qty)).collect();
    assert_eq!(got_bids, bids.into_iter().rev().collect::<Vec<_>>());
    assert_eq!(got_asks, asks.into_iter().collect::<Vec<_>>());
}

#[test]
fn bad_detector_parameters_name_the_parameter() {
    let cases = [
        ("waves:amplitude=0", "amplitude"),
        ("waves:ma=0", "ma"),
        ("waves:timeframe=7x", "timeframe"),
        ("volatility:short=30,long=20", "short"),
        ("volume:k=0", "k"),
    ];
    for (spec, param) in cases {
        let out = run(&["replay", SAMPLE, "--detect", spec]);
        assert_eq!(out.code, 2, "{spec}");
        assert_eq!(out.stderr.lines().count(), 1, "{spec}: {}", out.stderr);
        assert!(out.stderr.contains("--detect") && out.stderr.contains(param), "{spec}: {}", out.stderr);
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn results_store_keeps_runs_and_their_exact_signals() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let results = results.to_str().unwrap();
    let (file, _) = replay_signals(&["--detect", GOLDEN_SPECS[1].1, "--results", results]);
    replay_signals(&["--detect", GOLDEN_SPECS[2].1, "--results", results]);
    let list: serde_json::Value = serde_json::from_str(&run(&["results", results, "--json"]).stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["id"], 1);
    assert_eq!(list[0]["summary"]["records"], 41_249);
    let stored = run(&["results", results, "--run", "1"]);
    assert_eq!(stored.stdout, file, "the stored run is the signals file, line for line");
    assert_eq!(list[0]["summary"]["digest"].as_str().unwrap(), sha256_hex(file.as_bytes()));
}
