//! Fault injection for tests and drills: damage a stored block the way bit rot would.
//!
//! Hidden from docs; it exists so tests outside this module can corrupt a recording
//! without touching sled themselves.

use super::store::Store;
use super::{LogError, Result};

/// Flips one bit in the stored bytes of the block at `ordinal`, at byte `offset` (modulo
/// the block length).
///
/// # Errors
/// When the recording cannot be opened or has no such block.
#[doc(hidden)]
pub fn flip_block_byte(dir: &std::path::Path, ordinal: usize, offset: usize) -> Result<u64> {
    let store = Store::open_existing(dir)?;
    let (key, value) =
        store.events.iter().nth(ordinal).ok_or_else(|| LogError::CorruptMeta(format!("no block {ordinal}")))??;
    let mut bytes = value.to_vec();
    let at = offset % bytes.len();
    bytes[at] ^= 0x01;
    store.events.insert(key.clone(), bytes)?;
    store.flush()?;
    Ok(super::store::key_seq(&key))
}
