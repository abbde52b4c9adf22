//! The ladder against a `BTreeMap` model: tables for keys and window edges, and proptests.

use super::*;
use crate::model::Decimal;
use proptest::prelude::*;

fn lv(price: &str, qty: &str) -> Level {
    Level { price: price.parse().unwrap(), qty: qty.parse().unwrap() }
}

#[test]
fn keys_table() {
    let cases: [(&str, u8, &str); 7] = [
        ("61837.63000000", 2, "fits 6183763"),
        ("61837.6", 2, "fits 6183760"),
        ("61837.635", 2, "needs 3"),
        ("0.00001234", 8, "fits 1234"),
        ("1", 0, "fits 1"),
        ("-5.5", 1, "fits -55"),
        ("99999999999999999999999", 0, "too wide"),
    ];
    for (price, scale, expect) in cases {
        let got = match key_at(&price.parse::<Decimal>().unwrap(), scale) {
            Key::Fits(k) => format!("fits {k}"),
            Key::NeedsScale(s) => format!("needs {s}"),
            Key::TooWide => "too wide".to_string(),
        };
        assert_eq!(got, expect, "{price} at scale {scale}");
    }
}

#[test]
fn best_moves_and_the_window_follows_the_market() {
    let mut bids = Side::new(Best::Highest);
    bids.set(&lv("100.00", "1"));
    bids.set(&lv("99.50", "2"));
    assert_eq!(bids.best(), Some(lv("100.00", "1")));
    // 2,000 ticks of $1 at scale 0 is far outside a window centred on 100.00 at $0.01.
    bids.set(&lv("1000", "3"));
    assert_eq!(bids.best(), Some(lv("1000", "3")));
    bids.set(&lv("1000", "0"));
    assert_eq!(bids.best(), Some(lv("100.00", "1")));
    bids.set(&lv("100.000", "0"));
    assert_eq!(bids.best(), Some(lv("99.50", "2")));
    assert_eq!(bids.levels(10), vec![lv("99.50", "2")]);
    // An existing level keeps its first spelling and takes the new quantity.
    bids.set(&lv("99.5", "7"));
    assert_eq!(bids.levels(10)[0].price.to_string(), "99.50");
    assert_eq!(bids.levels(10)[0].qty.to_string(), "7");
}

/// The fast key is learned at the first price's scale; a rekey to a finer scale must not
/// keep it, and the levels keep their first spelling throughout.
#[test]
fn a_rekey_drops_the_fast_key() {
    let mut bids = Side::new(Best::Highest);
    for (price, qty) in [("99.00000000", "1"), ("98.00000000", "1"), ("99.50000000", "1"), ("97.00000000", "1")] {
        bids.set(&lv(price, qty));
    }
    let prices: Vec<String> = bids.levels(10).iter().map(|l| l.price.to_string()).collect();
    assert_eq!(prices, ["99.50000000", "99.00000000", "98.00000000", "97.00000000"]);
    bids.clear();
    for (price, qty) in [("5", "1"), ("4.25", "1"), ("4", "1")] {
        bids.set(&lv(price, qty));
    }
    assert_eq!(bids.levels(10), vec![lv("5", "1"), lv("4.25", "1"), lv("4", "1")]);
}

/// The best level at the window's first and last slots, and the empty window's `top`
/// there too: set, remove, set again, and a worse level after the best went.
#[test]
fn the_best_at_the_window_ends() {
    // 100.00 is key 10,000: the window is keys -22,768..42,768.
    let mut bids = Side::new(Best::Highest);
    for (price, qty) in [("100.00", "1"), ("-227.68", "1"), ("100.00", "0")] {
        bids.set(&lv(price, qty));
    }
    assert_eq!(bids.best(), Some(lv("-227.68", "1")), "slot 0 is the best bid");
    bids.set(&lv("-227.68", "0"));
    assert_eq!(bids.best(), None);
    bids.set(&lv("-227.68", "2"));
    assert_eq!(bids.best(), Some(lv("-227.68", "2")), "the first level of an empty window");

    let mut asks = Side::new(Best::Lowest);
    for (price, qty) in [("100.00", "1"), ("427.67", "1"), ("100.00", "0")] {
        asks.set(&lv(price, qty));
    }
    assert_eq!(asks.best(), Some(lv("427.67", "1")), "the last slot is the best ask");
    asks.set(&lv("427.67", "0"));
    asks.set(&lv("427.67", "2"));
    asks.set(&lv("427.66", "1"));
    assert_eq!(asks.best(), Some(lv("427.66", "1")));

    for best in [Best::Highest, Best::Lowest] {
        let mut side = Side::new(best);
        side.set(&lv("100.00", "1"));
        side.set(&lv("100.00", "0"));
        let worse = if best == Best::Highest { "99.00" } else { "101.00" };
        side.set(&lv(worse, "1"));
        assert_eq!(side.best(), Some(lv(worse, "1")), "{best:?}");
    }
}

