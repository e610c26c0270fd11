//! Names, targets and their encodings in both formats.

use super::*;

fn cipher() -> NameCipher {
    cipher_of(NameMode::CtsCbc)
}

fn cipher_of(mode: NameMode) -> NameCipher {
    NameCipher::new(&MasterKey::generate().unwrap(), mode, Backend::Soft).unwrap()
}

#[test]
fn round_trip_every_length_and_long_names() {
    // The longest name stored directly: 176 bytes (16-byte padding) in
    // format 1, 160 (32-byte padding) in format 2.
    for (mode, longest_short) in [(NameMode::CtsCbc, 176), (NameMode::Hctr2, 160)] {
        round_trip_every_length(mode, longest_short);
    }
}

fn round_trip_every_length(mode: NameMode, longest_short: usize) {
    let c = cipher_of(mode);
    let iv = [7u8; 16];
    for len in 1..=NAME_MAX {
        let name: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let stored = c.encrypt(&name, &iv).unwrap();
        let encoded = match &stored {
            StoredName::Short(s) => s.clone(),
            StoredName::Long { short, full } => {
                assert!(short.len() <= NAME_MAX && short.starts_with(LONGNAME_PREFIX));
                assert_eq!(*short, long_entry(full));
                full.clone()
            }
        };
        assert!(!encoded.contains('.') && !encoded.contains('/'));
        assert_eq!(c.decrypt(&encoded, &iv).unwrap(), name, "len {len}");
        assert_eq!(
            matches!(stored, StoredName::Long { .. }),
            len > longest_short,
            "{mode:?} len {len}"
        );
        // Format 2 shows the length only to 32 bytes.
        if mode == NameMode::Hctr2 {
            let raw = B64URL.decode(&encoded).unwrap();
            assert_eq!(raw.len(), len.div_ceil(32) * 32, "len {len}");
        }
    }
}

#[test]
fn same_name_differs_per_directory_and_bad_names_are_refused() {
    let c = cipher();
    let a = c.encrypt(b"report.pdf", &[1; 16]).unwrap();
    let b = c.encrypt(b"report.pdf", &[2; 16]).unwrap();
    assert_ne!(a, b);
    // Names are not authenticated (as in fscrypt): the wrong directory IV
    // gives some other name, never the right one.
    assert_ne!(
        c.decrypt(a.entry(), &[2; 16]).ok().as_deref(),
        Some(&b"report.pdf"[..])
    );
    for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b"] {
        assert!(c.encrypt(bad, &[1; 16]).is_err(), "{bad:?}");
    }
    assert!(matches!(
        c.encrypt(&[b'x'; 256], &[1; 16]),
        Err(NameError::TooLong(256))
    ));
}

#[test]
fn garbage_stored_names_are_errors_not_panics() {
    let c = cipher();
    let iv = [3u8; 16];
    for s in [
        "",
        "!!!!",
        "AAAA",
        "cipherfs.diriv",
        "a.b",
        // 21 characters decode to 15 bytes, not a multiple of 16.
        &"A".repeat(21),
        &"_".repeat(300),
    ] {
        assert!(c.decrypt(s, &iv).is_err(), "{s:?}");
    }
    // A name encrypted with non-canonical padding ("a" in 32 bytes) is refused.
    let tfm = Skcipher::alloc("cts(cbc(aes))", Backend::Soft).unwrap();
    let master = MasterKey::generate().unwrap();
    let c = NameCipher::new(&master, NameMode::CtsCbc, Backend::Soft).unwrap();
    tfm.setkey(&master.derive(&[NAMES_INFO], 32).unwrap())
        .unwrap();
    let mut buf = vec![0u8; 32];
    buf[0] = b'a';
    tfm.encrypt_in_place(&iv, &mut buf).unwrap();
    assert!(matches!(
        c.decrypt(&B64URL.encode(&buf), &iv),
        Err(NameError::Garbage)
    ));
    let mut slash = vec![0u8; 16];
    slash[..3].copy_from_slice(b"a/b");
    tfm.encrypt_in_place(&iv, &mut slash).unwrap();
    assert!(matches!(
        c.decrypt(&B64URL.encode(&slash), &iv),
        Err(NameError::Garbage)
    ));
}

#[test]
fn symlink_targets_round_trip_and_fit_path_max() {
    let c = cipher();
    for t in [&b"/"[..], b"../a/b", &[b'x'; 3040]] {
        let s = c.encrypt_target(t).unwrap();
        assert!(s.len() <= LINK_MAX, "{}", s.len());
        assert_eq!(c.decrypt_target(s.as_bytes()).unwrap(), t);
    }
    // From 3041 bytes on the stored form needs a companion.
    for len in [3041, TARGET_MAX] {
        let t = vec![b'y'; len];
        let s = c.encrypt_target(&t).unwrap();
        assert!(s.len() > LINK_MAX && s.len() <= LONGLINK_MAX, "{}", s.len());
        let link = longlink_name(&s);
        assert!(is_longlink(link.as_bytes()) && link.len() < 100);
        assert_eq!(parse_long_target(s.as_bytes(), &link).unwrap(), s);
        assert!(parse_long_target(b"other", &link).is_err());
        assert_eq!(c.decrypt_target(s.as_bytes()).unwrap(), t);
    }
    assert_eq!(LONGLINK_MAX, 5483);
    assert_ne!(
        c.encrypt_target(b"/etc").unwrap(),
        c.encrypt_target(b"/etc").unwrap()
    );
    assert!(matches!(
        c.encrypt_target(&[b'x'; TARGET_MAX + 1]),
        Err(NameError::TooLong(_))
    ));
    assert!(c.decrypt_target(b"not base64!").is_err());
}

