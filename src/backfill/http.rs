//! Backfill's HTTP side: one GET at a time, paced under the venue's documented budget, with
//! throttles and failures retried.
//!
//! Owns the [`Pacer`] (own spending per window, plus what the venue reports in its headers:
//! Binance's used weight, Gate's requests left and reset time) and the retry rules: 429 and
//! 418 wait `Retry-After` seconds (else a backoff delay), a venue throttle body (LBank's
//! HTTP 200 with error code 10004), 5xx and network errors wait a [`Backoff`] delay, and any
//! other status is an error naming the URL. Must not parse bodies beyond asking the venue
//! whether one is a throttle.

use std::time::Duration;

use super::{BackfillError, pause, wall_ms};
use crate::exchange::backoff::Backoff;
use crate::exchange::{RestBudget, Venue};

/// Retry and timeout policy.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// First backoff delay; it doubles per failed attempt (with jitter) up to `max`.
    pub base: Duration,
    pub max: Duration,
    /// Failed attempts in a row before giving up.
    pub attempts: u32,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
            attempts: 10,
            timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Stats {
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
    pub paced: u64,
    pub waited_ms: u64,
}

pub(super) struct Client {
    http: reqwest::Client,
    pacer: Pacer,
    backoff: Backoff,
    pub stats: Stats,
}

