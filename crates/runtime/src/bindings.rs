//! Host-side bindings of the `mote:service` world in `wit/`.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "service",
    imports: { default: trappable },
});
