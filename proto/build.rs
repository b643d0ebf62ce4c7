//! Compiles `proto/meridian.proto` with protox (a pure-Rust protobuf
//! compiler: no system `protoc`) and generates the tonic services.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/meridian.proto");
    let fds = protox::compile(["meridian.proto"], ["proto"])?;
    tonic_prost_build::configure().bytes(".").compile_fds(fds)?;
    Ok(())
}
