//! Fuzz-style property tests that run in CI: every venue's normalizer is fed real fixture
//! frames with random damage (bytes flipped, cut short, numbers made absurd) and must return
//! records or an error, never panic. (Block decoding has its own in src/log/tests.rs.)

use proptest::prelude::*;
use tapedeck::exchange::{Normalizer, SymbolInfo, venue};
use tapedeck::model::{Exchange, Instrument};

use crate::util::root;
use crate::venues::server_frames;

fn frames(exchange: Exchange) -> Vec<String> {
    let read = |p: &str| std::fs::read_to_string(root().join(p)).unwrap();
    match exchange {
        Exchange::Binance => server_frames(&read("tests/fixtures/binance_spot/cryptofeed/BINANCE.ws.1.0")),
        Exchange::Gate => server_frames(&read("tests/fixtures/gateio_spot/GATEIO.ws.1.0")),
        _ => read("tests/fixtures/lbank/lbank_v2_ws_push_doc_examples.jsonl")
            .lines()
            .map(|l| (0, l.to_string()))
            .collect(),
    }
    .into_iter()
    .map(|(_, f)| f)
    .take(400)
    .collect()
}

fn normalizer(exchange: Exchange) -> Box<dyn Normalizer> {
    let pairs: &[(&str, &str, &str)] = match exchange {
        Exchange::Binance => &[("LRCBTC", "LRC", "BTC"), ("BLZETH", "BLZ", "ETH"), ("NKNUSDT", "NKN", "USDT")],
        Exchange::Gate => &[("INK_USDT", "INK", "USDT"), ("BTC_USDC", "BTC", "USDC"), ("HAI_ETH", "HAI", "ETH")],
        _ => &[("eth_btc", "ETH", "BTC"), ("btc_usdt", "BTC", "USDT")],
    };
    let symbols: Vec<SymbolInfo> = pairs
        .iter()
        .map(|(s, b, q)| SymbolInfo {
            instrument: Instrument::new(exchange, b, q, s),
            status: "TRADING".into(),
            tradable: true,
            price_precision: None,
            qty_precision: None,
        })
        .collect();
    venue(exchange).unwrap().normalizer(&symbols)
}

#[derive(Debug, Clone)]
enum Damage {
    Flip(usize, u8),
    Cut(usize),
    /// Replace the digits at a position with an absurd number.
    Number(usize, &'static str),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(i, b)| Damage::Flip(i, b)),
        1 => any::<usize>().prop_map(Damage::Cut),
        2 => (any::<usize>(), prop::sample::select(vec![
            "-1", "1e999999", "99999999999999999999999999999999999999999", "-0.000000000000000000000000000000001",
            "NaN", "\"\"", "null", "18446744073709551616", "0",
        ]))
            .prop_map(|(i, n)| Damage::Number(i, n)),
    ]
}

fn apply(frame: &str, damage: &[Damage]) -> String {
    let mut bytes = frame.as_bytes().to_vec();
    for d in damage {
        if bytes.is_empty() {
            break;
        }
        match *d {
            Damage::Flip(i, b) => {
                let i = i % bytes.len();
                bytes[i] ^= b;
            }
            Damage::Cut(i) => bytes.truncate(i % bytes.len()),
            Damage::Number(i, n) => {
                let start = i % bytes.len();
                if let Some(off) = bytes[start..].iter().position(u8::is_ascii_digit) {
                    let from = start + off;
                    let len = bytes[from..].iter().take_while(|b| b.is_ascii_digit() || **b == b'.').count();
                    bytes.splice(from..from + len, n.bytes());
                }
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn damaged_real_frames_never_panic_a_normalizer(
        venue_index in 0usize..3,
        pick in any::<prop::sample::Index>(),
        damage in proptest::collection::vec(damage(), 1..6),
    ) {
        let exchange = [Exchange::Binance, Exchange::Gate, Exchange::Lbank][venue_index];
        let frames = frames(exchange);
        let frame = pick.get(&frames);
        let mut n = normalizer(exchange);
        let mut out = Vec::new();
        // Any outcome but a panic is acceptable; errors become counted ParseError records.
        let _ = n.normalize(&apply(frame, &damage), 1_700_000_000_000_000_000, &mut out);
        let _ = n.normalize(frame, 1_700_000_000_000_000_001, &mut out);
    }
}
