//! The protobuf definitions of strom's internal interfaces and their generated code:
//! metadata records (the Raft log's entries), the controller service brokers call, the
//! Raft transport between controllers, and the records of `__consumer_offsets` and
//! `__transaction_state`. Nothing here holds logic.

#[allow(clippy::all, missing_docs)]
mod generated {
    pub mod strom {
        pub mod metadata {
            pub mod v1 {
                tonic::include_proto!("strom.metadata.v1");
            }
        }
        pub mod controller {
            pub mod v1 {
                tonic::include_proto!("strom.controller.v1");
            }
        }
        pub mod group {
            pub mod v1 {
                tonic::include_proto!("strom.group.v1");
            }
        }
        pub mod txn {
            pub mod v1 {
                tonic::include_proto!("strom.txn.v1");
            }
        }
        pub mod raft {
            pub mod v1 {
                tonic::include_proto!("strom.raft.v1");
            }
        }
    }
}

pub use generated::strom::controller::v1 as controller;
pub use generated::strom::group::v1 as group;
pub use generated::strom::metadata::v1 as metadata;
pub use generated::strom::raft::v1 as raft;
pub use generated::strom::txn::v1 as txn;
