//! Why a call did not produce an output: a declared error of the service,
//! or one of the platform's own failures.

use std::fmt;

/// A failure of the platform rather than of the service's business logic.
/// The names ([`PlatformFailure::code`]) are stable and travel over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlatformFailure {
    /// The input is too large, not JSON, breaks the input schema or a
    /// `requires`. The guest never ran.
    InvalidInput,
    /// The guest answered something its contract does not allow.
    ContractViolation,
    /// The guest ran past its deadline.
    Timeout,
    /// The guest exhausted its fuel or memory, or nested calls too deeply.
    ResourceExhausted,
    /// The guest crashed (a panic, an `unreachable`, an out-of-bounds access).
    Trap,
    /// The guest called a service its contract does not list in `effects.calls`.
    UndeclaredCall,
    /// No such service is loaded (or none in the requested version range).
    UnknownService,
    /// The host has no capacity for another instance right now.
    Overloaded,
    /// The client sent more requests than the public address allows it
    /// (`mote up --rate-limit`).
    RateLimited,
    /// A service placed on another host could not be reached: the host
    /// is down, refused the connection, or broke it off.
    Unavailable,
    /// Concurrent calls kept changing what this call read from its stores,
    /// and it was run again as many times as the host allows; nothing was
    /// written.
    Conflict,
}

impl PlatformFailure {
    /// Every platform failure, for tables and documentation.
    pub const ALL: [PlatformFailure; 11] = [
        PlatformFailure::InvalidInput,
        PlatformFailure::ContractViolation,
        PlatformFailure::Timeout,
        PlatformFailure::ResourceExhausted,
        PlatformFailure::Trap,
        PlatformFailure::UndeclaredCall,
        PlatformFailure::UnknownService,
        PlatformFailure::Overloaded,
        PlatformFailure::RateLimited,
        PlatformFailure::Unavailable,
        PlatformFailure::Conflict,
    ];

    /// The stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            PlatformFailure::InvalidInput => "invalid_input",
            PlatformFailure::ContractViolation => "contract_violation",
            PlatformFailure::Timeout => "timeout",
            PlatformFailure::ResourceExhausted => "resource_exhausted",
            PlatformFailure::Trap => "trap",
            PlatformFailure::UndeclaredCall => "undeclared_call",
            PlatformFailure::UnknownService => "unknown_service",
            PlatformFailure::Overloaded => "overloaded",
            PlatformFailure::RateLimited => "rate_limited",
            PlatformFailure::Unavailable => "unavailable",
            PlatformFailure::Conflict => "conflict",
        }
    }

    /// Whether a failure of this kind may show its message to a client.
    /// The message of an `invalid_input`, `unknown_service`, `overloaded`,
    /// `timeout` or `resource_exhausted` is the host's own words about the
    /// client's input or the host's limits. That of a
    /// `contract_violation`, `trap` or `undeclared_call` may quote what the
    /// guest answered or did, so it belongs in the log only.
    pub fn detail_is_public(self) -> bool {
        match self {
            PlatformFailure::InvalidInput
            | PlatformFailure::UnknownService
            | PlatformFailure::Overloaded
            | PlatformFailure::RateLimited
            | PlatformFailure::Timeout
            | PlatformFailure::Conflict
            | PlatformFailure::ResourceExhausted => true,
            // Names and addresses of the app's hosts are not for clients.
            PlatformFailure::Unavailable
            | PlatformFailure::ContractViolation
            | PlatformFailure::Trap
            | PlatformFailure::UndeclaredCall => false,
        }
    }

    /// The platform failure with this code, if any.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.code() == code)
    }
}

/// What a call returns instead of an output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// One of the service's declared errors, returned as the contract says.
    Declared {
        /// The contract's error code.
        code: String,
        /// The guest's message.
        message: String,
        /// The HTTP status the contract gives this error.
        status: u16,
    },
    /// A failure of the platform.
    Platform {
        /// Which one.
        kind: PlatformFailure,
        /// What happened, for people.
        message: String,
    },
}

impl Failure {
    /// A platform failure of `kind`, described by `message`.
    pub fn platform(kind: PlatformFailure, message: impl Into<String>) -> Self {
        Failure::Platform {
            kind,
            message: message.into(),
        }
    }

    /// The code clients match on.
    pub fn code(&self) -> &str {
        match self {
            Failure::Declared { code, .. } => code,
            Failure::Platform { kind, .. } => kind.code(),
        }
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        match self {
            Failure::Declared { message, .. } | Failure::Platform { message, .. } => message,
        }
    }

    /// The platform failure, if this is one.
    pub fn platform_kind(&self) -> Option<PlatformFailure> {
        match self {
            Failure::Platform { kind, .. } => Some(*kind),
            Failure::Declared { .. } => None,
        }
    }

    /// As JSON: `{"code": ..., "message": ...}` plus `status` for declared
    /// errors.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Failure::Declared {
                code,
                message,
                status,
            } => serde_json::json!({"code": code, "message": message, "status": status}),
            Failure::Platform { kind, message } => {
                serde_json::json!({"code": kind.code(), "message": message})
            }
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for Failure {}
