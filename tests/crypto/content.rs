//! File contents: what FileCipher writes decrypts with an independent
//! implementation of the format rules, at every size around the boundaries,
//! in both sector modes.

use crate::common;

use crate::common::Rng;
use cipherfs::content::offsets::sector_count;
use cipherfs::content::{ContentError, FileCipher, FileHeader};
use cipherfs::crypto::MasterKey;
use cipherfs::skcipher::Backend;

/// (algorithm, key length) of every content cipher, one per sector mode
/// and key size.
const CIPHERS: [(&str, usize); 3] = [("xts(aes)", 64), ("xts(aes)", 32), ("gcm(aes)", 32)];

fn write_file(fc: &FileCipher, header: &FileHeader, plain: &[u8]) -> Vec<u8> {
    let l = fc.layout();
    let mut c = header.to_bytes().to_vec();
    let mut stored = Vec::new();
    for n in 0..sector_count(plain.len() as u64, l.sector) {
        let t = l.sector_plain_len(n, plain.len() as u64) as usize;
        let start = (n * l.sector) as usize;
        fc.encrypt_sector(n, &plain[start..start + t], &mut stored)
            .unwrap();
        assert_eq!(stored.len() as u64, l.stored_len(t as u64));
        assert_eq!(c.len() as u64, l.c_sector_offset(n));
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
    let cases = CIPHERS
        .iter()
        .flat_map(|&(alg, key_len)| [4096, 512, 1024].map(|sector| (alg, key_len, sector)));
    for backend in common::backends("files_decrypt_with_an_independent_implementation") {
        for (alg, key_len, sector) in cases.clone() {
            let header = FileHeader::random(2).unwrap();
            let fc = FileCipher::new(&master, &header, alg, key_len, backend, sector).unwrap();
            let l = fc.layout();
            let s = sector as u64;
            let mut sizes: Vec<u64> = (0..=40).collect();
            for k in 1..=2 {
                sizes.extend((k * s - 17)..=(k * s + 17));
            }
            for p in sizes {
                let plain = rng.bytes(p as usize);
                let c = write_file(&fc, &header, &plain);
                assert_eq!(c.len() as u64, l.cipher_size(p), "size {p}");
                let back = if alg == "gcm(aes)" {
                    common::independent::decrypt_gcm_file(master.expose(), &c, sector)
                } else {
                    common::independent::decrypt_xts_file(master.expose(), &c, sector, key_len)
                };
                assert_eq!(
                    back.unwrap(),
                    plain,
                    "{backend} {alg} key {key_len} sector {sector} size {p}"
                );
                // And our own read path agrees.
                let mut out = Vec::new();
                for n in 0..sector_count(p, s) {
                    let t = l.sector_plain_len(n, p) as usize;
                    let off = l.c_sector_offset(n) as usize;
                    let stored = &c[off..off + l.stored_len(t as u64) as usize];
                    fc.decrypt_sector(n, stored, t, &mut out).unwrap();
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
        for (alg, key_len) in CIPHERS {
            let header = FileHeader::random(2).unwrap();
            let fc = FileCipher::new(&master, &header, alg, key_len, backend, 4096).unwrap();
            let l = fc.layout();
            let stride = l.stride() as usize;
            let cases = [1u64, 2, 7, 40].into_iter().flat_map(|count| {
                // 4095: the stored last sector (4096 + 15 filler) spills past a
                // sector boundary of the buffer.
                [1, 16, 17, 4095, 4096, 1 + rng.below(4096) as u64].map(|t| (count, t))
            });
            for (count, last_t) in cases.collect::<Vec<_>>() {
                let what = format!("{backend} {alg}: {count} sectors, last {last_t}");
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
                if alg == "gcm(aes)" {
                    // A fresh nonce per write: the same data never stores alike.
                    assert_ne!(run, one_by_one, "{what}");
                } else {
                    assert_eq!(run, one_by_one, "{what}");
                }
                // Each stored sector of the run decrypts on its own.
                let mut out = Vec::new();
                for (i, p) in plains.iter().enumerate() {
                    let at = i * stride;
                    let end = (at + l.stored_len(p.len() as u64) as usize).min(run.len());
                    fc.decrypt_sector(first + i as u64, &run[at..end], p.len(), &mut out)
                        .unwrap();
                    assert_eq!(&out, p, "{what}: sector {i}");
                }
                // Decrypt sector by sector's output as a run, with one sector
                // turned into a hole.
                let mut run = one_by_one.clone();
                let mut want = want;
                if count > 2 {
                    run[stride..2 * stride].fill(0);
                    want[4096..8192].fill(0);
                }
                fc.decrypt_run_in_place(first, &mut run, p_size).unwrap();
                assert_eq!(&run[..want.len()], &want[..], "{what}");
                assert!(
                    run[want.len()..].iter().all(|&b| b == 0),
                    "{what}: what follows the plaintext is zeros"
                );
                // A buffer too short for the sectors the size implies is refused.
                let short = one_by_one.len() - 1;
                let mut cut = one_by_one[..short].to_vec();
                if last_t % 16 == 0 || alg == "gcm(aes)" {
                    assert!(
                        fc.decrypt_run_in_place(first, &mut cut, p_size).is_err(),
                        "{what}"
                    );
                }
            }
        }
    }
}

/// In the AEAD mode every change to a stored sector, and every sector moved
/// to another position or file, is refused as forged, naming the sector.
#[test]
fn gcm_sectors_refuse_every_change_and_every_move() {
    let master = MasterKey::generate().unwrap();
    let mut rng = Rng::new(5);
    for backend in common::backends("gcm_sectors_refuse_every_change_and_every_move") {
        let (h1, h2) = (
            FileHeader::random(2).unwrap(),
            FileHeader::random(2).unwrap(),
        );
        let f1 = FileCipher::new(&master, &h1, "gcm(aes)", 32, backend, 4096).unwrap();
        let f2 = FileCipher::new(&master, &h2, "gcm(aes)", 32, backend, 4096).unwrap();
        let plain = rng.bytes(3 * 4096 + 100);
        let (c1, c2) = (write_file(&f1, &h1, &plain), write_file(&f2, &h2, &plain));
        let p_size = plain.len() as u64;
        let read = |fc: &FileCipher, c: &[u8], n: u64| {
            let l = fc.layout();
            let t = l.sector_plain_len(n, p_size);
            let at = l.c_sector_offset(n) as usize;
            let mut out = Vec::new();
            fc.decrypt_sector(
                n,
                &c[at..at + l.stored_len(t) as usize],
                t as usize,
                &mut out,
            )
            .map(|()| out)
        };
        let forged = |r: Result<Vec<u8>, ContentError>, n: u64, what: &str| match r {
            Err(ContentError::Forged { sector }) if sector == n => {}
            other => panic!("{backend} {what}: {:?}", other.map(|v| v.len())),
        };
        let stride = 4124;
        // One bit in the nonce, the ciphertext, the tag of sector 1; the
        // last (short) sector's tag.
        for (what, at) in [
            ("nonce", 32 + stride + 3),
            ("ciphertext", 32 + stride + 12 + 2000),
            ("tag", 32 + stride + 12 + 4096 + 15),
        ] {
            let mut c = c1.clone();
            c[at] ^= 0x10;
            forged(read(&f1, &c, 1), 1, what);
            assert_eq!(read(&f1, &c, 0).unwrap(), plain[..4096], "{what}");
            assert_eq!(read(&f1, &c, 2).unwrap(), plain[8192..12288], "{what}");
        }
        let mut c = c1.clone();
        let last = c.len() - 1;
        c[last] ^= 1;
        forged(read(&f1, &c, 3), 3, "last sector's tag");
        // Sectors 1 and 2 swapped.
        let mut c = c1.clone();
        let (s1, s2) = (32 + stride, 32 + 2 * stride);
        let one = c[s1..s2].to_vec();
        c.copy_within(s2..s2 + stride, s1);
        c[s2..s2 + stride].copy_from_slice(&one);
        forged(read(&f1, &c, 1), 1, "swapped");
        forged(read(&f1, &c, 2), 2, "swapped");
        // Sector 1 of another file with the same plaintext and key.
        let mut c = c1.clone();
        c[s1..s2].copy_from_slice(&c2[s1..s2]);
        forged(read(&f1, &c, 1), 1, "copied from another file");
        // A zeroed sector is a hole (as in gocryptfs): zeros, no error.
        let mut c = c1.clone();
        c[s1..s2].fill(0);
        assert_eq!(read(&f1, &c, 1).unwrap(), vec![0u8; 4096]);
    }
}
