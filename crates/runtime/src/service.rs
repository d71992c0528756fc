//! A service loaded into the runtime: its contract, its resolved limits
//! and what implements it.

use mote_contract::Contract;

use crate::bindings::ServicePre;
use crate::config::ResolvedLimits;
use crate::flow::FlowPlan;
use crate::host::HostState;

/// Everything a call needs, prepared once when the service loads.
pub(crate) struct LoadedService {
    pub(crate) contract: Contract,
    pub(crate) limits: ResolvedLimits,
    pub(crate) implementation: Implementation,
    pub(crate) random_seed: [u8; 32],
}

/// What answers a service's calls.
pub(crate) enum Implementation {
    /// A WebAssembly component, pre-instantiated.
    Component(ServicePre<HostState>),
    /// A flow: calls to other loaded services, in the order its plan gives.
    Flow(FlowPlan),
}
