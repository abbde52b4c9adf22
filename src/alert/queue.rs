//! The bounded alert queue between the engine thread and a sender task, and the pacing
//! rules both live sending and the alert backtest obey.
//!
//! It owns: [`Limiter`] (1 message per second per chat, 20 per minute in groups, 429
//! freezes), [`Waiting`] (the bounded FIFO that coalesces waiting alerts into one digest when
//! it is full), and the sender loop (pacing, `retry_after`, backoff on 5xx and network errors).
//! The first two are pure and take time as nanoseconds, so the backtest in `report.rs` runs
//! them in event time and gets what live sending would have done.
//!
//! It must not block the engine: [`QueueHandle::try_send`] takes a mutex that is only ever
//! held to push or pop one entry, never across IO or an await, and never waits for space.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, watch};

use super::format::{self, DigestText};
use super::{Alert, Notifier, Outgoing, OutgoingKind, SendError};
use crate::exchange::backoff::Backoff;
use crate::model::Nanos;

/// Telegram's advice: about one message per second to the same chat.
pub const DEFAULT_PER_CHAT: Duration = Duration::from_secs(1);
/// Telegram's advice: at most 20 messages per minute to the same group.
pub const DEFAULT_GROUP_PER_MINUTE: u32 = 20;
/// Alerts that may wait for a Telegram chat before they are coalesced into a digest.
pub const DEFAULT_CAPACITY: usize = 64;
/// Local sinks (stdout, files, dry runs) never need to coalesce in practice.
pub const LOCAL_CAPACITY: usize = 65_536;
/// Labels a digest names before it counts the rest as "others".
const MAX_DIGEST_LABELS: usize = 32;
const MINUTE_NS: Nanos = 60_000_000_000;

/// How fast one chat may be sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pacing {
    /// Least time between two messages.
    pub per_chat: Duration,
    /// At most this many messages in any 60 s (groups); `None` for private chats and local sinks.
    pub per_minute: Option<u32>,
}

impl Pacing {
    /// No pacing at all (stdout, files, dry runs).
    pub const NONE: Pacing = Pacing { per_chat: Duration::ZERO, per_minute: None };

    /// Telegram's rules for `chat_id`: group and channel ids are negative.
    pub fn telegram(chat_id: i64, per_chat: Duration, group_per_minute: u32) -> Pacing {
        Pacing { per_chat, per_minute: (chat_id < 0).then_some(group_per_minute) }
    }
}

/// When the next message may go out, given the ones already sent. Time is ns on any
/// monotonic scale: the sender's own clock live, event time in the backtest.
#[derive(Debug, Clone)]
pub struct Limiter {
    pacing: Pacing,
    /// Send times, the most recent last; as many as the per-minute rule needs (at least one).
    recent: VecDeque<Nanos>,
    frozen_until: Nanos,
}

impl Limiter {
    pub fn new(pacing: Pacing) -> Limiter {
        Limiter { pacing, recent: VecDeque::new(), frozen_until: 0 }
    }

    /// The earliest time at or after `now` a message may be sent.
    pub fn earliest(&self, now: Nanos) -> Nanos {
        let mut t = now.max(self.frozen_until);
        if let Some(&last) = self.recent.back() {
            t = t.max(last.saturating_add(self.pacing.per_chat.as_nanos() as Nanos));
        }
        if let Some(n) = self.pacing.per_minute.filter(|n| *n > 0) {
            let n = n as usize;
            if self.recent.len() >= n {
                t = t.max(self.recent[self.recent.len() - n].saturating_add(MINUTE_NS));
            }
        }
        t
    }

    /// Notes a message sent at `at`.
    pub fn record(&mut self, at: Nanos) {
        self.recent.push_back(at);
        let keep = self.pacing.per_minute.unwrap_or(1).max(1) as usize;
        while self.recent.len() > keep {
            self.recent.pop_front();
        }
    }

    /// Sends nothing before `until` (a 429's `retry_after`).
    pub fn freeze_until(&mut self, until: Nanos) {
        self.frozen_until = self.frozen_until.max(until);
    }
}

