//! One side of an order book as a price ladder: the levels near the best price sit in a
//! dense window indexed by price, and the rest in a hash map by key. Owns the layout only; the
//! sync rules live in `book.rs`. No IO, no clock.
//!
//! Why: a depth diff touches tens of levels (70 at p90 on the Binance sample), anywhere in
//! the top thousand. In a `BTreeMap<Decimal, _>` each touch is a tree search with decimal
//! compares, which set the engine's p99. Here a touch is one multiply and a rotate to find
//! the slot (`key::FastKey`), then a store and a bit flip.
//!
//! The per-level path has no branch on the data: whether a level existed, whether it stays
//! and whether it was the best change from level to level at random, and a branch on
//! them mispredicted on about a third of levels. Written as masks and one combined test,
//! book/ladder went from 2.08 to 1.42 ms; with the fast key and one loop per side (which
//! end is best a constant), `tapedeck bench`'s p99 went from 1.12 µs to 0.78 µs.
//!
//! Layout. A price becomes an integer *key*: its value at the ladder's key scale (the
//! fewest decimals that hold every price seen, so "61837.63000000" is key 6183763). The
//! window covers a run of consecutive keys from `lo`, in pages of 64 slots allocated on
//! first use, with one occupancy bit per slot. Keys outside the window go to `overflow`.
//! The window is centred on the best price, and re-centred whenever the best would leave
//! it, so `overflow` only ever holds levels on the far side from the best. The window is
//! 65,536 keys (±$327 for BTC/USDT at $0.01), 16 KiB of page table and bits: a deep Binance
//! book keeps 7% of its updates outside it, in a hash map (`far.rs`). A window that grew to
//! 524,288 keys when the far side was busy took that to 1.5%, but once far levels were
//! hashed rather than in an ordered map it was no faster (book/ladder 2.32 against
//! 2.22 ms) and took 8 times the memory, so the window stays small. A price whose
//! key does not fit an `i64` turns the side into a plain ordered map until it is cleared.
//! A slot is 8 bytes (the quantity's mantissa and scale, and the price's scale, packed), so
//! a page is 512 bytes and a deep book stays in cache; the price comes back from the key
//! and its scale exactly as the venue spelled it. A quantity whose mantissa needs more than
//! 52 bits (22.5M BTC at 8 decimals) also sends the side to the ordered map.

use std::collections::BTreeMap;

mod far;
mod key;
mod slot;
use crate::model::{Level, Price};
use far::Far;
use key::{FastKey, Key, key_at, min_scale, quick_key};
use slot::Slot;

const PAGE: usize = 64;
const PAGES: usize = 1024;
/// Keys in the window: 65,536 ticks, about ±$327 around the best for BTC/USDT at $0.01.
const WINDOW: i64 = (PAGE * PAGES) as i64;

/// What inserting into the window asks of the side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placed {
    Done,
    /// The key landed beyond the best end of the window.
    Recentre,
    /// The quantity does not fit a slot.
    Unfit,
    /// The window's last level went: the best may now be in overflow.
    Emptied,
}

/// Which end of the side is the best price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Best {
    /// Bids: the highest price is best.
    Highest,
    /// Asks: the lowest price is best.
    Lowest,
}

#[derive(Debug, Clone)]
struct Window {
    key_scale: u8,
    /// Keys for the scale the side's prices are usually written with.
    fast: FastKey,
    /// Key of slot 0.
    lo: i64,
    /// Arrays rather than `Vec`s: a slot's page is below `PAGES` by construction, and the
    /// compiler sees it, so the per-level path has no bounds checks.
    pages: Box<[Option<Box<[Slot; PAGE]>>; PAGES]>,
    bits: Box<[u64; PAGES]>,
    len: usize,
    /// The best occupied slot, when `len > 0`; else `empty_top`.
    top: usize,
    /// Levels whose keys are outside `lo..lo + WINDOW`, all on the far side from the best.
    overflow: Far,
}

#[derive(Debug, Clone)]
enum Repr {
    Empty,
    Ladder(Box<Window>),
    /// For prices no `i64` key holds: correct, and as slow as before.
    Tree(BTreeMap<Price, Level>),
}

/// One side of a book.
#[derive(Debug, Clone)]
pub struct Side {
    best: Best,
    repr: Repr,
    /// Kept across clears so a snapshot reuses the pages the last one allocated.
    spare: Option<Box<Window>>,
}

impl Side {
    pub fn new(best: Best) -> Side {
        Side { best, repr: Repr::Empty, spare: None }
    }

