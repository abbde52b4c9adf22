//! `tapedeck serve REC`: play a recording back as an exchange, over that exchange's own
//! WebSocket and REST protocol, on one port.
//!
//! The bound address is printed on stdout first (`listening on ws://ADDR`), so scripts and tests
//! can bind port 0 and read the port back.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::replay::Speed;
use crate::serve::{Protocol, ServeConfig, Server};

#[derive(Debug, clap::Args)]
#[command(after_help = "Protocols: binance (spot WebSocket streams and REST v3). gate and lbank are not \
implemented yet.

Binance endpoints: /ws (SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS), /ws/<stream>, \
/stream?streams=a/b; streams <sym>@trade, <sym>@bookTicker, <sym>@depth, <sym>@depth@100ms, \
<sym>@kline_<i>, !miniTicker@arr. REST: /api/v3/ping, time, exchangeInfo, depth, klines.

Examples:
  tapedeck serve recordings/binance-btcusdt-20240808
  tapedeck serve REC --bind 127.0.0.1:0 --speed max --start-on-connect
  tapedeck record --exchange binance --symbols BTCUSDT --ws-url ws://127.0.0.1:9443 \\
    --rest-url http://127.0.0.1:9443 --out copy --duration 10s")]
pub struct Args {
    /// Recording directory
    #[arg(value_name = "REC")]
    rec: PathBuf,
    /// Wire protocol to speak: binance (spot WebSocket and REST, complete), gate (spot v4:
    /// trades, book_ticker, order_book_update, order_book and currency_pairs) or lbank (V2:
    /// trade and whole-book depth pushes, currencyPairs)
    #[arg(long, default_value = "binance", value_name = "PROTOCOL")]
    protocol: String,
    /// Address to listen on, WebSocket and REST on the same port (port 0 picks a free one)
    #[arg(long, default_value = "127.0.0.1:9443", value_name = "ADDR")]
    bind: String,
    /// Replay speed: 1 = as recorded, 10 = ten times faster, max = as fast as the slowest client reads
    #[arg(long, default_value = "1", value_parser = clap::value_parser!(Speed))]
    speed: Speed,
    /// Start again from the beginning when the recording ends
    #[arg(long = "loop")]
    repeat: bool,
    /// Hold the replay clock until the first WebSocket client connects
    #[arg(long)]
    start_on_connect: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let protocol = match args.protocol.to_ascii_lowercase().as_str() {
        "binance" => Protocol::Binance,
        "gate" | "gateio" | "gate.io" => Protocol::Gate,
        "lbank" => Protocol::LBank,
        other => {
            eprintln!("error: --protocol {other:?} is unknown (expected binance, gate or lbank)");
            return Ok(ExitCode::from(2));
        }
    };
    let config = ServeConfig {
        protocol,
        recording: args.rec,
        bind: args.bind,
        speed: args.speed,
        repeat: args.repeat,
        start_on_connect: args.start_on_connect,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start tokio")?;
    runtime.block_on(async {
        let server = Server::bind(config).await?;
        let addr = server.local_addr()?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "listening on ws://{addr} (REST http://{addr})")?;
        stdout.flush()?;
        // The process-wide handler (cli::interrupt) receives SIGINT and SIGTERM; poll its flag.
        let interrupted = async {
            while !super::interrupt::requested() {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            result = server.run() => result.map_err(anyhow::Error::from),
            () = interrupted => Ok(()),
        }
    })?;
    Ok(if super::interrupt::requested() { ExitCode::from(130) } else { ExitCode::SUCCESS })
}