/// Alerts folded together while the queue was full.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest<T> {
    pub text: DigestText,
    /// When each folded alert arrived (the backtest's delays; `()` live).
    pub arrivals: Vec<T>,
    /// When the digest took its current form, i.e. when it could first be sent.
    pub ready: T,
}

impl<T: Clone> Digest<T> {
    fn add(&mut self, alert: &Alert, at: T) {
        let text = &mut self.text;
        if text.count == 0 {
            (text.first_ts, text.last_ts) = (alert.ts, alert.ts);
        }
        text.count += 1;
        text.first_ts = text.first_ts.min(alert.ts);
        text.last_ts = text.last_ts.max(alert.ts);
        let label = format::label(alert);
        if text.labels.len() < MAX_DIGEST_LABELS || text.labels.contains_key(&label) {
            *text.labels.entry(label).or_default() += 1;
        } else {
            text.others += 1;
        }
        self.arrivals.push(at);
    }

    fn merge(&mut self, other: Digest<T>) {
        let (mine, theirs) = (&mut self.text, other.text);
        if mine.count == 0 {
            (mine.first_ts, mine.last_ts) = (theirs.first_ts, theirs.last_ts);
        }
        mine.count += theirs.count;
        mine.first_ts = mine.first_ts.min(theirs.first_ts);
        mine.last_ts = mine.last_ts.max(theirs.last_ts);
        mine.others += theirs.others;
        for (label, n) in theirs.labels {
            if mine.labels.len() < MAX_DIGEST_LABELS || mine.labels.contains_key(&label) {
                *mine.labels.entry(label).or_default() += n;
            } else {
                mine.others += n;
            }
        }
        self.arrivals.extend(other.arrivals);
    }
}

/// One waiting message.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<T> {
    Alert {
        alert: Box<Alert>,
        at: T,
    },
    Digest(Digest<T>),
    /// A bot command's answer: goes before alerts and is never coalesced.
    Reply {
        html: String,
    },
}

impl<T> Entry<T> {
    /// How many alerts this message carries.
    pub fn alerts(&self) -> u64 {
        match self {
            Entry::Alert { .. } => 1,
            Entry::Digest(d) => d.text.count,
            Entry::Reply { .. } => 0,
        }
    }
}

/// The bounded FIFO of one chat. When `capacity` alerts (or digests) wait and another
/// arrives, everything waiting plus the newcomer becomes one digest: the oldest alerts are
/// not discarded, and the chat gets one message instead of a flood.
#[derive(Debug, Clone)]
pub struct Waiting<T> {
    entries: VecDeque<Entry<T>>,
    capacity: usize,
    replies: usize,
}

impl<T: Clone> Waiting<T> {
    pub fn new(capacity: usize) -> Waiting<T> {
        Waiting { entries: VecDeque::new(), capacity: capacity.max(1), replies: 0 }
    }

    /// Queues `alert`; returns how many alerts were newly folded into a digest (0 if none).
    pub fn push(&mut self, alert: Alert, at: T) -> u64 {
        if self.entries.len() - self.replies < self.capacity {
            self.entries.push_back(Entry::Alert { alert: Box::new(alert), at });
            return 0;
        }
        let mut digest = Digest { text: DigestText::default(), arrivals: Vec::new(), ready: at.clone() };
        let mut folded = 0;
        let mut kept = VecDeque::with_capacity(self.replies + 1);
        for entry in self.entries.drain(..) {
            match entry {
                Entry::Alert { alert, at } => {
                    digest.add(&alert, at);
                    folded += 1;
                }
                Entry::Digest(d) => digest.merge(d),
                reply @ Entry::Reply { .. } => kept.push_back(reply),
            }
        }
        digest.add(&alert, at);
        kept.push_back(Entry::Digest(digest));
        self.entries = kept;
        folded + 1
    }

    /// Queues a command reply ahead of the alerts, after earlier replies.
    pub fn push_reply(&mut self, html: String) {
        self.entries.insert(self.replies, Entry::Reply { html });
        self.replies += 1;
    }

