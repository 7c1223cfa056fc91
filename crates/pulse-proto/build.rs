//! Compiles every `.proto` under the workspace's `proto/` directory into `OUT_DIR`:
//!
//! 1. `tonic-prost-build` generates the prost messages and the tonic clients and servers, one
//!    file per package (`pulse.v1.rs`, `pulse.internal.v1.rs`), and writes the encoded
//!    `FileDescriptorSet` (`pulse_descriptor.bin`) for server reflection.
//! 2. `pbjson-build` reads that descriptor set and generates serde impls following the
//!    protobuf JSON mapping for every `pulse.v1` type (`pulse.v1.serde.rs`).
//! 3. The files of the public packages are written again as their own descriptor set
//!    (`pulse_public_descriptor.bin`), so reflection can show clients the public API only.
//!
//! This is the only build script in the workspace that runs code generation (STYLE rule 4).

use std::env;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use prost::Message;
use tonic_prost_build::FileDescriptorSet;

/// Packages that get protobuf-JSON serde impls.
const JSON_PACKAGES: &[&str] = &[".pulse.v1"];

/// Packages of the public API, the content of the public descriptor set.
const PUBLIC_PACKAGES: &[&str] = &["pulse.v1"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto").canonicalize()?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("pulse_descriptor.bin");

    let mut protos = Vec::new();
    collect_protos(&proto_root, &mut protos)?;
    protos.sort();

    // The whole directory: edited, added and deleted .proto files all rerun code generation.
    println!("cargo:rerun-if-changed={}", proto_root.display());
    println!("cargo:rerun-if-changed=build.rs");

    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        // Well-known types (if any proto imports them) map to pbjson-types, which carry the
        // JSON mapping too.
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_protos(&protos, &[proto_root])?;

    let descriptor_set = fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_set)?
        // Print every scalar field, also at its default, so JSON consumers (pulsectl output,
        // scripts) always see the same keys; absent messages and `optional` fields stay absent.
        .emit_fields()
        .build(JSON_PACKAGES)?;

    let mut public = FileDescriptorSet::decode(descriptor_set.as_slice())?;
    public.file.retain(|file| PUBLIC_PACKAGES.contains(&file.package()));
    fs::write(out_dir.join("pulse_public_descriptor.bin"), public.encode_to_vec())?;
    Ok(())
}

/// Appends every `*.proto` file under `dir`, recursively.
fn collect_protos(dir: &Path, protos: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, protos)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            protos.push(path);
        }
    }
    Ok(())
}