#[test]
fn a_level_just_past_the_window_edge_becomes_the_best() {
    // The first level centres the window: 100.00 is key 10,000, so the window is
    // keys -22,768..42,768.
    let mut bids = Side::new(Best::Highest);
    bids.set(&lv("100.00", "1"));
    bids.set(&lv("427.67", "1"));
    bids.set(&lv("427.68", "2"));
    assert_eq!(bids.best(), Some(lv("427.68", "2")));
    assert_eq!(bids.levels(3), vec![lv("427.68", "2"), lv("427.67", "1"), lv("100.00", "1")]);
    let mut asks = Side::new(Best::Lowest);
    asks.set(&lv("100.00", "1"));
    asks.set(&lv("-227.68", "1"));
    asks.set(&lv("-227.69", "2"));
    assert_eq!(asks.best(), Some(lv("-227.69", "2")));
    assert_eq!(asks.len(), 3);
}

/// Sequences found by review: a key of `i64::MIN` (whose `abs` overflows) and a zero
/// price at a key scale of 19 decimals. Each side must agree with the map model.
#[test]
fn extreme_keys_match_the_model() {
    let cases: [&[(&str, &str)]; 2] = [
        &[("100", "1"), ("-9223372036854775808", "1"), ("101", "1")],
        &[("0.0000000000000000001", "1"), ("0.0", "1"), ("0", "0")],
    ];
    for ops in cases {
        for best in [Best::Highest, Best::Lowest] {
            let mut side = Side::new(best);
            let mut model = BTreeMap::new();
            for (p, q) in ops {
                side.set(&lv(p, q));
                set_in_tree(&mut model, &lv(p, q));
            }
            let expect: Vec<Level> = match best {
                Best::Highest => model.values().rev().copied().collect(),
                Best::Lowest => model.values().copied().collect(),
            };
            assert_eq!(side.levels(usize::MAX), expect, "{ops:?} {best:?}");
            assert_eq!(side.best(), expect.first().copied(), "{ops:?} {best:?}");
        }
    }
}

/// A slot packs the quantity's mantissa in 52 bits and both scales in 6 bits each: every
/// value at the edges comes back exactly, and one bit more is refused (the side then
/// keeps the level in its ordered map, still exact).
#[test]
fn slots_pack_quantities_and_scales_exactly_to_their_edges() {
    let edge = (1i128 << 51) - 1;
    let fits = [(edge, 38u8, 0u8), (-edge - 1, 0, 38), (0, 0, 0), (378_826_000, 8, 8), (-1, 17, 3)];
    for (mantissa, qty_scale, price_scale) in fits {
        let level =
            Level { price: Decimal::new(5, price_scale).unwrap(), qty: Decimal::new(mantissa, qty_scale).unwrap() };
        let slot = Slot::of(&level).unwrap_or_else(|| panic!("{mantissa} fits"));
        assert_eq!((slot.qty() as i128, slot.qty_scale(), slot.price_scale()), (mantissa, qty_scale, price_scale));
    }
    for mantissa in [edge + 1, -edge - 2, i128::from(i64::MAX)] {
        let level = Level { price: Decimal::from_int(5), qty: Decimal::new(mantissa, 2).unwrap() };
        assert_eq!(Slot::of(&level), None, "{mantissa}");
        let mut side = Side::new(Best::Lowest);
        side.set(&lv("4", "1"));
        side.set(&level);
        assert_eq!(side.levels(5), vec![lv("4", "1"), level]);
    }
}

