//! Differential tests: the fast soft XTS path against the `xts-mode` reference,
//! and every algorithm on the soft backend against the kernel (afalg) where it
//! exists, on random keys, IVs and lengths.

use crate::common;

use crate::common::Rng;
use aes::cipher::KeyInit;
use cipherfs::skcipher::afalg::{MAX_REQUEST, SEND_CHUNK};
use cipherfs::skcipher::{Backend, Skcipher, ALGORITHMS};
use proptest::prelude::*;

fn reference_xts(key: &[u8], iv: &[u8; 16], data: &mut [u8], encrypt: bool) {
    macro_rules! run {
        ($aes:ty) => {{
            let (k1, k2) = key.split_at(key.len() / 2);
            let x = xts_mode::Xts128::new(
                <$aes>::new_from_slice(k1).unwrap(),
                <$aes>::new_from_slice(k2).unwrap(),
            );
            let tweak = (*iv).into();
            if encrypt {
                x.encrypt_sector(data, tweak)
            } else {
                x.decrypt_sector(data, tweak)
            }
        }};
    }
    match key.len() {
        32 => run!(aes::Aes128),
        _ => run!(aes::Aes256),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn fast_xts_matches_xts_mode(
        key_len in prop::sample::select(vec![32usize, 64]),
        seed in any::<u64>(),
        len in 16usize..9000,
        in_place in any::<bool>(),
    ) {
        let mut rng = Rng::new(seed);
        let key = rng.key(key_len);
        let iv: [u8; 16] = rng.bytes(16).try_into().unwrap();
        let pt = rng.bytes(len);
        let tfm = Skcipher::alloc("xts(aes)", Backend::Soft).unwrap();
        tfm.setkey(&key).unwrap();
        let mut ct = vec![0u8; len];
        if in_place {
            ct.copy_from_slice(&pt);
            tfm.encrypt_in_place(&iv, &mut ct).unwrap();
        } else {
            tfm.encrypt(&iv, &pt, &mut ct).unwrap();
        }
        let mut want = pt.clone();
        reference_xts(&key, &iv, &mut want, true);
        prop_assert_eq!(&ct, &want);
        let mut back = ct.clone();
        tfm.decrypt_in_place(&iv, &mut back).unwrap();
        prop_assert_eq!(&back, &pt);
        // And the reference decrypts ours.
        reference_xts(&key, &iv, &mut ct, false);
        prop_assert_eq!(&ct, &pt);
    }
}

/// Every length from 16 to 1100 bytes (group, leftover-block and stealing
/// boundaries of the fast path) and some sector-sized ones, on both soft XTS
/// paths: the CPU-specific one (when this CPU has it) and the portable one.
#[test]
fn both_soft_xts_paths_match_xts_mode_at_every_boundary() {
    use cipherfs::skcipher::soft::SoftCipher;
    use cipherfs::skcipher::{alg, Direction, KeyedCipher};
    let info = alg::lookup("xts(aes)").unwrap();
    let mut rng = Rng::new(11);
    let lens: Vec<usize> = (16..=1100)
        .chain([4095, 4096, 4097, 4111, 8192 + 1, 65536, 65536 + 15])
        .collect();
    for key_len in [32, 64] {
        let key = rng.key(key_len);
        let fast = SoftCipher::new(info, &key).unwrap();
        let portable = SoftCipher::new_portable(info, &key).unwrap();
        assert!(!portable.xts_fast_path());
        eprintln!(
            "xts-{}: CPU-specific path {}",
            key_len * 4,
            if fast.xts_fast_path() {
                "in use"
            } else {
                "not available on this CPU"
            }
        );
        for &len in &lens {
            let iv: [u8; 16] = rng.bytes(16).try_into().unwrap();
            let pt = rng.bytes(len);
            let mut want = pt.clone();
            reference_xts(&key, &iv, &mut want, true);
            for (name, c) in [("fast", &fast), ("portable", &portable)] {
                let mut buf = pt.clone();
                c.crypt_in_place(Direction::Encrypt, &iv, &mut buf).unwrap();
                assert_eq!(buf, want, "{name} encrypt, key {key_len}, len {len}");
                c.crypt_in_place(Direction::Decrypt, &iv, &mut buf).unwrap();
                assert_eq!(buf, pt, "{name} decrypt, key {key_len}, len {len}");
            }
        }
    }
}

fn random_len(rng: &mut Rng, blocksize_multiple: bool, max: usize) -> usize {
    // Mostly sector-like sizes, sometimes large (several sendmsg calls) or tiny.
    let len = match rng.below(4) {
        0 => 16 + rng.below(64),
        1 => 4096,
        2 => SEND_CHUNK + 1 + rng.below(max - SEND_CHUNK - 1),
        _ => 16 + rng.below(9000),
    };
    if blocksize_multiple {
        (len / 16).max(1) * 16
    } else {
        len
    }
}

#[test]
fn soft_and_kernel_agree_on_every_algorithm() {
    if !common::afalg_available("soft_and_kernel_agree_on_every_algorithm") {
        return;
    }
    let mut rng = Rng::new(0x5eed);
    for alg in ALGORITHMS {
        if !common::kernel_has(alg.name, "soft_and_kernel_agree") {
            continue;
        }
        let soft = Skcipher::alloc(alg.name, Backend::Soft).unwrap();
        let kern = Skcipher::alloc(alg.name, Backend::Afalg).unwrap();
        for round in 0..60 {
            let key_len = alg.key_sizes[rng.below(alg.key_sizes.len())];
            let key = rng.key(key_len);
            soft.setkey(&key).unwrap();
            kern.setkey(&key).unwrap();
            let iv = rng.bytes(alg.ivsize);
            let multiple = alg.len_rule == cipherfs::skcipher::alg::LenRule::BlockMultiple;
            let len = random_len(&mut rng, multiple, MAX_REQUEST);
            let pt = rng.bytes(len);
            let (mut a, mut b) = (vec![0; pt.len()], pt.clone());
            soft.encrypt(&iv, &pt, &mut a).unwrap();
            kern.encrypt_in_place(&iv, &mut b).unwrap();
            assert_eq!(
                a,
                b,
                "{} encrypt, round {round}, {} bytes",
                alg.name,
                pt.len()
            );
            let mut c = vec![0; pt.len()];
            kern.decrypt(&iv, &a, &mut c).unwrap();
            assert_eq!(
                c,
                pt,
                "{} decrypt, round {round}, {} bytes",
                alg.name,
                pt.len()
            );
        }
    }
}

#[test]
fn kernel_takes_the_largest_request_and_refuses_a_larger_one() {
    if !common::afalg_available("kernel_takes_the_largest_request") {
        return;
    }
    let mut rng = Rng::new(3);
    let key = rng.key(64);
    let tfm = Skcipher::alloc("xts(aes)", Backend::Afalg).unwrap();
    let soft = Skcipher::alloc("xts(aes)", Backend::Soft).unwrap();
    tfm.setkey(&key).unwrap();
    soft.setkey(&key).unwrap();
    let iv = [9u8; 16];
    let mut a = rng.bytes(MAX_REQUEST);
    let mut b = a.clone();
    tfm.encrypt_in_place(&iv, &mut a).unwrap();
    soft.encrypt_in_place(&iv, &mut b).unwrap();
    assert_eq!(a, b);
    let mut big = vec![0u8; MAX_REQUEST + 16];
    let e = tfm.encrypt_in_place(&iv, &mut big).unwrap_err().to_string();
    assert!(e.contains("at most 65536 bytes"), "{e}");
}
