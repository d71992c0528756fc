//! A service loaded into the runtime: its contract, its resolved limits
//! and its pre-instantiated component.

use mote_contract::Contract;

use crate::bindings::ServicePre;
use crate::config::ResolvedLimits;
use crate::host::HostState;

/// Everything a call needs, prepared once when the service loads.
pub(crate) struct LoadedService {
    pub(crate) contract: Contract,
    pub(crate) limits: ResolvedLimits,
    pub(crate) pre: ServicePre<HostState>,
    pub(crate) random_seed: [u8; 32],
}
