//! The metadata model: records (defined in `strom-proto`), the image they build, and the
//! controller's decisions (placement, leader election) that produce new records.
//!
//! The image is applied identically on controllers and brokers; it must stay a pure
//! function of the records applied to it, in order.

pub mod decide;
pub mod image;
pub mod placement;
pub mod records;

pub use image::{BrokerRegistration, MetadataImage, PartitionImage, TopicImage};
