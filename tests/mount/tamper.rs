//! The AEAD sector mode against a writer of the cipher directory: every
//! change to a stored sector, and every sector moved within or between
//! files, gives EIO for reads of that sector alone, one log line naming the
//! cipher file and sector, and an fsck entry naming exactly those sectors.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::common::mount::Mounted;
use crate::common::{Rng, GCM};

const S: usize = 4096;
const STRIDE: usize = S + 28;
/// Three full sectors and a short one.
const LEN: usize = 3 * S + 100;

/// The damage done to one file, and the sectors it must make unreadable.
struct Case {
    name: &'static str,
    bad: &'static [u64],
}

const CASES: &[Case] = &[
    Case {
        name: "nonce",
        bad: &[1],
    },
    Case {
        name: "ciphertext",
        bad: &[1],
    },
    Case {
        name: "tag",
        bad: &[1],
    },
    Case {
        name: "last-tag",
        bad: &[3],
    },
    Case {
        name: "header-nonce",
        bad: &[0, 1, 2, 3],
    },
    Case {
        name: "swap",
        bad: &[1, 2],
    },
    Case {
        name: "copy",
        bad: &[1],
    },
    Case {
        name: "untouched",
        bad: &[],
    },
];

/// Where sector `n` is stored.
fn at(n: usize) -> usize {
    32 + n * STRIDE
}

fn damage(case: &str, c: &mut [u8], other: &[u8]) {
    match case {
        "nonce" => c[at(1) + 5] ^= 0x01,
        "ciphertext" => c[at(1) + 12 + 1234] ^= 0x80,
        "tag" => c[at(1) + 12 + S] ^= 0x04,
        "last-tag" => *c.last_mut().unwrap() ^= 0x40,
        "header-nonce" => c[20] ^= 0x02,
        "swap" => {
            let one = c[at(1)..at(2)].to_vec();
            c.copy_within(at(2)..at(3), at(1));
            c[at(2)..at(3)].copy_from_slice(&one);
        }
        // Sector 1 of another file of the same size, under the same master key.
        "copy" => c[at(1)..at(2)].copy_from_slice(&other[at(1)..at(2)]),
        _ => {}
    }
}

