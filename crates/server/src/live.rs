//! What the host knows about each service right now, for the console:
//! calls per second, failures by code, latency percentiles over the last
//! minute, a per-slot series over the last minutes, and the last failures
//! with their call ids.
//!
//! Prometheus' histograms count since the start; a console wants the
//! last minute. Each service keeps a ring of short time slots of atomic
//! counters: recording a call touches three of them and takes no lock
//! (a failure also appends to a short list under a lock). A slot is
//! reset by the first call that reaches it in a new period; a call
//! counted at the very moment of a reset may be lost, so the figures are
//! exact to within a call or two at slot boundaries, as a dashboard's are.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

/// Seconds one slot covers.
pub(crate) const SLOT_SECONDS: u64 = 5;
/// Slots in the series: five minutes.
const SERIES_SLOTS: u64 = 60;
/// Slots kept: the series and the one being filled.
const SLOTS: u64 = SERIES_SLOTS + 1;
/// Slots in the window for rates and percentiles: one minute.
const WINDOW_SLOTS: u64 = 12;
/// Latency buckets: a quarter of a power of two each, from 1 µs to
/// beyond two minutes.
const BUCKETS: usize = 112;
/// Failures remembered per service.
pub(crate) const RECENT_FAILURES: usize = 20;

/// One service's counters for one slot.
struct Slot {
    /// The slot's period number plus one; 0 before its first use.
    period: AtomicU64,
    calls: AtomicU64,
    /// Failures, indexed like [`ServiceLive::codes`], the last one for a
    /// code the service does not know.
    failures: Box<[AtomicU64]>,
    latency: Box<[AtomicU64]>,
}

impl Slot {
    fn new(codes: usize) -> Self {
        Slot {
            period: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            failures: (0..=codes).map(|_| AtomicU64::new(0)).collect(),
            latency: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The slot, made current for `period` if it held an older one.
    fn enter(&self, period: u64) -> &Self {
        let tag = period + 1;
        let held = self.period.load(Ordering::Acquire);
        if held != tag
            && held < tag
            && self
                .period
                .compare_exchange(held, tag, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.calls.store(0, Ordering::Relaxed);
            for counter in self.failures.iter().chain(self.latency.iter()) {
                counter.store(0, Ordering::Relaxed);
            }
        }
        self
    }

    /// Whether the slot holds `period`.
    fn holds(&self, period: u64) -> bool {
        self.period.load(Ordering::Acquire) == period + 1
    }
}

/// A failed call, as the console lists it.
#[derive(Debug, Clone)]
struct RecentFailure {
    call_id: String,
    code: String,
    at: SystemTime,
}

struct ServiceLive {
    /// The codes the service may fail with: its declared errors, then the
    /// platform's.
    codes: Vec<String>,
    slots: Box<[Slot]>,
    recent: Mutex<VecDeque<RecentFailure>>,
}

/// The live figures of every served service.
pub(crate) struct Live {
    origin: Instant,
    services: HashMap<String, ServiceLive>,
}

/// The bucket of a latency: four per power of two of microseconds.
fn bucket(elapsed: Duration) -> usize {
    let micros = elapsed.as_micros().max(1) as f64;
    ((micros.log2() * 4.0) as usize).min(BUCKETS - 1)
}

/// A bucket's middle, in milliseconds.
fn bucket_ms(bucket: usize) -> f64 {
    ((bucket as f64 + 0.5) / 4.0).exp2() / 1000.0
}

impl Live {
    /// Figures for these services, each with the codes it may fail with.
    pub(crate) fn new<'a>(services: impl Iterator<Item = (&'a str, Vec<String>)>) -> Self {
        let services = services
            .map(|(name, codes)| {
                let slots = (0..SLOTS).map(|_| Slot::new(codes.len())).collect();
                let live = ServiceLive {
                    codes,
                    slots,
                    recent: Mutex::new(VecDeque::with_capacity(RECENT_FAILURES)),
                };
                (name.to_string(), live)
            })
            .collect();
        Live {
            origin: Instant::now(),
            services,
        }
    }

