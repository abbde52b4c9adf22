//! `tapedeck analyze`: the questions driven through stdin with `--interactive`, the printed
//! replay command, validation shared with `--detect`, and presets saved to `--config`.

use std::io::Write;
use std::process::Stdio;

use crate::util::*;

/// Answers, in order: recordings, symbols, detectors, timeframe, amplitude, waves MA,
/// volume MA, k, preset name.
const FAST: &str = "\n\n\n10s\n0.05\n\n\n\n\n";
const EXPECTED: &str = "tapedeck replay recordings/binance-btcusdt-20240808 \
     --detect waves:amplitude=0.05,timeframe=10s,ma=1 --detect volume:timeframe=10s,ma=20,k=3";

fn analyze(args: &[&str], answers: &str) -> Run {
    let mut child = tapedeck()
        .arg("analyze")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tapedeck");
    child.stdin.take().unwrap().write_all(answers.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// The replay command line analyze printed, as its words.
fn printed_command(stderr: &str) -> Vec<String> {
    let line = stderr.lines().map(str::trim).find(|l| l.starts_with("tapedeck replay ")).expect("a command line");
    line.split(' ').map(str::to_string).collect()
}

/// The one line `tapedeck replay SAMPLE --detect SPEC` prints for a bad spec.
fn flag_message(spec: &str) -> String {
    let out = run(&["replay", SAMPLE, "--detect", spec]);
    assert_eq!(out.code, 2, "{spec}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    out.stderr.trim_end().to_string()
}

#[test]
fn defaults_print_the_replay_command_and_give_its_signals() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("t.toml");
    let out = analyze(&["--interactive", "--config", config.to_str().unwrap()], FAST);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let command = printed_command(&out.stderr);
    assert_eq!(command.join(" "), EXPECTED);
    assert!(out.stderr.contains("[recordings/binance-btcusdt-20240808]:"), "{}", out.stderr);
    assert!(out.stderr.contains("Save these answers as a preset? name [skip]:"), "{}", out.stderr);
    let args: Vec<&str> = command[1..].iter().map(String::as_str).collect();
    let replay = run(&args);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    assert!(!replay.stdout.is_empty(), "the sample gives signals with these parameters");
    assert_eq!(out.stdout, replay.stdout, "stdout is only the signals, the same as replay's");
    assert!(!config.exists(), "skipping the preset writes nothing");
}

#[test]
fn invalid_answers_get_the_flag_message_and_are_asked_again() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("t.toml");
    // timeframe 7x then 10s; amplitude -1 then 0.05; waves ma 0 then Enter; volume k 0 then Enter.
    let answers = "\n\n\n7x\n10s\n-1\n0.05\n0\n\n\n0\n\n\n";
    let out = analyze(&["--interactive", "--config", config.to_str().unwrap()], answers);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for (spec, question) in [
        ("waves:timeframe=7x", "Timeframe (e.g. 10s, 1m, 4h) [1m]:"),
        ("waves:amplitude=-1", "Waves: amplitude in percent [0.5]:"),
        ("waves:ma=0", "Waves: MA period (candles) [1]:"),
        ("volume:k=0", "Volume: k (alert when volume > k x its MA) [3]:"),
    ] {
        let message = flag_message(spec);
        assert!(out.stderr.lines().any(|l| l == message), "{message:?} not in:\n{}", out.stderr);
        assert_eq!(out.stderr.matches(question).count(), 2, "{question} asked again:\n{}", out.stderr);
    }
    assert_eq!(printed_command(&out.stderr).join(" "), EXPECTED);
}

#[test]
fn a_saved_preset_replays_the_same_signals() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("t.toml");
    let before = "# kept\ndetect = [\"waves\"]\n\n[presets.slow]\ndetect = [\"volume:timeframe=5m\"]\n";
    std::fs::write(&config, before).unwrap();
    let cfg = config.to_str().unwrap();
    let out = analyze(&["--interactive", "--config", cfg], "\n\n\n10s\n0.05\n\n\n\nfast\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(saved.starts_with(before), "existing content kept:\n{saved}");
    assert!(saved.contains("[presets.fast]"), "{saved}");
    let replay = run(&["replay", SAMPLE, "--config", cfg, "--preset", "fast"]);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    assert!(!replay.stdout.is_empty());
    assert_eq!(out.stdout, replay.stdout);

    // Saving under the same name asks first; "n" keeps the file as it was.
    let again = analyze(&["--interactive", "--config", cfg], "\n\n\n\n\n\n\n\nfast\nn\n");
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains("overwrite? [y/N]:"), "{}", again.stderr);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), saved);
    // "y" replaces it, and the other settings survive.
    let yes = analyze(&["--interactive", "--config", cfg], "\n\n\n\n\n\n\n\nfast\ny\n");
    assert_eq!(yes.code, 0, "{}", yes.stderr);
    let table: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
    let fast: Vec<&str> =
        table["presets"]["fast"]["detect"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(fast, ["waves:amplitude=0.5,timeframe=1m,ma=1", "volume:timeframe=1m,ma=20,k=3"]);
    assert!(table["presets"].get("slow").is_some() && table.get("detect").is_some());
}

#[test]
fn without_a_terminal_or_interactive_it_exits_2_with_one_line() {
    let out = tapedeck().arg("analyze").stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--interactive") && stderr.contains("--detect"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn flags_skip_the_questions() {
    let spec = "waves:amplitude=0.05,timeframe=10s";
    let out = analyze(&[SAMPLE, "--detect", spec], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("Save these answers"), "{}", out.stderr);
    let replay = run(&["replay", SAMPLE, "--detect", spec]);
    assert_eq!(out.stdout, replay.stdout);
    let bad = analyze(&[SAMPLE, "--detect", "waves:amplitude=-1"], "");
    assert_eq!(bad.code, 2);
    assert_eq!(bad.stderr.trim_end(), flag_message("waves:amplitude=-1"));
}
