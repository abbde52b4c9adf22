//! The CLI on the bundled sample recording: inspect, export, corruption, bad flags.

use std::io::BufRead;

use serde_json::Value;

use crate::util::*;

#[test]
fn inspect_sample_matches_golden() {
    let out = run(&["inspect", SAMPLE]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    check_golden("inspect_sample.txt", &out.stdout);
}

#[test]
fn inspect_json_counts_every_record() {
    let out = run(&["inspect", SAMPLE, "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["records"], 41_249);
    assert_eq!(v["format_version"], 1);
    let counts = &v["instruments"][0]["counts"];
    assert_eq!((counts["trade"].as_u64(), counts["quote"].as_u64()), (Some(9757), Some(28_040)));
    assert_eq!((counts["book_delta"].as_u64(), counts["book_snapshot"].as_u64()), (Some(3451), Some(1)));
    assert_eq!(v["status"]["gaps"], 0);
}

/// Every trade in the original capture comes back out with the exchange's exact strings.
#[test]
fn export_prints_the_exchange_strings_back() {
    let out = run(&["export", SAMPLE, "--kind", "trade"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let exported: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let file = std::fs::File::open(root().join(HFT_FIXTURE)).unwrap();
    let original: Vec<Value> = std::io::BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .map(Result::unwrap)
        .filter(|l| l.contains("@trade\""))
        .map(|l| serde_json::from_str::<Value>(l.split_once(' ').unwrap().1).unwrap()["data"].clone())
        .collect();
    assert_eq!(exported.len(), original.len());
    for (e, o) in exported.iter().zip(&original) {
        assert_eq!(e["price"], o["p"]);
        assert_eq!(e["qty"], o["q"]);
        assert_eq!(e["trade_id"], o["t"]);
        assert_eq!(e["ts_exchange"].as_u64(), o["T"].as_u64().map(|ms| ms * 1_000_000));
        assert_eq!(e["side"], if o["m"] == true { "sell" } else { "buy" });
        assert_eq!(e["symbol"], "BTC/USDT");
    }
}

#[test]
fn export_csv_head_matches_golden() {
    let out = run(&["export", SAMPLE, "--format", "csv", "--kind", "trade,quote", "--limit", "8"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    check_golden("export_sample_head.csv", &out.stdout);
}

#[test]
fn export_ndjson_head_matches_golden() {
    let out = run(&["export", SAMPLE, "--kind", "trade,quote,book_delta", "--limit", "6"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    check_golden("export_sample_head.ndjson", &out.stdout);
}

#[test]
fn corrupt_block_fails_inspect_and_export_with_its_position() {
    let copy = copy_recording(&root().join(SAMPLE));
    tapedeck::log::fault::flip_block_byte(copy.path(), 3, 5000).unwrap();
    let path = copy.path().to_str().unwrap();
    for args in [vec!["inspect", path], vec!["export", path, "--out", "/dev/null"]] {
        let out = run(&args);
        assert_eq!(out.code, 2, "{args:?} must fail");
        assert!(
            out.stderr.contains("corrupt block 3 (seq 3072..=4095): checksum mismatch"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn bad_flags_get_one_line_naming_the_flag() {
    let cases: [(&[&str], &str); 4] = [
        (&["export", SAMPLE, "--format", "xml"], "--format"),
        (&["export", SAMPLE, "--kind", "trades"], "--kind"),
        (
            &["import", "hftbacktest", HFT_FIXTURE, "--symbol", "BTCUSDT", "--out", "/tmp/x", "--block-records", "0"],
            "--block-records",
        ),
        (&["inspect", SAMPLE, "--jsno"], "--jsno"),
    ];
    for (args, flag) in cases {
        let out = run(args);
        assert_eq!(out.code, 2, "{args:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(flag), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn a_directory_that_is_not_a_recording_is_refused() {
    let empty = tempfile::tempdir().unwrap();
    let out = run(&["inspect", empty.path().to_str().unwrap()]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("not a tapedeck recording"), "{}", out.stderr);
}

/// scripts/make-sample.sh must reproduce the committed sample record for record.
#[test]
fn importing_the_fixture_reproduces_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let out = run(&["import", "hftbacktest", HFT_FIXTURE, "--symbol", "BTCUSDT", "--out", rec.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let fresh = tapedeck::log::read_all(&rec).unwrap();
    let committed = tapedeck::log::read_all(&root().join(SAMPLE)).unwrap();
    assert!(fresh == committed, "the sample recording is stale: rerun scripts/make-sample.sh");
}
