//! The broker's client of the controller quorum: one lazily connected gRPC channel per
//! voter; a call that finds no leader (or an unreachable voter) tries the next voter
//! after a short pause, until its deadline.

use std::future::Future;
use std::time::Duration;

use strom_proto::controller::controller_client::ControllerClient as Grpc;
use tonic::transport::Channel;

pub struct ControllerClient {
    voters: Vec<(u64, Channel)>,
    next: parking_lot::Mutex<usize>,
}

impl ControllerClient {
    pub fn new(voters: &std::collections::BTreeMap<u64, String>) -> ControllerClient {
        let voters = voters
            .iter()
            .filter_map(|(id, addr)| {
                let ep = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).ok()?;
                Some((
                    *id,
                    ep.connect_timeout(Duration::from_secs(2)).connect_lazy(),
                ))
            })
            .collect();
        ControllerClient {
            voters,
            next: parking_lot::Mutex::new(0),
        }
    }

    /// Calls `f` on a voter, moving to the next voter on `Unavailable` or transport
    /// errors, until `deadline` passes.
    pub async fn call<T, F, Fut>(&self, deadline: Duration, f: F) -> Result<T, tonic::Status>
    where
        F: Fn(Grpc<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let start = tokio::time::Instant::now();
        let mut last = tonic::Status::unavailable("no controller voters configured");
        if self.voters.is_empty() {
            return Err(last);
        }
        let mut jumped = false;
        loop {
            let i = *self.next.lock() % self.voters.len();
            let client = Grpc::new(self.voters[i].1.clone())
                .max_decoding_message_size(256 << 20)
                .max_encoding_message_size(256 << 20);
            let left = deadline.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(last);
            }
            match tokio::time::timeout(left, f(client)).await {
                Ok(Ok(r)) => return Ok(r.into_inner()),
                Ok(Err(s))
                    if matches!(
                        s.code(),
                        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
                    ) =>
                {
                    // Go straight to the leader when the answer names it.
                    let hint = s
                        .message()
                        .split_once("leader=")
                        .and_then(|(_, l)| l.trim().parse::<u64>().ok())
                        .and_then(|l| self.voters.iter().position(|(id, _)| *id == l));
                    last = s;
                    // Follow one hint per pause: two voters with stale views must not
                    // bounce the call between them without waiting.
                    if let Some(i) = hint.filter(|_| !jumped) {
                        let mut n = self.next.lock();
                        if *n != i {
                            *n = i;
                            jumped = true;
                            continue;
                        }
                    }
                }
                Ok(Err(s)) => return Err(s),
                Err(_) => {
                    return Err(tonic::Status::deadline_exceeded(
                        "controller call timed out",
                    ))
                }
            }
            {
                let mut n = self.next.lock();
                *n = (*n + 1) % self.voters.len();
            }
            jumped = false;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
