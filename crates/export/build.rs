//! Compiles the vendored onnx.proto (ONNX 1.17, Apache-2.0) to Rust with protox: pure Rust, so
//! the build needs no protoc binary and downloads nothing.
fn main() {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let fds = protox::compile(["proto/onnx.proto"], ["proto"]).expect("onnx.proto compiles");
    prost_build::Config::new().compile_fds(fds).expect("prost code generation");
}
