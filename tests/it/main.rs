//! The one integration-test binary: the `tapedeck` binary and library driven end to end,
//! on the bundled real data (tests/fixtures, recordings/). Nothing here touches the network.

mod capture;
mod cli;
mod crash;
mod mock_binance;
mod replay;
mod util;
