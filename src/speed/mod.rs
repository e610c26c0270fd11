//! `cipherfs speed`: throughput of each algorithm on each backend, single-threaded
//! and through the async API on every CPU, like `gocryptfs -speed` but across
//! backends. Numbers only; it asserts nothing.

mod aead;

use crate::cmd::outln;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::skcipher::{
    async_workers, Backend, BatchWait, Direction, Skcipher, SkcipherError, SkcipherRequest, MAX_IV,
};

/// Algorithms measured by default, with the key length cipherfs would use.
pub const DEFAULT_CASES: &[(&str, usize)] = &[
    ("xts(aes)", 64),
    ("xts(aes)", 32),
    ("essiv(cbc(aes),sha256)", 32),
    ("cbc(aes)", 32),
    ("gcm(aes)", 32),
];

pub struct Options {
    pub cases: Vec<(String, usize)>,
    pub backends: Vec<Backend>,
    pub size: usize,
    pub duration: Duration,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub alg: String,
    /// As `--alg NAME:KEYBYTES` takes it.
    pub key_bytes: usize,
    pub backend: Backend,
    /// Bytes per second: encrypt, decrypt (1 thread); encrypt, decrypt (async, all CPUs).
    pub rates: [f64; 4],
    pub driver: String,
}

pub(crate) fn test_key(len: usize) -> Vec<u8> {
    // Distinct halves, so XTS accepts it; the value does not affect speed.
    (0..len)
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(11))
        .collect()
}

/// The sector number, little-endian, in an IV of the algorithm's size
/// (HCTR2's is 32 bytes).
fn iv_for(sector: u64, ivsize: usize) -> [u8; MAX_IV] {
    let mut iv = [0u8; MAX_IV];
    if ivsize > 0 {
        iv[..8].copy_from_slice(&sector.to_le_bytes());
    }
    iv
}

fn sync_rate(
    tfm: &Skcipher,
    dir: Direction,
    size: usize,
    duration: Duration,
) -> Result<f64, SkcipherError> {
    let mut buf = vec![0x5au8; size];
    let ivsize = tfm.ivsize();
    timed(size, duration, |n| {
        let iv = iv_for(n, ivsize);
        match dir {
            Direction::Encrypt => tfm.encrypt_in_place(&iv[..ivsize], &mut buf),
            Direction::Decrypt => tfm.decrypt_in_place(&iv[..ivsize], &mut buf),
        }
    })
}

/// Bytes per second of `one` (request number n of `size` bytes) run on
/// this thread, 64 at a time, until `duration` has passed. Shared by the
/// skcipher and AEAD measurements.
pub(crate) fn timed<E>(
    size: usize,
    duration: Duration,
    mut one: impl FnMut(u64) -> Result<(), E>,
) -> Result<f64, E> {
    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < duration {
        for _ in 0..64 {
            one(done)?;
            done += 1;
        }
    }
    Ok(done as f64 * size as f64 / start.elapsed().as_secs_f64())
}

type Done = (SkcipherRequest<u64>, Result<(), SkcipherError>);

fn submit_batch(
    tfm: &Arc<Skcipher>,
    dir: Direction,
    bufs: Vec<Vec<u8>>,
    first: u64,
    wait: &Arc<BatchWait<Done>>,
) {
    let ivsize = tfm.ivsize();
    wait.add(bufs.len());
    for (i, buf) in bufs.into_iter().enumerate() {
        let sector = first + i as u64;
        let mut req = SkcipherRequest::new(tfm, sector);
        req.set_crypt(None, buf, &iv_for(sector, ivsize)[..ivsize]);
        let w = Arc::clone(wait);
        req.submit(dir, move |r, res| w.complete((r, res)));
    }
}

