//! Recording metadata: format version, provenance, and how each stream was captured.
//!
//! Stored as JSON in the `meta` tree so humans and other tools can read it. This module
//! only defines the type; `store/` persists it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Bumped whenever the block or record encoding changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

/// What a recording is and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingMeta {
    pub format_version: u32,
    /// The tapedeck version that created the recording.
    pub tapedeck_version: String,
    /// Wall-clock creation time, ns since the epoch (capture-side only, never used in replay).
    pub created_ns: u64,
    /// The command line that created the recording, or appended to it, in order.
    pub command_lines: Vec<Vec<String>>,
    /// Streams subscribed to, in the venue's own names.
    pub subscriptions: Vec<String>,
    /// `capture`, or `import:<format>` for recordings built from files.
    pub source: String,
    /// Per-stream notes, such as which clock `ts_exchange` came from.
    pub notes: BTreeMap<String, String>,
}

impl RecordingMeta {
    pub fn new(source: &str, created_ns: u64) -> Self {
        RecordingMeta {
            format_version: FORMAT_VERSION,
            tapedeck_version: env!("CARGO_PKG_VERSION").to_string(),
            created_ns,
            command_lines: Vec::new(),
            subscriptions: Vec::new(),
            source: source.to_string(),
            notes: BTreeMap::new(),
        }
    }
}
