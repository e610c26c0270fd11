//! Real mounts: concurrent writers, passwd, info, signals, special files,
//! ownership and times.

use crate::common;

use std::fs;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use crate::common::mount::{cipherfs, sigterm, wait_until, Mounted};

/// A 4096-aligned buffer, as O_DIRECT wants.
fn aligned(len: usize) -> (Vec<u8>, usize) {
    let v = vec![0u8; len + 4096];
    let off = (4096 - v.as_ptr() as usize % 4096) % 4096;
    (v, off)
}

#[test]
fn direct_io_works_and_readers_never_see_a_half_rewritten_sector() {
    use std::os::unix::fs::OpenOptionsExt;
    let Some(m) = Mounted::new("torn", &[]) else {
        return;
    };
    let p = m.plain.join("shared");
    let len = 3 * 4096;
    fs::write(&p, vec![0xAAu8; len]).unwrap();
    // O_DIRECT on both sides, so every read and write reaches the daemon (a
    // backing open with O_DIRECT once made these EIO). The kernel serialises
    // them per inode too, so the daemon's own lock is tested in tests/format/fs_core.rs.
    let open = |write: bool| {
        fs::OpenOptions::new()
            .read(!write)
            .write(write)
            .custom_flags(libc::O_DIRECT)
            .open(&p)
            .unwrap()
    };
    let runs = common::torn_sector_reads(
        300,
        20,
        || {
            let (f, (mut buf, off)) = (open(true), aligned(len));
            move |fill| {
                buf[off..off + len].fill(fill);
                f.write_all_at(&buf[off..off + len], 0).unwrap();
            }
        },
        || {
            let (f, (mut buf, off)) = (open(false), aligned(len));
            move || {
                f.read_exact_at(&mut buf[off..off + len], 0).unwrap();
                buf[off..off + len].to_vec()
            }
        },
    );
    for (torn, reads) in runs {
        assert_eq!(
            torn, 0,
            "{torn} sectors read half-rewritten in {reads} reads"
        );
    }
}

