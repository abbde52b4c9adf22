//! `tapedeck alerts-report REC... --detect ...`: the alert backtest. Replays the recordings
//! through the engine, forms alerts exactly as `replay --alert` would (filters, cooldown in
//! event time), and runs the queue in event time under the chat's pacing: alerts per day and
//! per symbol, the largest one-minute burst, messages, digests, delays. Sends nothing.

use std::path::PathBuf;
use std::process::ExitCode;

use super::alert::{AlertFilterArgs, chat_id, filter_and_cooldown, telegram_pacing};
use super::config::{Config, DetectArgs};
use crate::alert::Pipeline;
use crate::alert::report::{self, Inputs};
use crate::engine::Engine;
use crate::replay::{Filter, Merged};

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  tapedeck alerts-report recordings/binance-btcusdt-20240808 --detect waves:amplitude=0.05,timeframe=10s \\
    --detect volume:timeframe=10s,ma=20,k=3 --alert-cooldown 1m --chat group")]
pub struct Args {
    /// Recording directories, merged as in replay
    #[arg(required = true, value_name = "REC")]
    recs: Vec<PathBuf>,
    #[command(flatten)]
    detect: DetectArgs,
    #[command(flatten)]
    filter: AlertFilterArgs,
    /// Pacing to simulate: private (one message a second) or group (also at most 20 a minute).
    /// Default: from the sign of the configured chat id, else private
    #[arg(long, value_parser = ["private", "group"])]
    chat: Option<String>,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.detect.config.as_deref())?;
    let specs = args.detect.resolve(&config)?;
    if specs.is_empty() {
        anyhow::bail!("give at least one --detect (or detectors in --config)");
    }
    let (filter, cooldown) = filter_and_cooldown(&args.filter, &config)?;
    let table = config.telegram.as_ref();
    // Only the sign matters: Telegram's group limit applies to negative chat ids.
    let chat = match args.chat.as_deref() {
        Some("group") => -1,
        Some(_) => 1,
        None => chat_id(table)?.unwrap_or(1),
    };
    let (pacing, capacity) = telegram_pacing(table, chat)?;
    let mut merged = Merged::open(&args.recs, Filter::default())
        .map_err(|(path, e)| anyhow::anyhow!(e).context(format!("cannot open recording {}", path.display())))?;
    let mut engine = Engine::new(merged.symbols().clone(), specs.iter().map(|s| s.build()).collect());
    let mut pipeline = Pipeline::new(filter, cooldown);
    let mut alerts = Vec::new();
    let bar = super::progress_bar(None, "records");
    let mut n = 0u64;
    while let Some(record) = merged.next() {
        for signal in engine.on_record(&record) {
            alerts.extend(pipeline.admit(signal, merged.symbols(), |_, _| false));
        }
        n += 1;
        if n % 65_536 == 0 {
            bar.set_position(n);
            if super::interrupt::requested() {
                bar.finish_and_clear();
                eprintln!("interrupted: no report");
                return Ok(ExitCode::from(130));
            }
        }
    }
    bar.finish_and_clear();
    if let Some(e) = merged.take_error() {
        return Err(anyhow::anyhow!(e).context("replay stopped"));
    }
    let detectors = specs
        .iter()
        .map(|s| {
            let d = s.build();
            format!("{}:{}", d.name(), d.params())
        })
        .collect();
    let report = report::build(
        &alerts,
        Inputs {
            recordings: args.recs.iter().map(|p| p.display().to_string()).collect(),
            detectors,
            cooldown,
            counts: pipeline.counts,
            pacing,
            capacity,
        },
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report::render_text(&report));
    }
    Ok(ExitCode::SUCCESS)
}