#[test]
fn tampered_sectors_give_eio_alone_and_fsck_names_exactly_them() {
    let Some(m) = Mounted::new("tamper", GCM.init) else {
        return;
    };
    let mut rng = Rng::new(17);
    let data: Vec<Vec<u8>> = CASES.iter().map(|_| rng.bytes(LEN)).collect();
    for (case, d) in CASES.iter().zip(&data) {
        fs::write(m.plain.join(case.name), d).unwrap();
    }
    let other = rng.bytes(LEN);
    fs::write(m.plain.join("other"), &other).unwrap();
    m.unmount();
    // Which stored file is which, by what it decrypts to.
    let master = m.master_key();
    let stored: Vec<(PathBuf, Vec<u8>)> = m
        .cipher_files()
        .into_iter()
        .map(|f| {
            let c = fs::read(&f).unwrap();
            let p = GCM.decrypt_file(&master, &c, S).unwrap();
            (f, p)
        })
        .collect();
    let find = |plain: &[u8]| {
        stored
            .iter()
            .find(|(_, p)| p == plain)
            .map(|(f, _)| f.clone())
            .unwrap()
    };
    let other_c = fs::read(find(&other)).unwrap();
    let mut paths = Vec::new();
    for (case, d) in CASES.iter().zip(&data) {
        let f = find(d);
        let mut c = fs::read(&f).unwrap();
        assert_eq!(c.len(), 32 + LEN + 4 * 28, "{}", case.name);
        damage(case.name, &mut c, &other_c);
        fs::write(&f, &c).unwrap();
        paths.push(f);
    }

    let log = m.root.join("log");
    let mut daemon = m.spawn_logging_to(&log);
    for (case, d) in CASES.iter().zip(&data) {
        let f = fs::File::open(m.plain.join(case.name)).unwrap();
        assert_eq!(f.metadata().unwrap().len(), LEN as u64, "{}", case.name);
        for n in 0..4u64 {
            let off = n as usize * S;
            let mut buf = vec![0u8; (LEN - off).min(S)];
            match f.read_exact_at(&mut buf, off as u64) {
                Ok(()) => {
                    assert!(!case.bad.contains(&n), "{}: sector {n} read", case.name);
                    assert_eq!(buf, d[off..off + buf.len()], "{}: sector {n}", case.name);
                }
                Err(e) => {
                    assert!(case.bad.contains(&n), "{}: sector {n}: {e}", case.name);
                    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{}: {e}", case.name);
                }
            }
        }
        let whole = fs::read(m.plain.join(case.name));
        assert_eq!(whole.is_ok(), case.bad.is_empty(), "{}", case.name);
    }
    m.unmount();
    daemon.wait().unwrap();

    // Each bad sector was logged, naming the cipher file and the sector, and
    // nothing else was.
    let text = fs::read_to_string(&log).unwrap();
    for (case, path) in CASES.iter().zip(&paths) {
        for n in 0..4u64 {
            let line = format!("{}: sector {n} fails authentication", path.display());
            assert_eq!(
                text.contains(&line),
                case.bad.contains(&n),
                "{}: sector {n} in the log:\n{text}",
                case.name
            );
        }
    }
    assert!(
        text.lines()
            .filter(|l| l.contains("WARN"))
            .all(|l| l.contains("fails authentication")),
        "{text}"
    );

    // fsck lists exactly those sectors, and nothing for the others.
    let out = m.fsck(&[]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(15), "{report}");
    let expect = [
        ("nonce", "sector 1 fails"),
        ("ciphertext", "sector 1 fails"),
        ("tag", "sector 1 fails"),
        ("last-tag", "sector 3 fails"),
        ("header-nonce", "sectors 0-3 fail"),
        ("swap", "sectors 1-2 fail"),
        ("copy", "sector 1 fails"),
    ];
    for (case, path) in CASES.iter().zip(&paths) {
        let lines: Vec<&str> = report
            .lines()
            .filter(|l| l.starts_with(&format!("{}:", path.display())))
            .collect();
        match expect.iter().find(|e| e.0 == case.name) {
            Some((_, what)) => {
                assert_eq!(lines.len(), 1, "{}: {report}", case.name);
                assert!(lines[0].contains(what), "{}: {}", case.name, lines[0]);
                assert!(lines[0].ends_with(&format!("[plaintext /{}]", case.name)));
            }
            None => assert!(lines.is_empty(), "{}: {report}", case.name),
        }
    }
    assert!(report.contains("7 problems"), "{report}");
}

