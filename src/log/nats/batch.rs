//! Batches in JetStream: the headers that name a writer's run of seqs, and the reassembly of
//! a stream's messages, in stream order, back into blocks of consecutive seqs (dropping an
//! abandoned batch, ignoring a trailing incomplete one, naming any other damage). No IO.

use async_nats::HeaderMap;

use super::NatsUrl;
use crate::log::block;
use crate::log::meta::FORMAT_VERSION;
use crate::log::reader::Block;
use crate::model::Record;

pub(super) const H_FORMAT: &str = "Tapedeck-Format";
const H_SEQ: &str = "Tapedeck-Seq";
pub(super) const H_BATCH: &str = "Tapedeck-Batch";

/// A batch: its seq range, first to last inclusive, and the writer session that stored it
/// (a batch rewritten after a crash may cover the same seqs as the abandoned one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Batch {
    pub first: u64,
    pub last: u64,
    pub writer: String,
}

impl Batch {
    pub fn len(&self) -> usize {
        (self.last - self.first + 1) as usize
    }

    pub fn header(&self) -> String {
        format!("{}-{}@{}", self.first, self.last, self.writer)
    }
}

/// One stored message, as the reader needs it.
#[derive(Clone)]
pub(super) struct Fetched {
    pub subject: String,
    pub sequence: u64,
    pub batch: Option<Batch>,
    pub payload: bytes::Bytes,
}

pub(super) fn parse_batch(headers: &HeaderMap) -> Option<Batch> {
    let value = headers.get(H_BATCH)?.as_str();
    let (range, writer) = value.split_once('@').unwrap_or((value, ""));
    let (first, last) = range.split_once('-')?;
    let batch = Batch { first: first.parse().ok()?, last: last.parse().ok()?, writer: writer.to_string() };
    (batch.last >= batch.first).then_some(batch)
}

pub(super) fn publish_headers(id: &str, first_seq: u64, batch: &Batch) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", id);
    headers.insert(H_FORMAT, FORMAT_VERSION.to_string().as_str());
    headers.insert(H_SEQ, first_seq.to_string().as_str());
    headers.insert(H_BATCH, batch.header().as_str());
    headers
}

/// Reassembles batches from messages in stream order.
pub(super) struct Assembler {
    prefix: String,
    abandon: String,
    current: Option<Batch>,
    records: Vec<Record>,
    /// The seq the next batch must start at.
    pub expected: u64,
    scratch: Vec<u8>,
    /// Blocks (good or bad) reported so far.
    pub ordinal: u64,
    abandoned_records: u64,
}

/// What one message contributed.
pub(super) enum Step {
    Nothing,
    Done(Block),
    /// A unit that cannot be trusted: (ordinal, first seq, detail).
    Bad(u64, u64, String),
}

impl Assembler {
    pub fn new(url: &NatsUrl) -> Assembler {
        Assembler {
            prefix: format!("{}.", url.prefix),
            abandon: url.subject("_abandon"),
            current: None,
            records: Vec::new(),
            expected: 0,
            scratch: Vec::new(),
            ordinal: 0,
            abandoned_records: 0,
        }
    }

    pub fn take(&mut self, message: Fetched) -> Step {
        if message.subject == self.abandon {
            if message.batch.is_some() && message.batch == self.current {
                self.abandoned_records += self.records.len() as u64;
                tracing::warn!(
                    records = self.records.len(),
                    "a batch cut short by a writer crash was abandoned; those records were never acknowledged"
                );
                self.records.clear();
                self.current = None;
            }
            return Step::Nothing;
        }
        let data = message.subject.strip_prefix(&self.prefix).is_some_and(|s| !s.starts_with('_'));
        if !data {
            return Step::Nothing;
        }
        let Some(batch) = message.batch else {
            return Step::Bad(
                self.ordinal,
                self.expected,
                format!("message {} has no {H_BATCH} header", message.sequence),
            );
        };
        let mut bad = None;
        if let Some(current) = self.current.take()
            && current != batch
        {
            bad = Some(Step::Bad(
                self.ordinal,
                current.first,
                format!(
                    "batch of seq {}..={} is incomplete: {} of {} records are in the stream",
                    current.first,
                    current.last,
                    self.records.len(),
                    current.len()
                ),
            ));
            self.ordinal += 1;
            self.expected = current.last + 1;
            self.records.clear();
        }
        if let Err(e) = block::decode(&message.payload, &mut self.records, &mut self.scratch) {
            self.records.clear();
            let step = Step::Bad(
                self.ordinal,
                batch.first,
                format!("message {} (seq {}..={}): {e}", message.sequence, batch.first, batch.last),
            );
            self.ordinal += 1;
            self.expected = batch.last + 1;
            return bad.unwrap_or(step);
        }
        let want = batch.len();
        if self.records.len() < want {
            self.current = Some(batch);
            return bad.unwrap_or(Step::Nothing);
        }
        if let Some(bad) = bad {
            // The new batch completed in one message, but the broken one is reported first;
            // it is rare enough (only ever on damage) not to need a queue.
            self.records.clear();
            self.expected = batch.last + 1;
            return bad;
        }
        let mut records = std::mem::take(&mut self.records);
        records.sort_by_key(|r| r.seq);
        let ordinal = self.ordinal;
        self.ordinal += 1;
        let contiguous =
            records.len() == want && records.iter().enumerate().all(|(i, r)| r.seq == batch.first + i as u64);
        if !contiguous {
            self.expected = batch.last + 1;
            return Step::Bad(
                ordinal,
                batch.first,
                format!(
                    "batch of seq {}..={} holds {} records, not {want} consecutive ones",
                    batch.first,
                    batch.last,
                    records.len()
                ),
            );
        }
        if batch.first != self.expected {
            let detail = format!(
                "seq gap between batches: expected seq {}, found {}..={}",
                self.expected, batch.first, batch.last
            );
            self.expected = batch.last + 1;
            return Step::Bad(ordinal, batch.first, detail);
        }
        self.expected = batch.last + 1;
        Step::Done(Block { first_seq: batch.first, records })
    }

