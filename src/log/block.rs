//! Block codec: a run of consecutive records, encoded, optionally compressed, checksummed.
//!
//! Layout (little-endian): version u8, compression u8, flags u16, record count u32,
//! first seq u64, uncompressed payload length u32, crc32 u32, then the payload. The crc
//! covers the header (with the crc field zeroed) and the stored payload, so one flipped
//! byte anywhere is detected. Flag bit 0 marks a *sparse* block, whose seqs only increase
//! (the JetStream backend splits a run of records by subject); without it the seqs are
//! consecutive, as every sled block's are. The version says how the records are coded:
//! version 2 (written now) by `compact.rs`, delta-coded within the block; version 1 (read,
//! for older recordings) in bincode's fixed-int (`legacy`) encoding, with trades, quotes
//! and depth diffs read at their fixed offsets by `fast.rs` and everything else by
//! bincode. Either way a block decodes on its own. This module does no IO.

use bincode::config::{self, Configuration, Fixint, LittleEndian, NoLimit};
use serde::{Deserialize, Serialize};

use crate::model::Record;

mod compact;
mod fast;

/// Version 1: records in bincode's fixed-int encoding. Still read, for recordings written
/// before version 2, and written only by tests.
const LEGACY: u8 = 1;
/// Version 2: records delta-coded by `compact.rs`, about a third of version 1's bytes.
const COMPACT: u8 = 2;
/// What new blocks are written as.
const BLOCK_VERSION: u8 = COMPACT;
pub(crate) const HEADER_LEN: usize = 24;
pub(crate) const CRC_AT: usize = 20;

type Cfg = Configuration<LittleEndian, Fixint, NoLimit>;
const CFG: Cfg = config::legacy();

/// Most bytes one record's decode by bincode may claim for its containers. A real record
/// stays far below (a 5000-level book is ~0.5 MiB in memory); the limit turns a crafted
/// length prefix into an error instead of an allocation that aborts the process.
const DECODE_LIMIT: usize = 4 << 30;
type DecodeCfg = Configuration<LittleEndian, Fixint, bincode::config::Limit<DECODE_LIMIT>>;
const DECODE_CFG: DecodeCfg = config::legacy().with_limit::<DECODE_LIMIT>();

/// Largest decompressed payload a header may claim (lz4 output buffer), as above.
const MAX_RAW_LEN: usize = 1 << 30;

/// lz4 cannot expand input more than 255-fold, so a larger claim is a lie, refused before
/// the buffer is allocated.
const LZ4_MAX_RATIO: usize = 255;

/// Flag bit: the block's seqs increase but need not be consecutive.
const FLAG_SPARSE: u16 = 1;

/// How block payloads are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    Lz4,
}

impl Compression {
    fn code(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Lz4 => 1,
        }
    }
}

/// The parsed, verified header of a stored block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub count: u32,
    pub first_seq: u64,
    /// Seqs increase but may skip (see the module docs).
    pub sparse: bool,
}

/// Why a stored block cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BlockError {
    #[error("block is {0} bytes, shorter than its header")]
    Truncated(usize),
    #[error("checksum mismatch (stored {stored:08x}, computed {computed:08x})")]
    Checksum { stored: u32, computed: u32 },
    #[error("unknown block version {0}")]
    Version(u8),
    #[error("unknown block flags {0:#06x}")]
    Flags(u16),
    #[error("unknown compression code {0}")]
    CompressionCode(u8),
    #[error("decompression failed: {0}")]
    Decompress(String),
    #[error("record {index} does not decode: {detail}")]
    Decode { index: u32, detail: String },
    #[error("record {index} has seq {found}, expected {expected}")]
    Seq { index: u32, found: u64, expected: u64 },
    #[error("record {index} would be past the largest seq")]
    SeqOverflow { index: u32 },
    #[error("bytes left over after the last record")]
    Trailing,
}

/// Encodes `records` (consecutive seqs) into a stored block.
pub(crate) fn encode(records: &[Record], compression: Compression, scratch: &mut Vec<u8>) -> Result<Vec<u8>, String> {
    encode_flagged(records, compression, scratch, 0, BLOCK_VERSION)
}

/// Encodes `records` as a version 1 block, as recordings written before version 2 hold.
/// Damages `bytes` as codec tests do: xors each `(position, mask)` edit in (positions
/// wrap around), then cuts them short at `cut` (also wrapping).
#[cfg(test)]
pub(crate) fn damage(bytes: &mut Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>) {
    if !bytes.is_empty() {
        for &(i, b) in edits {
            let at = i % bytes.len();
            bytes[at] ^= b;
        }
    }
    if let Some(c) = cut {
        bytes.truncate(c % (bytes.len() + 1));
    }
}

#[cfg(test)]
pub(crate) fn encode_legacy(records: &[Record], compression: Compression) -> Vec<u8> {
    encode_flagged(records, compression, &mut Vec::new(), 0, LEGACY).expect("encodes")
}

/// Encodes `records` whose seqs increase but may skip, into a sparse block.
pub(crate) fn encode_sparse(
    records: &[Record],
    compression: Compression,
    scratch: &mut Vec<u8>,
) -> Result<Vec<u8>, String> {
    encode_flagged(records, compression, scratch, FLAG_SPARSE, BLOCK_VERSION)
}

