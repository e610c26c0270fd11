//! Key material is wiped: a core of the daemon taken at its very last system
//! call (exit_group, after unmount) holds no copy of the master key, of the
//! keys derived from it, or of their AES key schedules' first round keys,
//! while a core taken during the mount does (so the scan can find them).
//! gdb takes the cores; the test command installs it.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::mount::{wait_until, Mounted};
use hkdf::Hkdf;
use sha2::Sha256;

fn derive(master: &[u8; 64], info: &[u8], len: usize) -> Vec<u8> {
    let mut k = vec![0u8; len];
    Hkdf::<Sha256>::new(None, master)
        .expand(info, &mut k)
        .unwrap();
    k
}

/// The 32-byte AES keys that must not survive: the master key's halves, the
/// names and xattr keys, and a file's two XTS keys.
fn secrets(master: &[u8; 64], file_nonce: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut content_info = b"cipherfs v1 content".to_vec();
    content_info.extend_from_slice(file_nonce);
    let content = derive(master, &content_info, 64);
    vec![
        ("master key (first half)".into(), master[..32].to_vec()),
        ("master key (second half)".into(), master[32..].to_vec()),
        ("names key".into(), derive(master, b"cipherfs v1 names", 32)),
        ("xattr key".into(), derive(master, b"cipherfs v1 xattr", 32)),
        ("file key (first half)".into(), content[..32].to_vec()),
        ("file key (second half)".into(), content[32..].to_vec()),
    ]
}

fn found(core: &[u8], secrets: &[(String, Vec<u8>)]) -> Vec<String> {
    secrets
        .iter()
        .filter(|(_, k)| core.windows(k.len()).any(|w| w == k.as_slice()))
        .map(|(what, _)| what.clone())
        .collect()
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
    for e in extra {
        c.args(["-ex", e]);
    }
    c.args(["-ex", &format!("generate-core-file {}", out.display())])
        .args(["-ex", "detach"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c.spawn().unwrap()
}

#[test]
fn no_key_survives_in_the_daemon_after_unmount() {
    let Some(m) = Mounted::new("zeroize", &[]) else {
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
    // Use every key: a file's contents, names, an xattr.
    let f = m.plain.join("some file");
    fs::write(&f, vec![42u8; 20_000]).unwrap();
    assert_eq!(fs::read(&f).unwrap().len(), 20_000);
    rustix::fs::setxattr(&f, "user.k", b"v", rustix::fs::XattrFlags::empty()).unwrap();
    let cipher_file = m.cipher_files().into_iter().next().unwrap();
    let nonce = fs::read(&cipher_file).unwrap()[16..32].to_vec();
    let mut secrets = secrets(&master, &nonce);
    secrets.push(("password".into(), b"test password".to_vec()));

    // Control: while mounted, the scan finds the keys.
    let during = m.root.join("core.during");
    let out = gcore(daemon.id(), &during, &[]).wait_with_output().unwrap();
    assert!(
        during.exists(),
        "gdb made no core: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hits = found(&fs::read(&during).unwrap(), &secrets);
    assert!(
        hits.iter().any(|h| h.starts_with("master")) && hits.iter().any(|h| h.starts_with("file")),
        "the scan does not see keys in a live daemon (found only {hits:?})"
    );
    fs::remove_file(&during).unwrap();

    // Stop the daemon at exit_group, after everything it owned was dropped.
    let at_exit = m.root.join("core.exit");
    let gdb = gcore(
        daemon.id(),
        &at_exit,
        &["catch syscall exit_group", "continue"],
    );
    std::thread::sleep(Duration::from_millis(1500));
    m.unmount();
    let out = gdb.wait_with_output().unwrap();
    let _ = daemon.wait();
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
