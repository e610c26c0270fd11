//! Logging: a detached daemon logs to syslog, every line names the mount,
//! and files are named by their cipher path, never by their plaintext name.

mod common;

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use common::mount::{Mounted, BIN};

#[test]
fn the_detached_daemon_logs_to_syslog_by_cipher_path_only() {
    let Some(m) = Mounted::new("syslog", &[]) else {
        return;
    };
    fs::write(m.plain.join("PLAINNAME-secret"), b"will be damaged").unwrap();
    m.unmount();
    // Damage the file's header so reading it logs a warning about it.
    let victim = m.cipher_files().into_iter().next().unwrap();
    let mut c = fs::read(&victim).unwrap();
    c[0] = 7;
    fs::write(&victim, &c).unwrap();

    let sock_path = m.root.join("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let out = Command::new(BIN)
        .args([
            "-v",
            "mount",
            "--passfile",
            m.passfile.to_str().unwrap(),
            m.cipher.to_str().unwrap(),
            m.plain.to_str().unwrap(),
        ])
        .env("CIPHERFS_SYSLOG_SOCKET", &sock_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(fs::read(m.plain.join("PLAINNAME-secret")).is_err());
    let mut lines = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = sock.recv(&mut buf) {
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        let done = line.contains("file header");
        lines.push(line);
        if done {
            break;
        }
    }
    let all = lines.join("\n");
    let mount = m.plain.display().to_string();
    assert!(all.contains("cipherfs["), "not syslog-formatted: {all}");
    assert!(
        lines.iter().all(|l| l.contains(&mount)),
        "a line without the mount point: {all}"
    );
    assert!(all.contains("mounted on"), "{all}");
    let warning = lines
        .iter()
        .find(|l| l.contains("file header"))
        .expect("no warning about the damaged file");
    assert!(
        warning.contains(&victim.display().to_string()),
        "warning lacks the cipher path: {warning}"
    );
    assert!(
        !all.contains("PLAINNAME"),
        "a plaintext name reached the log: {all}"
    );
}

#[test]
fn debug_names_adds_the_plaintext_name_when_asked() {
    let Some(m) = Mounted::new("debugnames", &[]) else {
        return;
    };
    fs::write(m.plain.join("VISIBLE-name"), b"will be damaged").unwrap();
    m.unmount();
    let victim = m.cipher_files().into_iter().next().unwrap();
    let mut c = fs::read(&victim).unwrap();
    c[0] = 7;
    fs::write(&victim, &c).unwrap();
    let sock_path = m.root.join("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let out = Command::new(BIN)
        .args([
            "mount",
            "--debug-names",
            "--passfile",
            m.passfile.to_str().unwrap(),
            m.cipher.to_str().unwrap(),
            m.plain.to_str().unwrap(),
        ])
        .env("CIPHERFS_SYSLOG_SOCKET", &sock_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(fs::read(m.plain.join("VISIBLE-name")).is_err());
    let mut buf = [0u8; 8192];
    let n = sock.recv(&mut buf).expect("no log line");
    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        line.contains("file header") && line.contains("VISIBLE-name"),
        "{line}"
    );
}