    pub fn pop(&mut self) -> Option<Entry<T>> {
        let entry = self.entries.pop_front()?;
        if matches!(entry, Entry::Reply { .. }) {
            self.replies -= 1;
        }
        Some(entry)
    }

    pub fn front(&self) -> Option<&Entry<T>> {
        self.entries.front()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Alerts waiting, counting each digest's members.
    pub fn alerts(&self) -> u64 {
        self.entries.iter().map(Entry::alerts).sum()
    }
}

/// Counters of one target, shared by the engine side and the sender.
#[derive(Debug, Default)]
pub struct Stats {
    pub alerts: AtomicU64,
    pub sent: AtomicU64,
    pub digests: AtomicU64,
    pub coalesced: AtomicU64,
    pub dropped: AtomicU64,
    pub retries: AtomicU64,
    pub failed: AtomicU64,
    pub replies: AtomicU64,
}

/// What one target did, for the run summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetSummary {
    pub target: String,
    /// Alerts handed to this target.
    pub alerts: u64,
    /// Messages delivered, digests and command replies included.
    pub sent: u64,
    pub digests: u64,
    /// Alerts that went out inside a digest instead of on their own.
    pub coalesced: u64,
    /// Alerts never delivered: given up after errors, or still waiting when the run ended.
    pub dropped: u64,
    pub retries: u64,
    /// Messages given up on.
    pub failed: u64,
}

/// The queue of one target: the waiting entries, the sender's wake-up, and its counters.
#[derive(Debug)]
pub struct Queue {
    waiting: Mutex<Waiting<()>>,
    wake: Notify,
    closed: AtomicBool,
    pub stats: Stats,
    target: String,
}

impl Queue {
    pub fn new(target: String, capacity: usize) -> Arc<Queue> {
        Arc::new(Queue {
            waiting: Mutex::new(Waiting::new(capacity)),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            stats: Stats::default(),
            target,
        })
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// Lets the sender finish once the queue is empty.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting<()>> {
        // A panic elsewhere while holding the lock leaves a queue that is still consistent
        // (every operation is a single push or pop), so keep using it.
        self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Alerts still waiting.
    pub fn backlog(&self) -> u64 {
        self.lock().alerts()
    }

    pub fn summary(&self) -> TargetSummary {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let s = &self.stats;
        TargetSummary {
            target: self.target.clone(),
            alerts: get(&s.alerts),
            sent: get(&s.sent),
            digests: get(&s.digests),
            coalesced: get(&s.coalesced),
            dropped: get(&s.dropped),
            retries: get(&s.retries),
            failed: get(&s.failed),
        }
    }
}

/// The engine side of a queue.
#[derive(Debug, Clone)]
pub struct QueueHandle(pub Arc<Queue>);

/// What [`QueueHandle::try_send`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Queued,
    /// The queue was full: this many alerts were folded into a digest.
    Coalesced(u64),
}

impl QueueHandle {
    /// Queues an alert without waiting: a full queue coalesces instead of blocking.
    pub fn try_send(&self, alert: Alert) -> Enqueued {
        let queue = &self.0;
        queue.stats.alerts.fetch_add(1, Ordering::Relaxed);
        let folded = queue.lock().push(alert, ());
        queue.wake.notify_one();
        if folded > 0 {
            queue.stats.coalesced.fetch_add(folded, Ordering::Relaxed);
            Enqueued::Coalesced(folded)
        } else {
            Enqueued::Queued
        }
    }

    /// Queues a command reply ahead of the alerts.
    pub fn reply(&self, html: String) {
        self.0.lock().push_reply(html);
        self.0.wake.notify_one();
    }
}

/// Retry policy for errors that may pass (5xx, network).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retry {
    pub base: Duration,
    pub max: Duration,
    /// Attempts in all before a message is given up.
    pub attempts: u32,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { base: Duration::from_millis(500), max: Duration::from_secs(30), attempts: 8 }
    }
}

