//! Building recordings from files: captures made by other tools, and public data dumps.
//!
//! Importers read files and feed venue normalizers, then append through the log's
//! [`Writer`](crate::log::Writer), so an imported recording is an ordinary one. They never
//! know a wire format themselves beyond the file framing.

pub mod binance;
pub mod hftbacktest;
pub mod ohlcv;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::model::Nanos;

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}:{line}: {detail}")]
    Line { path: String, line: u64, detail: String },
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
}

/// Counters an import reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportStats {
    pub lines: u64,
    pub records: u64,
    pub parse_errors: u64,
    pub control_frames: u64,
}

/// Merges per-instrument row streams, given in instrument order, into one stream ordered by
/// (ts_exchange, instrument); yields each row with its stream's index.
///
/// Records get seq in this order, so seq order is time order across instruments, and ties
/// go the same way whatever order the files were named in. Each stream keeps its own row
/// order even where it goes back in time (`--allow-overlap`): the merge only interleaves.
pub fn merge_by_time(streams: Vec<Vec<binance::Row>>) -> impl Iterator<Item = (usize, binance::Row)> {
    let mut iters: Vec<std::vec::IntoIter<binance::Row>> = streams.into_iter().map(Vec::into_iter).collect();
    let mut heads: Vec<Option<binance::Row>> = iters.iter_mut().map(Iterator::next).collect();
    let mut heap: BinaryHeap<Reverse<(Nanos, usize)>> =
        heads.iter().enumerate().filter_map(|(i, h)| h.as_ref().map(|r| Reverse((r.ts_exchange, i)))).collect();
    std::iter::from_fn(move || {
        let Reverse((_, i)) = heap.pop()?;
        let row = heads[i].take().expect("a head for every heap entry");
        heads[i] = iters[i].next();
        if let Some(next) = &heads[i] {
            heap.push(Reverse((next.ts_exchange, i)));
        }
        Some((i, row))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, Status};

    fn row(ts: Nanos) -> binance::Row {
        binance::Row { ts_exchange: ts, event: Event::Status(Status::Resync { stream: String::new() }) }
    }

    #[test]
    fn merge_orders_by_time_then_stream() {
        let cases: [(&str, Vec<Vec<Nanos>>, Vec<(usize, Nanos)>); 4] = [
            ("one stream passes through", vec![vec![1, 2, 3]], vec![(0, 1), (0, 2), (0, 3)]),
            ("ties go to the earlier stream", vec![vec![5, 10], vec![5, 10]], vec![(0, 5), (1, 5), (0, 10), (1, 10)]),
            ("interleaves by time", vec![vec![1, 4], vec![2, 3], vec![]], vec![(0, 1), (1, 2), (1, 3), (0, 4)]),
            // --allow-overlap: a stream that goes back keeps its order.
            ("a stream's own order is kept", vec![vec![5, 1], vec![3]], vec![(1, 3), (0, 5), (0, 1)]),
        ];
        for (name, streams, expected) in cases {
            let streams = streams.into_iter().map(|s| s.into_iter().map(row).collect()).collect();
            let got: Vec<(usize, Nanos)> = merge_by_time(streams).map(|(i, r)| (i, r.ts_exchange)).collect();
            assert_eq!(got, expected, "{name}");
        }
    }
}
