//! The trace of one call: every callee call and flow step it made, with
//! when each started and how long it took, for an operator to see where a
//! call spent its time (the console's waterfall).
//!
//! Recording is asked for per call ([`crate::Runtime::call_traced`]); a
//! call that did not ask pays one `None` check per nested call.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Spans one trace keeps; a call that makes more (a flow of flows) has
/// the rest counted in [`Trace::dropped`], so a trace cannot grow without
/// bound.
pub const MAX_SPANS: usize = 256;

/// One call within a traced call: the call itself, a call its guest made,
/// or a flow step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSpan {
    /// The service called.
    pub service: String,
    /// The flow step that made this call, if a step did.
    pub step: Option<String>,
    /// How many calls enclose it: 0 for the traced call itself.
    pub depth: u32,
    /// When it started, from the start of the traced call.
    pub start: Duration,
    /// How long it took.
    pub duration: Duration,
    /// `ok`, or the failure's code.
    pub outcome: String,
}

/// What a traced call did, in the order its calls started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// The spans, the traced call first.
    pub spans: Vec<TraceSpan>,
    /// Spans not kept, past [`MAX_SPANS`].
    pub dropped: usize,
}

/// Collects the spans of one traced call, from every thread its flow
/// steps run on.
pub(crate) struct Recorder {
    origin: Instant,
    trace: Mutex<Trace>,
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Recorder {
            origin: Instant::now(),
            trace: Mutex::new(Trace::default()),
        }
    }

    /// Records a call of `service` that started at `started` and just
    /// ended with `outcome`.
    pub(crate) fn record(
        &self,
        service: &str,
        step: Option<&str>,
        depth: u32,
        started: Instant,
        outcome: &str,
    ) {
        let span = TraceSpan {
            service: service.to_string(),
            step: step.map(str::to_string),
            depth,
            start: started.saturating_duration_since(self.origin),
            duration: started.elapsed(),
            outcome: outcome.to_string(),
        };
        let mut trace = self.trace.lock().unwrap_or_else(|p| p.into_inner());
        if trace.spans.len() < MAX_SPANS {
            trace.spans.push(span);
        } else {
            trace.dropped += 1;
        }
    }

    /// The trace, spans in the order they started.
    pub(crate) fn finish(&self) -> Trace {
        let mut trace = std::mem::take(&mut *self.trace.lock().unwrap_or_else(|p| p.into_inner()));
        trace
            .spans
            .sort_by(|a, b| a.start.cmp(&b.start).then(a.depth.cmp(&b.depth)));
        trace
    }
}
