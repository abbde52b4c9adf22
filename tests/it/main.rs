//! The one integration-test binary: the `tapedeck` binary and library driven end to end,
//! on the bundled real data (tests/fixtures, recordings/). Nothing here touches the network.

mod cli;
mod crash;
mod replay;
mod util;
