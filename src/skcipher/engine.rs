//! The async engine: one worker thread per CPU pulling jobs from a shared queue,
//! so requests from any number of submitters spread over all CPUs. It starts on
//! first use and lives for the process. The skcipher and aead layers both
//! submit through [`submit`], as the kernel's crypto API queues both alike.

use std::sync::OnceLock;
use std::thread;

use crossbeam_channel::{unbounded, Sender};

pub type Job = Box<dyn FnOnce() + Send + 'static>;

struct Engine {
    tx: Sender<Job>,
    workers: usize,
}

static ENGINE: OnceLock<Engine> = OnceLock::new();

fn engine() -> &'static Engine {
    ENGINE.get_or_init(|| {
        let workers = thread::available_parallelism().map_or(1, |n| n.get());
        let (tx, rx) = unbounded::<Job>();
        for i in 0..workers {
            let rx = rx.clone();
            let spawned = thread::Builder::new()
                .name(format!("skcipher-{i}"))
                .spawn(move || {
                    // A job that panics must not take the worker down: the job's own
                    // drop guard reports the failure to its callback.
                    while let Ok(job) = rx.recv() {
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                });
            if let Err(e) = spawned {
                log::error!("cannot start skcipher worker {i}: {e}");
            }
        }
        Engine { tx, workers }
    })
}

/// Queues `job`. If the queue is gone (cannot happen while the process lives),
/// the job is dropped, and its drop guard reports cancellation.
pub fn spawn(job: Job) {
    let _ = engine().tx.send(job);
}

/// How many worker threads serve async requests.
pub fn workers() -> usize {
    engine().workers
}

/// Runs `work` on `req` on a worker, then `done` exactly once with the
/// request and the outcome: also when `work` panics, or when the job is
/// dropped without running (the queue gone), both reported as `cancelled()`.
/// One allocation per request: the job and its callback travel together.
pub(crate) fn submit<R, E, W, D>(req: R, work: W, done: D, cancelled: fn() -> E)
where
    R: Send + 'static,
    E: 'static,
    W: FnOnce(&mut R) -> Result<(), E> + Send + 'static,
    D: FnOnce(R, Result<(), E>) + Send + 'static,
{
    let mut job = Once {
        req: Some(req),
        work: Some(work),
        done: Some(done),
        cancelled,
    };
    spawn(Box::new(move || job.run()));
}

struct Once<R, E, W, D>
where
    W: FnOnce(&mut R) -> Result<(), E>,
    D: FnOnce(R, Result<(), E>),
{
    req: Option<R>,
    work: Option<W>,
    done: Option<D>,
    cancelled: fn() -> E,
}

impl<R, E, W, D> Once<R, E, W, D>
where
    W: FnOnce(&mut R) -> Result<(), E>,
    D: FnOnce(R, Result<(), E>),
{
    fn run(&mut self) {
        let (Some(mut req), Some(work)) = (self.req.take(), self.work.take()) else {
            return;
        };
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut req)))
            .unwrap_or_else(|_| Err((self.cancelled)()));
        if let Some(done) = self.done.take() {
            done(req, res);
        }
    }
}

impl<R, E, W, D> Drop for Once<R, E, W, D>
where
    W: FnOnce(&mut R) -> Result<(), E>,
    D: FnOnce(R, Result<(), E>),
{
    /// A job dropped without running still completes, as cancelled.
    fn drop(&mut self) {
        if let (Some(req), Some(done)) = (self.req.take(), self.done.take()) {
            done(req, Err((self.cancelled)()));
        }
    }
}
