//! The async runtime openraft runs on.
//!
//! On real tokio this is openraft's own `TokioRuntime`. Under `--cfg madsim`, openraft's
//! runtime would panic ("no reactor running"), so `SimRuntime` routes spawn, sleep, timeout
//! and randomness to madsim, which makes controller runs replayable from a seed.

#[cfg(not(madsim))]
pub type StromRuntime = openraft::TokioRuntime;

#[cfg(madsim)]
pub type StromRuntime = sim::SimRuntime;

#[cfg(madsim)]
mod sim {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use openraft::{AsyncRuntime, OptionalSend, TokioInstant};

    #[derive(Debug, Default, PartialEq, Eq)]
    pub struct SimRuntime;

    /// A future that fails with `Elapsed` when its deadline passes first.
    pub struct Timeout<T> {
        future: Pin<Box<T>>,
        sleep: Pin<Box<madsim::time::Sleep>>,
    }

    impl<R, T: Future<Output = R>> Future for Timeout<T> {
        type Output = Result<R, madsim::time::error::Elapsed>;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            if let Poll::Ready(v) = self.future.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(madsim::time::error::Elapsed)),
                Poll::Pending => Poll::Pending,
            }
        }
    }

    impl AsyncRuntime for SimRuntime {
        type JoinError = madsim::task::JoinError;
        type JoinHandle<T: OptionalSend + 'static> = madsim::task::JoinHandle<T>;
        type Sleep = madsim::time::Sleep;
        type Instant = TokioInstant;
        type TimeoutError = madsim::time::error::Elapsed;
        type Timeout<R, T: Future<Output = R> + OptionalSend> = Timeout<T>;
        type ThreadLocalRng = madsim::rand::GlobalRng;
        type OneshotSender<T: OptionalSend> = openraft::async_runtime::TokioOneShotSender<T>;
        type OneshotReceiver<T: OptionalSend> = tokio::sync::oneshot::Receiver<T>;
        type OneshotReceiverError = tokio::sync::oneshot::error::RecvError;

        fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
        where
            T: Future + OptionalSend + 'static,
            T::Output: OptionalSend + 'static,
        {
            madsim::task::spawn(future)
        }

        fn sleep(duration: Duration) -> Self::Sleep {
            madsim::time::sleep(duration)
        }

        fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
            madsim::time::sleep_until(deadline.into_std())
        }

        fn timeout<R, F: Future<Output = R> + OptionalSend>(
            duration: Duration,
            future: F,
        ) -> Self::Timeout<R, F> {
            Timeout {
                future: Box::pin(future),
                sleep: Box::pin(madsim::time::sleep(duration)),
            }
        }

        fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
            deadline: Self::Instant,
            future: F,
        ) -> Self::Timeout<R, F> {
            Timeout {
                future: Box::pin(future),
                sleep: Box::pin(madsim::time::sleep_until(deadline.into_std())),
            }
        }

        fn is_panic(join_error: &Self::JoinError) -> bool {
            join_error.is_panic()
        }

        fn thread_rng() -> Self::ThreadLocalRng {
            madsim::rand::thread_rng()
        }

        fn oneshot<T>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>)
        where
            T: OptionalSend,
        {
            let (tx, rx) = tokio::sync::oneshot::channel();
            (openraft::async_runtime::TokioOneShotSender(tx), rx)
        }
    }
}
