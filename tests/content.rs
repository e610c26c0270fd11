//! File contents: what FileCipher writes decrypts with an independent
//! implementation of the format rules, at every size around the boundaries.

mod common;

use cipherfs::content::offsets::{
    c_sector_offset, cipher_size, sector_count, sector_plain_len, stored_len,
};
use cipherfs::content::{FileCipher, FileHeader};
use cipherfs::crypto::MasterKey;
use cipherfs::skcipher::Backend;
use common::Rng;

fn write_file(fc: &FileCipher, header: &FileHeader, plain: &[u8]) -> Vec<u8> {
    let s = fc.sector_size() as u64;
    let mut c = header.to_bytes().to_vec();
    let mut stored = Vec::new();
    for n in 0..sector_count(plain.len() as u64, s) {
        let t = sector_plain_len(n, plain.len() as u64, s) as usize;
        let start = (n * s) as usize;
        fc.encrypt_sector(n, &plain[start..start + t], &mut stored)
            .unwrap();
        assert_eq!(stored.len() as u64, stored_len(t as u64));
        assert_eq!(c.len() as u64, c_sector_offset(n, s));
        c.extend_from_slice(&stored);
    }
    if plain.is_empty() {
        c.clear();
    }
    c
}

#[test]
fn files_decrypt_with_an_independent_implementation() {
    let master = MasterKey::generate().unwrap();
    let mut rng = Rng::new(21);
    for backend in common::backends("files_decrypt_with_an_independent_implementation") {
        for (key_len, sector) in [(64, 4096), (32, 512), (64, 1024)] {
            let header = FileHeader::random().unwrap();
            let fc =
                FileCipher::new(&master, &header, "xts(aes)", key_len, backend, sector).unwrap();
            let s = sector as u64;
            let mut sizes: Vec<u64> = (0..=40).collect();
            for k in 1..=2 {
                sizes.extend((k * s - 17)..=(k * s + 17));
            }
            for p in sizes {
                let plain = rng.bytes(p as usize);
                let c = write_file(&fc, &header, &plain);
                assert_eq!(c.len() as u64, cipher_size(p), "size {p}");
                let back =
                    common::independent::decrypt_xts_file(master.expose(), &c, sector, key_len)
                        .unwrap();
                assert_eq!(
                    back, plain,
                    "{backend} key {key_len} sector {sector} size {p}"
                );
                // And our own read path agrees.
                let mut out = Vec::new();
                for n in 0..sector_count(p, s) {
                    let t = sector_plain_len(n, p, s) as usize;
                    let off = c_sector_offset(n, s) as usize;
                    fc.decrypt_sector(n, &c[off..off + stored_len(t as u64) as usize], t, &mut out)
                        .unwrap();
                    assert_eq!(out, plain[(n * s) as usize..(n * s) as usize + t]);
                }
            }
        }
    }
}

#[test]
fn same_plaintext_in_two_files_differs_and_holes_read_as_zeros() {
    let master = MasterKey::generate().unwrap();
    let plain = vec![0x41u8; 8192];
    let (h1, h2) = (FileHeader::random().unwrap(), FileHeader::random().unwrap());
    let f1 = FileCipher::new(&master, &h1, "xts(aes)", 64, Backend::Soft, 4096).unwrap();
    let f2 = FileCipher::new(&master, &h2, "xts(aes)", 64, Backend::Soft, 4096).unwrap();
    let (c1, c2) = (write_file(&f1, &h1, &plain), write_file(&f2, &h2, &plain));
    assert_ne!(c1[32..], c2[32..]);
    // Two equal sectors of one file differ too (the IV is the sector number).
    assert_ne!(c1[32..32 + 4096], c1[32 + 4096..]);
    let mut out = Vec::new();
    f1.decrypt_sector(7, &[0u8; 4096], 4096, &mut out).unwrap();
    assert_eq!(out, vec![0u8; 4096]);
    f1.decrypt_sector(7, &[0u8; 33], 17, &mut out).unwrap();
    assert_eq!(out, vec![0u8; 17]);
    assert!(
        f1.decrypt_sector(0, &[1u8; 20], 17, &mut out).is_err(),
        "short stored sector"
    );
}

#[test]
fn runs_match_sector_by_sector_on_both_sides_of_the_parallel_threshold() {
    use cipherfs::content::sector::PARALLEL_MIN;
    let master = MasterKey::generate().unwrap();
    let mut rng = Rng::new(33);
    for backend in common::backends("runs_match_sector_by_sector") {
        let header = FileHeader::random().unwrap();
        let fc = FileCipher::new(&master, &header, "xts(aes)", 64, backend, 4096).unwrap();
        for count in [1, PARALLEL_MIN - 1, PARALLEL_MIN, PARALLEL_MIN + 1, 40] {
            let last_t = 1 + rng.below(4096);
            let plains: Vec<Vec<u8>> = (0..count)
                .map(|i| rng.bytes(if i + 1 == count { last_t } else { 4096 }))
                .collect();
            let first = rng.below(1000) as u64;
            let run = fc.encrypt_run(first, plains.clone()).unwrap();
            let mut one_by_one = Vec::new();
            let mut stored = Vec::new();
            for (i, p) in plains.iter().enumerate() {
                fc.encrypt_sector(first + i as u64, p, &mut stored).unwrap();
                one_by_one.extend_from_slice(&stored);
            }
            assert_eq!(run, one_by_one, "{backend}: {count} sectors");
            // Decrypt the run, with one sector turned into a hole.
            let mut with_hole = run.clone();
            if count > 2 {
                with_hole[4096..8192].fill(0);
            }
            let mut sectors = Vec::new();
            let mut off = 0;
            for p in &plains {
                let len = stored_len(p.len() as u64) as usize;
                sectors.push((&with_hole[off..off + len], p.len()));
                off += len;
            }
            let back = fc.decrypt_run(first, sectors).unwrap();
            let mut want: Vec<u8> = plains.concat();
            if count > 2 {
                want[4096..8192].fill(0);
            }
            assert_eq!(back, want, "{backend}: {count} sectors");
        }
    }
}
