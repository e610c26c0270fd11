//! The async API: many requests on one handle from several threads, each
//! completion delivered exactly once with its own context and result.

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::common::Rng;
use cipherfs::skcipher::{Backend, Direction, Skcipher, SkcipherError, SkcipherRequest};

const THREADS: usize = 4;
const PER_THREAD: usize = 1500;

fn sector_iv(n: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..8].copy_from_slice(&n.to_le_bytes());
    iv
}

fn many_requests_on_one_handle(backend: Backend) {
    let tfm = Skcipher::alloc("xts(aes)", backend).unwrap();
    let key = Rng::new(1).key(64);
    tfm.setkey(&key).unwrap();
    let reference = Skcipher::alloc("xts(aes)", Backend::Soft).unwrap();
    reference.setkey(&key).unwrap();

    let calls = Arc::new(Mutex::new(HashMap::<u64, usize>::new()));
    let (tx, rx) = mpsc::channel::<(u64, Vec<u8>, Result<(), SkcipherError>)>();
    let mut submitters = Vec::new();
    for t in 0..THREADS {
        let (tfm, tx, calls) = (Arc::clone(&tfm), tx.clone(), Arc::clone(&calls));
        submitters.push(thread::spawn(move || {
            for i in 0..PER_THREAD {
                let id = (t * PER_THREAD + i) as u64;
                let len = 16 + (id as usize * 37) % 5000;
                let mut req = SkcipherRequest::new(&tfm, id);
                req.set_crypt(
                    Some(vec![(id % 251) as u8; len]),
                    vec![0; len],
                    &sector_iv(id),
                );
                let (tx, calls) = (tx.clone(), Arc::clone(&calls));
                req.submit(Direction::Encrypt, move |req, res| {
                    assert!(Arc::ptr_eq(req.reqtfm(), req.reqtfm()));
                    *calls.lock().unwrap().entry(req.ctx).or_default() += 1;
                    let id = req.ctx;
                    let (dst, _, _) = req.into_parts();
                    tx.send((id, dst, res)).unwrap();
                });
            }
        }));
    }
    drop(tx);
    for s in submitters {
        s.join().unwrap();
    }
    let mut seen = 0;
    while let Ok((id, dst, res)) = rx.recv_timeout(Duration::from_secs(60)) {
        res.unwrap();
        let len = 16 + (id as usize * 37) % 5000;
        let mut want = vec![(id % 251) as u8; len];
        reference
            .encrypt_in_place(&sector_iv(id), &mut want)
            .unwrap();
        assert_eq!(dst, want, "request {id} got another request's result");
        seen += 1;
    }
    assert_eq!(seen, THREADS * PER_THREAD, "completions missing");
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), THREADS * PER_THREAD);
    assert!(
        calls.values().all(|&n| n == 1),
        "a callback ran more than once"
    );
}

#[test]
fn thousands_of_requests_from_several_threads() {
    for backend in common::backends("thousands_of_requests_from_several_threads") {
        many_requests_on_one_handle(backend);
    }
}

#[test]
fn a_failing_request_reports_through_its_callback() {
    for backend in common::backends("a_failing_request_reports_through_its_callback") {
        let tfm = Skcipher::alloc("cbc(aes)", backend).unwrap();
        tfm.setkey(&[1u8; 32]).unwrap();
        let (tx, rx) = mpsc::channel();
        let mut bad = SkcipherRequest::new(&tfm, "bad");
        bad.set_crypt(None, vec![0; 33], &[0; 16]);
        let tx1 = tx.clone();
        bad.submit(Direction::Decrypt, move |r, res| {
            tx1.send((r.ctx, res)).unwrap()
        });
        let mut good = SkcipherRequest::new(&tfm, "good");
        good.set_crypt(None, vec![0; 32], &[0; 16]);
        good.submit(Direction::Decrypt, move |r, res| {
            tx.send((r.ctx, res)).unwrap()
        });
        let got: HashMap<&str, _> = (0..2)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        assert!(got["good"].is_ok(), "{backend}: good request failed");
        let err = got["bad"].as_ref().unwrap_err();
        assert!(
            matches!(err, SkcipherError::LengthNotBlockMultiple { len: 33, .. }),
            "{backend}: {err}"
        );
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "a callback ran twice"
        );
    }
}

