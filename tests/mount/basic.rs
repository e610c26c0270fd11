//! Real mounts: sizes at every boundary, what lands in the cipher directory,
//! hard links, symlinks, long names, and bad input.

use crate::common;

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use crate::common::mount::{cipherfs, Mounted};
use crate::common::Rng;

fn sizes(sector: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..=40).chain([63, 64, 65, 100]).collect();
    for k in 1..=2u64 {
        v.extend((k * sector - 17)..=(k * sector + 17));
    }
    // Large enough that one request spans many sectors (the parallel path).
    v.extend([
        8 * sector - 1,
        8 * sector,
        8 * sector + 1,
        64 * sector + 17,
        (1 << 20) + 5,
        3 << 20,
    ]);
    v
}

crate::in_both_content_modes!(every_size_round_trips_and_decrypts_independently);

fn every_size_round_trips_and_decrypts_independently(mode: common::ContentMode) {
    let Some(m) = Mounted::new(&mode.test("sizes"), mode.init) else {
        return;
    };
    let mut rng = Rng::new(1);
    let mut written: HashMap<Vec<u8>, usize> = HashMap::new();
    for (i, size) in sizes(4096).into_iter().enumerate() {
        let data = rng.bytes(size as usize);
        let p = m.plain.join(format!("f{i:03}"));
        fs::write(&p, &data).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().len(), size, "stat size of {size}");
        assert_eq!(fs::read(&p).unwrap(), data, "read back {size}");
        *written.entry(data).or_default() += 1;
    }
    m.remount();
    for (i, size) in sizes(4096).into_iter().enumerate() {
        assert_eq!(
            fs::metadata(m.plain.join(format!("f{i:03}")))
                .unwrap()
                .len(),
            size
        );
    }
    // Every cipher file decrypts, by the format rules alone, to one of the plaintexts.
    let master = m.master_key();
    let files = m.cipher_files();
    assert_eq!(files.len(), written.values().sum::<usize>());
    for f in files {
        let c = fs::read(&f).unwrap();
        let p = mode.decrypt_file(&master, &c, 4096).unwrap();
        let n = written
            .get_mut(&p)
            .unwrap_or_else(|| panic!("{} decrypts to no written file", f.display()));
        *n -= 1;
    }
}