#[test]
fn plaintext_mode_refuses_reserved_names() {
    let c = NameCipher::plaintext();
    assert_eq!(
        c.encrypt(b"notes.txt", &[0; 16]).unwrap(),
        StoredName::Short("notes.txt".into())
    );
    assert!(c.encrypt(b"cipherfs.diriv", &[0; 16]).is_err());
    assert!(c.encrypt(b"cipherfs.conf", &[0; 16]).is_err());
    assert!(is_internal("cipherfs.longname.abc.name"));
    assert!(is_internal("cipherfs.longlink.abc"));
    assert!(!is_internal("cipherfs.longname.abc"));
}

/// Format 2: names sharing a prefix share no stored block; the same name in
/// two directories is stored unrelated; a name moved to another directory
/// does not decrypt there (another key).
#[test]
fn format_2_hides_prefixes_and_keys_each_directory() {
    let c = cipher_of(NameMode::Hctr2);
    let iv = [9u8; 16];
    let raw =
        |name: &[u8], iv: &[u8; 16]| B64URL.decode(c.encrypt(name, iv).unwrap().entry()).unwrap();
    let names: [&[u8]; 3] = [
        b"quarterly-report-2025-Q1.pdf",
        b"quarterly-report-2025-Q2.pdf",
        b"quarterly-report-final-version.txt",
    ];
    let stored: Vec<Vec<u8>> = names.iter().map(|n| raw(n, &iv)).collect();
    for (i, a) in stored.iter().enumerate() {
        for b in &stored[i + 1..] {
            for x in a.chunks(16) {
                assert!(!b.chunks(16).any(|y| x == y), "a stored block is shared");
            }
        }
    }
    let other = [10u8; 16];
    let elsewhere = raw(names[0], &other);
    assert!(
        !elsewhere
            .chunks(16)
            .any(|x| stored[0].chunks(16).any(|y| x == y)),
        "the same name in two directories shares a block"
    );
    let moved = B64URL.encode(&stored[0]);
    assert!(!matches!(c.decrypt(&moved, &other), Ok(n) if n == names[0]));
    assert_eq!(c.decrypt(&moved, &iv).unwrap(), names[0]);
}

/// Format 2 refuses what format 1 refuses: bad lengths (not a multiple of
/// 32), padding that is not the shortest, and names that decrypt to a
/// slash, a NUL, "." or "..".
#[test]
fn format_2_refuses_non_canonical_and_impossible_names() {
    let master = MasterKey::generate().unwrap();
    let c = NameCipher::new(&master, NameMode::Hctr2, Backend::Soft).unwrap();
    let iv = [4u8; 16];
    let tfm = Skcipher::alloc(HCTR2, Backend::Soft).unwrap();
    tfm.setkey(&master.derive(&[NAMES_V2_INFO, &iv], 32).unwrap())
        .unwrap();
    let plant = |plain: &[u8], len: usize| {
        let mut buf = plain.to_vec();
        buf.resize(len, 0);
        tfm.encrypt_in_place(&[0u8; 32], &mut buf).unwrap();
        B64URL.encode(&buf)
    };
    // The right key, as a check that planting works at all.
    assert_eq!(c.decrypt(&plant(b"ok", 32), &iv).unwrap(), b"ok");
    assert!(matches!(
        c.decrypt(&plant(b"a", 64), &iv),
        Err(NameError::Garbage)
    ));
    for bad in [&b"a/b"[..], b"a\0b", b".", b".."] {
        assert!(
            matches!(c.decrypt(&plant(bad, 32), &iv), Err(NameError::Garbage)),
            "{bad:?}"
        );
    }
    assert!(matches!(
        c.decrypt(&plant(b"x", 16), &iv),
        Err(NameError::Length(16))
    ));
    assert!(matches!(
        c.decrypt(&plant(b"x", 48), &iv),
        Err(NameError::Length(48))
    ));
    assert!(c.decrypt("!!!", &iv).is_err());
}

#[test]
fn format_2_targets_round_trip_and_any_change_garbles_all() {
    let c = cipher_of(NameMode::Hctr2);
    for t in [&b"/"[..], b"../a/b", &[b'x'; 3040], &[b'y'; TARGET_MAX]] {
        let s = c.encrypt_target(t).unwrap();
        assert_eq!(c.decrypt_target(s.as_bytes()).unwrap(), t);
    }
    // A flipped bit in the last block changes the first bytes too (CBC
    // would garble one block and flip the bit in the next).
    let target = b"/home/someone/documents/a-long-enough-target";
    let stored = c.encrypt_target(target).unwrap();
    let mut raw = B64URL.decode(&stored).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    match c.decrypt_target(B64URL.encode(&raw).as_bytes()) {
        Ok(t) => assert_ne!(t[..8], target[..8]),
        Err(e) => assert!(matches!(e, NameError::Garbage), "{e}"),
    }
}