    pub fn clear(&mut self) {
        match std::mem::replace(&mut self.repr, Repr::Empty) {
            Repr::Ladder(mut w) => {
                w.bits.iter_mut().for_each(|b| *b = 0);
                w.overflow.clear();
                w.len = 0;
                // `start_window` sets these again; reset here too so a kept window is never
                // half stale.
                w.top = empty_top(self.best);
                w.fast = FastKey::NONE;
                self.spare = Some(w);
            }
            Repr::Tree(_) | Repr::Empty => {}
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Empty => 0,
            Repr::Ladder(w) => w.len + w.overflow.len(),
            Repr::Tree(t) => t.len(),
        }
    }

    /// Sets a level: a zero quantity removes it (removing an absent level is normal). An
    /// existing level keeps the price as first written, as a map keyed by price would.
    #[cfg(test)]
    pub fn set(&mut self, level: &Level) {
        self.set_all(std::slice::from_ref(level));
    }

    /// Sets every level of one update, in order.
    ///
    /// One loop per side of the book, so that which end is best is a constant in each.
    pub fn set_all(&mut self, levels: &[Level]) {
        match self.best {
            Best::Highest => levels.iter().for_each(|level| self.set_as(level, Best::Highest)),
            Best::Lowest => levels.iter().for_each(|level| self.set_as(level, Best::Lowest)),
        }
    }

    /// `set` with `best` known at the call (it is `self.best`).
    #[inline(always)]
    fn set_as(&mut self, level: &Level, best: Best) {
        if let Repr::Ladder(w) = &mut self.repr {
            let key = match w.fast.key(&level.price) {
                Some(key) => Some(key),
                None => w.key(&level.price),
            };
            if let Some(key) = key {
                match w.write(key, level, best) {
                    Placed::Done => return,
                    Placed::Recentre => return self.recentre_on(key),
                    Placed::Emptied => return self.recentre_if_needed(),
                    // Nothing was written.
                    Placed::Unfit => {}
                }
            }
        }
        self.set_slow(level);
    }

    /// `set` for everything but a write into the ladder at a quick key: starting a side,
    /// re-keying, quantities no slot holds, and the map fallback.
    #[inline(never)]
    fn set_slow(&mut self, level: &Level) {
        loop {
            let key_scale = match &mut self.repr {
                Repr::Tree(tree) => {
                    set_in_tree(tree, level);
                    return;
                }
                Repr::Empty => {
                    if level.qty.is_zero() {
                        return;
                    }
                    self.start_for(&level.price);
                    continue;
                }
                Repr::Ladder(w) => w.key_scale,
            };
            match key_at(&level.price, key_scale) {
                Key::Fits(key) => {
                    let Repr::Ladder(w) = &mut self.repr else { unreachable!("matched above") };
                    match w.write(key, level, self.best) {
                        Placed::Done => {}
                        Placed::Recentre => self.recentre_on(key),
                        Placed::Emptied => self.recentre_if_needed(),
                        Placed::Unfit => {
                            self.rekey(None);
                            continue;
                        }
                    }
                    return;
                }
                // Every stored level has a key at this scale, so a price without one is absent.
                _ if level.qty.is_zero() => return,
                Key::NeedsScale(scale) => self.rekey(Some(scale)),
                Key::TooWide => self.rekey(None),
            }
        }
    }

    pub fn best(&self) -> Option<Level> {
        match &self.repr {
            Repr::Empty => None,
            Repr::Ladder(w) if w.len > 0 => Some(w.slot(w.top)),
            // An empty window with overflow is re-centred at once, so this is only reached
            // when the side is empty.
            Repr::Ladder(w) => w.overflow.best_level(self.best),
            Repr::Tree(t) => match self.best {
                Best::Highest => t.values().next_back().copied(),
                Best::Lowest => t.values().next().copied(),
            },
        }
    }

    /// Up to `n` levels, best first.
    pub fn levels(&self, n: usize) -> Vec<Level> {
        let mut out = Vec::with_capacity(n.min(self.len()));
        match &self.repr {
            Repr::Empty => {}
            Repr::Tree(t) => match self.best {
                Best::Highest => out.extend(t.values().rev().take(n).copied()),
                Best::Lowest => out.extend(t.values().take(n).copied()),
            },
            Repr::Ladder(w) => {
                w.window_levels(self.best, n, &mut out);
                w.overflow.ordered(self.best, n - out.len(), &mut out);
            }
        }
        out
    }

    /// Starts an empty side at the key scale `price` needs. Out of line: inlined, LLVM
    /// hoisted its first i128 remainder into every `set`.
    #[cold]
    #[inline(never)]
    fn start_for(&mut self, price: &Price) {
        let key_scale = min_scale(price);
        match key_at(price, key_scale) {
            Key::Fits(key) => self.start_window(key_scale, key),
            _ => self.repr = Repr::Tree(BTreeMap::new()),
        }
    }

