//! The levels outside a ladder's window: a hash map by key, ordered only when asked.
//!
//! Why not a `BTreeMap`: far levels are written as often as near ones on a deep book
//! (Binance diffs touch levels ±10% from the best: 7% of the sample's updates fall outside
//! the window), and the ordered map spent ~150 ns per write there. Order is needed only
//! for depth queries that run past the window and for re-centring, both rare, and is made
//! then by selecting and sorting, so no hash order ever reaches a caller. No IO.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::Best;
use crate::model::Level;

/// splitmix64's finalizer over an `i64` key: every output bit depends on every key bit.
/// The table picks buckets from the low bits, and keys share low zero bits (at 8 decimals a
/// $0.01 tick makes every key a multiple of 2^6), which a plain multiply would keep.
/// Deterministic, unlike the default hasher.
#[derive(Default)]
pub(super) struct KeyHash(u64);

impl KeyHash {
    #[inline]
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Hasher for KeyHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = KeyHash::mix(self.0 ^ b as u64);
        }
    }

    #[inline]
    fn write_i64(&mut self, key: i64) {
        self.0 = KeyHash::mix(self.0 ^ key as u64);
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
        // Best first: keys negated for bids, so the wanted levels are the smallest.
        let sign = if best == Best::Highest { -1 } else { 1 };
        let mut all: Vec<(i128, Level)> = self.levels.iter().map(|(k, l)| (sign * *k as i128, *l)).collect();
        // Only the `n` wanted are sorted: a deep far side is thousands of levels.
        if n < all.len() {
            all.select_nth_unstable_by_key(n, |(k, _)| *k);
            all.truncate(n);
        }
        all.sort_unstable_by_key(|(k, _)| *k);
        out.extend(all.iter().map(|(_, l)| *l));
    }

    /// Every level, in no particular order, emptying the map.
    pub fn drain(&mut self) -> Vec<(i64, Level)> {
        self.levels.drain().collect()
    }
}
