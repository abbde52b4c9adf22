//! `tapedeck analyze`: the replay command for people who do not know its flags yet.
//!
//! On a terminal with no detector flags it asks for recordings, symbols, detectors and their
//! parameters, each with its default in brackets (Enter accepts it). Every answer is checked
//! by the very parser behind `replay --detect`, so a bad answer gets the flag's own one-line
//! message and the question is asked again. It then prints the equivalent
//! `tapedeck replay ...` command line, runs exactly that command, and offers to save the
//! answers as a `[presets.NAME]` table in the `--config` file (default `tapedeck.toml`).
//!
//! Questions and messages go to stderr, so stdout stays the signals stream. Without a
//! terminal the questions are asked only with `--interactive` (answers are then read from
//! stdin, one per line); with `--detect` or `--preset` nothing is asked and it runs like
//! `replay`. Only recordings are analysed here; live data is `tapedeck live`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

/// The recording offered when it exists.
const DEFAULT_REC: &str = "recordings/binance-btcusdt-20240808";
/// The config file presets are saved to when `--config` is not given.
const DEFAULT_CONFIG: &str = "tapedeck.toml";
const DETECTORS: [&str; 3] = ["waves", "volatility", "volume"];

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tapedeck analyze                      (asks the questions, prints the replay command, runs it)
  printf '\\n\\n\\n10s\\n0.05\\n\\n\\n\\n\\n' | tapedeck analyze --interactive
  tapedeck analyze REC --detect waves:amplitude=0.1,timeframe=10s   (no questions: same as replay)")]
pub struct Args {
    /// Recording directories (asked for when not given and the questions are asked)
    #[arg(value_name = "REC")]
    recs: Vec<PathBuf>,
    /// Ask the questions even without a terminal, reading the answers from stdin line by line
    #[arg(long)]
    interactive: bool,
    /// Only these symbols, comma-separated (BTC/USDT or BTCUSDT); asked for when not given
    #[arg(long, value_delimiter = ',', value_name = "SYMBOLS")]
    symbols: Vec<String>,
    /// A detector and its parameters, as for replay (repeatable); skips the questions
    #[arg(long, value_name = "SPEC", value_parser = parse_spec)]
    detect: Vec<String>,
    /// Config file: presets are read from it and saved to it [default: tapedeck.toml]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Use the named preset from --config; skips the questions
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
    /// Write every signal as one JSON object per line to FILE
    #[arg(long, value_name = "FILE")]
    signals_out: Option<PathBuf>,
    /// Do not print signals on the terminal
    #[arg(long, short)]
    quiet: bool,
}

/// `replay`'s own flags, so the command analyze prints is parsed exactly as replay would.
#[derive(Debug, Parser)]
#[command(name = "tapedeck replay")]
struct ReplayCli {
    #[command(flatten)]
    args: super::replay::Args,
}

/// Only the detector flags, to check one answer with the `--detect` parser.
#[derive(Debug, Parser)]
#[command(name = "tapedeck replay")]
struct DetectCli {
    #[command(flatten)]
    _detect: super::config::DetectArgs,
}

/// Keeps the spec as written (so the printed command repeats it) after checking it; the
/// message is the one replay's `--detect` parser gives, which clap then wraps the same way.
fn parse_spec(text: &str) -> Result<String, String> {
    match text.parse::<crate::detect::DetectorSpec>() {
        Ok(_) => Ok(text.to_string()),
        Err(e) => Err(format!("{}: {}", e.detector, e.message)),
    }
}

/// `Ok` when `--detect SPEC` would be accepted, else the flag's one-line message.
fn check_spec(spec: &str) -> Result<(), String> {
    match DetectCli::try_parse_from(["tapedeck replay", "--detect", spec]) {
        Ok(_) => Ok(()),
        Err(e) => Err(super::one_line(&e)),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let flags_given = !args.detect.is_empty() || args.preset.is_some();
    if flags_given {
        return run_replay(&flag_command(&args));
    }
    if !args.interactive && !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "analyze asks its questions on a terminal: pass flags (tapedeck analyze REC --detect SPEC) \
             or --interactive to read the answers from stdin"
        );
    }
    let stdin = std::io::stdin();
    // Piped answers are echoed after their question, so the transcript reads as on a terminal.
    let echo = !stdin.is_terminal();
    let mut ask = Prompter { input: stdin.lock(), out: std::io::stderr(), echo };
    let answers = ask_all(&mut ask, &args)?;
    let command = answers.command(&args);
    writeln!(ask.out, "\nThe same run without questions:\n  {}\n", shell_line(&command))?;
    let code = run_replay(&command)?;
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    let config = args.config.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    offer_preset(&mut ask, &config, &answers)?;
    Ok(code)
}