    fn period(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_secs() / SLOT_SECONDS
    }

    /// Records a call of `service` that started at `started`: `outcome`
    /// is `success` or the failure's code.
    pub(crate) fn record(&self, service: &str, outcome: &str, started: Instant, call_id: &str) {
        let Some(live) = self.services.get(service) else {
            return;
        };
        let elapsed = started.elapsed();
        let period = self.period(started);
        let slot = live.slots[(period % SLOTS) as usize].enter(period);
        slot.calls.fetch_add(1, Ordering::Relaxed);
        slot.latency[bucket(elapsed)].fetch_add(1, Ordering::Relaxed);
        if outcome == crate::metrics::SUCCESS {
            return;
        }
        let index = live
            .codes
            .iter()
            .position(|code| code == outcome)
            .unwrap_or(live.codes.len());
        slot.failures[index].fetch_add(1, Ordering::Relaxed);
        let mut recent = live.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == RECENT_FAILURES {
            recent.pop_front();
        }
        recent.push_back(RecentFailure {
            call_id: call_id.to_string(),
            code: outcome.to_string(),
            at: SystemTime::now(),
        });
    }

    /// Every service's figures now, as the console's JSON.
    pub(crate) fn snapshot(&self) -> Value {
        let now = Instant::now();
        let current = self.period(now);
        let since_start = now.saturating_duration_since(self.origin).as_secs_f64();
        let window_seconds = since_start.clamp(1.0, (WINDOW_SLOTS * SLOT_SECONDS) as f64);
        let mut services = serde_json::Map::new();
        for (name, live) in &self.services {
            services.insert(name.clone(), live.snapshot(current, window_seconds));
        }
        json!({
            "slot_seconds": SLOT_SECONDS,
            "window_seconds": WINDOW_SLOTS * SLOT_SECONDS,
            "services": services,
        })
    }
}

impl ServiceLive {
    fn slot(&self, period: u64) -> Option<&Slot> {
        let slot = &self.slots[(period % SLOTS) as usize];
        slot.holds(period).then_some(slot)
    }

    fn snapshot(&self, current: u64, window_seconds: f64) -> Value {
        let mut calls = 0u64;
        let mut failures = vec![0u64; self.codes.len() + 1];
        let mut latency = [0u64; BUCKETS];
        for period in current.saturating_sub(WINDOW_SLOTS - 1)..=current {
            let Some(slot) = self.slot(period) else {
                continue;
            };
            calls += slot.calls.load(Ordering::Relaxed);
            for (sum, counter) in failures.iter_mut().zip(slot.failures.iter()) {
                *sum += counter.load(Ordering::Relaxed);
            }
            for (sum, counter) in latency.iter_mut().zip(slot.latency.iter()) {
                *sum += counter.load(Ordering::Relaxed);
            }
        }
        let failed: u64 = failures.iter().sum();
        let mut by_code = serde_json::Map::new();
        for (index, count) in failures.iter().enumerate() {
            if *count > 0 {
                let code = self.codes.get(index).map_or("other", String::as_str);
                by_code.insert(code.to_string(), json!(count));
            }
        }
        // Always the whole series, oldest first: periods before the host
        // started are empty.
        let (series_calls, series_failures): (Vec<u64>, Vec<u64>) = (0..SERIES_SLOTS)
            .map(|back| (current + back + 1).checked_sub(SERIES_SLOTS))
            .map(|period| match period.and_then(|period| self.slot(period)) {
                Some(slot) => (
                    slot.calls.load(Ordering::Relaxed),
                    slot.failures
                        .iter()
                        .map(|c| c.load(Ordering::Relaxed))
                        .sum(),
                ),
                None => (0, 0),
            })
            .unzip();
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let last_failures: Vec<Value> = recent
            .iter()
            .rev()
            .map(|f| {
                json!({
                    "call_id": f.call_id,
                    "code": f.code,
                    "at": mote_verify::attest::utc_timestamp(f.at),
                })
            })
            .collect();
        json!({
            "calls": calls,
            "calls_per_second": calls as f64 / window_seconds,
            "error_rate": if calls == 0 { 0.0 } else { failed as f64 / calls as f64 },
            "errors": by_code,
            "p50_ms": percentile(&latency, calls, 0.50),
            "p99_ms": percentile(&latency, calls, 0.99),
            "series": { "calls": series_calls, "errors": series_failures },
            "last_failures": last_failures,
        })
    }
}

