//! `tapedeck serve`: a recording played back as an exchange, in that venue's own WebSocket
//! and REST protocol, so any bot (not only ours) can run against recorded data.
//!
//! This module owns rendering records back into a venue's wire format and serving them:
//! `clock.rs` (the one replay clock every connection shares, with the served books and
//! candles), `session.rs` (one port: WebSocket upgrades become stream sessions, everything
//! else goes to `rest.rs`, which answers it as REST), and one file per protocol (`binance.rs`, `gate.rs`, `lbank.rs`).
//! The engine must not use it: it does IO and reads the wall clock. Binance is complete; Gate
//! serves trades, book tickers and depth diffs with its REST book and pairs; LBank serves
//! trades and whole-book depth pushes with its pairs list.

pub mod binance;
mod clock;
pub mod gate;
pub mod lbank;
mod rest;
mod session;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::model::{Decimal, Event, InstrumentId};
use crate::replay::{Filter, Merged, Speed};
pub use clock::CHANNEL;

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open recording {path}: {source}")]
    Open { path: PathBuf, source: crate::log::LogError },
    #[error("recording {0} is empty")]
    Empty(PathBuf),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("replay stopped: {0}")]
    Replay(#[from] crate::log::LogError),
}

/// The exchange protocol a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Binance,
    Gate,
    LBank,
}

/// What to serve and how.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub protocol: Protocol,
    pub recording: PathBuf,
    pub bind: String,
    pub speed: Speed,
    pub repeat: bool,
    pub start_on_connect: bool,
}

/// A bound, not yet running server.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: Arc<clock::State>,
    symbols: Arc<Vec<binance::SymbolSpec<'static>>>,
    config: ServeConfig,
}

/// Records read up front to learn each instrument's price and quantity precision.
const PRECISION_SCAN: usize = 20_000;

impl Server {
    /// Opens the recording and binds the port (`:0` picks a free one; see [`Server::local_addr`]).
    ///
    /// # Errors
    /// When the recording cannot be read or the address cannot be bound.
    pub async fn bind(config: ServeConfig) -> Result<Server, ServeError> {
        let paths = vec![config.recording.clone()];
        let open_err = |(path, source)| ServeError::Open { path, source };
        let mut merged = Merged::open(&paths, Filter::default()).map_err(open_err)?;
        let Some((first_ts, _)) = merged.span else { return Err(ServeError::Empty(config.recording.clone())) };
        let table = merged.symbols().clone();
        let specs = precision_scan(&mut merged, &table);
        if let Some(e) = merged.take_error() {
            return Err(ServeError::Open { path: config.recording.clone(), source: e });
        }
        let listener = tokio::net::TcpListener::bind(&config.bind)
            .await
            .map_err(|source| ServeError::Bind { addr: config.bind.clone(), source })?;
        let state = Arc::new(clock::State::new(table, first_ts, config.protocol));
        Ok(Server { listener, state, symbols: Arc::new(specs), config })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the process ends; returns early only if the replay fails.
    ///
    /// # Errors
    /// A recording error met by the clock.
    pub async fn run(self) -> Result<(), ServeError> {
        let Server { listener, state, symbols, config } = self;
        let clock_config = clock::ClockConfig {
            recordings: vec![config.recording.clone()],
            speed: config.speed,
            repeat: config.repeat,
            start_on_connect: config.start_on_connect,
        };
        if !config.start_on_connect {
            state.started.store(true, Ordering::Release);
        }
        let clock_state = state.clone();
        let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("serve-clock".into())
            .spawn(move || {
                let _ = done_tx.send(clock::run(&clock_state, &clock_config));
            })
            .map_err(crate::log::LogError::Io)?;
        let shared = Arc::new(session::Shared { state: state.clone(), symbols });
        let mut clock_done = false;
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(session::handle(stream, shared.clone()));
                    }
                    Err(e) => tracing::warn!(error = %e, "accept failed"),
                },
                result = &mut done_rx, if !clock_done => {
                    clock_done = true;
                    if let Ok(Err(e)) = result {
                        return Err(ServeError::Replay(e));
                    }
                    // Without --loop the connections stay open (idle, answering pings), so a
                    // client does not mistake the end of the data for an outage and reconnect.
                }
            }
        }
    }
}

/// Per instrument: the largest scale of prices and quantities (how Binance writes them) and the
/// finest step seen (the tick and lot sizes), from the first records of the recording.
fn precision_scan(merged: &mut Merged, table: &crate::model::SymbolTable) -> Vec<binance::SymbolSpec<'static>> {
    #[derive(Default, Clone)]
    struct Seen {
        price_scale: u8,
        qty_scale: u8,
        tick: Option<Decimal>,
        step: Option<Decimal>,
    }
    fn note(scale: &mut u8, step: &mut Option<Decimal>, d: &Decimal) {
        *scale = (*scale).max(d.scale());
        let n = d.normalized();
        if n.is_zero() {
            return;
        }
        let unit = Decimal::new(1, n.scale()).unwrap_or(n);
        if step.is_none_or(|s| unit < s) {
            *step = Some(unit);
        }
    }
    let mut seen = vec![Seen::default(); table.len()];
    for record in merged.by_ref().take(PRECISION_SCAN) {
        let Some(s) = seen.get_mut(record.instrument.0 as usize) else { continue };
        let (prices, qtys): (Vec<&Decimal>, Vec<&Decimal>) = match &record.event {
            Event::Trade(t) => (vec![&t.price], vec![&t.qty]),
            Event::Quote(q) => (vec![&q.bid_price, &q.ask_price], vec![&q.bid_qty, &q.ask_qty]),
            Event::BookDelta(d) => {
                let levels = d.bids.iter().chain(&d.asks);
                levels.map(|l| (&l.price, &l.qty)).unzip()
            }
            _ => continue,
        };
        prices.into_iter().for_each(|p| note(&mut s.price_scale, &mut s.tick, p));
        qtys.into_iter().for_each(|q| note(&mut s.qty_scale, &mut s.step, q));
    }
    table
        .iter()
        .map(|(id, inst): (InstrumentId, _)| {
            let s = &seen[id.0 as usize];
            let (base, quote) = inst.symbol.split_once('/').unwrap_or((&inst.symbol, ""));
            // Leaked once per instrument at startup: the specs live as long as the server.
            let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
            binance::SymbolSpec {
                venue_symbol: leak(&inst.venue_symbol),
                base: leak(base),
                quote: leak(quote),
                price_scale: s.price_scale.max(1),
                qty_scale: s.qty_scale.max(1),
                tick: s.tick,
                step: s.step,
            }
        })
        .collect()
}