#[test]
fn passwd_changes_the_password_and_keeps_the_data() {
    let Some(m) = Mounted::new("passwd", &[]) else {
        return;
    };
    fs::write(m.plain.join("keep"), b"kept").unwrap();
    m.unmount();
    let newpw = m.root.join("newpw");
    common::mount::write_private(&newpw, "another password\n");
    let (c, pw, npw) = (
        m.cipher.to_str().unwrap(),
        m.passfile.to_str().unwrap(),
        newpw.to_str().unwrap(),
    );
    let out = cipherfs(&["passwd", "--passfile", pw, "--new-passfile", npw, c]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cipherfs(&["mount", "--passfile", pw, c, m.plain.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(10),
        "the old password must stop working"
    );
    fs::copy(&newpw, &m.passfile).unwrap();
    m.mount();
    assert_eq!(fs::read(m.plain.join("keep")).unwrap(), b"kept");
}

#[test]
fn info_shows_the_key_only_when_asked() {
    let Some(m) = Mounted::new(
        "info",
        &["--cipher", "essiv-aes-256", "--sector-size", "1024"],
    ) else {
        return;
    };
    let out = cipherfs(&["info", m.cipher.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success());
    assert!(
        text.contains("essiv(cbc(aes),sha256)") && text.contains("1024"),
        "{text}"
    );
    assert!(!text.contains("master key"), "{text}");
    let key = m.master_key();
    assert_ne!(key, [0u8; 64]);
    // The ESSIV directory works end to end too.
    fs::write(m.plain.join("e"), vec![5u8; 5000]).unwrap();
    m.remount();
    assert_eq!(fs::read(m.plain.join("e")).unwrap(), vec![5u8; 5000]);
}

#[test]
fn sigterm_unmounts_a_foreground_daemon_cleanly() {
    let Some(m) = Mounted::new("sigterm", &[]) else {
        return;
    };
    m.unmount();
    let mut child = m
        .foreground_command()
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the foreground mount", 10, || m.is_mounted());
    fs::write(m.plain.join("x"), b"y").unwrap();
    sigterm(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert!(!m.is_mounted(), "still mounted after SIGTERM");
}

#[test]
fn fifos_ownership_and_times() {
    let Some(m) = Mounted::new("special", &[]) else {
        return;
    };
    let fifo = m.plain.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    let f = m.plain.join("owned");
    fs::write(&f, b"x").unwrap();
    std::os::unix::fs::chown(&f, Some(1234), Some(4321)).unwrap();
    let meta = fs::metadata(&f).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 4321));
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(when)
        .unwrap();
    assert_eq!(fs::metadata(&f).unwrap().modified().unwrap(), when);
    let st = cipherfs_statfs(&m.plain);
    assert!(st > 0);
}

fn cipherfs_statfs(p: &std::path::Path) -> u64 {
    let out = Command::new("stat")
        .arg("-f")
        .arg("-c")
        .arg("%b")
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn user_xattrs_round_trip_and_are_stored_encrypted() {
    let Some(m) = Mounted::new("xattr", &[]) else {
        return;
    };
    let f = m.plain.join("tagged");
    fs::write(&f, b"x").unwrap();
    let run = |args: &[&str]| Command::new(args[0]).args(&args[1..]).output().unwrap();
    let fp = f.to_str().unwrap();
    let has_tools = run(&["sh", "-c", "command -v setfattr"]).status.success();
    // setfattr/getfattr (Debian's attr package) when present; otherwise xattr
    // calls through rustix, the same syscalls.
    if has_tools {
        assert!(
            run(&["setfattr", "-n", "user.colour", "-v", "CANARYVALUE", fp])
                .status
                .success()
        );
        let out = run(&["getfattr", "--only-values", "-n", "user.colour", fp]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "CANARYVALUE");
    } else {
        rustix::fs::setxattr(
            fp,
            "user.colour",
            b"CANARYVALUE",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        let mut buf = [0u8; 64];
        let n = rustix::fs::getxattr(fp, "user.colour", &mut buf[..]).unwrap();
        assert_eq!(&buf[..n], b"CANARYVALUE");
    }
    let mut list = [0u8; 256];
    let n = rustix::fs::listxattr(fp, &mut list[..]).unwrap();
    assert_eq!(&list[..n], b"user.colour\0");
    assert!(rustix::fs::setxattr(fp, "trusted.x", b"v", rustix::fs::XattrFlags::empty()).is_err());
    // Namespaces cipherfs does not store are unsupported, not merely empty:
    // that tells ls and libacl to stop asking on this mount.
    for other in ["security.selinux", "system.posix_acl_access", "trusted.x"] {
        assert_eq!(
            rustix::fs::getxattr(fp, other, &mut [0u8; 64][..]).unwrap_err(),
            rustix::io::Errno::NOTSUP,
            "{other}"
        );
    }
    m.remount();
    let mut buf = [0u8; 64];
    let n = rustix::fs::getxattr(fp, "user.colour", &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"CANARYVALUE");
    // On disk: neither the name nor the value in plaintext.
    let cf = m.cipher_files().into_iter().next().unwrap();
    let cfp = cf.to_str().unwrap();
    let n = rustix::fs::listxattr(cfp, &mut list[..]).unwrap();
    let stored = String::from_utf8_lossy(&list[..n]).into_owned();
    assert!(
        stored.starts_with("user.cfs.") && !stored.contains("colour"),
        "{stored}"
    );
    let name = stored.trim_end_matches('\0');
    let n = rustix::fs::getxattr(cfp, name, &mut [0u8; 128][..]).unwrap();
    assert_eq!(n, 32, "IV + one padded block");
    rustix::fs::removexattr(fp, "user.colour").unwrap();
    assert!(rustix::fs::getxattr(fp, "user.colour", &mut buf[..]).is_err());
}

/// cp -a, tar and rsync open with O_NOFOLLOW; the daemon once passed that on
/// to its /proc/self/fd reopen and every such open failed with ELOOP.
#[test]
fn nofollow_opens_and_archivers_read_and_write_the_mount() {
    use std::os::unix::fs::OpenOptionsExt;
    let Some(m) = Mounted::new("nofollow", &[]) else {
        return;
    };
    let src = m.plain.join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a"), vec![7u8; 10_000]).unwrap();
    fs::write(src.join("sub/b"), b"bee").unwrap();
    std::os::unix::fs::symlink("a", src.join("link")).unwrap();
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(src.join("a"))
        .unwrap();
    f.write_all_at(b"xy", 5).unwrap();
    let mut two = [0u8; 2];
    f.read_exact_at(&mut two, 5).unwrap();
    assert_eq!(&two, b"xy");
    let err = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(src.join("link"))
        .unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::ELOOP),
        "a symlink still refuses"
    );
    let run = |cmd: &str| {
        let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let out = m.root.join("out");
    let (p, o) = (m.plain.display(), out.display());
    run(&format!("cp -a {p}/src {o} && cp -a {o} {p}/copy"));
    run(&format!(
        "tar -C {p} -cf {o}.tar src && mkdir {p}/untar && tar -C {p}/untar -xf {o}.tar"
    ));
    for tree in ["copy", "untar/src"] {
        run(&format!("diff -r --no-dereference {p}/src {p}/{tree}"));
    }
    assert_eq!(fs::read(m.plain.join("copy/a")).unwrap()[5..7], *b"xy");
}

#[test]
fn noxattr_refuses_xattrs_and_keeps_existing_ones() {
    let Some(mut m) = Mounted::new("noxattr", &[]) else {
        return;
    };
    let f = m.plain.join("tagged");
    fs::write(&f, b"x").unwrap();
    let fp = f.to_str().unwrap();
    rustix::fs::setxattr(fp, "user.kept", b"v", rustix::fs::XattrFlags::empty()).unwrap();
    m.unmount();
    m.extra = vec!["-o".into(), "noxattr".into()];
    m.mount();
    let mut buf = [0u8; 16];
    assert_eq!(
        rustix::fs::getxattr(fp, "user.kept", &mut buf[..]).unwrap_err(),
        rustix::io::Errno::OPNOTSUPP
    );
    assert_eq!(
        rustix::fs::setxattr(fp, "user.new", b"v", rustix::fs::XattrFlags::empty()).unwrap_err(),
        rustix::io::Errno::OPNOTSUPP
    );
    assert_eq!(fs::read(&f).unwrap(), b"x");
    m.extra.clear();
    m.remount();
    let n = rustix::fs::getxattr(fp, "user.kept", &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"v", "the attribute survives a noxattr mount");
}

#[test]
fn rename_noreplace_exchange_and_device_nodes() {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    let Some(m) = Mounted::new("rename2", &[]) else {
        return;
    };
    let (a, b) = (m.plain.join("a"), m.plain.join("b"));
    fs::write(&a, b"first").unwrap();
    fs::write(&b, b"second").unwrap();
    let e = renameat_with(CWD, &a, CWD, &b, RenameFlags::NOREPLACE).unwrap_err();
    assert_eq!(e, rustix::io::Errno::EXIST);
    renameat_with(CWD, &a, CWD, &b, RenameFlags::EXCHANGE).unwrap();
    assert_eq!(
        (fs::read(&a).unwrap(), fs::read(&b).unwrap()),
        (b"second".to_vec(), b"first".to_vec())
    );
    // A long name exchanged with a short one keeps both reachable.
    let long = m.plain.join("q".repeat(200));
    fs::write(&long, b"long").unwrap();
    renameat_with(CWD, &a, CWD, &long, RenameFlags::EXCHANGE).unwrap();
    assert_eq!(fs::read(&long).unwrap(), b"second");
    assert_eq!(fs::read(&a).unwrap(), b"long");
    m.remount();
    assert_eq!(fs::read(&long).unwrap(), b"second");
    // A character device (root only): /dev/null's numbers.
    let dev = m.plain.join("null");
    if Command::new("mknod")
        .arg(&dev)
        .arg("c")
        .arg("1")
        .arg("3")
        .status()
        .unwrap()
        .success()
    {
        let meta = fs::symlink_metadata(&dev).unwrap();
        assert!(meta.file_type().is_char_device());
        assert_eq!(meta.rdev(), libc::makedev(1, 3));
    } else {
        eprintln!("SKIP device node part: mknod needs root");
    }
}

/// `--passfile -` reads the password from standard input; a password file
/// of several lines gives its first line, with a warning, as gocryptfs does.
#[test]
fn password_from_stdin_and_a_multi_line_password_file() {
    use std::io::Write;
    let Some(m) = Mounted::new("pwstdin", &[]) else {
        return;
    };
    m.unmount();
    let mut child = Command::new(common::mount::BIN)
        .args(["mount", "--passfile", "-"])
        .arg(&m.cipher)
        .arg(&m.plain)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"test password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(m.is_mounted());
    m.unmount();
    let two = m.root.join("two-lines");
    common::mount::write_private(&two, "test password\nthe second line\n");
    let out = cipherfs(&[
        "mount",
        "--passfile",
        two.to_str().unwrap(),
        m.cipher.to_str().unwrap(),
        m.plain.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("more than one line: only the first is used"),
        "{err}"
    );
    m.unmount();
}

/// Recovery with the master key: a populated directory whose config is
/// deleted gets a new one from `recover` (after the key is checked on its
/// names; a wrong key writes nothing), and every file reads again;
/// `passwd --masterkey-file` sets a new password without the old one.
#[test]
fn recover_a_lost_config_and_change_a_password_with_the_master_key() {
    let Some(m) = Mounted::new("recover", &["--sector-size", "1024"]) else {
        return;
    };
    let files: Vec<(String, Vec<u8>)> = (0..20)
        .map(|i| {
            (
                format!("file-{i}-{}", "n".repeat(i * 9)),
                vec![i as u8; i * 1000 + 7],
            )
        })
        .collect();
    fs::create_dir(m.plain.join("sub")).unwrap();
    for (name, data) in &files {
        fs::write(m.plain.join(name), data).unwrap();
        fs::write(m.plain.join("sub").join(name), data).unwrap();
    }
    let key = m.master_key();
    m.unmount();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let keyfile = m.root.join("key");
    common::mount::write_private(&keyfile, &hex);
    let wrong = m.root.join("wrong");
    common::mount::write_private(&wrong, &"ab".repeat(64));
    let newpw = m.root.join("newpw");
    common::mount::write_private(&newpw, "recovered password\n");
    fs::remove_file(m.cipher.join("cipherfs.conf")).unwrap();
    let recover = |key: &std::path::Path| {
        cipherfs(&[
            "recover",
            "--masterkey-file",
            key.to_str().unwrap(),
            "--sector-size",
            "1024",
            "--kdf-memory-mib",
            "1",
            "--kdf-iterations",
            "1",
            "--passfile",
            newpw.to_str().unwrap(),
            m.cipher.to_str().unwrap(),
        ])
    };
    let out = recover(&wrong);
    assert_eq!(
        out.status.code(),
        Some(10),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !m.cipher.join("cipherfs.conf").exists(),
        "a wrong key wrote a config"
    );
    let out = recover(&keyfile);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("names at the root decrypt"));
    let out = recover(&keyfile);
    assert_eq!(out.status.code(), Some(11), "a config is there now");
    let mount_with = |pw: &std::path::Path| {
        cipherfs(&[
            "mount",
            "--passfile",
            pw.to_str().unwrap(),
            m.cipher.to_str().unwrap(),
            m.plain.to_str().unwrap(),
        ])
    };
    assert!(mount_with(&newpw).status.success());
    for (name, data) in &files {
        assert_eq!(&fs::read(m.plain.join(name)).unwrap(), data, "{name}");
        assert_eq!(
            &fs::read(m.plain.join("sub").join(name)).unwrap(),
            data,
            "sub/{name}"
        );
    }
    m.unmount();
    // A new password with the key instead of the old password.
    let third = m.root.join("third");
    common::mount::write_private(&third, "third password\n");
    let out = cipherfs(&[
        "passwd",
        "--masterkey-file",
        keyfile.to_str().unwrap(),
        "--new-passfile",
        third.to_str().unwrap(),
        m.cipher.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mount_with(&newpw).status.code(), Some(10));
    assert!(mount_with(&third).status.success());
    assert_eq!(fs::read(m.plain.join(&files[3].0)).unwrap(), files[3].1);
    m.unmount();
}

/// A format 1 directory is recovered with `--format-version 1`; without it
/// the key check fails (format 2 names do not decrypt) and says which flag
/// to give, writing nothing.
#[test]
fn recover_takes_the_format_a_directory_was_made_in() {
    let Some(m) = Mounted::new("recover-v1", &["--format-version", "1"]) else {
        return;
    };
    fs::write(m.plain.join("a file"), b"format 1 data").unwrap();
    let key = m.master_key();
    m.unmount();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let keyfile = m.root.join("key");
    common::mount::write_private(&keyfile, &hex);
    fs::remove_file(m.cipher.join("cipherfs.conf")).unwrap();
    let recover = |extra: &[&str]| {
        let (k, pw, c) = (
            keyfile.to_str().unwrap(),
            m.passfile.to_str().unwrap(),
            m.cipher.to_str().unwrap(),
        );
        let mut args = vec!["recover", "--masterkey-file", k, "--passfile", pw];
        args.extend(["--kdf-memory-mib", "1", "--kdf-iterations", "1"]);
        args.extend(extra);
        args.push(c);
        cipherfs(&args)
    };
    let out = recover(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(10), "{err}");
    assert!(err.contains("--format-version 1"), "{err}");
    assert!(!m.cipher.join("cipherfs.conf").exists());
    let out = recover(&["--format-version", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    m.mount();
    assert_eq!(fs::read(m.plain.join("a file")).unwrap(), b"format 1 data");
    let info = cipherfs(&["info", m.cipher.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&info.stdout).contains("format version   1"));
}
