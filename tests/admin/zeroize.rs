//! Key material is wiped: a core of the daemon taken at its very last system
//! call (exit_group, after unmount) holds no copy of the master key, of the
//! keys derived from it, or of their AES key schedules' first round keys,
//! while a core taken during the mount does (so the scan can find them).
//! gdb takes the cores (told to include the pages the daemon marks
//! MADV_DONTDUMP, which a kernel core would leave out); the test command
//! installs it. Both ways the daemon gets its key are covered: `mount -f`
//! (unlocking itself) and the usual detached `mount`, whose daemon reads
//! the key in hex from a pipe; the scan looks for every quarter of the key
//! raw and every 8-byte group of it in hex.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::mount::{wait_until, Mounted};
use hkdf::Hkdf;
use sha2::Sha256;

fn derive(master: &[u8; 64], info: &[u8], len: usize) -> Vec<u8> {
    let mut k = vec![0u8; len];
    Hkdf::<Sha256>::new(None, master)
        .expand(info, &mut k)
        .unwrap();
    k
}

/// What must not survive: the master key, raw and in hex, its HKDF
/// pseudorandom key, every names, targets and xattr key of both formats
/// (format 2's names key of the root directory, whose IV is `root_iv`), and
/// a file's two XTS keys or its GCM key.
fn secrets(master: &[u8; 64], file_nonce: &[u8], root_iv: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut content_info = b"cipherfs v1 content".to_vec();
    content_info.extend_from_slice(file_nonce);
    let content = derive(master, &content_info, 64);
    let hex: String = master.iter().map(|b| format!("{b:02x}")).collect();
    let mut v_out: Vec<(String, Vec<u8>)> = vec![
        ("master key (raw)".into(), master.to_vec()),
        ("master key (hex)".into(), hex.into_bytes()),
    ];
    v_out.extend([
        ("names key".into(), derive(master, b"cipherfs v1 names", 32)),
        ("xattr key".into(), derive(master, b"cipherfs v1 xattr", 32)),
        (
            "HKDF pseudorandom key of the master key".into(),
            Hkdf::<Sha256>::extract(None, master).0.to_vec(),
        ),
        (
            "format 2 names key of the root directory".into(),
            derive(master, &[&b"cipherfs v2 names"[..], root_iv].concat(), 32),
        ),
        (
            "format 2 targets key".into(),
            derive(master, b"cipherfs v2 targets", 32),
        ),
        (
            "format 2 xattr names key".into(),
            derive(master, b"cipherfs v2 xattr names", 32),
        ),
        (
            "format 2 xattr values key".into(),
            derive(master, b"cipherfs v2 xattr values", 32),
        ),
        ("file key (first half)".into(), content[..32].to_vec()),
        ("file key (second half)".into(), content[32..].to_vec()),
    ]);
    // A GCM file's key, its hash key H = AES_K(0), and H as the VAES
    // kernel keeps it (POLYVAL's mulX of H reversed, RFC 8452).
    let gcm = derive(
        master,
        &[&b"cipherfs v2 gcm content"[..], file_nonce].concat(),
        32,
    );
    let mut h = aes::Block::default();
    {
        use aes::cipher::{BlockCipherEncrypt, KeyInit};
        aes::Aes256::new_from_slice(&gcm)
            .unwrap()
            .encrypt_block(&mut h);
    }
    let mut r: [u8; 16] = h.into();
    r.reverse();
    let v = u128::from_le_bytes(r);
    let polyval_h = (v << 1) ^ (((v as i128) >> 127) as u128 & (0xc2 << 120 | 1));
    v_push(
        &mut v_out,
        [
            ("file key (gcm)", gcm.clone()),
            ("file GHASH key (gcm)", h.to_vec()),
            ("file POLYVAL key (gcm)", polyval_h.to_le_bytes().to_vec()),
        ],
    );
    v_out
}

fn v_push<const N: usize>(v: &mut Vec<(String, Vec<u8>)>, items: [(&str, Vec<u8>); N]) {
    v.extend(items.into_iter().map(|(w, k)| (w.to_string(), k)));
}

/// Bytes of a secret that count as a copy of it: any run this long, at any
/// offset (a freed buffer may hold part of a key). 12 random bytes, or 12
/// hex digits, do not occur in a core by chance.
const RUN: usize = 12;

/// The secrets of which the core holds a run of RUN bytes or more.
fn found(core: &[u8], secrets: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut runs = std::collections::HashMap::new();
    for (what, k) in secrets {
        for w in k.windows(RUN.min(k.len())) {
            runs.insert(w, what.as_str());
        }
    }
    let mut hits: Vec<String> = core
        .windows(RUN)
        .filter_map(|w| runs.get(w))
        .map(|what| what.to_string())
        .collect();
    hits.sort();
    hits.dedup();
    hits
}

fn gdb_available(test: &str) -> bool {
    if Command::new("gdb").arg("--version").output().is_ok() {
        return true;
    }
    let why = "gdb is not installed (apt-get install gdb)";
    assert!(
        std::env::var("CIPHERFS_REQUIRE_FUSE").as_deref() != Ok("1"),
        "{test}: CIPHERFS_REQUIRE_FUSE=1 but {why}"
    );
    eprintln!("SKIP {test}: {why}");
    false
}

