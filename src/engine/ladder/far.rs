//! The levels outside a ladder's window: a hash map by key, ordered only when asked.
//!
//! Why not a `BTreeMap`: far levels are written as often as near ones on a deep book
//! (Binance diffs touch levels ±10% from the best), and the ordered map spent ~150 ns per
//! write there, an eighth of the ladder's time for 1.5% of its levels. Order is needed only
//! for depth queries that run past the window and for re-centring, both rare, and is made
//! then by sorting, so no hash order ever reaches a caller. No IO.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::Best;
use crate::model::Level;

/// Fibonacci hashing of an `i64` key: one multiply, with the high bits (which the table
/// uses) depending on every bit of the key. Deterministic, unlike the default hasher.
#[derive(Default)]
pub(super) struct KeyHash(u64);

impl Hasher for KeyHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i64(&mut self, key: i64) {
        self.0 = (key as u64 ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct Far {
    levels: HashMap<i64, Level, BuildHasherDefault<KeyHash>>,
}

impl Far {
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    pub fn clear(&mut self) {
        self.levels.clear();
    }

    pub fn remove(&mut self, key: i64) {
        self.levels.remove(&key);
    }

    /// Sets the quantity at `key`; a new level keeps `level`'s spelling, an existing one its own.
    pub fn upsert(&mut self, key: i64, level: &Level) {
        self.levels.entry(key).and_modify(|l| l.qty = level.qty).or_insert(*level);
    }

    /// The key of the best level here.
    pub fn best_key(&self, best: Best) -> Option<i64> {
        match best {
            Best::Highest => self.levels.keys().max().copied(),
            Best::Lowest => self.levels.keys().min().copied(),
        }
    }

    pub fn best_level(&self, best: Best) -> Option<Level> {
        self.best_key(best).map(|k| self.levels[&k])
    }

    /// Up to `n` levels, best first, appended to `out`.
    pub fn ordered(&self, best: Best, n: usize, out: &mut Vec<Level>) {
        if n == 0 || self.levels.is_empty() {
            return;
        }
        let mut all: Vec<(i64, Level)> = self.levels.iter().map(|(k, l)| (*k, *l)).collect();
        all.sort_unstable_by_key(|(k, _)| *k);
        match best {
            Best::Highest => out.extend(all.iter().rev().take(n).map(|(_, l)| *l)),
            Best::Lowest => out.extend(all.iter().take(n).map(|(_, l)| *l)),
        }
    }

    /// Every level, in no particular order, emptying the map.
    pub fn drain(&mut self) -> Vec<(i64, Level)> {
        self.levels.drain().collect()
    }
}
