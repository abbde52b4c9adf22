//! L2 order books rebuilt from snapshots and diffs, with update-id sequence checks.
//!
//! Sync rule (Binance's, which Gate shares): a snapshot with id L sets the book; diffs with
//! last id u ≤ L are stale and skipped; a diff whose first id U > L + 1 is a gap. After a
//! gap, a `Gap` status or a crossed book, the book is invalid until the next snapshot.
//! While a book waits for a snapshot it buffers diffs (up to `MAX_BUFFERED`), because the
//! REST snapshot is taken after the stream starts: the diffs that arrived before it but
//! end after its id are applied right after it, as the venues' procedure requires.
//! Snapshots without an id (LBank full-depth pushes) replace the book and are always valid.
//! Each side is a price ladder (`ladder/`). No IO, no clock.

use std::collections::VecDeque;

use super::ladder::{Best, Side};
use crate::model::{BookDelta, BookSnapshot, Level};

/// Why a book is not currently trustworthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// No snapshot yet.
    AwaitingSnapshot,
    /// An update id was skipped.
    Gap { expected: u64, got: u64 },
    /// The best bid reached the best ask.
    Crossed,
    /// The capture reported a gap or resync for this instrument.
    Reported,
}

/// What applying an update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Updated,
    /// Before the snapshot or older than it: ignored, as the sync procedure requires.
    Stale,
    /// The book just became invalid.
    Invalidated(Invalid),
    /// The book is invalid and waits for a snapshot.
    Ignored,
}

/// Diffs kept while waiting for a snapshot; older ones are dropped first.
pub const MAX_BUFFERED: usize = 4096;

/// One instrument's book.
#[derive(Debug, Clone)]
pub struct OrderBook {
    bids: Side,
    asks: Side,
    last_update_id: Option<u64>,
    invalid: Option<Invalid>,
    buffered: VecDeque<BookDelta>,
}

impl Default for OrderBook {
    fn default() -> Self {
        OrderBook {
            bids: Side::new(Best::Highest),
            asks: Side::new(Best::Lowest),
            last_update_id: None,
            invalid: Some(Invalid::AwaitingSnapshot),
            buffered: VecDeque::new(),
        }
    }
}

impl OrderBook {
    pub fn is_valid(&self) -> bool {
        self.invalid.is_none()
    }

    pub fn invalid_reason(&self) -> Option<Invalid> {
        self.invalid
    }

    pub fn last_update_id(&self) -> Option<u64> {
        self.last_update_id
    }

    pub fn best_bid(&self) -> Option<Level> {
        self.bids.best()
    }

    pub fn best_ask(&self) -> Option<Level> {
        self.asks.best()
    }

    /// Up to `n` bid levels, best first.
    pub fn bids(&self, n: usize) -> Vec<Level> {
        self.bids.levels(n)
    }

    /// Up to `n` ask levels, best first.
    pub fn asks(&self, n: usize) -> Vec<Level> {
        self.asks.levels(n)
    }

    pub fn depth(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }

    pub fn apply_snapshot(&mut self, snap: &BookSnapshot) -> Applied {
        self.bids.clear();
        self.asks.clear();
        set_levels(&mut self.bids, &snap.bids);
        set_levels(&mut self.asks, &snap.asks);
        self.last_update_id = snap.last_update_id;
        self.invalid = None;
        let mut result = self.check_crossed();
        if snap.last_update_id.is_some() {
            for delta in std::mem::take(&mut self.buffered) {
                if self.invalid.is_some() {
                    break;
                }
                let applied = self.apply_delta(&delta);
                if applied != Applied::Stale {
                    result = applied;
                }
            }
        }
        self.buffered.clear();
        result
    }

    pub fn apply_delta(&mut self, delta: &BookDelta) -> Applied {
        let Some(last) = self.last_update_id.filter(|_| self.invalid.is_none()) else {
            if self.invalid.is_none() {
                // A book from an id-less snapshot cannot take diffs safely.
                return self.invalidate(Invalid::Reported);
            }
            if self.buffered.len() == MAX_BUFFERED {
                self.buffered.pop_front();
            }
            self.buffered.push_back(delta.clone());
            return if self.invalid == Some(Invalid::AwaitingSnapshot) { Applied::Stale } else { Applied::Ignored };
        };
        if delta.last_update_id <= last {
            return Applied::Stale;
        }
        if delta.first_update_id > last + 1 {
            return self.invalidate(Invalid::Gap { expected: last + 1, got: delta.first_update_id });
        }
        set_levels(&mut self.bids, &delta.bids);
        set_levels(&mut self.asks, &delta.asks);
        self.last_update_id = Some(delta.last_update_id);
        self.check_crossed()
    }

    /// Marks the book invalid until the next snapshot.
    pub fn invalidate(&mut self, why: Invalid) -> Applied {
        if self.invalid.is_some() {
            return Applied::Ignored;
        }
        self.invalid = Some(why);
        Applied::Invalidated(why)
    }

    fn check_crossed(&mut self) -> Applied {
        match (self.best_bid(), self.best_ask()) {
            (Some(bid), Some(ask)) if bid.price >= ask.price => self.invalidate(Invalid::Crossed),
            _ => Applied::Updated,
        }
    }
}

