//! Known-answer tests: every published vector through every backend that
//! exists here, and ESSIV against an independent computation.

use crate::common;

use aes::cipher::{BlockCipherEncrypt, BlockModeEncrypt, KeyInit, KeyIvInit};
use cipherfs::skcipher::selftest::{self, KATS};
use cipherfs::skcipher::{Backend, Skcipher, ALGORITHMS};
use sha2::{Digest, Sha256};

#[test]
fn every_algorithm_has_vectors() {
    for a in ALGORITHMS {
        assert!(
            KATS.iter().any(|k| k.alg == a.name),
            "no vector for {}",
            a.name
        );
    }
}

#[test]
fn published_vectors_pass_on_every_backend() {
    for backend in common::backends("published_vectors_pass_on_every_backend") {
        for a in ALGORITHMS {
            if backend == Backend::Afalg && !common::kernel_has(a.name, "published_vectors") {
                continue;
            }
            let n = selftest::run(backend, a.name)
                .unwrap_or_else(|e| panic!("{backend} {}: {e}", a.name));
            assert!(n > 0);
        }
    }
}

#[test]
fn decrypting_the_published_ciphertext_gives_the_plaintext() {
    for backend in common::backends("decrypting_the_published_ciphertext") {
        for kat in KATS.iter() {
            if backend == Backend::Afalg && !common::kernel_has(kat.alg, "decrypting_published") {
                continue;
            }
            let tfm = Skcipher::alloc(kat.alg, backend).unwrap();
            tfm.setkey(&kat.key_bytes()).unwrap();
            let pt = kat.plaintext();
            let mut ct = vec![0; pt.len()];
            tfm.encrypt(&kat.iv_bytes(), &pt, &mut ct).unwrap();
            kat.check(&ct).unwrap();
            let mut back = vec![0; pt.len()];
            tfm.decrypt(&kat.iv_bytes(), &ct, &mut back).unwrap();
            assert_eq!(back, pt, "{backend} {}", kat.source);
        }
    }
}

#[test]
fn a_wrong_expected_value_is_caught() {
    // The check itself must be able to fail: flip one bit of a real ciphertext.
    let kat = &KATS[0];
    let tfm = Skcipher::alloc(kat.alg, Backend::Soft).unwrap();
    tfm.setkey(&kat.key_bytes()).unwrap();
    let mut ct = kat.plaintext();
    tfm.encrypt_in_place(&kat.iv_bytes(), &mut ct).unwrap();
    ct[3] ^= 1;
    assert!(kat.check(&ct).is_err());
}

/// dm-crypt's aes-cbc-essiv:sha256, computed from its definition with the
/// primitives directly: salt = SHA-256(key), IV = AES-256_salt(le64(sector)).
fn essiv_reference(key: &[u8], sector: u64, pt: &[u8]) -> Vec<u8> {
    let salt = Sha256::digest(key);
    let mut iv = aes::Block::default();
    iv[..8].copy_from_slice(&sector.to_le_bytes());
    aes::Aes256::new_from_slice(&salt)
        .unwrap()
        .encrypt_block(&mut iv);
    let mut buf = pt.to_vec();
    let (blocks, _) = aes::Block::slice_as_chunks_mut(&mut buf);
    match key.len() {
        16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, &iv)
            .unwrap()
            .encrypt_blocks(blocks),
        24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, &iv)
            .unwrap()
            .encrypt_blocks(blocks),
        _ => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, &iv)
            .unwrap()
            .encrypt_blocks(blocks),
    }
    buf
}

#[test]
fn essiv_matches_independent_computation() {
    let mut rng = common::Rng::new(7);
    for backend in common::backends("essiv_matches_independent_computation") {
        let tfm = Skcipher::alloc("essiv(cbc(aes),sha256)", backend).unwrap();
        for key_len in [16, 24, 32] {
            for _ in 0..20 {
                let key = rng.bytes(key_len);
                let sector = rng.next_u64();
                let blocks = 1 + rng.below(256);
                let pt = rng.bytes(16 * blocks);
                tfm.setkey(&key).unwrap();
                let mut iv = [0u8; 16];
                iv[..8].copy_from_slice(&sector.to_le_bytes());
                let mut ct = pt.clone();
                tfm.encrypt_in_place(&iv, &mut ct).unwrap();
                assert_eq!(
                    ct,
                    essiv_reference(&key, sector, &pt),
                    "{backend} key {key_len}"
                );
                tfm.decrypt_in_place(&iv, &mut ct).unwrap();
                assert_eq!(ct, pt);
            }
        }
    }
}
