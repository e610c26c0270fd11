//! Ceiling check for the soft XTS path: raw AES multi-block throughput on 4 KiB
//! against the full XTS transform. `cargo bench --bench xts_inner`.

use std::hint::black_box;
use std::time::Instant;

use aes::cipher::{BlockCipherEncrypt, KeyInit};
use cipherfs::skcipher::{Backend, Skcipher};

fn rate(label: &str, mut f: impl FnMut()) {
    for _ in 0..2000 {
        f();
    }
    let n = 200_000;
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{label:<40} {:.2} GB/s", n as f64 * 4096.0 / secs / 1e9);
}

fn main() {
    let aes = aes::Aes256::new_from_slice(&[7u8; 32]).unwrap();
    let mut blocks = vec![aes::Block::default(); 256];
    rate("aes-256 encrypt_blocks (raw ceiling)", || {
        aes.encrypt_blocks(black_box(&mut blocks))
    });
    let tfm = Skcipher::alloc("xts(aes)", Backend::Soft).unwrap();
    let key: Vec<u8> = (0..64u8).collect();
    tfm.setkey(&key).unwrap();
    let mut buf = vec![0u8; 4096];
    let iv = [1u8; 16];
    rate("xts(aes) 512-bit encrypt", || {
        tfm.encrypt_in_place(&iv, black_box(&mut buf)).unwrap()
    });
    rate("xts(aes) 512-bit decrypt", || {
        tfm.decrypt_in_place(&iv, black_box(&mut buf)).unwrap()
    });
}
