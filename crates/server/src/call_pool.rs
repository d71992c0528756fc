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
    queue: Mutex<Sender<Job>>,
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
        Ok(CallPool {
            queue: Mutex::new(sender),
        })
    }

    /// Runs `call` on a pool thread and waits for its result without
    /// blocking the async worker.
    pub(crate) async fn run<R: Send + 'static>(
        &self,
        call: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, PoolFailed> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            // A panic drops `reply`, which the waiting request sees as a
            // failed call; the thread itself lives on.
            if let Ok(result) = catch_unwind(AssertUnwindSafe(call)) {
                let _ = reply.send(result);
            }
        });
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
            .map_err(|_| PoolFailed)?;
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
