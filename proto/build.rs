//! Compiles `proto/*.proto` with protox (pure-Rust protoc) and generates prost messages
//! and tonic services (madsim-tonic under `--cfg madsim`).
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/metadata.proto",
        "proto/controller.proto",
        "proto/raft.proto",
        "proto/group.proto",
        "proto/txn.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let fds_path = out.join("strom_descriptor.bin");
    std::fs::write(&fds_path, prost::Message::encode_to_vec(&fds))?;
    // Files without services (and not imported by one) are skipped by tonic-build's
    // generator: compile the records of __consumer_offsets and __transaction_state with
    // prost-build directly.
    prost_build::Config::new()
        .file_descriptor_set_path(&fds_path)
        .skip_protoc_run()
        .bytes(["."])
        .compile_protos(&["proto/group.proto", "proto/txn.proto"], &["proto"])?;
    tonic_build::configure()
        .file_descriptor_set_path(&fds_path)
        .skip_protoc_run()
        .bytes(["."])
        .compile_protos(&files, &["proto"])?;
    // Under madsim, `include_proto!` reads from OUT_DIR/sim.
    if std::env::var_os("CARGO_CFG_MADSIM").is_some() {
        let sim = out.join("sim");
        std::fs::create_dir_all(&sim)?;
        for f in ["strom.group.v1.rs", "strom.txn.v1.rs"] {
            std::fs::copy(out.join(f), sim.join(f))?;
        }
    }
    Ok(())
}