#[test]
fn a_request_without_a_key_fails_through_its_callback() {
    let tfm = Skcipher::alloc("xts(aes)", Backend::Soft).unwrap();
    let (tx, rx) = mpsc::channel();
    let mut req = SkcipherRequest::new(&tfm, ());
    req.set_crypt(None, vec![0; 4096], &[0; 16]);
    req.submit(Direction::Encrypt, move |_, res| tx.send(res).unwrap());
    let res = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(matches!(res, Err(SkcipherError::NoKey)), "{res:?}");
}

#[test]
fn a_panicking_callback_neither_kills_a_worker_nor_loses_later_requests() {
    let tfm = Skcipher::alloc("xts(aes)", Backend::Soft).unwrap();
    tfm.setkey(&Rng::new(2).key(32)).unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let workers = cipherfs::skcipher::async_workers();
    for _ in 0..workers * 2 {
        let mut req = SkcipherRequest::new(&tfm, ());
        req.set_crypt(None, vec![0; 64], &[0; 16]);
        req.submit(Direction::Encrypt, |_, _| {
            panic!("callback panics on purpose")
        });
    }
    let (tx, rx) = mpsc::channel();
    for _ in 0..100 {
        let mut req = SkcipherRequest::new(&tfm, ());
        req.set_crypt(None, vec![0; 64], &[0; 16]);
        let (tx, done) = (tx.clone(), Arc::clone(&done));
        req.submit(Direction::Encrypt, move |_, res| {
            res.unwrap();
            done.fetch_add(1, Ordering::SeqCst);
            tx.send(()).unwrap();
        });
    }
    for _ in 0..100 {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a later request never completed");
    }
    assert_eq!(done.load(Ordering::SeqCst), 100);
}

#[test]
fn synchronous_requests_work_in_place_and_between_buffers() {
    let tfm = Skcipher::alloc("xts(aes)", Backend::Soft).unwrap();
    tfm.setkey(&Rng::new(4).key(64)).unwrap();
    let pt = vec![7u8; 4096];
    let mut a = SkcipherRequest::new(&tfm, ());
    a.set_crypt(None, pt.clone(), &sector_iv(5));
    a.encrypt().unwrap();
    let mut b = SkcipherRequest::new(&tfm, ());
    b.set_crypt(Some(pt.clone()), vec![0; 4096], &sector_iv(5));
    b.encrypt().unwrap();
    assert_eq!(a.dst(), b.dst());
    assert_ne!(a.dst(), &pt[..]);
    a.decrypt().unwrap();
    assert_eq!(a.dst(), &pt[..]);
}

#[test]
fn batch_wait_returns_once_every_request_completed() {
    use cipherfs::skcipher::BatchWait;
    for backend in common::backends("batch_wait_returns_once_every_request_completed") {
        let tfm = Skcipher::alloc("xts(aes)", backend).unwrap();
        tfm.setkey(&Rng::new(8).key(64)).unwrap();
        let wait = Arc::new(BatchWait::new());
        assert!(wait.wait().is_empty(), "an empty batch must not block");
        let n = 1000;
        wait.add(n);
        for i in 0..n as u64 {
            let mut req = SkcipherRequest::new(&tfm, i);
            req.set_crypt(None, vec![1; 512], &sector_iv(i));
            let w = Arc::clone(&wait);
            req.submit(Direction::Encrypt, move |r, res| {
                w.complete((r.ctx, res.is_ok()))
            });
        }
        let mut got = wait.wait();
        assert_eq!(got.len(), n, "{backend}");
        got.sort();
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, &(id, ok))| id == i as u64 && ok),
            "{backend}"
        );
    }
}
