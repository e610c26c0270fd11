//! `cipherfs speed` for AEAD algorithms: sealing and opening a request of
//! `size` bytes with 16 bytes of associated data, on one thread and through
//! the async API on every CPU, as for the skcipher algorithms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{test_key, timed, Row};
use crate::aead::{Aead, AeadError, AeadRequest};
use crate::skcipher::{async_workers, Backend, BatchWait, Direction};

/// Associated data per request (a sector's would bind its number and file).
const AD: usize = 16;

/// A request's data: the associated data and the text, sealed once when
/// `dir` is decryption so that opening it succeeds.
fn sample(tfm: &Aead, dir: Direction, size: usize) -> Result<Vec<u8>, AeadError> {
    let mut data = vec![0x5a; AD + size];
    if dir == Direction::Decrypt {
        tfm.crypt(Direction::Encrypt, &[0; 12], AD, &mut data)?;
    }
    Ok(data)
}

fn sync_rate(
    tfm: &Aead,
    dir: Direction,
    size: usize,
    duration: Duration,
) -> Result<f64, AeadError> {
    let input = sample(tfm, dir, size)?;
    let mut data = Vec::with_capacity(input.len() + 16);
    timed(size, duration, |_| {
        data.clear();
        data.extend_from_slice(&input);
        tfm.crypt(dir, &[0; 12], AD, &mut data)
    })
}

type Done = (AeadRequest<()>, Result<(), AeadError>);

fn submit_batch(
    tfm: &Arc<Aead>,
    dir: Direction,
    input: &[u8],
    n: usize,
    wait: &Arc<BatchWait<Done>>,
) {
    wait.add(n);
    for _ in 0..n {
        let mut req = AeadRequest::new(tfm, ());
        // Room for the tag, so sealing does not reallocate and copy.
        let mut data = Vec::with_capacity(input.len() + 16);
        data.extend_from_slice(input);
        req.set_crypt(data, &[0; 12]);
        req.set_ad(AD);
        let w = Arc::clone(wait);
        req.submit(dir, move |r, res| w.complete((r, res)));
    }
}

/// Two batches of 64 requests per CPU in flight, as for skciphers.
fn async_rate(
    tfm: &Arc<Aead>,
    dir: Direction,
    size: usize,
    duration: Duration,
) -> Result<f64, AeadError> {
    let input = sample(tfm, dir, size)?;
    let batch = 64 * async_workers();
    let waits = [
        Arc::new(BatchWait::<Done>::new()),
        Arc::new(BatchWait::<Done>::new()),
    ];
    let start = Instant::now();
    for w in &waits {
        submit_batch(tfm, dir, &input, batch, w);
    }
    let mut completed = 0u64;
    let mut turn = 0;
    loop {
        for (_, res) in waits[turn].wait() {
            res?;
        }
        completed += batch as u64;
        if start.elapsed() >= duration {
            for (_, res) in waits[1 - turn].wait() {
                res?;
            }
            completed += batch as u64;
            break;
        }
        submit_batch(tfm, dir, &input, batch, &waits[turn]);
        turn = 1 - turn;
    }
    Ok(completed as f64 * size as f64 / start.elapsed().as_secs_f64())
}

/// Measures one AEAD algorithm on one backend.
pub fn measure(
    alg: &str,
    key_len: usize,
    backend: Backend,
    size: usize,
    duration: Duration,
) -> Result<Row, AeadError> {
    let tfm = Aead::alloc(alg, backend)?;
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
        driver: tfm.driver(),
    })
}
