//! The password queue: a few threads of low CPU priority that hash and verify passwords,
//! each in a work area it keeps, fed by a bounded queue.
//!
//! - A full queue answers 429 at once instead of making every later sign-in wait behind
//!   it (a flood of abandoned attempts once made the owner's sign-in take 20 seconds).
//! - One account holds at most half of the queue: a flood of guesses at one account
//!   cannot fill it and lock everyone else out of signing in.
//! - A job whose client has gone is skipped before any hashing.
//! - The threads run at the lowest priority, so a flood of sign-ins takes only the CPU
//!   that the key path leaves over; each thread reuses one argon2 work area, so memory
//!   stays at `threads x m_cost` however many sign-ins come.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::oneshot;

use crate::auth::password::{Hasher, Workspace};
use crate::error::{Backoff, Error, Result, Throttle};

type Job = Box<dyn FnOnce(&Hasher, &mut Workspace) + Send>;

struct Queue {
    jobs: Mutex<Jobs>,
    ready: Condvar,
}

struct Jobs {
    waiting: VecDeque<(Option<String>, Job)>,
    /// Waiting checks per account, for those that name one.
    per_account: HashMap<String, usize>,
    closed: bool,
}

impl Jobs {
    fn pop(&mut self) -> Option<Job> {
        let (account, job) = self.waiting.pop_front()?;
        if let Some(a) = account
            && let Some(n) = self.per_account.get_mut(&a)
        {
            *n -= 1;
            if *n == 0 {
                self.per_account.remove(&a);
            }
        }
        Some(job)
    }
}

pub struct PasswordQueue {
    queue: Arc<Queue>,
    capacity: usize,
    /// Checks that may wait for one account at a time: half the capacity.
    per_account: usize,
    /// Threads that started; with none, every job would wait forever.
    threads: usize,
}

/// The nice value of the hashing threads: the lowest priority there is.
const NICE: i32 = 19;

impl PasswordQueue {
    /// Starts `threads` hashing threads with room for `capacity` waiting jobs.
    pub fn new(hasher: Hasher, threads: usize, capacity: usize) -> PasswordQueue {
        let queue = Arc::new(Queue {
            jobs: Mutex::new(Jobs {
                waiting: VecDeque::new(),
                per_account: HashMap::new(),
                closed: false,
            }),
            ready: Condvar::new(),
        });
        let hasher = Arc::new(hasher);
        let mut started = 0;
        for i in 0..threads.max(1) {
            let (queue, hasher) = (Arc::clone(&queue), Arc::clone(&hasher));
            let spawned = std::thread::Builder::new()
                .name(format!("keygate-password-{i}"))
                .spawn(move || work(&queue, &hasher));
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "cannot start a password thread"),
            }
        }
        PasswordQueue {
            queue,
            capacity: capacity.max(1),
            per_account: (capacity / 2).max(1),
            threads: started,
        }
    }

    /// Runs `f` on a hashing thread. 429 `sign_in_busy` at once when the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Hasher, &mut Workspace) -> T + Send + 'static,
    ) -> Result<T> {
        self.run_for(None, f).await
    }

    /// `run` for a check on `account`'s password: 429 `sign_in_busy` at once also when
    /// half the queue already waits for that account.
    pub async fn run_for<T: Send + 'static>(
        &self,
        account: Option<&str>,
        f: impl FnOnce(&Hasher, &mut Workspace) -> T + Send + 'static,
    ) -> Result<T> {
        if self.threads == 0 {
            return Err(Error::internal("no password thread is running"));
        }
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |hasher, ws| {
            // The request was dropped (its client hung up): no work for nobody.
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(f(hasher, ws));
        });
        {
            let mut jobs = self.queue.jobs.lock().unwrap_or_else(|p| p.into_inner());
            let crowded = account.is_some_and(|a| {
                jobs.per_account
                    .get(a)
                    .is_some_and(|&n| n >= self.per_account)
            });
            if jobs.waiting.len() >= self.capacity || crowded {
                return Err(Error::Throttled(
                    Throttle::Busy,
                    Backoff::one_second(self.capacity as u64),
                ));
            }
            if let Some(a) = account {
                *jobs.per_account.entry(a.to_owned()).or_default() += 1;
            }
            jobs.waiting.push_back((account.map(str::to_owned), job));
        }
        self.queue.ready.notify_one();
        rx.await
            .map_err(|_| Error::internal("a password thread stopped"))
    }

    /// Jobs waiting for a thread (for tests and metrics).
    pub fn waiting(&self) -> usize {
        let jobs = self.queue.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.waiting.len()
    }
}

