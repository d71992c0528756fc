//! The guest SDK: write a mote nanoservice as one typed Rust function.
//!
//! ```ignore
//! use mote_guest::{Failure, service};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Input { a: i64, b: i64 }
//!
//! #[derive(Serialize)]
//! struct Output { sum: i64 }
//!
//! fn handle(input: Input) -> Result<Output, Failure> {
//!     Ok(Output { sum: input.a + input.b })
//! }
//!
//! service!(handle);
//! ```
//!
//! The host has already checked the input against the contract's input
//! schema and `requires`, and checks the output (or the error code) against
//! the contract on the way out, so the function holds only business logic.
//!
//! A service builds for `wasm32-unknown-unknown` and imports nothing but
//! mote's own host interface: [`call`], [`log`], and, when its contract
//! declares them, [`clock`], [`random`] and [`Store`]s. There is no WASI: `std`'s
//! clock, sleep, files, environment and sockets are unsupported on that
//! target (they panic or return errors), so a service cannot reach them
//! by accident. A panic traps the call; its message goes to the host's
//! log, never to a client.
//!
//! On WebAssembly the SDK also installs the service's global allocator (a
//! bump allocator over a zeroed arena the module already owns, since an
//! instance lives for one call, then dlmalloc over grown memory), so that
//! a typical call never grows memory and dirties few pages. A service must
//! not declare its own `#[global_allocator]`.

#[cfg(target_arch = "wasm32")]
mod allocator;

/// Generated bindings for the `mote:service` world; used by [`service!`].
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "service",
        pub_export_macro: true,
        export_macro_name: "__export_service",
        default_bindings_module: "mote_guest::bindings",
    });
}

pub use serde;
pub use serde_json;

/// Generates `Input` and `Output` from the contract's `[input]` and
/// `[output]` schemas: `mote_guest::contract!();` reads `contract.toml`
/// next to the crate's `Cargo.toml`. The crate needs `serde` (with
/// `derive`) as a dependency, as the generated types derive its traits.
pub use mote_guest_macros::contract;

use bindings::mote::service::host;
use bindings::mote::service::types::Level;

/// A declared error: `code` must be one of the contract's `[[error]]` codes,
/// or the host turns the answer into a `contract_violation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The contract's error code, e.g. `zero_amount`.
    pub code: String,
    /// A message for people; clients match on the code, not on this.
    pub message: String,
}

impl Failure {
    /// A failure with a code and a message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Calls another nanoservice through the host. It must be listed in this
/// service's `effects.calls`; otherwise the host answers `undeclared_call`.
pub fn call<I, O>(service: &str, input: &I) -> Result<O, Failure>
where
    I: serde::Serialize,
    O: serde::de::DeserializeOwned,
{
    let input =
        serde_json::to_string(input).map_err(|e| Failure::new("guest_encoding", e.to_string()))?;
    match host::call(service, &input) {
        Ok(output) => {
            serde_json::from_str(&output).map_err(|e| Failure::new("guest_decoding", e.to_string()))
        }
        Err(f) => Err(Failure::new(f.code, f.message)),
    }
}

/// The wall clock. The service's contract must declare
/// `[effects] clock = true`; a component that uses these functions without
/// it is refused when it loads.
pub mod clock {
    use std::time::{Duration, SystemTime};

    use crate::bindings::mote::service::clock as host;

    /// Nanoseconds since 1970-01-01T00:00:00Z.
    pub fn now_unix_nanos() -> u64 {
        host::now()
    }

    /// The current time. (`SystemTime::now()` itself is unsupported on
    /// `wasm32-unknown-unknown` and panics.)
    pub fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(now_unix_nanos())
    }
}

/// Randomness from the host. The service's contract must declare
/// `[effects] random = true`; a component that uses these functions without
/// it is refused when it loads.
pub mod random {
    use crate::bindings::mote::service::random as host;

    /// 64 random bits from the host's cryptographically secure source.
    pub fn next_u64() -> u64 {
        host::random()
    }

