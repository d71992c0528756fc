//! Core module → component, in process.

use std::path::Path;

use crate::BuildError;

/// Turns the core module at `module` (built with the guest SDK, which
/// embeds the `mote:service` world) into a component at `component`. The
/// component imports only the parts of mote's host interface the module
/// uses. A module that imports anything else (WASI, or functions of some
/// other host) cannot be made into a component and is refused here, naming
/// the import. The file is replaced atomically, and not rewritten when its
/// bytes would not change.
pub fn componentize(module: &Path, component: &Path) -> Result<(), BuildError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BuildError::Io { path, source }
    };
    let core = std::fs::read(module).map_err(io(module))?;
    let refuse = |message: String| BuildError::Componentize {
        module: module.to_path_buf(),
        message,
    };
    let bytes = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&core)
        .and_then(|mut encoder| encoder.encode())
        .map_err(|e| refuse(format!("{e:#}")))?;
    if std::fs::read(component).is_ok_and(|existing| existing == bytes) {
        return Ok(());
    }
    if let Some(parent) = component.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let temporary = component.with_extension(format!("wasm.tmp{}", std::process::id()));
    std::fs::write(&temporary, &bytes).map_err(io(&temporary))?;
    std::fs::rename(&temporary, component).map_err(io(component))
}