    fn start_window(&mut self, key_scale: u8, key: i64) {
        let mut w = self.spare.take().unwrap_or_else(|| {
            Box::new(Window {
                key_scale,
                fast: FastKey::NONE,
                lo: 0,
                pages: Box::new([const { None }; PAGES]),
                bits: Box::new([0; PAGES]),
                len: 0,
                top: 0,
                overflow: Far::default(),
            })
        });
        w.key_scale = key_scale;
        w.fast = FastKey::NONE;
        w.top = empty_top(self.best);
        w.lo = key - WINDOW / 2;
        self.repr = Repr::Ladder(w);
    }

    /// All levels, in key order, emptying the side.
    fn drain(&mut self) -> Vec<Level> {
        let levels = match &self.repr {
            Repr::Empty => Vec::new(),
            _ => {
                let mut all = self.levels(usize::MAX);
                if self.best == Best::Highest {
                    all.reverse();
                }
                all
            }
        };
        self.clear();
        levels
    }

    /// Re-keys every level at a finer scale, or (`None`) gives up on keys for this side.
    #[cold]
    fn rekey(&mut self, scale: Option<u8>) {
        let old_scale = match &self.repr {
            Repr::Ladder(w) => w.key_scale,
            _ => 0,
        };
        let levels = self.drain();
        match scale {
            Some(scale) => {
                let scale = scale.max(old_scale);
                let fits: Option<Vec<i64>> = levels
                    .iter()
                    .map(|l| match key_at(&l.price, scale) {
                        Key::Fits(k) => Some(k),
                        _ => None,
                    })
                    .collect();
                if let Some(keys) = fits {
                    let centre = match self.best {
                        Best::Highest => keys.last(),
                        Best::Lowest => keys.first(),
                    };
                    self.start_window(scale, centre.copied().unwrap_or(0));
                    let Repr::Ladder(w) = &mut self.repr else { unreachable!("just started") };
                    for (key, level) in keys.into_iter().zip(&levels) {
                        w.write(key, level, self.best);
                    }
                    return;
                }
                self.become_tree(levels);
            }
            None => self.become_tree(levels),
        }
    }

    fn become_tree(&mut self, levels: Vec<Level>) {
        self.repr = Repr::Tree(levels.into_iter().map(|l| (l.price, l)).collect());
    }

    /// After a removal: an empty window with levels left in overflow means the best is
    /// now in overflow, so the window moves there.
    fn recentre_if_needed(&mut self) {
        if let Repr::Ladder(w) = &self.repr {
            if w.len == 0 {
                if let Some(key) = w.overflow.best_key(self.best) {
                    self.recentre_on(key);
                }
            }
        }
    }

    /// Moves the window so `key` (the new best) is in its middle.
    #[cold]
    fn recentre_on(&mut self, key: i64) {
        let Repr::Ladder(w) = &mut self.repr else { return };
        let mut levels = w.overflow.drain();
        w.drain_window_into(&mut levels, self.best);
        w.lo = key - WINDOW / 2;
        for (k, level) in &levels {
            w.write(*k, level, self.best);
        }
    }
}

/// `top` of an empty window: the worst slot for the side, so the first level replaces it.
fn empty_top(best: Best) -> usize {
    match best {
        Best::Highest => 0,
        Best::Lowest => WINDOW as usize - 1,
    }
}

#[cold]
#[inline(never)]
fn new_page(empty: &mut Option<Box<[Slot; PAGE]>>) -> &mut Box<[Slot; PAGE]> {
    empty.insert(Box::new([Slot::default(); PAGE]))
}

fn set_in_tree(tree: &mut BTreeMap<Price, Level>, level: &Level) {
    if level.qty.is_zero() {
        tree.remove(&level.price);
    } else {
        tree.entry(level.price).and_modify(|l| l.qty = level.qty).or_insert(*level);
    }
}

impl Window {
    #[inline]
    fn slot(&self, slot: usize) -> Level {
        let page = self.pages[slot / PAGE].as_ref().expect("occupied slot has a page");
        page[slot % PAGE].level(self.lo + slot as i64, self.key_scale)
    }

    /// `quick_key`, for a price the fast key did not take. The first price to get a key
    /// this way sets the fast key's scale.
    #[inline(never)]
    fn key(&mut self, price: &Price) -> Option<i64> {
        let key = quick_key(price, self.key_scale)?;
        if self.fast.is_none() {
            self.fast = FastKey::new(price.scale(), self.key_scale);
        }
        Some(key)
    }

    #[inline]
    fn slot_of(&self, key: i64) -> Option<usize> {
        let offset = key.wrapping_sub(self.lo);
        (0..WINDOW).contains(&offset).then_some(offset as usize)
    }

