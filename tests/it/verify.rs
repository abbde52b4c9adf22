//! verify and repair: healthy data, a corrupt block, an outage and a missing diff.

use serde_json::Value;

use crate::mock_binance::{self, Options};
use crate::util::*;

fn verify(dir: &str) -> (i32, Value) {
    let out = run(&["verify", dir, "--json"]);
    (out.code, serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stderr)))
}

#[test]
fn the_sample_is_healthy() {
    let (code, report) = verify(SAMPLE);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["records"], 41_249);
    assert_eq!(report["healthy"], true);
    let text = run(&["verify", SAMPLE]);
    assert!(text.stdout.contains("verdict     healthy"), "{}", text.stdout);
}

#[test]
fn a_corrupt_block_is_reported_and_repair_keeps_the_rest() {
    let copy = copy_recording(&root().join(SAMPLE));
    tapedeck::log::fault::flip_block_byte(copy.path(), 3, 777).unwrap();
    let path = copy.path().to_str().unwrap();
    let (code, report) = verify(path);
    assert_eq!(code, 1);
    assert_eq!(report["corrupt_blocks"][0]["ordinal"], 3);
    assert!(report["corrupt_blocks"][0]["detail"].as_str().unwrap().contains("seq 3072..=4095"), "{report}");
    assert_eq!(report["records"], 41_249 - 1024, "the blocks after the bad one are still checked");
    let out_dir = tempfile::tempdir().unwrap();
    let repaired = out_dir.path().join("repaired");
    let out = run(&["repair", path, "--out", repaired.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("dropped block 3"), "{}", out.stderr);
    let records = tapedeck::log::read_all(&repaired).unwrap();
    assert_eq!(records.len(), 41_249 - 1024 + 1, "every verifiable record, plus a Gap marking the hole");
    assert!(records.iter().enumerate().all(|(i, r)| r.seq == i as u64), "seq is contiguous again");
    let (_, again) = verify(path);
    assert_eq!(again["corrupt_blocks"], report["corrupt_blocks"], "the original is not modified");
    assert_eq!(again["records"], report["records"]);
    let (code, report) = verify(repaired.to_str().unwrap());
    assert_eq!(code, 1, "the hole is still a gap in the venue ids");
    assert!(report["corrupt_blocks"].as_array().unwrap().is_empty());
}

#[test]
fn outages_and_missing_diffs_are_in_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    for (name, options) in [
        ("drop", Options { drop_after: Some(10_000), ..Options::default() }),
        ("skip", Options { skip_depth: Some(100), ..Options::default() }),
    ] {
        let mock = mock_binance::start(options);
        let rec = dir.path().join(name);
        let (ws, rest) = (mock.ws_url(), mock.rest_url());
        let out = run(&[
            "record",
            "--exchange",
            "binance",
            "--symbols",
            "BTCUSDT",
            "--ws-url",
            &ws,
            "--rest-url",
            &rest,
            "--out",
            rec.to_str().unwrap(),
            "--duration",
            "3s",
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let (code, report) = verify(rec.to_str().unwrap());
        assert_eq!(code, 1, "{name}: {report}");
        let depth = report["streams"].as_array().unwrap().iter().find(|s| s["stream"] == "depth").unwrap();
        match name {
            "drop" => {
                assert_eq!(report["disconnects"].as_array().unwrap().len(), 1, "{report}");
                assert!(depth["coverage_pct"].as_f64().unwrap() < 100.0);
            }
            _ => {
                let sources: Vec<&str> =
                    depth["gaps"].as_array().unwrap().iter().map(|g| g["source"].as_str().unwrap()).collect();
                assert_eq!(sources, ["recorded", "detected"], "{report}");
            }
        }
    }
}