/// What cipherfs(5) says the AEAD mode does not detect, it does not:
/// rollback of a sector or a file, truncation at a sector boundary, a
/// zeroed sector (a hole) and swapped whole files all read without an
/// error, and fsck finds nothing.
#[test]
fn what_gcm_does_not_detect_is_as_documented() {
    let Some(m) = Mounted::new("undetected", GCM.init) else {
        return;
    };
    let mut rng = Rng::new(23);
    let names = [
        "sector-rollback",
        "file-rollback",
        "cut",
        "zeroed",
        "e",
        "f",
    ];
    let data: Vec<Vec<u8>> = names.iter().map(|_| rng.bytes(LEN)).collect();
    for (n, d) in names.iter().zip(&data) {
        fs::write(m.plain.join(n), d).unwrap();
    }
    let stored_of = |m: &Mounted, plain: &[u8]| {
        let master = m.master_key();
        m.cipher_files()
            .into_iter()
            .find(|f| {
                GCM.decrypt_file(&master, &fs::read(f).unwrap(), S)
                    .as_deref()
                    == Ok(plain)
            })
            .unwrap()
    };
    m.unmount();
    let paths: Vec<PathBuf> = data.iter().map(|d| stored_of(&m, d)).collect();
    let old: Vec<Vec<u8>> = paths.iter().map(|p| fs::read(p).unwrap()).collect();
    m.mount();
    // New versions: sector 1 of the first file, all of the second.
    let newer = rng.bytes(S);
    let f = fs::OpenOptions::new()
        .write(true)
        .open(m.plain.join(names[0]))
        .unwrap();
    f.write_all_at(&newer, S as u64).unwrap();
    drop(f);
    fs::write(m.plain.join(names[1]), rng.bytes(LEN)).unwrap();
    m.unmount();

    let mut c = fs::read(&paths[0]).unwrap();
    c[at(1)..at(2)].copy_from_slice(&old[0][at(1)..at(2)]);
    fs::write(&paths[0], &c).unwrap();
    fs::write(&paths[1], &old[1]).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&paths[2])
        .unwrap()
        .set_len(at(2) as u64)
        .unwrap();
    let mut c = fs::read(&paths[3]).unwrap();
    c[at(1)..at(2)].fill(0);
    fs::write(&paths[3], &c).unwrap();
    fs::write(&paths[4], &old[5]).unwrap();
    fs::write(&paths[5], &old[4]).unwrap();

    m.mount();
    let read = |n: &str| fs::read(m.plain.join(n)).unwrap();
    assert_eq!(read(names[0]), data[0], "the old sector 1 is back");
    assert_eq!(read(names[1]), data[1], "the old file is back");
    assert_eq!(read(names[2]), data[2][..2 * S], "cut after sector 1");
    let mut zeroed = data[3].clone();
    zeroed[S..2 * S].fill(0);
    assert_eq!(read(names[3]), zeroed, "a zeroed sector reads as a hole");
    assert_eq!(read(names[4]), data[5], "whole files swapped");
    assert_eq!(read(names[5]), data[4], "whole files swapped");
    m.unmount();
    let out = m.fsck(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// fsck's progress bar (drawn on a terminal) counts the stored bytes whose
/// tags it verifies in a GCM directory, and entries in an XTS one.
#[test]
fn fsck_progress_counts_bytes_when_contents_are_authenticated() {
    use crate::common::XTS;
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP fsck progress: `script` (util-linux) is not installed, so no terminal");
        return;
    }
    // The bar reads "N/3 entries" when it counts entries.
    for (mode, want, not) in [
        (GCM, "MiB verified", "/3 entries"),
        (XTS, "/3 entries", "verified"),
    ] {
        let Some(m) = Mounted::new(&mode.test("progress"), mode.init) else {
            return;
        };
        fs::write(m.plain.join("big"), vec![7u8; 3 << 20]).unwrap();
        m.unmount();
        // `script` gives fsck a terminal, so it draws its bar.
        let cmd = format!(
            "{} fsck --passfile {} {}",
            crate::common::mount::BIN,
            m.passfile.display(),
            m.cipher.display()
        );
        let out = std::process::Command::new("script")
            .args(["-qfec", &cmd, "/dev/null"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(
            text.contains(want) && !text.contains(not),
            "{}: {text}",
            mode.name
        );
        if mode.name == "gcm" {
            // 3 MiB in 768 sectors of 28 bytes more, and the header.
            assert!(text.contains("/3.02 MiB verified"), "{text}");
        }
    }
}

/// fsck skips holes (SEEK_DATA) instead of reading them: a 512 GiB sparse
/// file is checked at once, and a forged sector past the hole is still named.
#[test]
fn fsck_skips_holes_but_not_the_sectors_after_them() {
    let Some(m) = Mounted::new("holes", GCM.init) else {
        return;
    };
    let far: u64 = 512 << 30;
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(m.plain.join("sparse"))
        .unwrap();
    f.write_all_at(&[1u8; 5000], 0).unwrap();
    f.write_all_at(&[2u8; 5000], far).unwrap();
    drop(f);
    m.unmount();
    let stored = m.cipher_files().pop().unwrap();
    let n = far / S as u64;
    let at_far = 32 + n * STRIDE as u64 + 12 + 100;
    let c = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&stored)
        .unwrap();
    let mut b = [0u8; 1];
    c.read_exact_at(&mut b, at_far).unwrap();
    c.write_all_at(&[b[0] ^ 1], at_far).unwrap();
    drop(c);
    let start = std::time::Instant::now();
    let out = m.fsck(&[]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "fsck read the hole: {:?}",
        start.elapsed()
    );
    assert!(
        report.contains(&format!("sector {n} fails authentication")),
        "{report}"
    );
    assert_eq!(report.matches("fail").count(), 1, "{report}");
}