/// The latency under which a share `q` of `total` calls fell, in
/// milliseconds; `null` without calls.
fn percentile(latency: &[u64], total: u64, q: f64) -> Value {
    if total == 0 {
        return Value::Null;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (index, count) in latency.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return json!(bucket_ms(index));
        }
    }
    json!(bucket_ms(BUCKETS - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Live {
        Live::new([("a.b", vec!["declared".to_string(), "timeout".to_string()])].into_iter())
    }

    #[test]
    fn calls_failures_and_recent_failures_are_counted_per_code() {
        let live = live();
        let started = Instant::now();
        for _ in 0..8 {
            live.record("a.b", "success", started, "id-ok");
        }
        live.record("a.b", "declared", started, "id-1");
        live.record("a.b", "timeout", started, "id-2");
        live.record("a.b", "something_else", started, "id-3");
        live.record("nobody", "success", started, "id-x");
        let snapshot = live.snapshot();
        let service = &snapshot["services"]["a.b"];
        assert_eq!(service["calls"], 11);
        assert_eq!(service["errors"]["declared"], 1);
        assert_eq!(service["errors"]["timeout"], 1);
        assert_eq!(service["errors"]["other"], 1);
        let rate = service["error_rate"].as_f64().unwrap_or_default();
        assert!((rate - 3.0 / 11.0).abs() < 1e-9, "{rate}");
        let last: Vec<&str> = service["last_failures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["call_id"].as_str())
            .collect();
        assert_eq!(last, ["id-3", "id-2", "id-1"], "newest first");
        let series = service["series"]["calls"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(series.len() as u64, SERIES_SLOTS);
        assert_eq!(series.last(), Some(&json!(11)));
        assert!(snapshot["services"].get("nobody").is_none());
    }

    #[test]
    fn only_the_last_failures_are_kept() {
        let live = live();
        let started = Instant::now();
        for n in 0..(RECENT_FAILURES + 5) {
            live.record("a.b", "declared", started, &format!("id-{n}"));
        }
        let snapshot = live.snapshot();
        let last = snapshot["services"]["a.b"]["last_failures"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(last.len(), RECENT_FAILURES);
        assert_eq!(last[0]["call_id"], format!("id-{}", RECENT_FAILURES + 4));
    }

    #[test]
    fn percentiles_come_from_the_buckets_of_the_window() {
        let mut latency = [0u64; BUCKETS];
        latency[bucket(Duration::from_micros(100))] = 98;
        latency[bucket(Duration::from_millis(50))] = 2;
        let p50 = percentile(&latency, 100, 0.5).as_f64().unwrap_or_default();
        let p99 = percentile(&latency, 100, 0.99).as_f64().unwrap_or_default();
        assert!((0.09..0.11).contains(&p50), "{p50}");
        assert!((45.0..55.0).contains(&p99), "{p99}");
        assert_eq!(percentile(&latency, 0, 0.5), Value::Null);
    }

    #[test]
    fn a_slot_from_an_older_period_is_reset_before_reuse() {
        let slot = Slot::new(1);
        slot.enter(3).calls.fetch_add(5, Ordering::Relaxed);
        assert!(slot.holds(3));
        assert_eq!(slot.enter(3).calls.load(Ordering::Relaxed), 5);
        let reused = slot.enter(3 + SLOTS);
        assert_eq!(reused.calls.load(Ordering::Relaxed), 0);
        assert!(!slot.holds(3));
        // A late writer from the old period does not rewind it.
        slot.enter(3);
        assert!(slot.holds(3 + SLOTS));
    }
}
