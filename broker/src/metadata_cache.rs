//! The broker's copy of the metadata image, following the controller quorum's log.
//! Kafka `Metadata` answers and every routing decision read it; only the metadata
//! follower (in `node.rs`) replaces it, after the replica manager has acted on it.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use strom_common::watch;
use strom_controller::metadata::MetadataImage;

pub struct MetadataCache {
    image: RwLock<Arc<MetadataImage>>,
    applied: watch::Sender<u64>,
    observer: RwLock<Option<ImageObserver>>,
}

/// Told of every image a broker publishes, for histories kept outside the node (the
/// simulation's `metadata_logs_agree`).
pub type ImageObserver = Arc<dyn Fn(&MetadataImage) + Send + Sync>;

impl Default for MetadataCache {
    fn default() -> Self {
        MetadataCache::new()
    }
}

impl MetadataCache {
    pub fn new() -> MetadataCache {
        let (applied, _) = watch::channel(0);
        MetadataCache {
            image: RwLock::new(Arc::new(MetadataImage::default())),
            applied,
            observer: RwLock::new(None),
        }
    }

    /// The current image (cheap: an `Arc`).
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().clone()
    }

    /// The metadata offset applied.
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Publishes a new image as of `offset`.
    /// Calls `f` with every image published from now on.
    pub fn observe(&self, f: ImageObserver) {
        *self.observer.write() = Some(f);
    }

    pub fn publish(&self, image: Arc<MetadataImage>, offset: u64) {
        if let Some(f) = self.observer.read().as_ref() {
            f(&image);
        }
        *self.image.write() = image;
        self.applied.send_replace(offset);
    }

    /// Waits until `pred` holds for the image (or `timeout` passes); true if it does.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        pred: impl Fn(&MetadataImage) -> bool,
    ) -> bool {
        let mut rx = self.applied.subscribe();
        let ok = tokio::time::timeout(timeout, async {
            loop {
                if pred(&self.image()) {
                    return true;
                }
                if rx.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await;
        matches!(ok, Ok(true))
    }

    /// Waits until the image includes `offset` (or `timeout` passes); true if it does.
    pub async fn wait_for(&self, offset: u64, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        let ok = matches!(
            tokio::time::timeout(timeout, rx.wait_for(|applied| *applied >= offset)).await,
            Ok(Ok(_))
        );
        ok
    }
}
