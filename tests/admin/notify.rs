//! systemd's Type=notify: READY=1 arrives only once the mount answers, and
//! STOPPING=1 when it goes away; the daemon exits 0 after SIGTERM.

use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::Duration;

use crate::common::mount::{sigterm, Mounted};

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .expect("no notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn ready_only_when_the_mount_answers_and_stopping_on_sigterm() {
    let Some(m) = Mounted::new("notify", &[]) else {
        return;
    };
    m.unmount();
    let sock_path = m.root.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut child = m
        .foreground_command()
        .env("NOTIFY_SOCKET", &sock_path)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = recv(&sock);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    // At READY=1 the mount must already be there and answer.
    assert!(m.is_mounted(), "READY=1 before the mount existed");
    std::fs::write(m.plain.join("f"), b"x").unwrap();
    sigterm(&child);
    let stopping = recv(&sock);
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    assert!(child.wait().unwrap().success());
    assert!(!m.is_mounted());
}
