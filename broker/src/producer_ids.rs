//! Producer ids for InitProducerId: handed out from blocks the controller quorum
//! allocates (a `ProducerIdsBlock` record each), so ids stay unique across brokers and
//! restarts.

use std::time::Duration;

use strom_proto::controller::AllocateProducerIdsRequest;
use tokio::sync::Mutex;

use crate::controller_client::ControllerClient;

#[derive(Default)]
struct Block {
    next: i64,
    end: i64,
}

#[derive(Default)]
pub struct ProducerIdManager {
    block: Mutex<Block>,
}

impl ProducerIdManager {
    /// The next unused producer id (asks the quorum for a new block when needed).
    pub async fn next(
        &self,
        ctl: &ControllerClient,
        broker_id: i32,
        broker_epoch: i64,
    ) -> Result<i64, i16> {
        let mut b = self.block.lock().await;
        if b.next >= b.end {
            let req = AllocateProducerIdsRequest {
                broker_id,
                broker_epoch,
            };
            let resp = ctl
                .call(Duration::from_secs(10), |mut c| async move {
                    c.allocate_producer_ids(req).await
                })
                .await
                .map_err(|s| crate::error::controller_status_code(&s))?;
            if resp.error_code != 0 {
                return Err(resp.error_code as i16);
            }
            b.next = resp.first_producer_id;
            b.end = resp.first_producer_id + resp.count as i64;
        }
        let id = b.next;
        b.next += 1;
        Ok(id)
    }
}