/// Sleeps `d`, or returns `false` at once if the run is being aborted.
async fn sleep_unless_aborted(d: Duration, abort: &mut watch::Receiver<bool>) -> bool {
    if *abort.borrow() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        _ = abort.wait_for(|a| *a) => false,
    }
}

/// Sends everything the queue gets until it is closed and empty, or `abort` turns true.
/// Whatever is left then is counted as dropped.
pub async fn run_sender(
    queue: Arc<Queue>,
    notifier: Arc<dyn Notifier>,
    pacing: Pacing,
    retry: Retry,
    abort: watch::Receiver<bool>,
) {
    let mut abort = abort;
    let clock = tokio::time::Instant::now();
    let now = || clock.elapsed().as_nanos() as Nanos;
    let mut limiter = Limiter::new(pacing);
    let stats = &queue.stats;
    loop {
        if *abort.borrow() {
            break;
        }
        let notified = queue.wake.notified();
        let entry = queue.lock().pop();
        let Some(entry) = entry else {
            if queue.closed.load(Ordering::SeqCst) {
                break;
            }
            tokio::select! {
                () = notified => {}
                _ = abort.wait_for(|a| *a) => break,
            }
            continue;
        };
        let message = outgoing(entry);
        match deliver(&queue, notifier.as_ref(), &message, &mut limiter, retry, &mut abort, &now).await {
            Delivery::Sent => {
                stats.sent.fetch_add(1, Ordering::Relaxed);
                match message.kind {
                    OutgoingKind::Digest => stats.digests.fetch_add(1, Ordering::Relaxed),
                    OutgoingKind::Reply => stats.replies.fetch_add(1, Ordering::Relaxed),
                    OutgoingKind::Alert => 0,
                };
            }
            Delivery::GaveUp => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                stats.dropped.fetch_add(message.alerts, Ordering::Relaxed);
            }
            Delivery::Aborted => {
                stats.dropped.fetch_add(message.alerts, Ordering::Relaxed);
                break;
            }
        }
    }
    let left = queue.lock().alerts();
    if left > 0 {
        tracing::warn!(sink = %queue.target, "{left} alerts were still waiting when the run ended");
        stats.dropped.fetch_add(left, Ordering::Relaxed);
    }
}

enum Delivery {
    Sent,
    GaveUp,
    Aborted,
}

/// Sends one message within the pacing rules, retrying as the error allows.
async fn deliver(
    queue: &Queue,
    notifier: &dyn Notifier,
    message: &Outgoing,
    limiter: &mut Limiter,
    retry: Retry,
    abort: &mut watch::Receiver<bool>,
    now: &impl Fn() -> Nanos,
) -> Delivery {
    let stats = &queue.stats;
    let mut backoff = Backoff::new(retry.base, retry.max, now() | 1);
    let mut attempts = 0u32;
    loop {
        let at = limiter.earliest(now());
        let wait = Duration::from_nanos(at.saturating_sub(now()));
        if !wait.is_zero() && !sleep_unless_aborted(wait, abort).await {
            return Delivery::Aborted;
        }
        attempts += 1;
        let result = tokio::select! {
            r = notifier.send(message) => r,
            _ = abort.wait_for(|a| *a) => return Delivery::Aborted,
        };
        match result {
            Ok(()) => {
                limiter.record(now());
                return Delivery::Sent;
            }
            // Flood control is not a failure: wait as told and try again, however often.
            Err(SendError::RetryAfter(d)) => {
                stats.retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(sink = %queue.target, "flood control: retrying after {} s", d.as_secs_f64());
                limiter.freeze_until(now().saturating_add(d.as_nanos() as Nanos));
            }
            Err(SendError::Transient(e)) if attempts < retry.attempts => {
                stats.retries.fetch_add(1, Ordering::Relaxed);
                let delay = backoff.next_delay();
                tracing::warn!(sink = %queue.target, attempt = attempts, "send failed, retrying in {delay:?}: {e}");
                if !sleep_unless_aborted(delay, abort).await {
                    return Delivery::Aborted;
                }
            }
            Err(SendError::Transient(e) | SendError::Fatal(e)) => {
                tracing::error!(sink = %queue.target, attempts, "giving up on a message: {e}");
                return Delivery::GaveUp;
            }
        }
    }
}

