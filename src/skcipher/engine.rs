//! The async engine: one worker thread per CPU pulling jobs from a shared queue,
//! so requests from any number of submitters spread over all CPUs. It starts on
//! first use and lives for the process.

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
