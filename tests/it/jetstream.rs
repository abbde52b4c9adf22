//! The NATS JetStream backend against a real `nats-server -js` on loopback (one server per
//! test, on its own port and store): copy both ways, record from a local mock exchange into
//! JetStream, `live --record` into JetStream replaying to the live signals, replay parity with
//! sled, a SIGKILLed writer resumed, and location errors.
//!
//! nats-server comes from Debian (`.ci/run` installs it). Without it these tests skip with a
//! message, except under CI=true, where they fail.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tapedeck::log::{Reader, read_all};
use tapedeck::model::{Event, Record, Status};

use crate::util::*;

/// A nats-server child with JetStream, stopped when the test ends.
struct Nats {
    child: Child,
    port: u16,
    _store: tempfile::TempDir,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nats {
    fn url(&self, stream: &str) -> String {
        format!("nats://127.0.0.1:{}/{stream}", self.port)
    }
}

/// Starts a server, or returns None (skipping) when nats-server is not installed here.
fn nats() -> Option<Nats> {
    if Command::new("nats-server").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "nats-server is not installed (.ci/run installs it from Debian)");
        eprintln!("skipping: nats-server is not installed (apt-get install nats-server)");
        return None;
    }
    let store = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd", store.path().to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nats-server");
    let server = Nats { child, port, _store: store };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "nats-server did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(server)
}

const DETECT: [&str; 6] = [
    "--detect",
    "waves:amplitude=0.05,timeframe=10s",
    "--detect",
    "volume:timeframe=10s,ma=20,k=3",
    "--detect",
    "volatility:timeframe=10s,short=5,long=20",
];

/// The signals JSONL of a max-speed replay of `rec`.
fn signals(rec: &str) -> String {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut args = vec!["replay", rec, "--speed", "max", "--signals-out", out.path().to_str().unwrap()];
    args.extend(DETECT);
    let run = run(&args);
    assert_eq!(run.code, 0, "replay {rec}: {}", run.stderr);
    std::fs::read_to_string(out.path()).unwrap()
}

fn records(rec: &str) -> Vec<Record> {
    read_all(std::path::Path::new(rec)).unwrap_or_else(|e| panic!("read {rec}: {e}"))
}

#[test]
fn copy_round_trips_sled_to_jetstream_and_back() {
    let Some(nats) = nats() else { return };
    let sample = root().join(SAMPLE);
    let stream = nats.url("SAMPLE");
    let back = tempfile::tempdir().unwrap();
    let back = back.path().join("back");

    let to = run(&["copy", sample.to_str().unwrap(), &stream, "--json"]);
    assert_eq!(to.code, 0, "{}", to.stderr);
    let summary: serde_json::Value = serde_json::from_str(&to.stdout).unwrap();
    assert_eq!(summary["records"], 41_249);
    let from = run(&["copy", &stream, back.to_str().unwrap()]);
    assert_eq!(from.code, 0, "{}", from.stderr);

    let original = records(sample.to_str().unwrap());
    assert_eq!(original.len(), 41_249);
    assert!(records(&stream) == original, "JetStream holds exactly the sample's records, in seq order");
    assert!(records(back.to_str().unwrap()) == original, "and copying back gives them again");
    let listed = |r: Reader| r.symbols().iter().map(|(id, i)| (id, i.clone())).collect::<Vec<_>>();
    assert_eq!(listed(Reader::open(std::path::Path::new(&stream)).unwrap()), listed(Reader::open(&sample).unwrap()));

    let expected = signals(sample.to_str().unwrap());
    assert!(expected.lines().count() > 5, "the detectors fire on the sample");
    assert_eq!(signals(&stream), expected, "replay from JetStream gives byte-identical signals");
    assert_eq!(signals(back.to_str().unwrap()), expected);

    let verify = run(&["verify", &stream, "--json"]);
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    let report: serde_json::Value = serde_json::from_str(&verify.stdout).unwrap();
    assert_eq!(report["records"], 41_249);

    let again = run(&["copy", sample.to_str().unwrap(), &stream]);
    assert_eq!(again.code, 2, "a stream that holds a recording is not overwritten");
    assert!(again.stderr.contains("already holds a recording"), "{}", again.stderr);
}

