//! Waiting for a batch of async requests, like the kernel's `crypto_wait_req`
//! and `struct completion`: the waiter sleeps once and is woken once, by the
//! last completion, instead of on every request (which, measured on 2 CPUs,
//! cost more than the cipher work itself).

use std::sync::{Condvar, Mutex};

/// Counts outstanding requests; `wait` returns when all have completed.
pub struct BatchWait<T> {
    state: Mutex<State<T>>,
    all_done: Condvar,
}

struct State<T> {
    outstanding: usize,
    results: Vec<T>,
}

impl<T> BatchWait<T> {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                outstanding: 0,
                results: Vec::new(),
            }),
            all_done: Condvar::new(),
        }
    }

    /// Records one more request before it is submitted.
    pub fn add(&self, n: usize) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .outstanding += n;
    }

    /// Called from a completion callback with whatever the waiter should get back.
    pub fn complete(&self, result: T) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.results.push(result);
        s.outstanding = s.outstanding.saturating_sub(1);
        if s.outstanding == 0 {
            self.all_done.notify_all();
        }
    }

    /// Blocks until every added request has completed; returns their results
    /// in completion order.
    pub fn wait(&self) -> Vec<T> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while s.outstanding > 0 {
            s = self.all_done.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        std::mem::take(&mut s.results)
    }
}

impl<T> Default for BatchWait<T> {
    fn default() -> Self {
        Self::new()
    }
}
