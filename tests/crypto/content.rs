//! File contents: what FileCipher writes decrypts with an independent
//! implementation of the format rules, at every size around the boundaries.

use crate::common;

use crate::common::Rng;
use cipherfs::content::offsets::{
    c_sector_offset, cipher_size, sector_count, sector_plain_len, stored_len,
};
use cipherfs::content::{FileCipher, FileHeader};
use cipherfs::crypto::MasterKey;
use cipherfs::skcipher::Backend;

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
            let header = FileHeader::random(2).unwrap();
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
    let (h1, h2) = (
        FileHeader::random(2).unwrap(),
        FileHeader::random(2).unwrap(),
    );
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
fn in_place_runs_match_sector_by_sector() {
    let master = MasterKey::generate().unwrap();
    let mut rng = Rng::new(33);
    for backend in common::backends("in_place_runs_match_sector_by_sector") {
        let header = FileHeader::random(2).unwrap();
        let fc = FileCipher::new(&master, &header, "xts(aes)", 64, backend, 4096).unwrap();
        let cases = [1u64, 2, 7, 40].into_iter().flat_map(|count| {
            // 4095: the stored last sector (4096 + 15 filler) spills past a
            // sector boundary of the buffer.
            [1, 16, 17, 4095, 4096, 1 + rng.below(4096) as u64].map(|t| (count, t))
        });
        for (count, last_t) in cases.collect::<Vec<_>>() {
            let first = rng.below(1000) as u64;
            // The run ends the file: its last sector holds last_t bytes.
            let p_size = (first + count - 1) * 4096 + last_t;
            let plains: Vec<Vec<u8>> = (0..count)
                .map(|i| {
                    rng.bytes(if i + 1 == count {
                        last_t as usize
                    } else {
                        4096
                    })
                })
                .collect();
            let mut one_by_one = Vec::new();
            let mut stored = Vec::new();
            for (i, p) in plains.iter().enumerate() {
                fc.encrypt_sector(first + i as u64, p, &mut stored).unwrap();
                one_by_one.extend_from_slice(&stored);
            }
            let mut run = vec![0u8; one_by_one.len()];
            let want: Vec<u8> = plains.concat();
            run[..want.len()].copy_from_slice(&want);
            fc.encrypt_run_in_place(first, &mut run, p_size).unwrap();
            assert_eq!(run, one_by_one, "{backend}: {count} sectors");
            // Decrypt the run, with one sector turned into a hole.
            let mut want = want;
            if count > 2 {
                run[4096..8192].fill(0);
                want[4096..8192].fill(0);
            }
            fc.decrypt_run_in_place(first, &mut run, p_size).unwrap();
            assert_eq!(&run[..want.len()], &want[..], "{backend}: {count} sectors");
            assert!(
                run[want.len()..].iter().all(|&b| b == 0),
                "{backend}: padding after the plaintext is zeros"
            );
            // A buffer too short for the sectors the size implies is refused.
            let short = one_by_one.len() - 1;
            let mut cut = one_by_one[..short].to_vec();
            if last_t % 16 == 0 {
                assert!(fc.decrypt_run_in_place(first, &mut cut, p_size).is_err());
            }
        }
    }
}
