//! Helpers: temp dirs, running the binary, the sample recording, golden files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const SAMPLE: &str = "recordings/binance-btcusdt-20240808";
pub const HFT_FIXTURE: &str = "tests/fixtures/binance_spot/hftbacktest/btcusdt_20240808.gz";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn tapedeck() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tapedeck"));
    cmd.current_dir(root()).env("TAPEDECK_LOG", "warn");
    cmd
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(args: &[&str]) -> Run {
    let Output { status, stdout, stderr } = tapedeck().args(args).output().expect("run tapedeck");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8(stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(stderr).expect("utf-8 stderr"),
    }
}

/// A copy of a recording that a test may damage.
pub fn copy_recording(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(from, dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Compares `actual` with tests/golden/NAME; `UPDATE_GOLDEN=1` rewrites the file.
pub fn check_golden(name: &str, actual: &str) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    assert!(expected == actual, "{name} differs from the golden file:\n--- expected\n{expected}\n--- actual\n{actual}");
}

/// Runs `tapedeck record` of Binance BTCUSDT trades, quotes and depth from a local server
/// (`ws`, `rest`) into `out`, plus `extra` flags (`--duration`, `--json`, ...).
pub fn record_binance(ws: &str, rest: &str, out: &str, extra: &[&str]) -> Run {
    record_venue("binance", "BTCUSDT", ws, rest, out, extra)
}

/// `record_binance` for any venue and symbol.
pub fn record_venue(exchange: &str, symbol: &str, ws: &str, rest: &str, out: &str, extra: &[&str]) -> Run {
    let mut args = vec!["record", "--exchange", exchange, "--symbols", symbol, "--streams", "trade,quote,depth"];
    args.extend(["--ws-url", ws, "--rest-url", rest, "--out", out]);
    args.extend(extra);
    run(&args)
}