impl Client {
    pub fn new(budget: RestBudget, retry: Retry) -> Self {
        let http = reqwest::Client::builder()
            .timeout(retry.timeout)
            .user_agent(concat!("tapedeck/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("http client");
        let backoff = Backoff::new(retry.base, retry.max, wall_ms() ^ 0x9E37_79B9_7F4A_7C15);
        Client { http, pacer: Pacer::new(budget), backoff, stats: Stats::default() }
    }

    /// The body of a successful GET of `url`, which costs `weight`, trying at most `attempts`
    /// times; `None` when `stop` ended a wait. `report` hears why the client is waiting (and
    /// `""` when it goes on).
    #[allow(clippy::too_many_arguments)]
    pub async fn get(
        &mut self,
        url: &str,
        weight: u32,
        attempts: u32,
        venue: &dyn Venue,
        stop: &dyn Fn() -> bool,
        report: &mut dyn FnMut(&str),
    ) -> Result<Option<String>, BackfillError> {
        let mut failures = 0;
        loop {
            if let Some(wait) = self.pacer.wait(weight, wall_ms()) {
                self.stats.paced += 1;
                report(&format!("pacing: near the rate limit, waiting {:.1} s", wait.as_secs_f64()));
                if !self.sleep(wait, stop).await {
                    return Ok(None);
                }
                report("");
            }
            self.pacer.spend(weight, wall_ms());
            self.stats.requests += 1;
            let (delay, why) = match self.http.get(url).send().await {
                Err(e) => (self.backoff.next_delay(), format!("request failed: {e}")),
                Ok(response) => {
                    let headers = response.headers().clone();
                    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
                    self.pacer.observe(&header, wall_ms());
                    let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
                    let status = response.status().as_u16();
                    match response.text().await {
                        Err(e) => (self.backoff.next_delay(), format!("reading the body failed: {e}")),
                        Ok(body) if (200..300).contains(&status) && venue.rest_throttled(&body) => {
                            self.stats.throttled += 1;
                            (self.backoff.next_delay(), format!("throttled: {}", head(&body)))
                        }
                        Ok(body) if (200..300).contains(&status) => {
                            self.backoff.reset();
                            return Ok(Some(body));
                        }
                        Ok(body) if status == 429 || status == 418 => {
                            self.stats.throttled += 1;
                            let delay = retry_after.map_or_else(|| self.backoff.next_delay(), Duration::from_secs);
                            (delay, format!("HTTP {status} (Retry-After {retry_after:?}): {}", head(&body)))
                        }
                        Ok(body) if status >= 500 => {
                            (self.backoff.next_delay(), format!("HTTP {status}: {}", head(&body)))
                        }
                        Ok(body) => {
                            let detail = format!("HTTP {status}: {}", head(&body));
                            return Err(BackfillError::Http { url: url.to_string(), detail });
                        }
                    }
                }
            };
            failures += 1;
            if failures >= attempts {
                let detail = format!("gave up after {failures} attempts; last: {why}");
                return Err(BackfillError::Http { url: url.to_string(), detail });
            }
            self.stats.retries += 1;
            tracing::warn!(%url, %why, ?delay, "retrying");
            report(&format!("{why}; retrying in {:.1} s", delay.as_secs_f64()));
            if !self.sleep(delay, stop).await {
                return Ok(None);
            }
            report("");
        }
    }

    async fn sleep(&mut self, duration: Duration, stop: &dyn Fn() -> bool) -> bool {
        self.stats.waited_ms += duration.as_millis() as u64;
        pause(duration, stop).await
    }
}

fn head(body: &str) -> String {
    body.chars().take(160).collect()
}

/// Keeps requests under 90 % of the venue's budget per window. Windows are aligned to
/// multiples of `budget.window` since the epoch (Binance's weight counter is per minute).
#[derive(Debug)]
pub(super) struct Pacer {
    budget: RestBudget,
    window_ms: u64,
    /// This window's index and the weight spent in it by this process.
    own: (u64, u32),
    /// The weight the venue said was used, and in which window.
    reported_used: Option<(u64, u32)>,
    /// The requests the venue said are left, and when its window resets (ms).
    reported_left: Option<(u32, u64)>,
}

impl Pacer {
    pub fn new(budget: RestBudget) -> Self {
        let window_ms = (budget.window.as_millis() as u64).max(1);
        Pacer { budget, window_ms, own: (0, 0), reported_used: None, reported_left: None }
    }

    /// How long to wait before spending `weight` at `now_ms`, if at all.
    pub fn wait(&mut self, weight: u32, now_ms: u64) -> Option<Duration> {
        let window = now_ms / self.window_ms;
        if self.own.0 != window {
            self.own = (window, 0);
        }
        let threshold = (self.budget.limit / 10 * 9).max(1);
        let reported = self.reported_used.filter(|(w, _)| *w == window).map_or(0, |(_, used)| used);
        if self.own.1.max(reported) + weight > threshold {
            return Some(Duration::from_millis((window + 1) * self.window_ms - now_ms + 10));
        }
        match self.reported_left {
            Some((left, reset_ms)) if reset_ms > now_ms && left <= self.budget.limit / 10 => {
                Some(Duration::from_millis(reset_ms - now_ms + 10))
            }
            _ => None,
        }
    }

    pub fn spend(&mut self, weight: u32, now_ms: u64) {
        let window = now_ms / self.window_ms;
        if self.own.0 != window {
            self.own = (window, 0);
        }
        self.own.1 = self.own.1.saturating_add(weight);
    }

    /// Reads the venue's usage headers from a response received at `now_ms`.
    pub fn observe(&mut self, header: &dyn Fn(&str) -> Option<String>, now_ms: u64) {
        let number = |name: Option<&str>| name.and_then(header).and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(used) = number(self.budget.used_header) {
            self.reported_used = Some((now_ms / self.window_ms, used.min(u64::from(u32::MAX)) as u32));
        }
        if let Some(left) = number(self.budget.remaining_header) {
            // Seconds or ms, told apart by magnitude; without one, the window's end.
            let reset_ms = match number(self.budget.reset_header) {
                Some(t) if t < 10_000_000_000 => t * 1000,
                Some(t) => t,
                None => (now_ms / self.window_ms + 1) * self.window_ms,
            };
            self.reported_left = Some((left.min(u64::from(u32::MAX)) as u32, reset_ms));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binance() -> RestBudget {
        crate::exchange::binance::BinanceVenue.rest_budget()
    }

    #[test]
    fn own_spending_and_reported_weight() {
        let mut pacer = Pacer::new(binance());
        let t0 = 1_700_000_000_000; // 13:33:20.000 UTC, 20 s into a minute
        assert_eq!(pacer.wait(2, t0), None);
        pacer.spend(2, t0);
        // Binance reports the IP's weight, including other clients: near 6000, wait for the next minute.
        let used = |v: &'static str| move |name: &str| (name == "x-mbx-used-weight-1m").then(|| v.to_string());
        pacer.observe(&used("5399"), t0);
        assert_eq!(pacer.wait(2, t0 + 1), Some(Duration::from_millis(40_000 - 1 + 10)));
        // A report from an earlier minute does not count in the next one.
        assert_eq!(pacer.wait(2, t0 + 40_000), None);
        pacer.observe(&used("100"), t0 + 40_000);
        assert_eq!(pacer.wait(2, t0 + 40_001), None);
        // Own spending alone also stops at 90 % (5400 of 6000).
        for _ in 0..2700 {
            pacer.spend(2, t0 + 40_002);
        }
        assert_eq!(pacer.wait(2, t0 + 40_003), Some(Duration::from_millis(59_997 + 10)));
    }

    #[test]
    fn requests_left_and_reset_time() {
        let gate = crate::exchange::gate::GateVenue.rest_budget();
        let mut pacer = Pacer::new(gate);
        let now = 1_700_000_000_000;
        let headers = |left: &'static str, reset: &'static str| {
            move |name: &str| match name {
                "x-gate-ratelimit-requests-remain" => Some(left.to_string()),
                "x-gate-ratelimit-reset-timestamp" => Some(reset.to_string()),
                _ => None,
            }
        };
        pacer.observe(&headers("150", "1700000003"), now);
        assert_eq!(pacer.wait(1, now), None);
        pacer.observe(&headers("20", "1700000003"), now);
        assert_eq!(pacer.wait(1, now), Some(Duration::from_millis(3_010)));
        pacer.observe(&headers("0", "1700000001500"), now);
        assert_eq!(pacer.wait(1, now + 500), Some(Duration::from_millis(1_010)));
        assert_eq!(pacer.wait(1, now + 1_501), None, "past the reset");
    }
}
