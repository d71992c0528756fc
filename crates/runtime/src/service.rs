//! A service loaded into the runtime: its contract, its resolved limits
//! and what implements it.

use std::sync::Arc;

use mote_contract::Contract;

use crate::bindings::ServicePre;
use crate::config::ResolvedLimits;
use crate::flow::FlowPlan;
use crate::host::HostState;

/// Everything a call needs, prepared once when the service loads.
pub(crate) struct LoadedService {
    pub(crate) contract: Arc<Contract>,
    pub(crate) limits: ResolvedLimits,
    pub(crate) implementation: Implementation,
}

/// What answers a service's calls.
pub(crate) enum Implementation {
    /// A WebAssembly component, pre-instantiated (shared by every service
    /// whose component has the same bytes).
    Component(Arc<ServiceCode>),
    /// A flow: calls to other loaded services, in the order its plan gives.
    Flow(FlowPlan),
    /// A service another host serves, reached through `RemoteService`;
    /// its answers are checked here as any other's.
    Remote(Arc<dyn crate::RemoteService>),
}

/// A compiled component, ready to instantiate.
pub(crate) struct ServiceCode {
    pub(crate) pre: ServicePre<HostState>,
    /// The interfaces it imports, for the static effect check of each
    /// contract it serves.
    pub(crate) imports: Vec<String>,
    /// The identity of the compiled code it was made from.
    pub(crate) artefact: crate::LoadedArtefact,
}
