//! Compiles `proto/**/*.proto` with protox (pure Rust), so building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "damselfly/common/v1/common.proto",
        "damselfly/scheduler/v1/scheduler.proto",
        "damselfly/dfdaemon/v1/dfdaemon.proto",
        "damselfly/manager/v1/manager.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed=proto/{f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