#[test]
fn no_plaintext_name_or_content_reaches_the_cipher_directory() {
    let Some(m) = Mounted::new("canary", &[]) else {
        return;
    };
    let name = "CANARYNAME-7f3a";
    let content = b"CANARYCONTENT-91bd ".repeat(1000);
    fs::create_dir(m.plain.join("CANARYDIR-55c1")).unwrap();
    fs::write(m.plain.join("CANARYDIR-55c1").join(name), &content).unwrap();
    std::os::unix::fs::symlink("CANARYTARGET-e0e0", m.plain.join("link")).unwrap();
    // Two identical files in one directory, and the same name in two directories.
    fs::write(m.plain.join("twin-a"), &content).unwrap();
    fs::write(m.plain.join("twin-b"), &content).unwrap();
    fs::write(m.plain.join(name), b"x").unwrap();
    m.unmount();
    let mut seen = Vec::new();
    for e in walkdir(&m.cipher) {
        let n = e.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !n.contains("CANARY"),
            "plaintext name in the cipher directory: {n}"
        );
        seen.push(n);
        let meta = fs::symlink_metadata(&e).unwrap();
        let bytes = if meta.file_type().is_symlink() {
            fs::read_link(&e)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        } else if meta.is_file() {
            fs::read(&e).unwrap()
        } else {
            continue;
        };
        assert!(!contains(&bytes, b"CANARY"), "plaintext in {}", e.display());
    }
    let files = m.cipher_files();
    let mut contents: Vec<Vec<u8>> = files
        .iter()
        .map(|f| fs::read(f).unwrap())
        .filter(|c| c.len() > 100)
        .collect();
    contents.sort();
    contents.dedup();
    assert_eq!(
        contents.len(),
        3,
        "identical files must not share ciphertext"
    );
    let root_names: Vec<_> = fs::read_dir(&m.cipher)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let sub = walkdir(&m.cipher).into_iter().find(|p| p.is_dir()).unwrap();
    let sub_names: Vec<_> = fs::read_dir(sub)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        sub_names
            .iter()
            .all(|n| n == "cipherfs.diriv" || !root_names.contains(n)),
        "same name, same ciphertext"
    );
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn walkdir(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(d).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walkdir(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn links_symlinks_and_long_names() {
    let Some(m) = Mounted::new("links", &[]) else {
        return;
    };
    let a = m.plain.join("a");
    fs::write(&a, b"shared").unwrap();
    fs::hard_link(&a, m.plain.join("b")).unwrap();
    let (ia, ib) = (
        fs::metadata(&a).unwrap().ino(),
        fs::metadata(m.plain.join("b")).unwrap().ino(),
    );
    assert_eq!(ia, ib, "hard links must show one inode number");
    assert_eq!(fs::metadata(&a).unwrap().nlink(), 2);
    fs::OpenOptions::new()
        .append(true)
        .open(m.plain.join("b"))
        .unwrap()
        .write_all(b"+more")
        .unwrap();
    assert_eq!(fs::read(&a).unwrap(), b"shared+more");

    std::os::unix::fs::symlink("../some/where", m.plain.join("sl")).unwrap();
    assert_eq!(
        fs::read_link(m.plain.join("sl")).unwrap().to_str(),
        Some("../some/where")
    );
    assert_eq!(fs::symlink_metadata(m.plain.join("sl")).unwrap().len(), 13);

    let long = "L".repeat(255);
    fs::write(m.plain.join(&long), b"long").unwrap();
    fs::create_dir(m.plain.join("d")).unwrap();
    fs::rename(m.plain.join(&long), m.plain.join("d").join(&long)).unwrap();
    assert_eq!(fs::read(m.plain.join("d").join(&long)).unwrap(), b"long");
    assert!(
        fs::write(m.plain.join("x".repeat(256)), b"").is_err(),
        "256-byte names are refused"
    );
    m.remount();
    let names: Vec<String> = fs::read_dir(m.plain.join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![long.clone()]);
    assert_eq!(fs::read(m.plain.join("b")).unwrap(), b"shared+more");
    assert_eq!(
        fs::read_link(m.plain.join("sl")).unwrap().to_str(),
        Some("../some/where")
    );
    fs::remove_file(m.plain.join("d").join(&long)).unwrap();
    fs::remove_dir(m.plain.join("d")).unwrap();
    let leftovers: Vec<_> = fs::read_dir(&m.cipher)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with("cipherfs.longname"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "long-name companions left behind: {leftovers:?}"
    );
}

#[test]
fn damaged_files_give_eio_and_bad_names_are_skipped() {
    let Some(m) = Mounted::new("damage", &[]) else {
        return;
    };
    fs::write(m.plain.join("good"), b"good data").unwrap();
    fs::write(m.plain.join("bad"), b"will be damaged").unwrap();
    m.unmount();
    // Damage one file's header: its version byte.
    let files = m.cipher_files();
    let victim = files.iter().find(|f| {
        let c = fs::read(f).unwrap();
        common::independent::decrypt_xts_file(&m.master_key(), &c, 4096, 64).unwrap()
            == b"will be damaged"
    });
    let victim = victim.unwrap().clone();
    let mut c = fs::read(&victim).unwrap();
    c[0] = 9;
    fs::write(&victim, &c).unwrap();
    // A name that is not base64, and one of an impossible length.
    fs::write(m.cipher.join("not base64!"), b"").unwrap();
    fs::write(m.cipher.join("AAAA"), b"").unwrap();
    m.mount();
    let names: Vec<String> = fs::read_dir(&m.plain)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec!["bad", "good"],
        "undecryptable names are skipped, the rest listed"
    );
    assert_eq!(fs::read(m.plain.join("good")).unwrap(), b"good data");
    let e = fs::read(m.plain.join("bad")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    // The rest of the mount still works.
    fs::write(m.plain.join("new"), b"after").unwrap();
    assert_eq!(fs::read(m.plain.join("new")).unwrap(), b"after");
}

#[test]
fn wrong_password_and_missing_config_have_their_exit_codes() {
    let Some(m) = Mounted::new("password", &[]) else {
        return;
    };
    m.unmount();
    let bad = m.root.join("badpw");
    common::mount::write_private(&bad, "nope\n");
    let out = cipherfs(&[
        "mount",
        "--passfile",
        bad.to_str().unwrap(),
        m.cipher.to_str().unwrap(),
        m.plain.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(10));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong password"));
    // A password file every user can read is refused, before it is used.
    let open = m.root.join("openpw");
    fs::copy(&m.passfile, &open).unwrap();
    fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = cipherfs(&[
        "mount",
        "--passfile",
        open.to_str().unwrap(),
        m.cipher.to_str().unwrap(),
        m.plain.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("readable by every user") && err.contains("chmod o-r"),
        "{err}"
    );
    assert!(!m.is_mounted());
    let empty = m.root.join("empty");
    fs::create_dir_all(&empty).unwrap();
    let out = cipherfs(&[
        "mount",
        "--passfile",
        m.passfile.to_str().unwrap(),
        empty.to_str().unwrap(),
        m.plain.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(11),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cipherfs(&[
        "mount",
        "--passfile",
        m.passfile.to_str().unwrap(),
        m.cipher.to_str().unwrap(),
        m.root.join("nope").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(13));
    // init refuses a non-empty directory.
    let out = cipherfs(&[
        "init",
        "--passfile",
        m.passfile.to_str().unwrap(),
        m.cipher.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(12));
}

crate::in_both_content_modes!(truncate_append_and_sparse_files);

fn truncate_append_and_sparse_files(mode: common::ContentMode) {
    let Some(m) = Mounted::new(&mode.test("truncate"), mode.init) else {
        return;
    };
    let p = m.plain.join("t");
    let mut f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&p)
        .unwrap();
    f.write_all(&[7u8; 5000]).unwrap();
    f.set_len(100).unwrap();
    f.set_len(10_000).unwrap();
    let mut all = Vec::new();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_to_end(&mut all).unwrap();
    assert_eq!(all.len(), 10_000);
    assert!(all[..100].iter().all(|&b| b == 7) && all[100..].iter().all(|&b| b == 0));
    // A huge truncate is instant and takes no space. 8 TiB: ext4 (under
    // /tmp here) refuses files over 16 TiB; tmpfs or XFS backing take a petabyte.
    let huge = 1u64 << 43;
    f.set_len(huge).unwrap();
    assert_eq!(fs::metadata(&p).unwrap().len(), huge);
    f.seek(SeekFrom::Start(huge - 3)).unwrap();
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, vec![0, 0, 0]);
    assert!(fs::metadata(&m.cipher_files()[0]).unwrap().blocks() < 64);
    f.set_len(0).unwrap();
    assert_eq!(
        fs::metadata(&m.cipher_files()[0]).unwrap().len(),
        0,
        "truncate to 0 drops the header"
    );
    // O_APPEND and a write-only handle.
    let mut w = fs::OpenOptions::new()
        .append(true)
        .custom_flags(0)
        .open(&p)
        .unwrap();
    w.write_all(b"abc").unwrap();
    w.write_all(b"def").unwrap();
    drop(w);
    let mut wo = fs::OpenOptions::new().write(true).open(&p).unwrap();
    wo.seek(SeekFrom::Start(1)).unwrap();
    wo.write_all(b"X").unwrap();
    drop(wo);
    assert_eq!(fs::read(&p).unwrap(), b"aXcdef");
    // O_TRUNC.
    fs::write(&p, b"new").unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"new");
}

#[test]
fn a_read_only_cipher_directory_mounts_and_refuses_writes_with_erofs() {
    let Some(m) = Mounted::new("readonly", &[]) else {
        return;
    };
    fs::write(m.plain.join("kept"), b"still readable").unwrap();
    m.unmount();
    // A read-only bind mount of the cipher directory (root only, as in CI).
    let ro = m.root.join("ro");
    fs::create_dir_all(&ro).unwrap();
    let sh = |cmd: String| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .status()
            .unwrap()
            .success()
    };
    if !sh(format!(
        "mount --bind {} {} && mount -o remount,bind,ro {}",
        m.cipher.display(),
        ro.display(),
        ro.display()
    )) {
        eprintln!(
            "SKIP a_read_only_cipher_directory: cannot make a read-only bind mount (not root?)"
        );
        return;
    }
    let out = cipherfs(&[
        "mount",
        "--passfile",
        m.passfile.to_str().unwrap(),
        ro.to_str().unwrap(),
        m.plain.to_str().unwrap(),
    ]);
    let result = std::panic::catch_unwind(|| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(fs::read(m.plain.join("kept")).unwrap(), b"still readable");
        let e = fs::write(m.plain.join("new"), b"x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
        let e = fs::OpenOptions::new()
            .append(true)
            .open(m.plain.join("kept"))
            .and_then(|mut f| f.write_all(b"x"))
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
    });
    let _ = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg(&m.plain)
        .status();
    std::thread::sleep(std::time::Duration::from_millis(200));
    sh(format!("umount {}", ro.display()));
    result.unwrap();
}

/// Where a mount may go: a missing path is named as missing; a non-empty
/// mount point is refused unless `-o nonempty`; a mount point inside the
/// cipher directory, or the cipher directory inside the mount point, is
/// always refused (exit 13). init makes a missing cipher directory.
#[test]
fn mount_places_and_missing_paths_are_refused_clearly() {
    let Some(m) = Mounted::new("places", &[]) else {
        return;
    };
    m.unmount();
    let pw = m.passfile.to_str().unwrap();
    let c = m.cipher.to_str().unwrap();
    let mount = |cipher: &str, point: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["mount", "--passfile", pw];
        args.extend_from_slice(extra);
        args.extend([cipher, point.to_str().unwrap()]);
        let o = cipherfs(&args);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = mount(c, &m.root.join("missing"), &[]);
    assert_eq!(code, Some(13));
    assert!(err.contains("does not exist"), "{err}");
    let missing = m.root.join("no-vault");
    let (code, err) = mount(missing.to_str().unwrap(), &m.plain, &[]);
    assert_eq!(code, Some(12));
    assert!(
        err.contains("does not exist") && err.contains("cipherfs init"),
        "{err}"
    );
    // Inside one another, both ways.
    let inner = m.cipher.join("mnt");
    fs::create_dir(&inner).unwrap();
    let (code, err) = mount(c, &inner, &[]);
    assert_eq!(code, Some(13), "{err}");
    assert!(err.contains("inside one another"), "{err}");
    fs::remove_dir(&inner).unwrap();
    let (code, err) = mount(c, &m.root, &["-o", "nonempty"]);
    assert_eq!(code, Some(13), "{err}");
    assert!(err.contains("inside one another"), "{err}");
    // A non-empty mount point: refused, then allowed with -o nonempty.
    fs::write(m.plain.join("hidden"), b"would be hidden").unwrap();
    let (code, err) = mount(c, &m.plain, &[]);
    assert_eq!(code, Some(13), "{err}");
    assert!(
        err.contains("not empty") && err.contains("nonempty"),
        "{err}"
    );
    assert!(!m.is_mounted());
    let (code, err) = mount(c, &m.plain, &["-o", "nonempty"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(m.is_mounted());
    assert!(!m.plain.join("hidden").exists());
    m.unmount();
    fs::remove_file(m.plain.join("hidden")).unwrap();
    // init makes a missing directory (its parent must exist), mode 0700.
    let fresh = m.root.join("fresh");
    let o = common::mount::init_cheap(&m.passfile, &fresh, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(fs::metadata(&fresh).unwrap().mode() & 0o777, 0o700);
    let deep = m.root.join("a/b/c");
    let o = cipherfs(&["init", "--passfile", pw, deep.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(12));
    assert!(String::from_utf8_lossy(&o.stderr).contains("mkdir -p"));
}

/// An -o option the mount would refuse with a bare EINVAL is refused before
/// mounting, by name, with the list of those that work; kernel_cache is
/// refused with its reason; max_read= and generic flags go through.
#[test]
fn unknown_mount_options_are_refused_by_name() {
    let Some(m) = Mounted::new("options", &[]) else {
        return;
    };
    m.unmount();
    let pw = m.passfile.to_str().unwrap();
    let mount = |o: &str| {
        let out = cipherfs(&[
            "mount",
            "--passfile",
            pw,
            "-o",
            o,
            m.cipher.to_str().unwrap(),
            m.plain.to_str().unwrap(),
        ]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = mount("nodev,bogusopt");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("\"bogusopt\"") && err.contains("noxattr") && err.contains("nosuid"),
        "{err}"
    );
    let (code, err) = mount("max_read=lots");
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = mount("kernel_cache");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("kernel_cache") && err.contains("underneath"),
        "{err}"
    );
    assert!(!m.is_mounted());
    let (code, err) = mount("max_read=65536,noatime,nosuid,nofail");
    assert_eq!(code, Some(0), "{err}");
    assert!(m.is_mounted());
    fs::write(m.plain.join("f"), b"x").unwrap();
    m.unmount();
}
