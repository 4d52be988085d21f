//! Compiles `proto/khop/v1/*.proto` with protox (pure Rust), so the build needs no system `protoc`, and
//! writes the file descriptor set that tonic-reflection serves.

use std::path::PathBuf;

use protox::prost::Message as _;

const FILES: &[&str] = &["jobs.proto", "cluster.proto", "worker.proto", "raft.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files: Vec<PathBuf> = FILES.iter().map(|f| root.join("khop/v1").join(f)).collect();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let fds = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("khop_v1_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
