//! Prometheus metrics per service: calls by outcome, a latency histogram,
//! errors by code, contract violations and calls in flight; and per store:
//! reads, writes, commits and conflicts, read from the runtime at each
//! scrape.

use std::collections::HashMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    service: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    service: String,
    code: String,
}

/// The outcome label of a call that answered with its output.
pub(crate) const SUCCESS: &str = "success";

fn latency_histogram() -> Histogram {
    // 10 µs to about 5 s, doubling.
    Histogram::new(exponential_buckets(0.000_01, 2.0, 20))
}

/// The gateway's metrics and the registry that renders them.
pub(crate) struct Metrics {
    registry: Registry,
    calls: Family<OutcomeLabels, Counter>,
    errors: Family<CodeLabels, Counter>,
    violations: Family<ServiceLabel, Counter>,
    latency: Family<ServiceLabel, Histogram, fn() -> Histogram>,
    in_flight: Family<ServiceLabel, Gauge>,
    /// Handles to each served service's series, made once, so that
    /// counting a call looks up no labels and allocates nothing.
    served: HashMap<String, ServiceSeries>,
}

/// One service's series that every call touches.
struct ServiceSeries {
    successes: Counter,
    latency: Histogram,
    in_flight: Gauge,
}

impl Metrics {
    /// Metrics for these services, each present (at zero) from the start
    /// so that dashboards see a service before its first call.
    pub(crate) fn new<'a>(
        services: impl Iterator<Item = &'a str>,
        runtime: mote_runtime::Runtime,
    ) -> Metrics {
        let mut registry = Registry::with_prefix("mote");
        registry.register_collector(Box::new(StoreCounts(runtime)));
        let calls = Family::<OutcomeLabels, Counter>::default();
        let errors = Family::<CodeLabels, Counter>::default();
        let violations = Family::<ServiceLabel, Counter>::default();
        let latency = Family::<ServiceLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let in_flight = Family::<ServiceLabel, Gauge>::default();
        registry.register(
            "calls",
            "Calls per service, by outcome (success or the failure code)",
            calls.clone(),
        );
        registry.register(
            "errors",
            "Failed calls per service, by code (declared and platform)",
            errors.clone(),
        );
        registry.register(
            "contract_violations",
            "Answers the runtime refused because they break the service's contract",
            violations.clone(),
        );
        registry.register(
            "call_duration_seconds",
            "Time from request body read to answer, per service",
            latency.clone(),
        );
        registry.register(
            "calls_in_flight",
            "Calls being served now, per service",
            in_flight.clone(),
        );
        let served = services
            .map(|service| {
                let label = ServiceLabel {
                    service: service.to_string(),
                };
                let _ = violations.get_or_create(&label);
                let series = ServiceSeries {
                    successes: calls
                        .get_or_create(&OutcomeLabels {
                            service: service.to_string(),
                            outcome: SUCCESS.to_string(),
                        })
                        .clone(),
                    latency: latency.get_or_create(&label).clone(),
                    in_flight: in_flight.get_or_create(&label).clone(),
                };
                (service.to_string(), series)
            })
            .collect();
        Metrics {
            registry,
            calls,
            errors,
            violations,
            latency,
            in_flight,
            served,
        }
    }

    /// Counts a call as in flight until the guard is dropped.
    pub(crate) fn in_flight(&self, service: &str) -> InFlight {
        let gauge = match self.served.get(service) {
            Some(series) => series.in_flight.clone(),
            None => self
                .in_flight
                .get_or_create(&ServiceLabel {
                    service: service.to_string(),
                })
                .clone(),
        };
        gauge.inc();
        InFlight(gauge)
    }

    /// Records a finished call: `outcome` is `success` or the failure code.
    pub(crate) fn record(&self, service: &str, outcome: &str, seconds: f64) {
        if outcome == SUCCESS
            && let Some(series) = self.served.get(service)
        {
            series.successes.inc();
            series.latency.observe(seconds);
            return;
        }
        let service = service.to_string();
        self.calls
            .get_or_create(&OutcomeLabels {
                service: service.clone(),
                outcome: outcome.to_string(),
            })
            .inc();
        if outcome != SUCCESS {
            self.errors
                .get_or_create(&CodeLabels {
                    service: service.clone(),
                    code: outcome.to_string(),
                })
                .inc();
        }
        if outcome == mote_runtime::PlatformFailure::ContractViolation.code() {
            self.violations
                .get_or_create(&ServiceLabel {
                    service: service.clone(),
                })
                .inc();
        }
        self.latency
            .get_or_create(&ServiceLabel { service })
            .observe(seconds);
    }

    /// Everything in the Prometheus text exposition format.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// One figure of a store's counts.
type StoreFigure = fn(&mote_runtime::StoreCount) -> u64;

/// The runtime's counts per store, encoded at each scrape.
struct StoreCounts(mote_runtime::Runtime);

impl std::fmt::Debug for StoreCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreCounts")
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabel {
    store: String,
}

impl Collector for StoreCounts {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = self.0.store_counts();
        if counts.is_empty() {
            return Ok(());
        }
        let families: [(&str, &str, StoreFigure); 4] = [
            (
                "store_reads",
                "Keys read from each store (once per call run) and listings",
                |c| c.reads,
            ),
            (
                "store_writes",
                "Keys written or deleted in each store by committed calls",
                |c| c.writes,
            ),
            (
                "store_commits",
                "Call runs committed against each store",
                |c| c.commits,
            ),
            (
                "store_conflicts",
                "Call runs whose reads of each store changed before they committed: each ran again, or failed with conflict",
                |c| c.conflicts,
            ),
        ];
        for (name, help, value) in families {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (store, count) in &counts {
                let label = StoreLabel {
                    store: store.clone(),
                };
                ConstCounter::new(value(count)).encode(family.encode_family(&label)?)?;
            }
        }
        Ok(())
    }
}

/// A call counted in `calls_in_flight`; dropping it ends the count.
pub(crate) struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