/// Quantities are absolute; zero removes the level (removing an absent level is normal).
fn set_levels(side: &mut Side, levels: &[Level]) {
    side.set_all(levels);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Decimal;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn lv(p: i64, q: i64) -> Level {
        Level { price: Decimal::from_int(p), qty: Decimal::from_int(q) }
    }

    fn delta(first: u64, last: u64, bids: Vec<Level>, asks: Vec<Level>) -> BookDelta {
        BookDelta { first_update_id: first, last_update_id: last, bids, asks }
    }

    #[test]
    fn sync_rules_table() {
        let snap = BookSnapshot { last_update_id: Some(100), bids: vec![lv(10, 1)], asks: vec![lv(12, 1)] };
        let cases = [
            ("stale before snapshot id", delta(90, 100, vec![lv(9, 1)], vec![]), Applied::Stale),
            ("straddles the snapshot id", delta(95, 105, vec![lv(9, 1)], vec![]), Applied::Updated),
            ("exactly next", delta(101, 101, vec![lv(9, 1)], vec![]), Applied::Updated),
            ("gap", delta(102, 103, vec![], vec![]), Applied::Invalidated(Invalid::Gap { expected: 101, got: 102 })),
            ("crossing", delta(101, 101, vec![lv(12, 1)], vec![]), Applied::Invalidated(Invalid::Crossed)),
        ];
        for (name, d, expected) in cases {
            let mut book = OrderBook::default();
            book.apply_snapshot(&snap);
            assert_eq!(book.apply_delta(&d), expected, "{name}");
        }
    }

    #[test]
    fn diffs_before_the_snapshot_are_buffered_and_replayed() {
        let mut book = OrderBook::default();
        assert_eq!(book.apply_delta(&delta(90, 99, vec![lv(5, 1)], vec![])), Applied::Stale);
        assert_eq!(book.apply_delta(&delta(100, 103, vec![lv(9, 1)], vec![])), Applied::Stale);
        book.apply_snapshot(&BookSnapshot { last_update_id: Some(101), bids: vec![lv(10, 1)], asks: vec![lv(12, 1)] });
        assert!(book.is_valid());
        assert_eq!(book.last_update_id(), Some(103));
        assert_eq!(
            book.bids(9),
            vec![lv(10, 1), lv(9, 1)],
            "the diff ending after the snapshot id applies; the older one not"
        );
        assert_eq!(book.apply_delta(&delta(104, 104, vec![lv(8, 1)], vec![])), Applied::Updated);
    }

    #[test]
    fn invalid_until_next_snapshot() {
        let mut book = OrderBook::default();
        book.apply_snapshot(&BookSnapshot { last_update_id: Some(1), bids: vec![lv(10, 1)], asks: vec![lv(12, 1)] });
        book.apply_delta(&delta(5, 6, vec![], vec![]));
        assert!(!book.is_valid());
        assert_eq!(book.apply_delta(&delta(7, 7, vec![lv(11, 1)], vec![])), Applied::Ignored);
        book.apply_snapshot(&BookSnapshot { last_update_id: Some(7), bids: vec![lv(10, 2)], asks: vec![lv(12, 1)] });
        assert!(book.is_valid());
        assert_eq!(book.best_bid(), Some(lv(10, 2)));
    }

    proptest! {
        /// Random contiguous diff streams agree with a BTreeMap model, level by level.
        #[test]
        fn matches_btreemap_model(
            diffs in proptest::collection::vec(
                (proptest::collection::vec((1i64..50, 0i64..5), 0..8), proptest::collection::vec((51i64..100, 0i64..5), 0..8), 1u64..4),
                0..60,
            )
        ) {
            let mut book = OrderBook::default();
            book.apply_snapshot(&BookSnapshot { last_update_id: Some(0), bids: vec![], asks: vec![] });
            let mut model_bids = BTreeMap::new();
            let mut model_asks = BTreeMap::new();
            let mut last = 0;
            for (bids, asks, span) in diffs {
                let d = delta(
                    last + 1,
                    last + span,
                    bids.iter().map(|(p, q)| lv(*p, *q)).collect(),
                    asks.iter().map(|(p, q)| lv(*p, *q)).collect(),
                );
                last += span;
                for (p, q) in &bids { if *q == 0 { model_bids.remove(p); } else { model_bids.insert(*p, *q); } }
                for (p, q) in &asks { if *q == 0 { model_asks.remove(p); } else { model_asks.insert(*p, *q); } }
                prop_assert_eq!(book.apply_delta(&d), Applied::Updated);
            }
            let expect_bids: Vec<Level> = model_bids.iter().rev().map(|(p, q)| lv(*p, *q)).collect();
            let expect_asks: Vec<Level> = model_asks.iter().map(|(p, q)| lv(*p, *q)).collect();
            prop_assert_eq!(book.bids(usize::MAX), expect_bids);
            prop_assert_eq!(book.asks(usize::MAX), expect_asks);
            prop_assert_eq!(book.last_update_id(), Some(last));
        }
    }
}
