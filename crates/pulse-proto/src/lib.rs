//! # pulse-proto — the Pulse wire contract
//!
//! Generated code for the `.proto` files under the workspace's `proto/` directory, and the one
//! place where wire types meet the domain types of `pulse-scoring` (STYLE rule 5).
//!
//! ## Layout
//! - [`v1`]: package `pulse.v1`, the public API (DESIGN.md section 4): `ActivityService`,
//!   `AdminService`, `ClusterService`, their messages and enums. Every message and enum also
//!   implements `serde::Serialize`/`Deserialize` in the protobuf JSON mapping (camelCase keys,
//!   snake_case accepted on input, enum value names, 64-bit integers as strings, every scalar
//!   field printed).
//! - [`internal`]: package `pulse.internal.v1`, node-to-node services (raft transport,
//!   snapshots, node registration). Not for clients; no JSON mapping.
//! - [`PUBLIC_FILE_DESCRIPTOR_SET`] (the `pulse.v1` files, for gRPC server reflection) and
//!   [`FILE_DESCRIPTOR_SET`] (every compiled file).
//! - `convert/`: `From`/`TryFrom` between wire and domain types (events, activity, enums,
//!   scoring config, RFM edges, lifetime parameters, segment definitions, transitions), and
//!   [`ProtoEnum`] for enum fields held as `i32`.
//! - [`ConvertError`]: what a wire value that has no domain meaning is rejected with; it
//!   always names the field.
//!
//! Generated modules are exempt from the workspace lints; everything hand-written is not.

#[cfg(test)]
mod contract_tests;
mod convert;
mod error;

pub use convert::ProtoEnum;
pub use error::{ConvertError, Result};

/// Generated code, laid out by protobuf package so that cross-package references resolve.
mod generated {
    /// Package `pulse`.
    pub mod pulse {
        /// Package `pulse.v1`.
        #[allow(missing_docs, rust_2018_idioms, clippy::all, clippy::pedantic, clippy::nursery)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/pulse.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/pulse.v1.serde.rs"));
        }

        /// Package `pulse.internal`.
        pub mod internal {
            /// Package `pulse.internal.v1`.
            #[allow(missing_docs, rust_2018_idioms, clippy::all, clippy::pedantic, clippy::nursery)]
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/pulse.internal.v1.rs"));
            }
        }
    }
}

/// Package `pulse.v1`: the public API (services, messages, enums), with protobuf-JSON serde.
pub use generated::pulse::v1;

/// Internal node-to-node packages.
pub mod internal {
    /// Package `pulse.internal.v1`: raft transport, snapshot streaming, node registration.
    pub use crate::generated::pulse::internal::v1;
}

/// The encoded `google.protobuf.FileDescriptorSet` of every compiled `.proto` file (public and
/// internal packages), with source comments.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pulse_descriptor.bin"));

/// The encoded `google.protobuf.FileDescriptorSet` of the public API only (`pulse.v1`), with
/// source comments: what `tonic-reflection` should serve, so clients see no internal service.
pub const PUBLIC_FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/pulse_public_descriptor.bin"));