fn gcore(pid: u32, out: &Path, extra: &[&str]) -> std::process::Child {
    let mut c = Command::new("gdb");
    c.args(["-batch", "-nx", "-q", "-p", &pid.to_string()]);
    c.args(["-ex", "set dump-excluded-mappings on"]);
    for e in extra {
        c.args(["-ex", e]);
    }
    c.args(["-ex", &format!("generate-core-file {}", out.display())])
        .args(["-ex", "detach"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c.spawn().unwrap()
}

/// Uses every key through the mount of the daemon `pid`, checks that a core
/// taken now finds them, then that one taken at its exit_group finds none.
fn check_daemon(m: &Mounted, pid: u32, master: &[u8; 64], wait: impl FnOnce()) {
    // Use every key: a file's contents, names, an xattr. 200 KB is one
    // request long enough for GCM's sectors to run on several threads.
    let f = m.plain.join("some file");
    fs::write(&f, vec![42u8; 200_000]).unwrap();
    assert_eq!(fs::read(&f).unwrap().len(), 200_000);
    rustix::fs::setxattr(&f, "user.k", b"v", rustix::fs::XattrFlags::empty()).unwrap();
    assert_eq!(
        rustix::fs::getxattr(&f, "user.k", &mut [0u8; 8]).unwrap(),
        1
    );
    let link = m.plain.join("a link");
    std::os::unix::fs::symlink("some file", &link).unwrap();
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("some file"));
    // A listing decrypts every name with one stack wipe at its end.
    assert_eq!(fs::read_dir(&m.plain).unwrap().count(), 2);
    let cipher_file = m.cipher_files().into_iter().next().unwrap();
    let nonce = fs::read(&cipher_file).unwrap()[16..32].to_vec();
    let root_iv = fs::read(m.cipher.join("cipherfs.diriv")).unwrap();
    let mut secrets = secrets(master, &nonce, &root_iv);
    secrets.push(("password".into(), b"test password".to_vec()));

    // No core at all from a crash: RLIMIT_CORE is 0.
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(core.split_whitespace().nth(4), Some("0"), "{core}");

    // Control: while mounted, the scan finds the keys.
    let during = m.root.join("core.during");
    let out = gcore(pid, &during, &[]).wait_with_output().unwrap();
    assert!(
        during.exists(),
        "gdb made no core: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hits = found(&fs::read(&during).unwrap(), &secrets);
    assert!(
        hits.iter().any(|h| h.starts_with("master key (raw)"))
            && hits.iter().any(|h| h.starts_with("file")),
        "the scan does not see keys in a live daemon (found only {hits:?})"
    );
    // In a GCM directory the scan must also see the hash key as the kernel
    // keeps it, or it could not tell that one is wiped.
    assert!(
        !hits.iter().any(|h| h == "file key (gcm)")
            || hits.iter().any(|h| h == "file POLYVAL key (gcm)"),
        "the scan does not see a live GCM hash key (found only {hits:?})"
    );
    fs::remove_file(&during).unwrap();

    // A core that honours MADV_DONTDUMP (as the kernel's would) leaves the master key out.
    let honoured = m.root.join("core.honoured");
    let out = gcore(pid, &honoured, &["set dump-excluded-mappings off"])
        .wait_with_output()
        .unwrap();
    assert!(
        honoured.exists(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hits = found(&fs::read(&honoured).unwrap(), &secrets);
    assert!(
        !hits.iter().any(|h| h.starts_with("master key (raw)")),
        "the master key's page is not excluded from core dumps: {hits:?}"
    );
    fs::remove_file(&honoured).unwrap();

    // Stop the daemon at exit_group, after everything it owned was dropped.
    let at_exit = m.root.join("core.exit");
    let gdb = gcore(pid, &at_exit, &["catch syscall exit_group", "continue"]);
    std::thread::sleep(Duration::from_millis(1500));
    m.unmount();
    let out = gdb.wait_with_output().unwrap();
    wait();
    assert!(
        at_exit.exists(),
        "gdb made no core at exit: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let hits = found(&fs::read(&at_exit).unwrap(), &secrets);
    assert!(
        hits.is_empty(),
        "after unmount the daemon still held: {hits:?}"
    );
}

#[test]
fn no_key_survives_in_the_daemon_after_unmount() {
    no_key_survives_in_the_foreground_daemon(crate::common::XTS);
}

/// The same with authenticated contents: a file's GCM key and schedule.
#[test]
fn no_key_survives_in_the_daemon_after_unmount_gcm() {
    no_key_survives_in_the_foreground_daemon(crate::common::GCM);
}

fn no_key_survives_in_the_foreground_daemon(mode: crate::common::ContentMode) {
    let Some(m) = Mounted::new(&mode.test("zeroize"), mode.init) else {
        return;
    };
    if !gdb_available("zeroize") {
        return;
    }
    let master = m.master_key();
    m.unmount();
    let mut daemon = m
        .foreground_command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the foreground mount", 20, || m.is_mounted());
    check_daemon(&m, daemon.id(), &master, || {
        let _ = daemon.wait();
    });
}

/// The usual way: `mount` unlocks, starts the daemon and hands it the key
/// in hex on a pipe.
#[test]
fn no_key_survives_in_a_detached_daemon_after_unmount() {
    let Some(mut m) = Mounted::new("zeroize-bg", &[]) else {
        return;
    };
    if !gdb_available("zeroize-bg") {
        return;
    }
    let master = m.master_key();
    let pid: u32 = m.remount_with_pidfile().parse().unwrap();
    check_daemon(&m, pid, &master, || {
        // Not our child: gone, or a zombie until its new parent reaps it.
        wait_until("the daemon to exit", 20, || {
            fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |st| {
                st.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
        })
    });
}