impl Drop for PasswordQueue {
    fn drop(&mut self) {
        let mut jobs = self.queue.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.closed = true;
        drop(jobs);
        self.queue.ready.notify_all();
    }
}

fn work(queue: &Queue, hasher: &Hasher) {
    lower_priority();
    let mut ws = Workspace::default();
    loop {
        let job = {
            let mut jobs = queue.jobs.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(job) = jobs.pop() {
                    break job;
                }
                if jobs.closed {
                    return;
                }
                jobs = queue.ready.wait(jobs).unwrap_or_else(|p| p.into_inner());
            }
        };
        // A job that panics drops its answer (its caller gets an error); the thread
        // goes on with the next one.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(hasher, &mut ws)));
        if ran.is_err() {
            tracing::error!("a password job panicked");
            ws = Workspace::default();
        }
    }
}

/// Gives this thread the lowest CPU priority (Linux schedules threads by their own nice
/// value). Best effort: lowering one's own priority is always allowed, and a platform
/// that refuses just runs the thread at the normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), NICE) {
            tracing::debug!(error = %e, "cannot lower the password thread's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_a_dropped_job_is_skipped() {
        let q = PasswordQueue::new(Hasher::new(8), 1, 2);
        // Hold the one thread until released.
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let busy = q.run(move |_, _| {
            let _ = hold_rx.recv();
        });
        tokio::pin!(busy);
        // Let the thread take the blocking job.
        tokio::select! {
            _ = &mut busy => panic!("the job cannot finish while held"),
            () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
        }
        assert_eq!(q.waiting(), 0, "the thread holds the first job");
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Two fill the queue; the second is abandoned by its caller.
        let second = q.run(|_, _| 2);
        tokio::pin!(second);
        let r = {
            let ran = Arc::clone(&ran);
            let abandoned = q.run(move |_, _| ran.store(true, std::sync::atomic::Ordering::SeqCst));
            tokio::pin!(abandoned);
            tokio::select! {
                _ = &mut abandoned => panic!("queued behind a held job"),
                _ = &mut second => panic!("queued behind a held job"),
                () = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
            }
            assert_eq!(q.waiting(), 2);
            q.run(|_, _| 3).await
        };
        assert!(
            matches!(r, Err(Error::Throttled(Throttle::Busy, _))),
            "{r:?}"
        );
        hold_tx.send(()).unwrap();
        busy.await.unwrap();
        assert_eq!(second.await.unwrap(), 2);
        // Jobs run in order: once a later one is done, the abandoned one had its turn.
        q.run(|_, _| ()).await.unwrap();
        assert!(
            !ran.load(std::sync::atomic::Ordering::SeqCst),
            "a job whose caller went away is not run"
        );
    }

    #[tokio::test]
    async fn one_account_holds_at_most_its_share_of_the_queue() {
        const PER_ACCOUNT: usize = 4;
        let q = PasswordQueue::new(Hasher::new(8), 1, 2 * PER_ACCOUNT);
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let busy = q.run(move |_, _| {
            let _ = hold_rx.recv();
        });
        tokio::pin!(busy);
        tokio::select! {
            _ = &mut busy => panic!("the job cannot finish while held"),
            () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
        }
        let mut waiting = Vec::new();
        for _ in 0..PER_ACCOUNT {
            waiting.push(Box::pin(q.run_for(Some("ada@example.com"), |_, _| 1)));
        }
        for w in &mut waiting {
            tokio::select! {
                _ = w => panic!("queued behind a held job"),
                () = tokio::time::sleep(std::time::Duration::from_millis(10)) => {}
            }
        }
        assert_eq!(q.waiting(), PER_ACCOUNT);
        let refused = q.run_for(Some("ada@example.com"), |_, _| 1).await;
        assert!(
            matches!(refused, Err(Error::Throttled(Throttle::Busy, _))),
            "{refused:?}"
        );
        // Another account, and work for no account, still find room.
        let other = q.run_for(Some("bob@example.com"), |_, _| 2);
        tokio::pin!(other);
        tokio::select! {
            _ = &mut other => panic!("queued behind a held job"),
            () = tokio::time::sleep(std::time::Duration::from_millis(10)) => {}
        }
        assert_eq!(q.waiting(), PER_ACCOUNT + 1);
        hold_tx.send(()).unwrap();
        busy.await.unwrap();
        for w in waiting {
            assert_eq!(w.await.unwrap(), 1);
        }
        assert_eq!(other.await.unwrap(), 2);
        // Once they ran, the account may queue again.
        assert_eq!(
            q.run_for(Some("ada@example.com"), |_, _| 3).await.unwrap(),
            3
        );
    }
}
