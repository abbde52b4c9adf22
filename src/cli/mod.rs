//! The command line: one file per subcommand, each turning flags into a validated config
//! and wiring library pieces together. Nothing here knows a venue's wire format.
//!
//! Exit codes: 0 success, 1 a check failed (the data is unhealthy), 2 an error (bad flags,
//! unreadable input, corruption). A closed stdout (`tapedeck export | head`) is not an error.

mod alert;
mod alerts_report;
mod analyze;
mod backfill;
mod backtest;
mod bench;
mod capture;
mod config;
mod copy;
mod export;
mod import;
mod inspect;
pub mod interrupt;
mod live_stats;
mod paper;
mod replay;
mod results;
mod runs;
mod scan;
mod serve;
mod sweep;
mod symbols;
mod trading;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Record, replay and analyse crypto exchange market data.
///
/// tapedeck captures exchange WebSocket streams into an append-only local recording,
/// replays recordings deterministically through detectors and strategies, and exports
/// them losslessly. Every command that reads a recording takes its directory.
#[derive(Debug, Parser)]
#[command(name = "tapedeck", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Summarize a recording: format, time span, counts per instrument and kind, gaps, size
    Inspect(inspect::Args),
    /// Print a recording's records as NDJSON or CSV, with exact decimals as strings
    Export(export::Args),
    /// Build a recording from files written by other tools
    Import(import::Args),
    /// Fetch kline and trade history over a venue's REST API into a recording (resumable)
    Backfill(backfill::Args),
    /// Record live market data from exchanges into a recording
    Record(capture::RecordArgs),
    /// Run detectors on live market data (optionally recording it), with the replay engine
    Live(Box<capture::LiveArgs>),
    /// List an exchange's tradable pairs over REST
    Symbols(symbols::Args),
    /// List runs stored with `replay --results`, or print one run's signals
    Results(results::Args),
    /// Engine latency per record with HDR histograms, per detector and in total
    Bench(bench::Args),
    /// Check every block, seq, venue id and timestamp; print a gap ledger (exit 1 if unhealthy)
    Verify(verify::VerifyArgs),
    /// Copy every verifiable block into a new recording, reporting what was dropped
    Repair(verify::RepairArgs),
    /// Copy a recording between a directory and a NATS JetStream stream, either way
    Copy(copy::Args),
    /// Replay recordings through the engine and detectors, at 1x, Nx or max speed
    Replay(replay::Args),
    /// Ask for recordings and detector parameters, print the equivalent replay command, run it
    Analyze(analyze::Args),
    /// Detectors over all instruments: top volume ratios and latest waves, once per bucket
    Scan(scan::Args),
    /// Alert backtest: alerts per day and symbol, bursts, digests and queue delays under Telegram pacing
    AlertsReport(alerts_report::Args),
    /// Run a strategy over recordings with a simulated broker: metrics, trades, HTML report
    Backtest(backtest::Args),
    /// Backtest a grid of strategy parameters in parallel and rank the results
    Sweep(sweep::Args),
    /// List stored backtests, sweeps and replays, or show one (`runs show ID`)
    Runs(runs::Args),
    /// Serve a recording as an exchange (Binance WebSocket and REST) for bots and tests
    Serve(serve::Args),
}

/// Runs the binary: parses arguments, sets up logging, runs the command.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TAPEDECK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
    interrupt::install();
    match run(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs one parsed command.
///
/// # Errors
/// Whatever the command fails with; the caller prints it and exits 2.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::Export(args) => export::run(args),
        Command::Import(args) => import::run(args),
        Command::Backfill(args) => backfill::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Scan(args) => scan::run(args),
        Command::AlertsReport(args) => alerts_report::run(args),
        Command::Backtest(args) => backtest::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Runs(args) => runs::run(args),
        Command::Record(args) => capture::run_record(args),
        Command::Live(args) => capture::run_live(*args),
        Command::Symbols(args) => symbols::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Results(args) => results::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Verify(args) => verify::run_verify(args),
        Command::Repair(args) => verify::run_repair(args),
        Command::Copy(args) => copy::run(args),
    }
}

/// Help and version go to stdout as usual; usage errors become one line naming the flag.
fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    eprintln!("{}", one_line(&e));
    ExitCode::from(2)
}

/// A clap error as one line naming the flag, as the binary prints it for a bad flag.
fn one_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let parts: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .collect();
    format!("{} (see --help)", parts.join(" "))
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// Parses a comma-separated flag value with `parse`, naming the bad item.
fn parse_list<T>(text: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(parse).collect()
}

fn progress_bar(len: Option<u64>, what: &str) -> indicatif::ProgressBar {
    let bar = match len {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let template = if len.is_some() {
        format!("{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} ({{per_sec}}, eta {{eta}})")
    } else {
        format!("{{spinner}} {what} {{pos}} ({{per_sec}})")
    };
    bar.set_style(indicatif::ProgressStyle::with_template(&template).expect("valid template").progress_chars("=> "));
    bar
}