#[test]
fn record_from_a_mock_exchange_into_jetstream_then_copy_to_sled() {
    let Some(nats) = nats() else { return };
    let (_served, addr, _copy) = crate::serve::serve(&["--speed", "max", "--start-on-connect"]);
    let stream = nats.url("LIVE");
    let (ws, rest) = (format!("ws://{addr}"), format!("http://{addr}"));
    let rec = record_binance(&ws, &rest, &stream, &["--duration", "8s"]);
    assert_eq!(rec.code, 0, "{}", rec.stderr);

    let dir = tempfile::tempdir().unwrap();
    let sled = dir.path().join("from-nats");
    let copy = run(&["copy", &stream, sled.to_str().unwrap()]);
    assert_eq!(copy.code, 0, "{}", copy.stderr);

    let in_nats = records(&stream);
    let market = |rs: &[Record]| rs.iter().filter(|r| !matches!(r.event, Event::Status(_))).count();
    assert_eq!(market(&in_nats), market(&records(&root().join(SAMPLE).to_string_lossy())), "every market record");
    assert!(records(sled.to_str().unwrap()) == in_nats, "the sled copy holds the same records");
    assert_eq!(signals(&stream), signals(sled.to_str().unwrap()), "replay from both gives the same signals");
    let verify = run(&["verify", &stream]);
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
}

#[test]
fn a_killed_writer_resumes_after_the_last_acknowledged_seq() {
    let Some(nats) = nats() else { return };
    let (_served, addr, _copy) = crate::serve::serve(&["--speed", "10", "--loop"]);
    let stream = nats.url("KILLED");
    let (ws, rest) = (format!("ws://{addr}"), format!("http://{addr}"));
    let record = || {
        tapedeck()
            .args(["record", "--exchange", "binance", "--symbols", "BTCUSDT", "--streams", "trade,quote,depth"])
            .args(["--ws-url", &ws, "--rest-url", &rest, "--out", &stream])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let count = || Reader::open(std::path::Path::new(&stream)).and_then(|r| r.record_count()).unwrap_or(0);
    for kill in 0..3 {
        let mut child = record();
        let before = count();
        let started = Instant::now();
        // Kill once this run has stored something, so every kill lands mid-capture.
        while count() <= before + 1000 {
            assert!(started.elapsed() < Duration::from_secs(30), "kill {kill}: nothing recorded");
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let verify = run(&["verify", &stream, "--json"]);
        let report: serde_json::Value = serde_json::from_str(&verify.stdout).unwrap_or_default();
        assert!(report["corrupt_blocks"].as_array().is_some_and(|a| a.is_empty()), "kill {kill}: {}", verify.stdout);
    }
    let all = records(&stream);
    assert!(all.iter().enumerate().all(|(i, r)| r.seq == i as u64), "seqs stay contiguous across restarts");
    let connects = all.iter().filter(|r| matches!(r.event, Event::Status(Status::Connected { .. }))).count();
    assert!(connects >= 3, "each run's connection is in the log ({connects})");
}

#[test]
fn bad_locations_get_one_clear_line() {
    let Some(nats) = nats() else { return };
    let cases: [(String, &str); 4] = [
        (format!("nats://127.0.0.1:{}", nats.port), "no stream name"),
        (nats.url("NOPE"), "no such stream"),
        (nats.url("A.B"), "must be letters, digits"),
        (format!("{}?replicas=9", nats.url("R")), "replicas=9"),
    ];
    for (location, expected) in cases {
        let run = run(&["inspect", &location]);
        assert_eq!(run.code, 2, "{location}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{location}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{location}: {}", run.stderr);
    }
}

/// The one-code-path proof on the JetStream backend: `live --record nats://...` against the
/// mock exchange serving real frames, then replay from the stream: the same signal bytes.
#[test]
fn live_into_jetstream_replays_to_the_live_signals() {
    let Some(nats) = nats() else { return };
    let mock = crate::mock_binance::start(crate::mock_binance::Options::default());
    let stream = nats.url("LIVEJS");
    let dir = tempfile::tempdir().unwrap();
    let live_out = dir.path().join("live.jsonl");
    let (ws, rest) = (mock.ws_url(), mock.rest_url());
    let mut args = vec!["live", "--exchange", "binance", "--symbols", "BTCUSDT", "--ws-url", &ws, "--rest-url", &rest];
    args.extend(["--duration", "4s", "--record", &stream, "--signals-out", live_out.to_str().unwrap(), "--quiet"]);
    args.extend(DETECT);
    let live = run(&args);
    assert_eq!(live.code, 0, "{}", live.stderr);
    let live_signals = std::fs::read_to_string(&live_out).unwrap();
    assert!(live_signals.lines().count() >= 8, "the capture yields signals:\n{live_signals}");
    assert_eq!(signals(&stream), live_signals, "replay from JetStream reproduces the live signals");
}
