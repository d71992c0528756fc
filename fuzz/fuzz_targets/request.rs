//! Any bytes as a request body, through the whole call path: size, JSON,
//! canonical numbers, input schema, `requires`, a fresh instance of a real
//! component, and the checks on the way out, directly and through a flow.
//! Nothing panics, and every success satisfies the output schema.
//!
//! The component is the runtime's `fixture.sum`, built by the test suite
//! (`cargo test -p mote-runtime`) into target/tmp/fixtures; set
//! MOTE_FUZZ_COMPONENT to use another build of it.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mote_runtime::{Runtime, RuntimeConfig};

const FLOW: &str = r#"
[service]
name = "fuzz.flow"
version = "1.0.0"
summary = "Sums twice, in two waves."

[input]
type = "object"
required = ["a", "b"]
additionalProperties = false
properties.a = { type = "integer", minimum = -1000, maximum = 1000 }
properties.b = { type = "integer", minimum = -1000, maximum = 1000 }

[output]
type = "object"
required = ["total"]
additionalProperties = false
properties.total = { type = "integer" }

[[error]]
code = "negative"
summary = "A step refused a negative number."
status = 409

[behavior]
requires = ["input.a + input.b != 999"]

[flow]
steps = [
  { id = "x", call = "fixture.sum@^1", input = "{'a': input.a, 'b': input.b}" },
  { id = "y", call = "fixture.sum@^1", input = "{'a': input.b, 'b': input.a}" },
  { id = "z", call = "fixture.sum@^1", input = "{'a': x.sum, 'b': y.sum}" },
]
output = "{'total': z.sum}"
on_error = { "fixture.sum/negative" = "negative" }
"#;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let component = std::env::var_os("MOTE_FUZZ_COMPONENT").map_or_else(
            || root().join("target/tmp/fixtures/mote-components/fixture_sum.wasm"),
            PathBuf::from,
        );
        let runtime = Runtime::new(RuntimeConfig {
            max_concurrent_instances: 8,
            ..RuntimeConfig::default()
        })
        .expect("the engine starts");
        let contract =
            mote_contract::load(&root().join("crates/runtime/tests/fixtures/sum/contract.toml"))
                .expect("the fixture's contract is valid");
        runtime
            .load_file(contract, &component)
            .unwrap_or_else(|e| panic!("{e} (run `cargo test -p mote-runtime` first)"));
        let flow = mote_contract::check_source(mote_contract::SourceFile::new("flow.toml", FLOW));
        runtime
            .load_flow(flow.contract.expect("the flow's contract is valid"))
            .expect("the flow loads");
        runtime
    })
}

fuzz_target!(|bytes: &[u8]| {
    let runtime = runtime();
    let text = String::from_utf8_lossy(bytes);
    for service in ["fixture.sum", "fuzz.flow"] {
        if let Ok(output) = runtime.call(service, &text) {
            let contract = runtime.contract(service).expect("loaded");
            assert!(contract.output.is_valid(&output), "{service}: {output}");
        }
    }
});