    /// At the end of the stream, a batch still open was never completed: its writer died
    /// mid-batch or is still publishing it. Like unflushed records in sled, it is not part
    /// of the recording (yet); the next writer abandons it explicitly.
    pub fn finish(&mut self) {
        if let Some(current) = self.current.take() {
            tracing::warn!(
                first = current.first,
                last = current.last,
                stored = self.records.len(),
                "the stream ends in an incomplete batch (a writer stopped or is still writing); it is not read"
            );
            self.records.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::block::Compression;

    #[test]
    fn batch_headers_round_trip_and_reject_nonsense() {
        let batch = Batch { first: 1024, last: 2047, writer: "1f-abc".into() };
        let mut headers = publish_headers("id", 1030, &batch);
        assert_eq!(parse_batch(&headers), Some(batch.clone()));
        assert_eq!(batch.len(), 1024);
        headers.insert(H_BATCH, "9-3@w");
        assert_eq!(parse_batch(&headers), None, "last before first");
        headers.insert(H_BATCH, "x-3");
        assert_eq!(parse_batch(&headers), None);
    }

    /// The messages a writer publishes for seqs `first..=last`: split by event kind, sparse.
    fn messages(first: u64, last: u64, writer: &str) -> Vec<Fetched> {
        let batch = Batch { first, last, writer: writer.into() };
        let records: Vec<Record> = (first..=last).map(|i| Record { seq: i, ..crate::log::tests::record(i) }).collect();
        let mut kinds: Vec<_> = records.iter().map(|r| r.event.kind()).collect();
        kinds.dedup();
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for kind in kinds {
            if seen.contains(&kind) {
                continue;
            }
            seen.push(kind);
            let part: Vec<Record> = records.iter().filter(|r| r.event.kind() == kind).cloned().collect();
            let bytes = block::encode_sparse(&part, Compression::None, &mut Vec::new()).unwrap();
            out.push(Fetched {
                subject: format!("tapedeck.binance.{}.BTC-USDT", kind.as_str()),
                sequence: 0,
                batch: Some(batch.clone()),
                payload: bytes.into(),
            });
        }
        out
    }

    fn abandon(first: u64, last: u64, writer: &str) -> Fetched {
        let batch = Batch { first, last, writer: writer.into() };
        Fetched { subject: "tapedeck._abandon".into(), sequence: 0, batch: Some(batch), payload: Default::default() }
    }

    /// Feeds messages through an assembler: the blocks' seq ranges, and each problem.
    fn assemble(input: Vec<Fetched>) -> (Vec<(u64, usize)>, Vec<String>) {
        let url = NatsUrl::parse("nats://h:1/S").unwrap();
        let mut assembler = Assembler::new(&url);
        let (mut blocks, mut bad) = (Vec::new(), Vec::new());
        for message in input {
            match assembler.take(message) {
                Step::Done(block) => {
                    assert!(block.records.iter().enumerate().all(|(i, r)| r.seq == block.first_seq + i as u64));
                    blocks.push((block.first_seq, block.records.len()));
                }
                Step::Bad(_, _, detail) => bad.push(detail),
                Step::Nothing => {}
            }
        }
        assembler.finish();
        (blocks, bad)
    }

    #[test]
    fn batches_reassemble_in_seq_order_and_damage_is_named() {
        let whole = |a, b| messages(a, b, "w1");
        let cut = |a, b, keep: usize| messages(a, b, "w1").into_iter().take(keep).collect::<Vec<_>>();
        let cases: Vec<(&str, Vec<Fetched>, Vec<(u64, usize)>, &str)> = vec![
            ("two whole batches", [whole(0, 9), whole(10, 19)].concat(), vec![(0, 10), (10, 10)], ""),
            (
                "a batch cut by a crash, abandoned, rewritten by the next writer",
                [whole(0, 9), cut(10, 19, 2), vec![abandon(10, 19, "w1")], messages(10, 14, "w2")].concat(),
                vec![(0, 10), (10, 5)],
                "",
            ),
            ("a trailing incomplete batch is not read", [whole(0, 9), cut(10, 19, 2)].concat(), vec![(0, 10)], ""),
            (
                "an incomplete batch in the middle is corruption",
                [whole(0, 9), cut(10, 19, 2), whole(20, 29)].concat(),
                vec![(0, 10), (20, 10)],
                "batch of seq 10..=19 is incomplete",
            ),
            (
                "a missing batch is a gap",
                [whole(0, 9), whole(20, 29)].concat(),
                vec![(0, 10)],
                "seq gap between batches",
            ),
            (
                "an abandon marker for another writer's batch changes nothing",
                [whole(0, 9), vec![abandon(0, 9, "w0")], whole(10, 19)].concat(),
                vec![(0, 10), (10, 10)],
                "",
            ),
        ];
        for (name, input, blocks, problem) in cases {
            let (got, bad) = assemble(input);
            assert_eq!(got, blocks, "{name}: {bad:?}");
            match problem {
                "" => assert!(bad.is_empty(), "{name}: {bad:?}"),
                p => assert!(bad.len() == 1 && bad[0].contains(p), "{name}: {bad:?}"),
            }
        }
    }
}