    /// Fills `bytes` with random bits.
    pub fn fill(bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let word = next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// A store the service's contract declares (`[store.NAME]`), holding
/// values of type `V` under string keys.
///
/// Every call is one transaction: reads see the store as the call found
/// it (a key read twice reads the same value, or this call's own write),
/// and writes reach the store only if the call succeeds and its answer
/// passes the contract's checks; an error writes nothing. When a
/// concurrent call changed what this one read, the host runs the call
/// again, so a handler must not count on running once.
///
/// ```ignore
/// static STOCK: Store<u64> = Store::new("stock");
///
/// let on_hand = STOCK.get(&input.sku)?.unwrap_or(0);
/// STOCK.put(&input.sku, &(on_hand + input.qty))?;
/// ```
///
/// Using a store the contract does not declare, or writing one declared
/// `read`, ends the call as a `contract_violation`; so does writing a
/// value that breaks the store's `value` schema.
pub struct Store<V> {
    name: &'static str,
    values: std::marker::PhantomData<fn() -> V>,
}

impl<V> Store<V>
where
    V: serde::Serialize + serde::de::DeserializeOwned,
{
    /// The store the contract declares as `[store.NAME]`.
    pub const fn new(name: &'static str) -> Self {
        Store {
            name,
            values: std::marker::PhantomData,
        }
    }

    fn decode(text: &str) -> Result<V, Failure> {
        // The host checked every stored value against the store's schema,
        // so a value that does not decode means `V` disagrees with it.
        serde_json::from_str(text).map_err(|e| Failure::new("guest_decoding", e.to_string()))
    }

    fn encode(value: &V) -> Result<String, Failure> {
        serde_json::to_string(value).map_err(|e| Failure::new("guest_encoding", e.to_string()))
    }

    /// The value at `key`, if there is one.
    pub fn get(&self, key: &str) -> Result<Option<V>, Failure> {
        bindings::mote::service::store::get(self.name, key)
            .map(|text| Self::decode(&text))
            .transpose()
    }

    /// Sets `key` to `value`.
    pub fn put(&self, key: &str, value: &V) -> Result<(), Failure> {
        bindings::mote::service::store_write::put(self.name, key, &Self::encode(value)?);
        Ok(())
    }

    /// Removes `key`.
    pub fn delete(&self, key: &str) {
        bindings::mote::service::store_write::delete(self.name, key);
    }

    /// Sets `key` to `new` (`None`: removes it) only if its value is now
    /// `expected` (`None`: absent); whether it did.
    pub fn swap(&self, key: &str, expected: Option<&V>, new: Option<&V>) -> Result<bool, Failure> {
        let expected = expected.map(Self::encode).transpose()?;
        let new = new.map(Self::encode).transpose()?;
        Ok(bindings::mote::service::store_write::swap(
            self.name,
            key,
            expected.as_deref(),
            new.as_deref(),
        ))
    }

    /// The entries whose keys start with `prefix`, in key order: at most
    /// `limit`, and at most 1000.
    pub fn list(&self, prefix: &str, limit: u32) -> Result<Vec<(String, V)>, Failure> {
        bindings::mote::service::store::scan(self.name, prefix, limit)
            .into_iter()
            .map(|(key, text)| Ok((key, Self::decode(&text)?)))
            .collect()
    }
}

/// Writes a line to the host's log, tagged with this service's name.
pub mod log {
    use super::{Level, host};

    /// Logs at debug level.
    pub fn debug(message: &str) {
        host::log(Level::Debug, message);
    }

    /// Logs at info level.
    pub fn info(message: &str) {
        host::log(Level::Info, message);
    }

    /// Logs at warn level.
    pub fn warn(message: &str) {
        host::log(Level::Warn, message);
    }

    /// Logs at error level.
    pub fn error(message: &str) {
        host::log(Level::Error, message);
    }
}

/// Sends a panic's message to the host's log before the panic traps the
/// call: on `wasm32-unknown-unknown` a panic is otherwise silent.
fn report_panics() {
    std::panic::set_hook(Box::new(|info| {
        host::log(Level::Error, &format!("panicked: {info}"));
    }));
}

/// Runs a typed handler on JSON text; used by [`service!`].
#[doc(hidden)]
pub fn __run<I, O>(
    input: &str,
    handler: fn(I) -> Result<O, Failure>,
) -> Result<String, bindings::mote::service::types::Failure>
where
    I: serde::de::DeserializeOwned,
    O: serde::Serialize,
{
    report_panics();
    let to_wit = |f: Failure| bindings::mote::service::types::Failure {
        code: f.code,
        message: f.message,
    };
    // The host validated the input against the contract, so a decoding
    // failure means the Rust types disagree with the schema: a bug in the
    // service, reported with a code no contract declares.
    let input: I = serde_json::from_str(input)
        .map_err(|e| to_wit(Failure::new("guest_decoding", e.to_string())))?;
    let output = handler(input).map_err(to_wit)?;
    serde_json::to_string(&output)
        .map_err(|e| to_wit(Failure::new("guest_encoding", e.to_string())))
}

/// Exports a function `fn(Input) -> Result<Output, Failure>` as the
/// service's `handle`, with JSON decoding and encoding around it.
#[macro_export]
macro_rules! service {
    ($handler:path) => {
        #[doc(hidden)]
        struct __MoteService;

        impl $crate::bindings::Guest for __MoteService {
            fn handle(
                input: ::std::string::String,
            ) -> ::std::result::Result<
                ::std::string::String,
                $crate::bindings::mote::service::types::Failure,
            > {
                $crate::__run(&input, $handler)
            }
        }

        $crate::bindings::__export_service!(__MoteService with_types_in $crate::bindings);
    };
}