    /// Sets (or, with a zero quantity, removes) the level at `key`.
    ///
    /// Whether the slot was occupied and whether it will be are data, not branches: in a
    /// depth diff inserts, updates and removals come in no predictable order, and a
    /// mispredicted branch per level cost more than the memory traffic.
    ///
    /// Inlined into the per-level loop, with the rare cases (a key outside the window, a
    /// page's first level) out of line: the call and its register saves were a fifth of
    /// the cost of a level.
    #[inline(always)]
    fn write(&mut self, key: i64, level: &Level, best: Best) -> Placed {
        let Some(new) = Slot::of(level) else { return Placed::Unfit };
        let now = !level.qty.is_zero();
        let Some(slot) = self.slot_of(key) else { return self.write_overflow(key, level, now, best) };
        let (page, bit) = (slot / PAGE, slot % PAGE);
        let slots = match &mut self.pages[page] {
            Some(slots) => slots,
            None if !now => return Placed::Done,
            empty => new_page(empty),
        };
        let mask = 1u64 << bit;
        let word = self.bits[page];
        let was = word & mask != 0;
        let cell = &mut slots[bit];
        *cell = new.keeping_spelling(*cell, was);
        self.bits[page] = (word & !mask) | ((now as u64) << bit);
        let before = self.len;
        self.len = before + now as usize - was as usize;
        // An empty window's `top` is its worst slot, so any level is at least as good.
        let better = match best {
            Best::Highest => slot >= self.top,
            Best::Lowest => slot <= self.top,
        };
        let top = self.top;
        self.top = if now & better { slot } else { top };
        // The best level went. One test of one integer: written as `was && !now && ..`,
        // or even with `&`, it compiled to a branch on `was` and one on `now`, which the
        // CPU cannot predict.
        if (slot ^ top) | (now as usize) | (!was as usize) == 0 {
            if self.len == 0 {
                self.top = empty_top(best);
                return Placed::Emptied;
            }
            self.top = self.next_from(slot, best).expect("len > 0 means an occupied slot");
        }
        Placed::Done
    }

    /// `write` for a key outside the window.
    #[inline(never)]
    fn write_overflow(&mut self, key: i64, level: &Level, now: bool, best: Best) -> Placed {
        if !now {
            self.overflow.remove(key);
            return Placed::Done;
        }
        self.overflow.upsert(key, level);
        let beyond = match best {
            Best::Highest => key >= self.lo + WINDOW,
            Best::Lowest => key < self.lo,
        };
        // Into an empty window's overflow: the new level is the best, so the window
        // moves to it and stays non-empty while the side is.
        if beyond || self.len == 0 { Placed::Recentre } else { Placed::Done }
    }

    /// The best occupied slot at or past `slot`, going away from the best end.
    fn next_from(&self, slot: usize, best: Best) -> Option<usize> {
        let (mut page, bit) = (slot / PAGE, slot % PAGE);
        match best {
            Best::Highest => {
                // Bits at or below `bit`.
                let mut word = self.bits[page] & (u64::MAX >> (63 - bit));
                loop {
                    if word != 0 {
                        return Some(page * PAGE + 63 - word.leading_zeros() as usize);
                    }
                    if page == 0 {
                        return None;
                    }
                    page -= 1;
                    word = self.bits[page];
                }
            }
            Best::Lowest => {
                let mut word = self.bits[page] & (u64::MAX << bit);
                loop {
                    if word != 0 {
                        return Some(page * PAGE + word.trailing_zeros() as usize);
                    }
                    page += 1;
                    if page == PAGES {
                        return None;
                    }
                    word = self.bits[page];
                }
            }
        }
    }

    fn window_levels(&self, best: Best, n: usize, out: &mut Vec<Level>) {
        if self.len == 0 {
            return;
        }
        let mut at = Some(self.top);
        while let Some(slot) = at {
            if out.len() == n {
                return;
            }
            out.push(self.slot(slot));
            at = match best {
                Best::Highest => slot.checked_sub(1).and_then(|s| self.next_from(s, best)),
                Best::Lowest => (slot + 1 < WINDOW as usize).then(|| self.next_from(slot + 1, best)).flatten(),
            };
        }
    }

    fn drain_window_into(&mut self, out: &mut Vec<(i64, Level)>, best: Best) {
        for page in 0..PAGES {
            let mut word = std::mem::take(&mut self.bits[page]);
            while word != 0 {
                let bit = word.trailing_zeros() as usize;
                word &= word - 1;
                let slot = page * PAGE + bit;
                out.push((self.lo + slot as i64, self.slot(slot)));
            }
        }
        self.len = 0;
        self.top = empty_top(best);
    }
}

#[cfg(test)]
mod tests;
