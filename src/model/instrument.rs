//! Exchanges and instruments: who a record is about.
//!
//! An instrument is an exchange, a canonical `BASE/QUOTE` symbol and the venue's own symbol.
//! Records carry a compact [`InstrumentId`], interned in the recording's symbol table. This
//! module knows no venue's wire format; venue adapters produce the canonical names.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A venue whose data tapedeck records: captured live, or imported from files.
///
/// Records encode this by variant index, so new venues go at the end: reordering would
/// change what existing recordings decode to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, bincode::Encode, bincode::Decode,
)]
#[serde(rename_all = "lowercase")]
pub enum Exchange {
    Binance,
    Gate,
    Lbank,
    /// Import-only: Bittrex closed, so its data comes from files (`import ohlcv`), never
    /// from a capture adapter.
    Bittrex,
}

impl Exchange {
    pub const ALL: [Exchange; 4] = [Exchange::Binance, Exchange::Gate, Exchange::Lbank, Exchange::Bittrex];

    pub fn as_str(&self) -> &'static str {
        match self {
            Exchange::Binance => "binance",
            Exchange::Gate => "gate",
            Exchange::Lbank => "lbank",
            Exchange::Bittrex => "bittrex",
        }
    }

    /// Whether tapedeck can capture from (or backfill, or list symbols of) this venue;
    /// the others only come from `import`.
    pub fn has_capture(&self) -> bool {
        !matches!(self, Exchange::Bittrex)
    }
}

impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Exchange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "binance" => Ok(Exchange::Binance),
            "gate" | "gateio" | "gate.io" => Ok(Exchange::Gate),
            "lbank" => Ok(Exchange::Lbank),
            "bittrex" => Ok(Exchange::Bittrex),
            other => Err(format!("unknown exchange {other:?} (expected binance, gate, lbank or bittrex)")),
        }
    }
}

/// One tradable pair on one exchange.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Instrument {
    pub exchange: Exchange,
    /// Canonical `BASE/QUOTE`, upper case.
    pub symbol: String,
    /// The venue's own spelling, as it appears on the wire.
    pub venue_symbol: String,
}

impl Instrument {
    pub fn new(exchange: Exchange, base: &str, quote: &str, venue_symbol: &str) -> Self {
        Instrument {
            exchange,
            symbol: format!("{}/{}", base.to_uppercase(), quote.to_uppercase()),
            venue_symbol: venue_symbol.to_string(),
        }
    }
}

/// Index into a recording's symbol table.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, bincode::Encode, bincode::Decode,
)]
pub struct InstrumentId(pub u32);

impl InstrumentId {
    /// For records about a connection rather than an instrument (most `Status` records).
    pub const NONE: InstrumentId = InstrumentId(u32::MAX);
}

/// The interned instruments of one recording, in id order.
#[derive(Debug, Clone, Default)]
pub struct SymbolTable {
    instruments: Vec<Instrument>,
    index: HashMap<Instrument, InstrumentId>,
}

impl SymbolTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the id of `instrument`, and whether it was newly added.
    pub fn intern(&mut self, instrument: &Instrument) -> (InstrumentId, bool) {
        if let Some(id) = self.index.get(instrument) {
            return (*id, false);
        }
        let id = InstrumentId(self.instruments.len() as u32);
        self.instruments.push(instrument.clone());
        self.index.insert(instrument.clone(), id);
        (id, true)
    }

    pub fn get(&self, id: InstrumentId) -> Option<&Instrument> {
        self.instruments.get(id.0 as usize)
    }

    pub fn lookup(&self, instrument: &Instrument) -> Option<InstrumentId> {
        self.index.get(instrument).copied()
    }

    pub fn len(&self) -> usize {
        self.instruments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instruments.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (InstrumentId, &Instrument)> {
        self.instruments.iter().enumerate().map(|(i, inst)| (InstrumentId(i as u32), inst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recordings store the variant index (bincode legacy: u32 LE); existing recordings stay
    /// readable only while these never change.
    #[test]
    fn exchange_encodings_are_stable() {
        let cases = [(Exchange::Binance, 0u32, "binance"), (Exchange::Gate, 1, "gate"), (Exchange::Lbank, 2, "lbank")];
        let cases = cases.into_iter().chain([(Exchange::Bittrex, 3, "bittrex")]);
        for (exchange, index, name) in cases {
            let bytes = bincode::encode_to_vec(exchange, bincode::config::legacy()).unwrap();
            assert_eq!(bytes, index.to_le_bytes(), "{exchange}");
            assert_eq!(exchange.as_str(), name);
            assert_eq!(name.parse::<Exchange>(), Ok(exchange));
            assert_eq!(serde_json::to_string(&exchange).unwrap(), format!("\"{name}\""));
        }
        assert!(Exchange::ALL.iter().all(|e| e.has_capture() != (*e == Exchange::Bittrex)));
    }
}
