//! The threads that run guest calls for the HTTP routes.
//!
//! A call is CPU work that may last up to its contract's deadline, so it
//! must not run on an I/O worker (a slow guest would stall every
//! connection, `/healthz` included). A fixed set of threads taking calls
//! from one queue keeps them off the I/O workers while costing less per
//! call than spawning onto tokio's blocking pool, which grows a thread per
//! concurrent call and hands each call over separately (measured in
//! `benches/http.rs`; see BENCHMARKS.md).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads taking calls from one queue, first come first
/// served. Dropping the pool closes the queue; each thread ends after the
/// call it is running.
pub(crate) struct CallPool {
    queue: Sender<Job>,
}

/// The pool could not take or finish a call: it has shut down, or the call
/// panicked.
#[derive(Debug)]
pub(crate) struct PoolFailed;

impl CallPool {
    /// Starts `threads` threads (at least one).
    pub(crate) fn new(threads: usize) -> std::io::Result<Self> {
        let (sender, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads.max(1) {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("mote-call-{i}"))
                .spawn(move || work(&receiver))?;
        }
        Ok(CallPool { queue: sender })
    }

    /// Runs `call` on a pool thread and waits for its result without
    /// blocking the async worker. If nobody waits any more when a thread
    /// gets to it (the request's deadline passed, or the client left while
    /// it queued), the call is dropped unrun: under overload, stale work is
    /// shed instead of delaying the calls behind it.
    pub(crate) async fn run<R: Send + 'static>(
        &self,
        call: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, PoolFailed> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            if reply.is_closed() {
                return;
            }
            // A panic drops `reply`, which the waiting request sees as a
            // failed call; the thread itself lives on.
            if let Ok(result) = catch_unwind(AssertUnwindSafe(call)) {
                let _ = reply.send(result);
            }
        });
        self.queue.send(job).map_err(|_| PoolFailed)?;
        answer.await.map_err(|_| PoolFailed)
    }
}

/// One pool thread: takes the next call until the queue closes.
fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        let next = receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv();
        match next {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[tokio::test]
    async fn runs_calls_and_survives_a_panicking_one() {
        let pool = CallPool::new(1).unwrap();
        assert_eq!(pool.run(|| 2 + 2).await.unwrap(), 4);
        let panicked = pool.run(|| -> u32 { panic!("a bug in a call") }).await;
        assert!(panicked.is_err());
        // The single thread is still there to take the next call.
        assert_eq!(pool.run(|| "after").await.unwrap(), "after");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_nobody_waits_for_any_more_is_dropped_unrun() {
        let pool = Arc::new(CallPool::new(1).unwrap());
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started, busy) = std::sync::mpsc::channel::<()>();
        let blocker = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                pool.run(move || {
                    let _ = started.send(());
                    let _ = hold.recv();
                })
                .await
            })
        };
        busy.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the blocker started");
        // Queued behind the blocker, then abandoned.
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let abandoned = pool.run(move || flag.store(true, std::sync::atomic::Ordering::SeqCst));
        let waited = tokio::time::timeout(std::time::Duration::from_millis(20), abandoned).await;
        assert!(waited.is_err(), "the queued call cannot have run yet");
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        // The next call runs after the abandoned one was taken off the queue.
        assert_eq!(pool.run(|| 1).await.unwrap(), 1);
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn calls_run_side_by_side_on_several_threads() {
        let pool = Arc::new(CallPool::new(2).unwrap());
        let barrier = Arc::new(std::sync::Barrier::new(2));
        // Both calls pass the barrier only if two threads run them at once.
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                let pool = Arc::clone(&pool);
                tokio::spawn(async move { pool.run(move || barrier.wait().is_leader()).await })
            })
            .collect();
        let mut leaders = 0;
        for handle in handles {
            let answer = tokio::time::timeout(std::time::Duration::from_secs(10), handle)
                .await
                .expect("the two calls ran side by side");
            leaders += usize::from(answer.unwrap().unwrap());
        }
        assert_eq!(leaders, 1);
    }
}