fn encode_flagged(
    records: &[Record],
    compression: Compression,
    scratch: &mut Vec<u8>,
    flags: u16,
    version: u8,
) -> Result<Vec<u8>, String> {
    scratch.clear();
    if version == COMPACT {
        let mut encoder = compact::Encoder::new(records.first().map_or(0, |r| r.seq));
        for record in records {
            encoder.record(record, scratch)?;
        }
    } else {
        for record in records {
            bincode::encode_into_std_write(record, scratch, CFG).map_err(|e| e.to_string())?;
        }
    }
    let payload: std::borrow::Cow<[u8]> = match compression {
        Compression::None => scratch.as_slice().into(),
        Compression::Lz4 => lz4_flex::block::compress(scratch).into(),
    };
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.push(version);
    out.push(compression.code());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    out.extend_from_slice(&records.first().map_or(0, |r| r.seq).to_le_bytes());
    out.extend_from_slice(&(scratch.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&payload);
    let crc = crc32fast::hash(&out);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Verifies the checksum and returns the header.
pub(crate) fn verify(bytes: &[u8]) -> Result<Header, BlockError> {
    if bytes.len() < HEADER_LEN {
        return Err(BlockError::Truncated(bytes.len()));
    }
    let stored = u32::from_le_bytes(bytes[CRC_AT..CRC_AT + 4].try_into().expect("4 bytes"));
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[..CRC_AT]);
    hasher.update(&[0u8; 4]);
    hasher.update(&bytes[HEADER_LEN..]);
    let computed = hasher.finalize();
    if stored != computed {
        return Err(BlockError::Checksum { stored, computed });
    }
    if bytes[0] != LEGACY && bytes[0] != COMPACT {
        return Err(BlockError::Version(bytes[0]));
    }
    let flags = u16::from_le_bytes(bytes[2..4].try_into().expect("2 bytes"));
    if flags & !FLAG_SPARSE != 0 {
        return Err(BlockError::Flags(flags));
    }
    Ok(Header {
        count: u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")),
        first_seq: u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")),
        sparse: flags & FLAG_SPARSE != 0,
    })
}

/// Verifies and decodes a stored block, appending its records to `out`.
pub(crate) fn decode(bytes: &[u8], out: &mut Vec<Record>, scratch: &mut Vec<u8>) -> Result<Header, BlockError> {
    let header = verify(bytes)?;
    let raw_len = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes")) as usize;
    let stored = &bytes[HEADER_LEN..];
    let payload: &[u8] = match bytes[1] {
        0 => stored,
        1 => {
            if raw_len > MAX_RAW_LEN || raw_len > stored.len().saturating_mul(LZ4_MAX_RATIO) + 16 {
                return Err(BlockError::Decompress(format!("claims {raw_len} bytes decompressed")));
            }
            scratch.resize(raw_len, 0);
            let n =
                lz4_flex::block::decompress_into(stored, scratch).map_err(|e| BlockError::Decompress(e.to_string()))?;
            &scratch[..n]
        }
        other => return Err(BlockError::CompressionCode(other)),
    };
    if bytes[0] == COMPACT {
        decode_compact(payload, &header, out)?;
    } else {
        decode_legacy(payload, &header, out)?;
    }
    Ok(header)
}

/// Checks the seq of the record just pushed, and pops it if it is wrong.
#[inline(always)]
fn check_seq(out: &mut Vec<Record>, header: &Header, index: u32, prev: Option<u64>) -> Result<(), BlockError> {
    let seq = out.last().expect("just pushed").seq;
    let expected = match (header.sparse, prev) {
        (true, Some(prev)) if index > 0 && seq > prev => Some(seq),
        (true, Some(prev)) if index > 0 => prev.checked_add(1),
        _ => header.first_seq.checked_add(index as u64),
    };
    match expected {
        Some(expected) if expected == seq => Ok(()),
        Some(expected) => {
            out.pop();
            Err(BlockError::Seq { index, found: seq, expected })
        }
        None => {
            out.pop();
            Err(BlockError::SeqOverflow { index })
        }
    }
}

fn decode_compact(payload: &[u8], header: &Header, out: &mut Vec<Record>) -> Result<(), BlockError> {
    // The count is only a hint: a record takes at least 4 encoded bytes.
    out.reserve((header.count as usize).min(payload.len() / 4));
    let mut decoder = compact::Decoder::new(payload, header.first_seq);
    for index in 0..header.count {
        let prev = out.last().map(|r| r.seq);
        decoder.record_into(out).map_err(|detail| BlockError::Decode { index, detail })?;
        check_seq(out, header, index, prev)?;
    }
    if decoder.position() != payload.len() {
        return Err(BlockError::Trailing);
    }
    Ok(())
}

fn decode_legacy(payload: &[u8], header: &Header, out: &mut Vec<Record>) -> Result<(), BlockError> {
    // The count is only a hint: a record takes at least 30 encoded bytes.
    out.reserve((header.count as usize).min(payload.len() / 30));
    let mut at = 0;
    for index in 0..header.count {
        let rest = &payload[at..];
        let prev = out.last().map(|r| r.seq);
        // Pushed in each arm: moving the record out of the match first cost two 144-byte
        // copies per record, each a call to memcpy.
        at += match fast::record(rest) {
            Some((record, used)) => {
                out.push(record);
                used
            }
            None => {
                let (record, used) = bincode::decode_from_slice::<Record, _>(rest, DECODE_CFG)
                    .map_err(|e| BlockError::Decode { index, detail: e.to_string() })?;
                out.push(record);
                used
            }
        };
        check_seq(out, header, index, prev)?;
    }
    if at != payload.len() {
        return Err(BlockError::Trailing);
    }
    Ok(())
}