/// The replay command for analyze's own flags (no questions asked).
fn flag_command(args: &Args) -> Vec<String> {
    let mut argv = vec!["tapedeck".to_string(), "replay".to_string()];
    argv.extend(args.recs.iter().map(|p| p.display().to_string()));
    if !args.symbols.is_empty() {
        argv.extend(["--symbols".to_string(), args.symbols.join(",")]);
    }
    for spec in &args.detect {
        argv.extend(["--detect".to_string(), spec.clone()]);
    }
    let config = match (&args.config, &args.preset) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(_)) => Some(PathBuf::from(DEFAULT_CONFIG)),
        (None, None) => None,
    };
    if let Some(path) = config {
        argv.extend(["--config".to_string(), path.display().to_string()]);
    }
    if let Some(name) = &args.preset {
        argv.extend(["--preset".to_string(), name.clone()]);
    }
    output_flags(args, &mut argv);
    argv
}

fn output_flags(args: &Args, argv: &mut Vec<String>) {
    if let Some(path) = &args.signals_out {
        argv.extend(["--signals-out".to_string(), path.display().to_string()]);
    }
    if args.quiet {
        argv.push("--quiet".to_string());
    }
}

/// Parses `tapedeck replay ...` with replay's flags and runs it.
fn run_replay(argv: &[String]) -> anyhow::Result<ExitCode> {
    let parsed = ReplayCli::try_parse_from(argv.iter().skip(1)).map_err(|e| anyhow::anyhow!(super::one_line(&e)))?;
    super::replay::run(parsed.args)
}

/// What the questions settled.
struct Answers {
    recs: Vec<String>,
    symbols: Vec<String>,
    specs: Vec<String>,
}

impl Answers {
    fn command(&self, args: &Args) -> Vec<String> {
        let mut argv = vec!["tapedeck".to_string(), "replay".to_string()];
        argv.extend(self.recs.iter().cloned());
        if !self.symbols.is_empty() {
            argv.extend(["--symbols".to_string(), self.symbols.join(",")]);
        }
        for spec in &self.specs {
            argv.extend(["--detect".to_string(), spec.clone()]);
        }
        output_flags(args, &mut argv);
        argv
    }
}

/// Questions on `out`, answers from `input`, one per line.
struct Prompter<R, W> {
    input: R,
    out: W,
    /// Write each answer after its question (when the input is not a terminal).
    echo: bool,
}

impl<R: BufRead, W: Write> Prompter<R, W> {
    /// One answer, trimmed; `None` at the end of the input.
    fn line(&mut self, question: &str) -> anyhow::Result<Option<String>> {
        write!(self.out, "{question} ")?;
        self.out.flush()?;
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 {
            writeln!(self.out)?;
            return Ok(None);
        }
        if self.echo {
            writeln!(self.out, "{}", line.trim_end())?;
        }
        Ok(Some(line.trim().to_string()))
    }

    /// Asks until `check` accepts the answer (Enter gives `default`), printing its complaint.
    fn ask<T>(
        &mut self,
        question: &str,
        default: &str,
        mut check: impl FnMut(&str) -> Result<T, String>,
    ) -> anyhow::Result<T> {
        loop {
            let shown = if default.is_empty() { String::new() } else { format!(" [{default}]") };
            let Some(answer) = self.line(&format!("{question}{shown}:"))? else {
                anyhow::bail!("stdin ended before every question was answered ({question})");
            };
            let answer = if answer.is_empty() { default.to_string() } else { answer };
            match check(&answer) {
                Ok(value) => return Ok(value),
                Err(message) => writeln!(self.out, "{message}")?,
            }
        }
    }
}

