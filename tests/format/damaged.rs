//! A corpus of damaged cipher directories made here: each damaged entry gives
//! EIO or is hidden, with a warning naming its cipher path, never a panic, a
//! wrong name or a write that makes things worse; `cipherfs fsck` reports
//! every one, changes nothing unless asked, and with --repair removes only
//! what is provably garbage. (Damaged configs: format/config.rs, mount/basic.rs.)

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::mount::{Mounted, BIN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use cipherfs::config::NameMode;
use cipherfs::crypto::MasterKey;
use cipherfs::names::{NameCipher, StoredName};
use cipherfs::skcipher::{Backend, Skcipher};

/// Every file and directory under `root` with its content, to prove that
/// something changed nothing.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(p.clone());
                out.insert(p, b"<dir>".to_vec());
            } else if t.is_symlink() {
                out.insert(
                    p.clone(),
                    fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                );
            } else {
                out.insert(p.clone(), fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A format 2 stored name for any bytes, bypassing the checks cipherfs
/// makes, so names that decrypt to `/`, NUL, `.` or `..` can be planted:
/// HCTR2 under the directory's key, padded to a multiple of 32.
fn raw_encrypted_name(master: &[u8; 64], diriv: &[u8], plain: &[u8]) -> String {
    let mut key = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(None, master)
        .expand(&[&b"cipherfs v2 names"[..], diriv].concat(), &mut key)
        .unwrap();
    let tfm = Skcipher::alloc("hctr2(aes)", Backend::Soft).unwrap();
    tfm.setkey(&key).unwrap();
    let mut buf = plain.to_vec();
    buf.resize(plain.len().div_ceil(32).max(1) * 32, 0);
    tfm.encrypt_in_place(&[0u8; 32], &mut buf).unwrap();
    B64URL.encode(&buf)
}

fn fsck(m: &Mounted, repair: bool) -> Output {
    let mut c = Command::new(BIN);
    c.arg("fsck");
    if repair {
        c.arg("--repair");
    }
    c.arg("--passfile").arg(&m.passfile).arg(&m.cipher);
    c.output().unwrap()
}

fn errno(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

#[test]
fn damaged_entries_give_eio_or_are_hidden_and_fsck_reports_each() {
    let Some(m) = Mounted::new("damaged", &[]) else {
        return;
    };
    let long = "L".repeat(200);
    fs::write(m.plain.join("good.txt"), b"good").unwrap();
    fs::create_dir(m.plain.join("sub")).unwrap();
    fs::write(m.plain.join("sub/inner.txt"), b"inner").unwrap();
    fs::write(m.plain.join("hdr"), b"header to damage").unwrap();
    fs::write(m.plain.join("size"), vec![5u8; 100]).unwrap();
    fs::write(m.plain.join(&long), b"long name").unwrap();
    fs::create_dir(m.plain.join("noiv")).unwrap();
    fs::write(m.plain.join("noiv/x"), b"x").unwrap();
    m.unmount();

    let out = fsck(&m, false);
    assert!(
        out.status.success(),
        "a clean directory: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(" 0 problems,"));

    // Locate the stored names.
    let key = m.master_key();
    let names = NameCipher::new(
        &MasterKey::from_bytes(&key).unwrap(),
        NameMode::Hctr2,
        Backend::Soft,
    )
    .unwrap();
    let root_iv: [u8; 16] = fs::read(m.cipher.join("cipherfs.diriv"))
        .unwrap()
        .try_into()
        .unwrap();
    let stored = |name: &str| match names.encrypt(name.as_bytes(), &root_iv).unwrap() {
        StoredName::Short(s) => s,
        StoredName::Long { short, .. } => short,
    };
    let c = |name: &str| m.cipher.join(stored(name));

    // The damage, one kind per entry.
    let mut hdr = fs::read(c("hdr")).unwrap();
    hdr[0] = 3;
    fs::write(c("hdr"), &hdr).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(c("size"))
        .unwrap()
        .set_len(40)
        .unwrap();
    let long_entry = c(&long);
    fs::remove_file(format!("{}.name", long_entry.display())).unwrap();
    fs::remove_file(c("noiv").join("cipherfs.diriv")).unwrap();
    let bad_names: Vec<String> = [&b"a/b"[..], b"x\0y", b".", b".."]
        .iter()
        .map(|p| raw_encrypted_name(&key, &root_iv, p))
        .chain(["not*base64".to_string(), "QUJD".to_string()])
        .collect();
    for n in &bad_names {
        fs::write(m.cipher.join(n), b"").unwrap();
    }
    let orphan = m.cipher.join("cipherfs.longname.AAAA.name");
    fs::write(&orphan, b"whatever").unwrap();
    let tmpdir = m.cipher.join(".cipherfs.mkdir.00000000deadbeef");
    fs::create_dir(&tmpdir).unwrap();
    fs::write(tmpdir.join("cipherfs.diriv"), [7u8; 16]).unwrap();

    // fsck: every problem by its cipher path, nothing changed, exit 15.
    let before = snapshot(&m.cipher);
    let out = fsck(&m, false);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(15), "{text}");
    let line_for = |p: &Path| {
        let p = p.display().to_string();
        text.lines()
            .find(|l| l.starts_with(&format!("{p}:")))
            .unwrap_or_else(|| panic!("fsck does not report {p}:\n{text}"))
            .to_string()
    };
    assert!(line_for(&c("hdr")).contains("format version 3"));
    assert!(line_for(&c("size")).contains("impossible"));
    assert!(line_for(&long_entry).contains("companion"));
    assert!(line_for(&c("noiv").join("cipherfs.diriv")).contains("missing"));
    for n in &bad_names {
        assert!(line_for(&m.cipher.join(n)).contains("does not decrypt"));
    }
    assert!(line_for(&orphan).contains("garbage"));
    assert!(line_for(&tmpdir).contains("garbage"));
    assert_eq!(
        text.lines().filter(|l| l.contains("garbage:")).count(),
        2,
        "{text}"
    );
    assert!(
        !text.contains("good.txt") && !text.contains("inner"),
        "{text}"
    );
    assert_eq!(
        snapshot(&m.cipher),
        before,
        "fsck without --repair changed something"
    );

    // The mount: damaged entries are EIO or hidden, with a warning each.
    let sock_path = m.root.join("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    // Read as the daemon writes: a datagram queue holds only a few lines,
    // and the daemon drops what it cannot hand over at once.
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        let mut buf = [0u8; 8192];
        loop {
            match sock.recv(&mut buf) {
                Ok(n) => {
                    log.push_str(&String::from_utf8_lossy(&buf[..n]));
                    log.push('\n');
                }
                Err(_) if stop_rx.try_recv().is_ok() => break log,
                Err(_) => {}
            }
        }
    });
    m.mount_logging_to(&["mount"], &sock_path);
    let mut listed: Vec<String> = fs::read_dir(&m.plain)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    listed.sort();
    // "size" has no size to show: READDIRPLUS leaves it out, a plain READDIR
    // (the kernel picks one or the other) lists its name; named, it is EIO.
    listed.retain(|n| n != "size");
    assert_eq!(
        listed,
        ["good.txt", "hdr", "noiv", "sub"],
        "no wrong or extra names"
    );
    assert_eq!(errno(fs::metadata(m.plain.join("size"))), Some(libc::EIO));
    assert_eq!(fs::read(m.plain.join("good.txt")).unwrap(), b"good");
    assert_eq!(fs::read(m.plain.join("sub/inner.txt")).unwrap(), b"inner");
    assert_eq!(errno(fs::read(m.plain.join("hdr"))), Some(libc::EIO));
    assert_eq!(errno(fs::read(m.plain.join("size"))), Some(libc::EIO));
    assert_eq!(
        errno(fs::read_dir(m.plain.join("noiv")).and_then(|mut d| d.next().transpose())),
        Some(libc::EIO)
    );
    // Writes to damaged files fail and leave them as they were.
    for victim in ["hdr", "size"] {
        let w = fs::OpenOptions::new()
            .write(true)
            .open(m.plain.join(victim))
            .and_then(|f| std::os::unix::fs::FileExt::write_all_at(&f, b"more", 2));
        assert!(w.is_err(), "a write to the damaged {victim} succeeded");
    }
    let _ = fs::OpenOptions::new()
        .append(true)
        .open(m.plain.join("size"))
        .map(|mut f| {
            let _ = std::io::Write::write_all(&mut f, b"appended");
        });
    assert!(m.is_mounted(), "the daemon survived");
    // Until a read times out after everything was done.
    std::thread::sleep(Duration::from_millis(200));
    stop_tx.send(()).unwrap();
    let log = reader.join().unwrap();
    assert!(
        !log.contains("lines dropped"),
        "the test lost lines:\n{log}"
    );
    for n in bad_names.iter().chain([&stored(&long)]) {
        assert!(log.contains(n.as_str()), "no warning names {n}:\n{log}");
    }
    assert!(
        log.contains(&stored("hdr")) && log.contains(&stored("size")),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    m.unmount();
    assert_eq!(
        snapshot(&m.cipher),
        before,
        "the mount changed damaged entries"
    );

    // --repair: lists and removes the two garbage entries, nothing else.
    let out = fsck(&m, true);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(15),
        "unrepairable problems remain: {text}"
    );
    assert!(
        text.contains(&format!("removed {}", orphan.display())),
        "{text}"
    );
    assert!(
        text.contains(&format!("removed {}", tmpdir.display())),
        "{text}"
    );
    let mut expected = before.clone();
    expected.retain(|p, _| !p.starts_with(&tmpdir) && *p != orphan);
    assert_eq!(
        snapshot(&m.cipher),
        expected,
        "--repair removed more than the garbage"
    );
    let out = fsck(&m, false);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !text.contains("garbage:") && text.contains(" 0 of them garbage"),
        "{text}"
    );
}
