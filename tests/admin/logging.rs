//! Logging: a detached daemon logs to syslog, every line names the mount,
//! and files are named by their cipher path, never by their plaintext name
//! unless --debug-names asks for it.

use crate::common;

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::mount::Mounted;

/// A mount whose one file (named `name`) has a damaged header, mounted
/// detached with `args`, logging to a syslog socket the test reads; the
/// file has been read once, so a warning about it is on its way.
fn damaged_mount_logging_to_syslog(
    test: &str,
    name: &str,
    args: &[&str],
) -> Option<(Mounted, UnixDatagram, PathBuf)> {
    let m = Mounted::new(test, &[])?;
    fs::write(m.plain.join(name), b"will be damaged").unwrap();
    m.unmount();
    let victim = m.cipher_files().into_iter().next().unwrap();
    let mut c = fs::read(&victim).unwrap();
    c[0] = 7;
    fs::write(&victim, &c).unwrap();
    let sock_path = m.root.join("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    m.mount_logging_to(args, &sock_path);
    assert!(fs::read(m.plain.join(name)).is_err());
    Some((m, sock, victim))
}

/// Log lines up to and including the warning about the damaged header.
fn lines_until_header_warning(sock: &UnixDatagram) -> Vec<String> {
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
    lines
}

#[test]
fn the_detached_daemon_logs_to_syslog_by_cipher_path_only() {
    let Some((m, sock, victim)) =
        damaged_mount_logging_to_syslog("syslog", "PLAINNAME-secret", &["-v", "mount"])
    else {
        return;
    };
    let lines = lines_until_header_warning(&sock);
    let all = lines.join("\n");
    let mount = m.plain.display().to_string();
    assert!(all.contains("cipherfs["), "not syslog-formatted: {all}");
    assert!(
        lines.iter().all(|l| l.contains(&mount)),
        "a line without the mount point: {all}"
    );
    assert!(all.contains(": mounted ") && all.contains(" on "), "{all}");
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
    let Some((_m, sock, _)) =
        damaged_mount_logging_to_syslog("debugnames", "VISIBLE-name", &["mount", "--debug-names"])
    else {
        return;
    };
    let lines = lines_until_header_warning(&sock);
    let warning = lines
        .iter()
        .find(|l| l.contains("file header"))
        .expect("no warning about the damaged file");
    assert!(warning.contains("VISIBLE-name"), "{warning}");
}

/// A syslog that stops reading must not hang the mount: the daemon drops the
/// lines it cannot hand over at once, and says how many with the next line
/// that gets through. (It once blocked in send(), and with it every request.)
#[test]
fn a_stalled_syslog_never_holds_up_requests() {
    let Some((m, sock, _)) = damaged_mount_logging_to_syslog("stalled", "bad", &["mount"]) else {
        return;
    };
    // Nobody reads the socket while each of these reads logs a warning; a
    // connected datagram socket takes only a few lines before it is full.
    let bad = m.plain.join("bad");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = {
        let bad = bad.clone();
        std::thread::spawn(move || {
            for _ in 0..500 {
                assert!(fs::read(&bad).is_err());
            }
            tx.send(()).unwrap();
        })
    };
    // A hang detector, not a timing: 500 failed reads take well under a second.
    rx.recv_timeout(Duration::from_secs(60))
        .expect("reads hung while syslog was not reading: the daemon blocks on logging");
    reader.join().unwrap();
    let mut buf = [0u8; 8192];
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while sock.recv(&mut buf).is_ok() {}
    assert!(fs::read(&bad).is_err());
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let n = sock.recv(&mut buf).unwrap();
    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(line.contains("earlier lines dropped"), "{line}");
}

/// At -vv with RUST_LOG=trace, fuser would log every request with its
/// names; only `--debug-names` lets such lines through. The control run
/// with it proves the scan sees them when they are there.
#[test]
fn no_plaintext_name_reaches_the_log_at_any_verbosity() {
    use std::process::Stdio;
    let Some(m) = Mounted::new("vvnames", &[]) else {
        return;
    };
    m.unmount();
    for debug_names in [false, true] {
        let log = m.root.join(format!("log-{debug_names}"));
        let mut c = m.foreground_command();
        c.arg("-vv");
        if debug_names {
            c.arg("--debug-names");
        }
        let mut daemon = c
            .env("RUST_LOG", "trace")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        common::mount::wait_until("the mount", 20, || m.is_mounted());
        let run = u8::from(debug_names);
        let file = m.plain.join(format!("CANARY-file-name-{run}"));
        let link = m.plain.join(format!("CANARY-link-{run}"));
        fs::write(&file, b"x").unwrap();
        std::os::unix::fs::symlink("CANARY-link-target", &link).unwrap();
        rustix::fs::setxattr(
            &file,
            "user.CANARY-xattr",
            b"v",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        assert_eq!(
            fs::read_link(&link).unwrap().to_str(),
            Some("CANARY-link-target")
        );
        fs::read_dir(&m.plain).unwrap().for_each(drop);
        fs::rename(&file, m.plain.join(format!("CANARY-renamed-{run}"))).unwrap();
        m.unmount();
        daemon.wait().unwrap();
        let text = fs::read_to_string(&log).unwrap();
        assert!(text.contains(" DEBUG]"), "-vv logged no debug line: {text}");
        if debug_names {
            assert!(
                text.contains("CANARY"),
                "the control run shows no names:\n{text}"
            );
        } else {
            let leaks: Vec<&str> = text.lines().filter(|l| l.contains("CANARY")).collect();
            assert!(
                leaks.is_empty(),
                "plaintext names in the log at -vv: {leaks:#?}"
            );
        }
    }
}

/// The same for the usual detached daemon, whose log goes to syslog.
#[test]
fn the_detached_daemon_at_vv_sends_no_plaintext_name_to_syslog() {
    let Some(m) = Mounted::new("vvsyslog", &[]) else {
        return;
    };
    m.unmount();
    let sock_path = m.root.join("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    // Read as the daemon writes: a full socket queue would drop lines.
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut buf = [0u8; 8192];
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(n) = sock.recv(&mut buf) {
                let line = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = line.contains(": unmounted ");
                lines.push(line);
                if done {
                    break;
                }
            }
        }
        lines
    });
    let out = std::process::Command::new(common::mount::BIN)
        .args(["-vv", "mount", "--passfile"])
        .arg(&m.passfile)
        .arg(&m.cipher)
        .arg(&m.plain)
        .env("CIPHERFS_SYSLOG_SOCKET", &sock_path)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = m.plain.join("CANARY-detached");
    fs::write(&file, b"x").unwrap();
    std::os::unix::fs::symlink("CANARY-target", m.plain.join("CANARY-l")).unwrap();
    fs::read_dir(&m.plain).unwrap().for_each(drop);
    fs::remove_file(&file).unwrap();
    m.unmount();
    let lines = reader.join().unwrap();
    assert!(
        lines.iter().any(|l| l.starts_with("<31>")),
        "no debug lines reached syslog at -vv: {lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("lines dropped")),
        "the test lost lines, so it proves nothing: {lines:#?}"
    );
    let leaks: Vec<&String> = lines.iter().filter(|l| l.contains("CANARY")).collect();
    assert!(
        leaks.is_empty(),
        "plaintext names sent to syslog: {leaks:#?}"
    );
}

