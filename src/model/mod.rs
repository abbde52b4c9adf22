//! The data model shared by every module: exact decimals, instruments and records.
//!
//! Everything here is plain data with no IO and no clock. Venue adapters produce these
//! types; the log stores them; the engine consumes them.

pub mod decimal;
pub mod instrument;
pub mod looped;
pub mod record;
pub mod time;

pub use decimal::{Decimal, DecimalError};
pub use instrument::{Exchange, Instrument, InstrumentId, SymbolTable};
pub use looped::Looper;
pub use record::{
    BookDelta, BookSnapshot, Candle, Event, EventKind, Level, NANOS_PER_MS, NANOS_PER_SEC, Nanos, Price, Qty, Quote,
    Record, Side, Status, Ticker, Trade,
};
