//! A watch channel (latest value + change notification) with deterministic wake-ups.
//!
//! tokio's `sync::watch` spreads waiters over eight `Notify` slots chosen by a
//! thread-local random number seeded from a process-wide counter, so the order in which
//! several waiters wake differs between two runs of the same simulation seed (madsim's
//! determinism check catches it). This one keeps one `Notify`, whose waiters wake in
//! the order they registered. Use it for every value that several tasks wait on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::{MappedRwLockReadGuard, RwLock, RwLockReadGuard};
use tokio::sync::Notify;

struct Shared<T> {
    /// The value and its version (bumped on every send).
    state: RwLock<(T, u64)>,
    notify: Notify,
    closed: AtomicBool,
}

/// The sending side; dropping it closes the channel.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// A receiving side; it remembers the last version it saw.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    seen: u64,
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Receiver {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

/// The sender was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("watch channel closed")]
pub struct Closed;

/// A channel holding `init`.
pub fn channel<T>(init: T) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: RwLock::new((init, 0)),
        notify: Notify::new(),
        closed: AtomicBool::new(false),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared, seen: 0 },
    )
}

impl<T> Sender<T> {
    /// Replaces the value, returning the old one, and wakes every waiter.
    pub fn send_replace(&self, value: T) -> T {
        let old = {
            let mut s = self.shared.state.write();
            s.1 += 1;
            std::mem::replace(&mut s.0, value)
        };
        self.shared.notify.notify_waiters();
        old
    }

    /// Changes the value in place and wakes every waiter.
    pub fn send_modify(&self, f: impl FnOnce(&mut T)) {
        {
            let mut s = self.shared.state.write();
            f(&mut s.0);
            s.1 += 1;
        }
        self.shared.notify.notify_waiters();
    }

    /// The current value.
    pub fn borrow(&self) -> MappedRwLockReadGuard<'_, T> {
        RwLockReadGuard::map(self.shared.state.read(), |s| &s.0)
    }

    /// A receiver that has seen the current value.
    pub fn subscribe(&self) -> Receiver<T> {
        let seen = self.shared.state.read().1;
        Receiver {
            shared: self.shared.clone(),
            seen,
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.notify.notify_waiters();
    }
}

impl<T> Receiver<T> {
    /// The current value.
    pub fn borrow(&self) -> MappedRwLockReadGuard<'_, T> {
        RwLockReadGuard::map(self.shared.state.read(), |s| &s.0)
    }

    /// The current value, marking it seen.
    pub fn borrow_and_update(&mut self) -> MappedRwLockReadGuard<'_, T> {
        let g = self.shared.state.read();
        self.seen = g.1;
        RwLockReadGuard::map(g, |s| &s.0)
    }

    /// Whether the value changed after the last one seen.
    pub fn has_changed(&self) -> bool {
        self.shared.state.read().1 != self.seen
    }

    /// Waits until the value changes after the last one seen.
    pub async fn changed(&mut self) -> Result<(), Closed> {
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            // Register before checking, so a send in between is not missed.
            notified.as_mut().enable();
            let version = self.shared.state.read().1;
            if version != self.seen {
                self.seen = version;
                return Ok(());
            }
            if self.shared.closed.load(Ordering::Acquire) {
                return Err(Closed);
            }
            notified.await;
        }
    }

    /// Waits until `pred` holds for the value; returns a copy of it.
    pub async fn wait_for(&mut self, mut pred: impl FnMut(&T) -> bool) -> Result<T, Closed>
    where
        T: Clone,
    {
        loop {
            {
                let g = self.shared.state.read();
                self.seen = g.1;
                if pred(&g.0) {
                    return Ok(g.0.clone());
                }
            }
            self.changed().await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn changes_wake_waiters_and_close_is_seen() {
        let (tx, mut rx) = channel(0u64);
        let mut rx2 = tx.subscribe();
        let waiter = tokio::spawn(async move { rx2.wait_for(|v| *v >= 3).await });
        for i in 1..=3 {
            tx.send_replace(i);
            tokio::task::yield_now().await;
        }
        assert_eq!(waiter.await.unwrap(), Ok(3));
        assert!(rx.changed().await.is_ok());
        assert_eq!(*rx.borrow_and_update(), 3);
        tx.send_modify(|v| *v += 1);
        assert!(rx.changed().await.is_ok());
        assert_eq!(*rx.borrow(), 4);
        drop(tx);
        assert_eq!(rx.changed().await, Err(Closed));
    }
}
