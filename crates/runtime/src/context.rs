//! What travels with a call into the calls it makes: how deep it is, the
//! deadline it must finish by, the verifier's double and the trace
//! recorder, if any.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mote_state::Backend;

use crate::CalleeDouble;
use crate::service::LoadedService;
use crate::trace::Recorder;

/// The context of one call, handed down to nested calls and flow steps.
#[derive(Clone)]
pub(crate) struct CallContext {
    /// How many calls enclose this one (0 for a call from outside).
    pub(crate) depth: u32,
    /// The enclosing call's deadline: no nested call may outlive it.
    pub(crate) deadline: Option<Instant>,
    /// Stands in for callees during verification.
    pub(crate) double: Option<Arc<dyn CalleeDouble>>,
    /// Records every nested call when the call is traced.
    pub(crate) trace: Option<Arc<Recorder>>,
    /// The service whose calls these are (`None` for a call from
    /// outside), named to the other host when a call crosses hosts.
    pub(crate) caller: Option<Arc<LoadedService>>,
    /// Stores to use instead of the runtime's (a verifier's generated
    /// contents), for this call and every call it makes.
    pub(crate) state: Option<Arc<dyn Backend>>,
    /// Whether `deadline` is the service's own limit (a stateful call's
    /// runs share one), not a caller's: a timeout then says so.
    pub(crate) deadline_is_own: bool,
}

/// When a call must finish, and which limit decided it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    /// Whether the caller's deadline is the nearer one.
    pub(crate) inherited: bool,
}

impl CallContext {
    /// A call from outside: nothing encloses it.
    pub(crate) fn outside(double: Option<&Arc<dyn CalleeDouble>>) -> Self {
        CallContext {
            depth: 0,
            deadline: None,
            double: double.cloned(),
            trace: None,
            caller: None,
            state: None,
            deadline_is_own: false,
        }
    }

    /// The deadline of a call whose own limit is `timeout`, starting now:
    /// its own, or the caller's if that comes first.
    pub(crate) fn deadline_for(&self, timeout: Duration) -> Deadline {
        let own = Instant::now() + timeout;
        match self.deadline {
            Some(caller) if caller < own => Deadline {
                at: caller,
                inherited: !self.deadline_is_own,
            },
            _ => Deadline {
                at: own,
                inherited: false,
            },
        }
    }

    /// The context for the calls `caller` makes in a call with `deadline`.
    pub(crate) fn nested(&self, deadline: Deadline, caller: &Arc<LoadedService>) -> Self {
        CallContext {
            depth: self.depth + 1,
            deadline: Some(deadline.at),
            double: self.double.clone(),
            trace: self.trace.clone(),
            caller: Some(Arc::clone(caller)),
            state: self.state.clone(),
            deadline_is_own: false,
        }
    }
}