fn ask_all<R: BufRead, W: Write>(ask: &mut Prompter<R, W>, args: &Args) -> anyhow::Result<Answers> {
    writeln!(
        ask.out,
        "tapedeck analyze: a few questions, then the equivalent replay command and its run. \
         Enter accepts the [default]."
    )?;
    let recs = if args.recs.is_empty() {
        let default = if Path::new(DEFAULT_REC).is_dir() { DEFAULT_REC } else { "" };
        ask.ask(
            "Recording directories, space-separated (recordings only; live data is `tapedeck live`)",
            default,
            |a| {
                let recs: Vec<String> = a.split_whitespace().map(str::to_string).collect();
                if recs.is_empty() {
                    return Err("give at least one recording directory".to_string());
                }
                match recs.iter().find(|r| !Path::new(r).is_dir()) {
                    Some(missing) => Err(format!("no recording at {missing}")),
                    None => Ok(recs),
                }
            },
        )?
    } else {
        args.recs.iter().map(|p| p.display().to_string()).collect()
    };
    let symbols = if args.symbols.is_empty() {
        ask.ask("Symbols, comma-separated (BTC/USDT or BTCUSDT)", "all", |a| {
            Ok(if a.eq_ignore_ascii_case("all") {
                Vec::new()
            } else {
                a.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
            })
        })?
    } else {
        args.symbols.clone()
    };
    let detectors = ask.ask("Detectors, comma-separated: waves, volatility, volume", "waves,volume", |a| {
        let mut chosen = Vec::new();
        for name in a.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            // An unknown name gets the flag's own message.
            check_spec(name)?;
            if !chosen.contains(&name) {
                chosen.push(name);
            }
        }
        if chosen.is_empty() {
            return Err("choose at least one detector".to_string());
        }
        // The order of --detect flags is the order of signals: keep it canonical.
        Ok(DETECTORS.iter().filter(|d| chosen.contains(d)).map(|d| d.to_string()).collect::<Vec<_>>())
    })?;
    let first = detectors[0].clone();
    let timeframe = ask.ask("Timeframe (e.g. 10s, 1m, 4h)", "1m", |a| {
        check_spec(&format!("{first}:timeframe={a}")).map(|()| a.to_string())
    })?;
    let mut specs = Vec::new();
    for detector in &detectors {
        let spec = match detector.as_str() {
            "waves" => {
                let amplitude = ask.ask("Waves: amplitude in percent", "0.5", |a| {
                    check_spec(&format!("waves:amplitude={a}")).map(|()| a.to_string())
                })?;
                let ma = ask.ask("Waves: MA period (candles)", "1", |a| {
                    check_spec(&format!("waves:ma={a}")).map(|()| a.to_string())
                })?;
                format!("waves:amplitude={amplitude},timeframe={timeframe},ma={ma}")
            }
            "volume" => {
                let ma = ask.ask("Volume: MA period (candles)", "20", |a| {
                    check_spec(&format!("volume:ma={a}")).map(|()| a.to_string())
                })?;
                let k = ask.ask("Volume: k (alert when volume > k x its MA)", "3", |a| {
                    check_spec(&format!("volume:k={a}")).map(|()| a.to_string())
                })?;
                format!("volume:timeframe={timeframe},ma={ma},k={k}")
            }
            _ => format!("{detector}:timeframe={timeframe}"),
        };
        // Each part was checked alone; the whole spec goes through the same parser.
        check_spec(&spec).map_err(|m| anyhow::anyhow!(m))?;
        specs.push(spec);
    }
    Ok(Answers { recs, symbols, specs })
}

