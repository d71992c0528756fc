//! `mote new`: scaffold a service folder that builds and checks unchanged.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mote_contract::{ServiceName, Visibility};

use crate::exit;

/// Where the guest SDK lives: `MOTE_GUEST_SDK` if set, else the `guest/sdk`
/// folder of the source tree this binary was built from.
fn guest_sdk() -> Option<PathBuf> {
    let path = std::env::var_os("MOTE_GUEST_SDK")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest/sdk"));
    path.join("Cargo.toml")
        .is_file()
        .then(|| path.canonicalize().ok())
        .flatten()
}

pub fn run(name: &str, dir: &Path, public: bool) -> ExitCode {
    let name = match ServiceName::parse(name) {
        Ok(name) => name,
        Err(why) => {
            eprintln!("error: invalid service name: {why}");
            eprintln!("  hint: service names are dotted lowercase, e.g. `pricing.discount`");
            return ExitCode::from(exit::USAGE);
        }
    };
    let Some(sdk) = guest_sdk() else {
        eprintln!(
            "error: cannot find the mote guest SDK; set MOTE_GUEST_SDK to its folder (guest/sdk in mote's source)"
        );
        return ExitCode::from(exit::USAGE);
    };
    let folder = name.as_str().replace('.', "-");
    let target = dir.join(&folder);
    if target.exists() {
        eprintln!(
            "error: {} already exists; nothing was written",
            target.display()
        );
        return ExitCode::from(exit::USAGE);
    }
    let visibility = if public {
        Visibility::Public
    } else {
        Visibility::Internal
    };
    match scaffold(&name, visibility, &folder, dir, &target, &sdk) {
        Ok(()) => {
            println!("Created {} ({})", name, target.display());
            println!(
                "  contract:       {}",
                target.join("contract.toml").display()
            );
            println!("  implementation: {}", target.join("src/lib.rs").display());
            println!(
                "Next: mote check {0}  &&  mote build {1}",
                target.display(),
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot create {}: {e}", target.display());
            ExitCode::from(exit::USAGE)
        }
    }
}

/// Writes the service into a temporary folder and renames it into place,
/// so a failure never leaves half a service behind.
fn scaffold(
    name: &ServiceName,
    visibility: Visibility,
    folder: &str,
    dir: &Path,
    target: &Path,
    sdk: &Path,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let staging = dir.join(format!(".{folder}.mote-new-{}", std::process::id()));
    let written = (|| {
        std::fs::create_dir_all(staging.join("src"))?;
        std::fs::write(staging.join("contract.toml"), contract(name, visibility))?;
        std::fs::write(staging.join("Cargo.toml"), manifest(folder, sdk))?;
        std::fs::write(staging.join("src/lib.rs"), LIB_RS)?;
        std::fs::write(staging.join(".gitignore"), "/target\n")?;
        std::fs::rename(&staging, target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    written
}

fn contract(name: &ServiceName, visibility: Visibility) -> String {
    let visibility = match visibility {
        Visibility::Public => "visibility = \"public\"            # served on the public address",
        Visibility::Internal => {
            "visibility = \"internal\"          # \"public\" serves it on the public address"
        }
    };
    format!(
        r#"# The contract of {name}: the only part of this service people need to read.
# Replace the worked example below with your service's operation.

[service]
name = "{name}"
version = "0.1.0"
summary = "Adds two whole numbers."
{visibility}

[input]
type = "object"
required = ["a", "b"]
additionalProperties = false
properties.a = {{ type = "integer", minimum = -1000000000, maximum = 1000000000 }}
properties.b = {{ type = "integer", minimum = -1000000000, maximum = 1000000000 }}

[output]
type = "object"
required = ["sum"]
additionalProperties = false
properties.sum = {{ type = "integer" }}

# Every failure, with the exact condition it is returned on.
[[error]]
code = "both_zero"
summary = "Nothing to add."
status = 422
when = "input.a == 0 && input.b == 0"

[behavior]
ensures = ["output.sum == input.a + input.b"]

[[example]]
input = {{ a = 2, b = 3 }}
output = {{ sum = 5 }}

[[example]]
input = {{ a = 0, b = 0 }}
error = "both_zero"

[limits]
timeout_ms = 100
"#
    )
}

fn manifest(folder: &str, sdk: &Path) -> String {
    let sdk = sdk.display().to_string().replace('\\', "/");
    format!(
        r#"[package]
name = "{folder}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
mote-guest = {{ path = "{sdk}" }}
serde = {{ version = "1", features = ["derive"] }}

[profile.release]
opt-level = "s"
strip = true
panic = "abort"

# A service builds on its own, outside any enclosing workspace.
[workspace]
"#
    )
}

const LIB_RS: &str = r#"//! The implementation. mote checks the input against the contract before
//! this runs, and the answer against the contract after. `Input` and
//! `Output` are generated from the schemas in `contract.toml`.

use mote_guest::{Failure, contract, service};

contract!();

fn handle(input: Input) -> Result<Output, Failure> {
    if input.a == 0 && input.b == 0 {
        return Err(Failure::new("both_zero", "nothing to add"));
    }
    Ok(Output {
        sum: input.a + input.b,
    })
}

service!(handle);
"#;
