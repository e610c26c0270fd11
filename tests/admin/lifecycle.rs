//! Handle life cycle: freeing a handle closes its kernel sockets, and errors
//! the kernel itself returns (not our pre-checks) are translated.

use crate::common;

use std::sync::{Arc, Mutex};
use std::thread;

use crate::common::Rng;
use cipherfs::skcipher::afalg::AfalgCipher;
use cipherfs::skcipher::{alg, Backend, Direction, KeyedCipher, Skcipher, SkcipherError};

/// Every test here opens sockets, the availability probe included.
static SERIAL: Mutex<()> = Mutex::new(());

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The count of open descriptors means something only in a process where
/// nothing else opens any, and this binary runs the other admin modules
/// beside this one: so the count runs alone, in a process of its own.
#[test]
fn dropping_a_handle_closes_its_kernel_sockets() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "lifecycle::sockets_counted_alone"])
        .args(["--test-threads=1", "--nocapture"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "the count did not run: {text}");
}

#[test]
#[ignore = "run alone, in its own process, by dropping_a_handle_closes_its_kernel_sockets"]
fn sockets_counted_alone() {
    // Before the probe: its socket must not land in the other test's count.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !common::afalg_available("dropping_a_handle_closes_its_kernel_sockets") {
        return;
    }
    let before = open_fds();
    {
        let tfm = Skcipher::alloc("xts(aes)", Backend::Afalg).unwrap();
        tfm.setkey(&Rng::new(1).key(64)).unwrap();
        let workers: Vec<_> = (0..8)
            .map(|t| {
                let tfm = Arc::clone(&tfm);
                thread::spawn(move || {
                    let mut buf = vec![t as u8; 4096];
                    for i in 0..200u64 {
                        let mut iv = [0u8; 16];
                        iv[..8].copy_from_slice(&i.to_le_bytes());
                        tfm.encrypt_in_place(&iv, &mut buf).unwrap();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let during = open_fds();
        assert!(
            during > before,
            "the afalg handle holds sockets while alive"
        );
        // A new key replaces the transform socket and its operation sockets.
        tfm.setkey(&Rng::new(2).key(64)).unwrap();
        tfm.encrypt_in_place(&[0; 16], &mut [0; 32]).unwrap();
        assert!(open_fds() <= during, "setkey leaked the old key's sockets");
    }
    assert_eq!(
        open_fds(),
        before,
        "sockets left open after the handle was dropped"
    );
}

#[test]
fn kernel_einval_is_translated_into_the_broken_constraint() {
    // Before the probe: its socket must not land in the other test's count.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !common::afalg_available("kernel_einval_is_translated") {
        return;
    }
    let xts = alg::lookup("xts(aes)").unwrap();
    // Straight to the kernel, past the layer's own checks.
    let e = AfalgCipher::new(xts, &[7u8; 16])
        .err()
        .expect("kernel must refuse a 16-byte XTS key");
    assert!(
        matches!(e, SkcipherError::KernelRejected { what: "key", .. }),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("refused the key for xts(aes) with EINVAL"),
        "{e}"
    );

    let k = AfalgCipher::new(xts, &Rng::new(3).key(64)).unwrap();
    let mut short = [0u8; 15];
    let e = k
        .crypt_in_place(Direction::Encrypt, &[0; 16], &mut short)
        .unwrap_err();
    assert!(
        matches!(e, SkcipherError::KernelRejected { what: "data", .. }),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("at least 16 bytes (this request: 15 bytes"),
        "{e}"
    );

    let cbc = alg::lookup("cbc(aes)").unwrap();
    let k = AfalgCipher::new(cbc, &[1u8; 16]).unwrap();
    let mut odd = [0u8; 20];
    let e = k
        .crypt_in_place(Direction::Decrypt, &[0; 16], &mut odd)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("multiple of 16 bytes (this request: 20 bytes"),
        "{e}"
    );
    // The instance is still usable after the kernel refused a request.
    k.crypt_in_place(Direction::Encrypt, &[0; 16], &mut [0; 32])
        .unwrap();
}