/// Asks for a preset name and saves the specs under it; Enter (or the end of stdin) skips.
fn offer_preset<R: BufRead, W: Write>(ask: &mut Prompter<R, W>, path: &Path, answers: &Answers) -> anyhow::Result<()> {
    loop {
        let Some(name) = ask.line("Save these answers as a preset? name [skip]:")? else { return Ok(()) };
        if name.is_empty() || name == "skip" {
            return Ok(());
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            writeln!(ask.out, "a preset name is letters, digits, - and _ only, got {name:?}")?;
            continue;
        }
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("--config {}", path.display())),
        };
        let exists = preset_exists(&text, &name).with_context(|| format!("--config {}", path.display()))?;
        if exists {
            let Some(yes) = ask.line(&format!("Preset {name} exists in {}; overwrite? [y/N]:", path.display()))? else {
                return Ok(());
            };
            if !matches!(yes.to_ascii_lowercase().as_str(), "y" | "yes") {
                writeln!(ask.out, "kept the existing preset {name}")?;
                continue;
            }
        }
        let updated = with_preset(&text, &name, &answers.specs, exists)?;
        std::fs::write(path, updated).with_context(|| format!("--config {}", path.display()))?;
        let mut rerun = vec!["tapedeck".to_string(), "replay".to_string()];
        rerun.extend(answers.recs.iter().cloned());
        if !answers.symbols.is_empty() {
            rerun.extend(["--symbols".to_string(), answers.symbols.join(",")]);
        }
        rerun.extend(["--config".to_string(), path.display().to_string(), "--preset".to_string(), name.clone()]);
        writeln!(ask.out, "saved preset {name} in {}; next time: {}", path.display(), shell_line(&rerun))?;
        return Ok(());
    }
}

/// Whether `[presets.NAME]` is in the config text (which must be valid TOML).
fn preset_exists(text: &str, name: &str) -> anyhow::Result<bool> {
    let table: toml::Table = text.parse()?;
    Ok(table.get("presets").and_then(|p| p.as_table()).is_some_and(|p| p.contains_key(name)))
}

/// The config text with `[presets.NAME] detect = [...]`: appended as a table when new (so
/// comments and layout stay), else the file re-serialized with the preset replaced.
fn with_preset(text: &str, name: &str, specs: &[String], exists: bool) -> anyhow::Result<String> {
    let list = toml::Value::Array(specs.iter().cloned().map(toml::Value::String).collect());
    if !exists {
        let mut appended = text.to_string();
        if !appended.is_empty() && !appended.ends_with('\n') {
            appended.push('\n');
        }
        if !appended.is_empty() {
            appended.push('\n');
        }
        appended.push_str(&format!("[presets.{name}]\ndetect = {list}\n"));
        if appended.parse::<toml::Table>().is_ok_and(|t| preset_in(&t, name)) {
            return Ok(appended);
        }
    }
    // Replacing a preset (or a file whose presets are written inline): parse and rewrite.
    let mut table: toml::Table = text.parse()?;
    let presets = table.entry("presets").or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let presets = presets.as_table_mut().context("`presets` in the config file is not a table")?;
    let mut preset = toml::Table::new();
    preset.insert("detect".to_string(), list);
    presets.insert(name.to_string(), toml::Value::Table(preset));
    Ok(toml::to_string(&table)?)
}

fn preset_in(table: &toml::Table, name: &str) -> bool {
    table.get("presets").and_then(|p| p.as_table()).is_some_and(|p| p.contains_key(name))
}

/// The command as one line a POSIX shell reads back into the same words.
fn shell_line(argv: &[String]) -> String {
    argv.iter().map(|w| shell_word(w)).collect::<Vec<_>>().join(" ")
}

fn shell_word(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if plain { word.to_string() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_presets_append_and_existing_ones_are_replaced() {
        let text = "# my settings\ndetect = [\"waves\"]\n";
        let specs = vec!["waves:amplitude=0.05,timeframe=10s,ma=1".to_string()];
        let added = with_preset(text, "fast", &specs, false).unwrap();
        assert!(added.starts_with(text), "{added}");
        assert!(preset_exists(&added, "fast").unwrap());
        let replaced = with_preset(&added, "fast", &["volume".to_string()], true).unwrap();
        let table: toml::Table = replaced.parse().unwrap();
        assert_eq!(table["presets"]["fast"]["detect"].as_array().unwrap()[0].as_str(), Some("volume"));
        assert_eq!(table["detect"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("waves:amplitude=0.5,timeframe=1m"), "waves:amplitude=0.5,timeframe=1m");
        assert_eq!(shell_word("my rec"), "'my rec'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