/// A name planted in the cipher directory cannot start a log line of its own.
#[test]
fn a_planted_name_cannot_forge_a_log_line() {
    let Some(m) = Mounted::new("forge", &[]) else {
        return;
    };
    m.unmount();
    fs::write(m.cipher.join("x\nFORGED [ERROR] all is lost"), b"").unwrap();
    let log = m.root.join("log");
    let mut daemon = m.spawn_logging_to(&log);
    assert_eq!(fs::read_dir(&m.plain).unwrap().count(), 0);
    m.unmount();
    daemon.wait().unwrap();
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("x\\nFORGED"),
        "no warning about the planted name: {text}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("FORGED")),
        "a planted name forged a log line: {text}"
    );
}

/// Reads syslog lines from `sock` until the daemon's "unmounted" line.
fn lines_until_unmounted(sock: &UnixDatagram) -> Vec<String> {
    let mut lines = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = sock.recv(&mut buf) {
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        let done = line.contains(": unmounted ");
        lines.push(line);
        if done {
            break;
        }
    }
    lines
}

/// A clean mount and unmount, at the default level, leaves exactly two
/// journal lines, "mounted CIPHERDIR on MNT: …" and "unmounted MNT (why)",
/// and no warning: unmounted by fusermount3 -u, by SIGTERM (systemctl
/// stop), and after --idle.
#[test]
fn a_clean_mount_and_unmount_log_two_lines_and_no_warning() {
    let Some(m) = Mounted::new("twolines", &[]) else {
        return;
    };
    m.unmount();
    let sock_path = m.root.join("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let pidfile = m.root.join("pid");
    for how in ["fusermount3", "SIGTERM", "idle"] {
        let mut args = vec!["mount", "--pidfile", pidfile.to_str().unwrap()];
        if how == "idle" {
            args.extend(["--idle", "1s"]);
        }
        m.mount_logging_to(&args, &sock_path);
        fs::write(m.plain.join("f"), how).unwrap();
        match how {
            "fusermount3" => m.unmount(),
            "SIGTERM" => {
                let pid = fs::read_to_string(&pidfile).unwrap();
                let ok = std::process::Command::new("kill")
                    .args(["-TERM", pid.trim()])
                    .status()
                    .unwrap();
                assert!(ok.success());
            }
            _ => {}
        }
        let lines = lines_until_unmounted(&sock);
        common::mount::wait_until("the mount to go", 20, || !m.is_mounted());
        assert_eq!(lines.len(), 2, "{how}: {lines:#?}");
        assert!(
            lines[0].starts_with("<30>")
                && lines[0].contains(": mounted ")
                && lines[0].contains("on the soft backend")
                // A format 2 directory's names have a backend of their own.
                && lines[0].contains("; names hctr2(aes) on the soft backend"),
            "{how}: {lines:#?}"
        );
        let why = match how {
            "fusermount3" => "(by umount or fusermount3 -u)",
            "SIGTERM" => "(signal 15)",
            _ => "(idle for 1s)",
        };
        assert!(
            lines[1].starts_with("<30>")
                && lines[1].contains(": unmounted ")
                && lines[1].ends_with(why),
            "{how}: {lines:#?}"
        );
        // Nothing after the last line either.
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 8192];
        assert!(
            sock.recv(&mut buf).is_err(),
            "{how}: a line after unmounted: {}",
            String::from_utf8_lossy(&buf)
        );
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
    }
}