/// A deep book whose levels mostly fall outside the window, in the hash map of far
/// levels, agrees with the map model at every step, through removals that walk the best
/// far past where the window started (each re-centring re-places the far levels).
#[test]
fn a_deep_book_mostly_outside_the_window_stays_exact() {
    for best in [Best::Highest, Best::Lowest] {
        let mut side = Side::new(best);
        let mut model = BTreeMap::new();
        let mut apply = |side: &mut Side, level: Level| {
            side.set(&level);
            set_in_tree(&mut model, &level);
            let expect: Vec<Level> = match best {
                Best::Highest => model.values().rev().copied().collect(),
                Best::Lowest => model.values().copied().collect(),
            };
            assert_eq!(side.best(), expect.first().copied());
            assert_eq!(side.len(), expect.len());
            expect
        };
        // 3,000 levels $7.31 apart around $11,000: 2.2M keys at $0.01.
        for i in 0..3000i64 {
            let price = Decimal::new((i * 731 + 1) as i128, 2).unwrap();
            apply(&mut side, Level { price, qty: Decimal::from_int(i % 7 + 1) });
        }
        let Repr::Ladder(w) = &side.repr else { panic!("a ladder") };
        assert!(w.overflow.len() > w.len, "{best:?}: most levels are far");
        // Take out the best 2,000, one by one: the best walks far past where the window was.
        let mut expect = Vec::new();
        for i in 0..2000i64 {
            let i = if best == Best::Highest { 2999 - i } else { i };
            let price = Decimal::new((i * 731 + 1) as i128, 2).unwrap();
            expect = apply(&mut side, Level { price, qty: Decimal::ZERO });
        }
        assert_eq!(side.levels(usize::MAX), expect, "{best:?}");
    }
}

/// Prices drawn to exercise the window: a cluster near the best, far levels both ways,
/// finer decimals (re-keying) and now and then a price no key holds.
fn price() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        8 => (9_900i64..10_100).prop_map(|c| Decimal::new(c as i128 * 1_000_000, 8).unwrap()),
        2 => (0i64..10_000_000).prop_map(|c| Decimal::new(c as i128, 2).unwrap()),
        1 => (0i64..1_000_000).prop_map(|c| Decimal::new(c as i128, 3).unwrap()),
        1 => (1i128..1000).prop_map(|c| Decimal::new(c * 10i128.pow(30), 2).unwrap()),
    ]
}

/// Mostly small quantities and removals, and now and then one no slot holds.
fn qty() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        20 => (0i64..4).prop_map(Decimal::from_int),
        4 => (1i128..100_000).prop_map(|m| Decimal::new(m, 5).unwrap()),
        // Around the edge of what a packed slot holds, at any scale.
        2 => (-(1i64 << 52)..(1i64 << 52), 0u8..=38).prop_map(|(m, s)| Decimal::new(m as i128, s).unwrap()),
        1 => Just(Decimal::new(10i128.pow(25), 2).unwrap()),
    ]
}

proptest! {
    /// Any sequence of sets and clears agrees with a `BTreeMap<Decimal, Level>` model,
    /// level by level and in order, on both sides.
    #[test]
    fn matches_a_btreemap_model(
        ops in proptest::collection::vec((price(), qty(), 0u8..50), 0..400)
    ) {
        for best in [Best::Highest, Best::Lowest] {
            let mut side = Side::new(best);
            let mut model: BTreeMap<Decimal, Level> = BTreeMap::new();
            for (price, qty, clear) in &ops {
                if *clear == 0 {
                    side.clear();
                    model.clear();
                    continue;
                }
                let level = Level { price: *price, qty: *qty };
                side.set(&level);
                set_in_tree(&mut model, &level);
                let expect_best = match best {
                    Best::Highest => model.values().next_back().copied(),
                    Best::Lowest => model.values().next().copied(),
                };
                prop_assert_eq!(side.best(), expect_best);
                prop_assert_eq!(side.len(), model.len());
            }
            let expect: Vec<Level> = match best {
                Best::Highest => model.values().rev().copied().collect(),
                Best::Lowest => model.values().copied().collect(),
            };
            let got = side.levels(usize::MAX);
            prop_assert_eq!(got.len(), expect.len());
            for (g, e) in got.iter().zip(&expect) {
                // Same values, and the same spelling: the level as first written.
                prop_assert_eq!(g.price.to_string(), e.price.to_string());
                prop_assert_eq!(g.qty.to_string(), e.qty.to_string());
            }
            prop_assert_eq!(side.levels(3), expect.iter().take(3).copied().collect::<Vec<_>>());
        }
    }
}
