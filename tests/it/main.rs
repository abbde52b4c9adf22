//! The one integration-test binary: the `tapedeck` binary and library driven end to end,
//! on the bundled real data (tests/fixtures, recordings/). Nothing here touches the network.

// Table-driven tests spell their rows as tuples.
#![allow(clippy::type_complexity)]

mod alerts;
mod analyze;
mod backfill;
mod backtest;
mod bench;
mod capture;
mod capture_venues;
mod cli;
mod crash;
mod cross_pair;
mod fuzz;
mod import;
mod jetstream;
mod mock_binance;
mod mock_gate;
mod mock_lbank;
mod mock_telegram;
mod mock_venue;
mod replay;
mod serve;
mod util;
mod venues;
mod verify;
