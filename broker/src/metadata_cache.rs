//! The broker's copy of the metadata image, following the controller quorum's log.
//! Kafka `Metadata` answers and every routing decision read it; only the metadata
//! follower (in `node.rs`) replaces it, after the replica manager has acted on it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use strom_common::watch;
use strom_controller::metadata::MetadataImage;

pub struct MetadataCache {
    image: RwLock<Arc<MetadataImage>>,
    applied: watch::Sender<u64>,
    observer: RwLock<Option<ImageObserver>>,
    /// Brokers this node saw go from unfenced to fenced, and when. See `listed_brokers`.
    fenced_at: RwLock<BTreeMap<i32, tokio::time::Instant>>,
    /// How long a fenced broker stays in the Metadata broker list: `broker.session.timeout.ms`.
    listing_grace: RwLock<Duration>,
}

/// The default of `broker.session.timeout.ms`.
const DEFAULT_LISTING_GRACE: Duration = Duration::from_millis(9000);

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
            fenced_at: RwLock::new(BTreeMap::new()),
            listing_grace: RwLock::new(DEFAULT_LISTING_GRACE),
        }
    }

    /// Sets how long a fenced broker stays listed (`broker.session.timeout.ms`).
    pub fn set_listing_grace(&self, grace: Duration) {
        *self.listing_grace.write() = grace;
    }

    /// The brokers a Metadata or DescribeCluster answer lists: the unfenced ones, and
    /// those fenced less than `broker.session.timeout.ms` ago (while registered).
    ///
    /// strom fences a broker as soon as its process is gone (its leaderships move at
    /// once), where Kafka waits for the session timeout; during that time Kafka still lists
    /// the broker. Clients rely on that: librdkafka (2.10 and later) tears down the handle
    /// of a broker missing from a Metadata answer, and a transactional producer whose
    /// group coordinator was that broker then waits forever in
    /// `send_offsets_to_transaction` (confluentinc/librdkafka#5511). Listing the broker
    /// for the session timeout, as Kafka does, keeps a restarted node's clients going;
    /// partitions never name a fenced broker as leader either way.
    pub fn listed_brokers(&self, img: &MetadataImage) -> Vec<i32> {
        let grace = *self.listing_grace.read();
        let fenced_at = self.fenced_at.read();
        let now = strom_common::clock::monotonic();
        img.brokers
            .values()
            .filter(|b| {
                !b.fenced
                    || fenced_at
                        .get(&b.broker_id)
                        .is_some_and(|&t| now.duration_since(t) < grace)
            })
            .map(|b| b.broker_id)
            .collect()
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
        {
            let old = self.image.read().clone();
            let mut fenced_at = self.fenced_at.write();
            let now = strom_common::clock::monotonic();
            fenced_at.retain(|id, _| image.brokers.get(id).is_some_and(|b| b.fenced));
            for b in image.brokers.values().filter(|b| b.fenced) {
                // Fenced now and unfenced in the image before (the same or an earlier
                // incarnation: a restart re-registers fenced).
                if old.brokers.get(&b.broker_id).is_some_and(|o| !o.fenced) {
                    fenced_at.entry(b.broker_id).or_insert(now);
                }
            }
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

#[cfg(test)]
mod tests {
    use strom_controller::metadata::BrokerRegistration;

    use super::*;

    fn image(fenced: &[(i32, bool)]) -> Arc<MetadataImage> {
        let mut img = MetadataImage::default();
        for &(id, fenced) in fenced {
            img.brokers.insert(
                id,
                BrokerRegistration {
                    broker_id: id,
                    broker_epoch: 1,
                    incarnation_id: String::new(),
                    endpoints: vec![],
                    rack: String::new(),
                    fenced,
                    in_controlled_shutdown: false,
                },
            );
        }
        Arc::new(img)
    }

    #[tokio::test]
    async fn a_broker_fenced_here_stays_listed_for_the_grace_and_a_new_one_waits_to_be_unfenced() {
        let cache = MetadataCache::new();
        cache.set_listing_grace(Duration::from_secs(3600));
        cache.publish(image(&[(1, false), (2, false)]), 1);
        assert_eq!(cache.listed_brokers(&cache.image()), vec![1, 2]);
        // 2 is fenced (its process died), 3 registers (fenced until caught up).
        cache.publish(image(&[(1, false), (2, true), (3, true)]), 2);
        assert_eq!(cache.listed_brokers(&cache.image()), vec![1, 2]);
        // Past the grace 2 is gone; unfenced, 3 is listed.
        cache.set_listing_grace(Duration::ZERO);
        cache.publish(image(&[(1, false), (2, true), (3, false)]), 3);
        assert_eq!(cache.listed_brokers(&cache.image()), vec![1, 3]);
        // A node that starts with 2 already fenced never saw it live: not listed.
        let fresh = MetadataCache::new();
        fresh.publish(image(&[(1, false), (2, true)]), 3);
        assert_eq!(fresh.listed_brokers(&fresh.image()), vec![1]);
        // Unfenced and fenced again: the grace counts from the new fence.
        cache.set_listing_grace(Duration::from_secs(3600));
        cache.publish(image(&[(1, false), (2, false), (3, false)]), 4);
        cache.publish(image(&[(1, false), (2, true), (3, false)]), 5);
        assert_eq!(cache.listed_brokers(&cache.image()), vec![1, 2, 3]);
        // Unregistered: gone at once.
        cache.publish(image(&[(1, false), (3, false)]), 6);
        assert_eq!(cache.listed_brokers(&cache.image()), vec![1, 3]);
    }
}
