//! The threads that run a flow's independent steps side by side.
//!
//! A wave of a flow has steps that do not depend on each other. The calling
//! thread runs the first and offers the others to a fixed set of step
//! threads; whatever no step thread has picked up by the time the caller is
//! free, the caller runs itself. So a wave never waits for a busy pool,
//! and no call ever starts an OS thread.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// A task of a wave.
pub(crate) type Task<T> = Box<dyn FnOnce() -> T + Send>;

/// A fixed set of threads taking offered tasks from one queue.
pub(crate) struct StepThreads {
    queue: Option<Mutex<Sender<Arc<dyn Offered>>>>,
}

impl StepThreads {
    /// Starts `threads` step threads; with 0, every task runs on the
    /// thread that offers it.
    pub(crate) fn start(threads: usize) -> std::io::Result<Self> {
        if threads == 0 {
            return Ok(StepThreads { queue: None });
        }
        let (sender, receiver) = channel::<Arc<dyn Offered>>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("mote-step-{i}"))
                .spawn(move || work(&receiver))?;
        }
        Ok(StepThreads {
            queue: Some(Mutex::new(sender)),
        })
    }

    /// Runs every task and returns their results in order; `None` for a
    /// task that panicked. The first task runs on this thread.
    pub(crate) fn run_all<T: Send + 'static>(&self, tasks: Vec<Task<T>>) -> Vec<Option<T>> {
        let mut tasks = tasks.into_iter();
        let Some(first) = tasks.next() else {
            return Vec::new();
        };
        let slots: Vec<Arc<Slot<T>>> = tasks.map(|task| Arc::new(Slot::new(task))).collect();
        if let Some(queue) = &self.queue {
            let queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            for slot in &slots {
                // A closed queue only means no thread will help: the
                // caller runs the task itself below.
                let _ = queue.send(Arc::clone(slot) as Arc<dyn Offered>);
            }
        }
        let mut results = vec![catch_unwind(AssertUnwindSafe(first)).ok()];
        for slot in slots {
            slot.claim_and_run();
            results.push(slot.wait());
        }
        results
    }
}

/// A task waiting for a thread, running, or done.
enum State<T> {
    Queued(Task<T>),
    Running,
    Done(Option<T>),
    Taken,
}

struct Slot<T> {
    state: Mutex<State<T>>,
    done: Condvar,
}

impl<T> Slot<T> {
    fn new(task: Task<T>) -> Self {
        Slot {
            state: Mutex::new(State::Queued(task)),
            done: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the task has run, then takes its result.
    fn wait(&self) -> Option<T> {
        let mut state = self.lock();
        loop {
            match std::mem::replace(&mut *state, State::Taken) {
                State::Done(result) => return result,
                other => *state = other,
            }
            state = self
                .done
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// What the step threads see of a slot, whatever its result type.
trait Offered: Send + Sync {
    /// Runs the task unless another thread already took it.
    fn claim_and_run(&self);
}

impl<T: Send> Offered for Slot<T> {
    fn claim_and_run(&self) {
        let task = {
            let mut state = self.lock();
            match std::mem::replace(&mut *state, State::Running) {
                State::Queued(task) => task,
                other => {
                    *state = other;
                    return;
                }
            }
        };
        let result = catch_unwind(AssertUnwindSafe(task)).ok();
        *self.lock() = State::Done(result);
        self.done.notify_all();
    }
}

/// One step thread: runs offered tasks until the queue closes.
fn work(receiver: &Mutex<Receiver<Arc<dyn Offered>>>) {
    loop {
        let next = receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv();
        match next {
            Ok(offered) => offered.claim_and_run(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::Barrier;
    use std::time::Duration;

    fn tasks(n: usize, each: impl Fn(usize) -> usize + Send + Sync + 'static) -> Vec<Task<usize>> {
        let each = Arc::new(each);
        (0..n)
            .map(|i| {
                let each = Arc::clone(&each);
                Box::new(move || each(i)) as Task<usize>
            })
            .collect()
    }

    #[test]
    fn results_come_back_in_order() {
        let threads = StepThreads::start(2).unwrap();
        let results = threads.run_all(tasks(5, |i| i * 10));
        assert_eq!(
            results,
            vec![Some(0), Some(10), Some(20), Some(30), Some(40)]
        );
    }

    #[test]
    fn with_no_threads_the_caller_runs_everything() {
        let threads = StepThreads::start(0).unwrap();
        let caller = std::thread::current().id();
        let results = threads.run_all(tasks(3, move |i| {
            assert_eq!(std::thread::current().id(), caller);
            i
        }));
        assert_eq!(results, vec![Some(0), Some(1), Some(2)]);
    }

    #[test]
    fn tasks_run_side_by_side_when_a_thread_is_free() {
        let threads = StepThreads::start(1).unwrap();
        // Both tasks pass the barrier only if two threads run them at once.
        let barrier = Arc::new(Barrier::new(2));
        let results = threads.run_all(tasks(2, move |i| {
            barrier.wait();
            i
        }));
        assert_eq!(results, vec![Some(0), Some(1)]);
    }

    #[test]
    fn the_caller_does_not_wait_for_busy_threads() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let threads = Arc::new(StepThreads::start(1).unwrap());
        // Keep the only step thread busy with the second task of a wave
        // whose first task waits until that has started.
        let started = Arc::new(AtomicBool::new(false));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Mutex::new(hold);
        let busy = {
            let threads = Arc::clone(&threads);
            let (first, second) = (Arc::clone(&started), Arc::clone(&started));
            std::thread::spawn(move || {
                threads.run_all(vec![
                    Box::new(move || {
                        while !first.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        0_usize
                    }) as Task<usize>,
                    Box::new(move || {
                        second.store(true, Ordering::SeqCst);
                        let _ = hold.lock().unwrap().recv();
                        1
                    }),
                ])
            })
        };
        while !started.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Both tasks of this wave run on the caller, promptly.
        let caller = std::thread::current().id();
        let results = threads.run_all(tasks(2, move |i| {
            assert_eq!(std::thread::current().id(), caller);
            i
        }));
        assert_eq!(results, vec![Some(0), Some(1)]);
        release.send(()).unwrap();
        assert_eq!(busy.join().unwrap(), vec![Some(0), Some(1)]);
    }

    #[test]
    fn a_panicking_task_gives_none_and_the_threads_live_on() {
        let threads = StepThreads::start(1).unwrap();
        let results = threads.run_all(tasks(3, |i| {
            assert!(i != 1, "task 1 fails");
            i
        }));
        assert_eq!(results, vec![Some(0), None, Some(2)]);
        assert_eq!(threads.run_all(tasks(2, |i| i)), vec![Some(0), Some(1)]);
    }
}
