//! `tapedeck symbols --exchange X [--quote USDT] [--json]`: the venue's tradable pairs.

use std::process::ExitCode;

use crate::exchange::Endpoints;
use crate::model::Exchange;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// binance, gate or lbank (bittrex is import-only: no symbol list)
    #[arg(long)]
    exchange: Exchange,
    /// Only pairs quoted in this asset, e.g. USDT
    #[arg(long, value_name = "ASSET")]
    quote: Option<String>,
    /// Include pairs that are not trading
    #[arg(long)]
    all: bool,
    /// REST base URL instead of the venue's
    #[arg(long, value_name = "URL")]
    rest_url: Option<String>,
    /// One JSON array on stdout
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let venue = crate::exchange::venue(args.exchange).ok_or_else(|| {
        anyhow::anyhow!(
            "--exchange {}: import-only venue (tapedeck import ohlcv); it has no symbol list",
            args.exchange
        )
    })?;
    let defaults = venue.default_endpoints();
    let endpoints = Endpoints { ws: defaults.ws, rest: args.rest_url.clone().unwrap_or(defaults.rest) };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut symbols = runtime.block_on(crate::capture::list_symbols(args.exchange, &endpoints))?;
    symbols.retain(|s| args.all || s.tradable);
    if let Some(q) = &args.quote {
        let suffix = format!("/{}", q.to_uppercase());
        symbols.retain(|s| s.instrument.symbol.ends_with(&suffix));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&symbols)?);
    } else {
        println!("{:<16} {:<14} {:<10} {:>6} {:>6}", "venue_symbol", "symbol", "status", "px_dp", "qty_dp");
        for s in &symbols {
            let dp = |p: Option<u32>| p.map_or("-".to_string(), |p| p.to_string());
            println!(
                "{:<16} {:<14} {:<10} {:>6} {:>6}",
                s.instrument.venue_symbol,
                s.instrument.symbol,
                s.status,
                dp(s.price_precision),
                dp(s.qty_precision)
            );
        }
        eprintln!("{} pairs", symbols.len());
    }
    Ok(ExitCode::SUCCESS)
}
