//! HCTR2: the soft backend's own implementation against a second,
//! independent one (the `hctr2-rs` crate, by another author), on random
//! keys, 32-byte tweaks and lengths; and the properties names rely on.

use crate::common::Rng;
use cipherfs::skcipher::{Backend, Direction, Skcipher, SkcipherRequest};
use hctr2_rs::{Hctr2_128, Hctr2_256};

fn independent(key: &[u8], tweak: &[u8], pt: &[u8], encrypt: bool) -> Vec<u8> {
    let mut out = vec![0u8; pt.len()];
    let r = match (key.len(), encrypt) {
        (16, true) => Hctr2_128::new(key).encrypt(pt, tweak, &mut out),
        (16, false) => Hctr2_128::new(key).decrypt(pt, tweak, &mut out),
        (_, true) => Hctr2_256::new(key).encrypt(pt, tweak, &mut out),
        (_, false) => Hctr2_256::new(key).decrypt(pt, tweak, &mut out),
    };
    r.unwrap();
    out
}

#[test]
fn soft_hctr2_matches_an_independent_implementation() {
    let mut rng = Rng::new(0x4c72);
    let tfm = Skcipher::alloc("hctr2(aes)", Backend::Soft).unwrap();
    let mut lengths = 0u64;
    for round in 0..2000 {
        let key_len = [16, 32][rng.below(2)];
        let key = rng.bytes(key_len);
        let tweak = rng.bytes(32);
        // Every length a name can have, and now and then a long one.
        let len = if round % 50 == 0 {
            16 + rng.below(4096)
        } else {
            16 + rng.below(240)
        };
        lengths |= 1 << (len % 16);
        let pt = rng.bytes(len);
        tfm.setkey(&key).unwrap();
        let mut ct = pt.clone();
        tfm.encrypt_in_place(&tweak, &mut ct).unwrap();
        assert_eq!(
            ct,
            independent(&key, &tweak, &pt, true),
            "round {round}: {len} bytes, {}-byte key",
            key.len()
        );
        let mut back = ct.clone();
        tfm.decrypt_in_place(&tweak, &mut back).unwrap();
        assert_eq!(back, pt, "round {round}");
        assert_eq!(independent(&key, &tweak, &ct, false), pt, "round {round}");
    }
    assert_eq!(lengths, 0xffff, "every length modulo 16 was tried");
}

/// What HCTR2 is for: plaintexts sharing a prefix share no ciphertext block,
/// a change anywhere changes every block, and the tweak changes everything.
#[test]
fn a_shared_prefix_shares_no_ciphertext() {
    let tfm = Skcipher::alloc("hctr2(aes)", Backend::Soft).unwrap();
    tfm.setkey(&[7u8; 32]).unwrap();
    let tweak = [0u8; 32];
    let enc = |name: &[u8], tweak: &[u8]| {
        let mut b = name.to_vec();
        b.resize(name.len().div_ceil(16) * 16, 0);
        tfm.encrypt_in_place(tweak, &mut b).unwrap();
        b
    };
    let a = enc(b"quarterly-report-2025-Q1.pdf", &tweak);
    let b = enc(b"quarterly-report-2025-Q2.pdf", &tweak);
    for (i, (x, y)) in a.chunks(16).zip(b.chunks(16)).enumerate() {
        assert_ne!(x, y, "block {i} is shared");
    }
    let mut other = tweak;
    other[31] = 1;
    let c = enc(b"quarterly-report-2025-Q1.pdf", &other);
    for (i, (x, y)) in a.chunks(16).zip(c.chunks(16)).enumerate() {
        assert_ne!(x, y, "block {i} is the same under another tweak");
    }
}

#[test]
fn the_length_rule_is_the_kernels() {
    let tfm = Skcipher::alloc("hctr2(aes)", Backend::Soft).unwrap();
    assert_eq!(tfm.ivsize(), 32);
    tfm.setkey(&[1u8; 32]).unwrap();
    let e = tfm
        .encrypt_in_place(&[0u8; 32], &mut [0u8; 15])
        .unwrap_err();
    assert!(
        e.to_string().contains("shorter than the minimum of 16"),
        "{e}"
    );
    for len in [16, 17, 31, 32, 33, 255] {
        tfm.encrypt_in_place(&[0u8; 32], &mut vec![0u8; len])
            .unwrap();
    }
    let e = tfm
        .encrypt_in_place(&[0u8; 16], &mut [0u8; 32])
        .unwrap_err();
    assert!(e.to_string().contains("takes 32 bytes"), "{e}");
    assert!(tfm.setkey(&[1u8; 64]).is_err());
}

/// The async API takes HCTR2's 32-byte tweak as the sync one does.
#[test]
fn asynchronous_requests_take_the_32_byte_tweak() {
    let mut rng = Rng::new(32);
    let tfm = Skcipher::alloc("hctr2(aes)", Backend::Soft).unwrap();
    tfm.setkey(&rng.bytes(32)).unwrap();
    let (tweak, pt) = (rng.bytes(32), rng.bytes(100));
    let (tx, rx) = std::sync::mpsc::channel();
    let mut req = SkcipherRequest::new(&tfm, ());
    req.set_crypt(None, pt.clone(), &tweak);
    req.submit(Direction::Encrypt, move |r, res| {
        let _ = tx.send((r.into_parts().0, res));
    });
    let (ct, res) = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    res.unwrap();
    let mut want = pt;
    tfm.encrypt_in_place(&tweak, &mut want).unwrap();
    assert_eq!(ct, want);
}
