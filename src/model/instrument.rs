//! Exchanges and instruments: who a record is about.
//!
//! An instrument is an exchange, a canonical `BASE/QUOTE` symbol and the venue's own symbol.
//! Records carry a compact [`InstrumentId`], interned in the recording's symbol table. This
//! module knows no venue's wire format; venue adapters produce the canonical names.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A venue tapedeck can capture from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, bincode::Encode, bincode::Decode,
)]
#[serde(rename_all = "lowercase")]
pub enum Exchange {
    Binance,
    Gate,
    Lbank,
}

impl Exchange {
    pub const ALL: [Exchange; 3] = [Exchange::Binance, Exchange::Gate, Exchange::Lbank];

    pub fn as_str(&self) -> &'static str {
        match self {
            Exchange::Binance => "binance",
            Exchange::Gate => "gate",
            Exchange::Lbank => "lbank",
        }
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
            other => Err(format!("unknown exchange {other:?} (expected binance, gate or lbank)")),
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