/// Async throughput the way the filesystem uses it: a large write cut into
/// sector requests, all submitted at once and waited for as one batch, with a
/// second batch in flight so workers never idle. (A feeder thread resubmitting
/// one request per completion measures wakeups instead: on 2 CPUs it ran at
/// half the 1-thread rate.)
fn async_rate(
    tfm: &Arc<Skcipher>,
    dir: Direction,
    size: usize,
    duration: Duration,
) -> Result<f64, SkcipherError> {
    let batch = 64 * async_workers();
    let waits = [
        Arc::new(BatchWait::<Done>::new()),
        Arc::new(BatchWait::<Done>::new()),
    ];
    let start = Instant::now();
    let mut next = 0u64;
    for w in &waits {
        submit_batch(tfm, dir, vec![vec![0x5a; size]; batch], next, w);
        next += batch as u64;
    }
    let mut completed = 0u64;
    let mut turn = 0;
    loop {
        let done = waits[turn].wait();
        let mut bufs = Vec::with_capacity(done.len());
        for (req, res) in done {
            res?;
            bufs.push(req.into_parts().0);
        }
        completed += bufs.len() as u64;
        if start.elapsed() >= duration {
            waits[1 - turn].wait();
            completed += batch as u64;
            break;
        }
        submit_batch(tfm, dir, bufs, next, &waits[turn]);
        next += batch as u64;
        turn = 1 - turn;
    }
    Ok(completed as f64 * size as f64 / start.elapsed().as_secs_f64())
}

/// Measures one algorithm (an skcipher or an AEAD) on one backend.
pub fn measure(
    alg: &str,
    key_len: usize,
    backend: Backend,
    size: usize,
    duration: Duration,
) -> Result<Row, String> {
    if crate::aead::lookup(alg).is_ok() {
        return aead::measure(alg, key_len, backend, size, duration).map_err(|e| e.to_string());
    }
    measure_skcipher(alg, key_len, backend, size, duration).map_err(|e| e.to_string())
}

fn measure_skcipher(
    alg: &str,
    key_len: usize,
    backend: Backend,
    size: usize,
    duration: Duration,
) -> Result<Row, SkcipherError> {
    let tfm = Skcipher::alloc(alg, backend)?;
    tfm.setkey(&test_key(key_len))?;
    let rates = [
        sync_rate(&tfm, Direction::Encrypt, size, duration)?,
        sync_rate(&tfm, Direction::Decrypt, size, duration)?,
        async_rate(&tfm, Direction::Encrypt, size, duration)?,
        async_rate(&tfm, Direction::Decrypt, size, duration)?,
    ];
    Ok(Row {
        alg: alg.to_string(),
        key_bytes: key_len,
        backend,
        rates,
        driver: tfm.driver().unwrap_or_default(),
    })
}

fn gbps(r: f64) -> String {
    format!("{:.2} GB/s", r / 1e9)
}

/// Runs the measurements and prints one table; returns the rows for callers
/// that want them (scripts compare them with OpenSSL).
pub fn run(opts: &Options) -> Vec<Row> {
    let cpus = async_workers();
    outln!(
        "cipherfs speed: {}-byte requests, {:.1} s per figure; async = 2 batches of {} requests in flight on {cpus} worker threads ({cpus} CPUs)",
        opts.size,
        opts.duration.as_secs_f64(),
        64 * cpus
    );
    outln!(
        "{:<24} {:>9} {:<6} {:>12} {:>12} {:>14} {:>14}  driver",
        "algorithm",
        "key bytes",
        "backend",
        "enc 1 thr",
        "dec 1 thr",
        "enc async",
        "dec async"
    );
    let mut rows = Vec::new();
    for &backend in &opts.backends {
        for (alg, key_len) in &opts.cases {
            match measure(alg, *key_len, backend, opts.size, opts.duration) {
                Ok(row) => {
                    outln!(
                        "{:<24} {:>9} {:<6} {:>12} {:>12} {:>14} {:>14}  {}",
                        row.alg,
                        row.key_bytes,
                        backend.name(),
                        gbps(row.rates[0]),
                        gbps(row.rates[1]),
                        gbps(row.rates[2]),
                        gbps(row.rates[3]),
                        row.driver
                    );
                    rows.push(row);
                }
                Err(e) => outln!(
                    "{:<24} {:>9} {:<6} unavailable: {e}",
                    alg,
                    key_len,
                    backend.name()
                ),
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every algorithm in both tables measures, whatever its IV size.
    #[test]
    fn every_algorithm_measures_on_soft() {
        let skciphers = crate::skcipher::ALGORITHMS
            .iter()
            .map(|a| (a.name, a.key_sizes));
        let aeads = crate::aead::AEAD_ALGORITHMS
            .iter()
            .map(|a| (a.name, a.key_sizes));
        for (name, keys) in skciphers.chain(aeads) {
            let key = *keys.last().unwrap();
            let row = measure(name, key, Backend::Soft, 4096, Duration::from_millis(1))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(row.rates.iter().all(|r| *r > 0.0), "{name}");
        }
    }
}