/// The message for a popped entry.
fn outgoing(entry: Entry<()>) -> Outgoing {
    match entry {
        Entry::Alert { alert, .. } => {
            Outgoing { kind: OutgoingKind::Alert, html: format::alert_html(&alert), alerts: 1, alert: Some(*alert) }
        }
        Entry::Digest(d) => Outgoing {
            kind: OutgoingKind::Digest,
            html: format::digest_html(&d.text),
            alerts: d.text.count,
            alert: None,
        },
        Entry::Reply { html } => Outgoing { kind: OutgoingKind::Reply, html, alerts: 0, alert: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    fn alert(symbol: &str, ts: Nanos) -> Alert {
        super::super::test_alert(symbol, ts)
    }

    #[test]
    fn limiter_rules() {
        let private = Pacing { per_chat: Duration::from_secs(1), per_minute: None };
        let group = Pacing::telegram(-5, Duration::from_secs(1), 3);
        // (pacing, sends so far, freeze until, now, earliest)
        let cases: [(Pacing, Vec<Nanos>, Nanos, Nanos, Nanos); 7] = [
            (private, vec![], 0, 7 * S, 7 * S),
            (private, vec![10 * S], 0, 10 * S, 11 * S),
            (private, vec![10 * S], 0, 12 * S, 12 * S),
            (private, vec![10 * S], 15 * S, 12 * S, 15 * S), // a 429 freeze wins
            (group, vec![0, S, 2 * S], 0, 3 * S, 60 * S),    // the fourth in a minute waits
            (group, vec![0, S, 2 * S, 60 * S], 0, 61 * S, 61 * S),
            (Pacing::NONE, vec![5 * S, 5 * S], 0, 5 * S, 5 * S),
        ];
        for (i, (pacing, sent, frozen, now, want)) in cases.into_iter().enumerate() {
            let mut limiter = Limiter::new(pacing);
            for t in sent {
                limiter.record(t);
            }
            limiter.freeze_until(frozen);
            assert_eq!(limiter.earliest(now), want, "case {i}");
        }
        assert_eq!(Pacing::telegram(42, Duration::from_secs(1), 20).per_minute, None, "private chats");
        assert_eq!(Pacing::telegram(-42, Duration::from_secs(1), 20).per_minute, Some(20), "groups");
    }

    #[test]
    fn a_full_queue_folds_into_one_digest_and_replies_go_first() {
        let mut q: Waiting<()> = Waiting::new(3);
        let folded: Vec<u64> = ["A", "B", "C", "D", "E"].iter().map(|s| q.push(alert(s, S), ())).collect();
        assert_eq!(folded, vec![0, 0, 0, 4, 0], "the fourth folds A..D; E queues behind the digest");
        q.push_reply("pong".into());
        assert_eq!(q.alerts(), 5);
        assert!(matches!(q.pop(), Some(Entry::Reply { html }) if html == "pong"));
        match q.pop() {
            Some(Entry::Digest(d)) => {
                assert_eq!(d.text.count, 4);
                assert_eq!(d.text.labels.get("binance A volume"), Some(&1));
                assert_eq!(d.arrivals.len(), 4);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(q.pop(), Some(Entry::Alert { alert, .. }) if alert.symbol == "E"));
        assert!(q.is_empty());
    }

    #[test]
    fn digests_merge_and_bound_their_labels() {
        let mut q: Waiting<()> = Waiting::new(1);
        for i in 0..100 {
            q.push(alert(&format!("S{i}"), i * S), ());
        }
        let Some(Entry::Digest(d)) = q.pop() else { panic!("one digest") };
        assert_eq!(d.text.count, 100);
        assert_eq!(d.text.labels.len(), MAX_DIGEST_LABELS);
        assert_eq!(d.text.others, 100 - MAX_DIGEST_LABELS as u64);
        assert_eq!((d.text.first_ts, d.text.last_ts), (0, 99 * S));
        assert!(q.is_empty());
    }
}
