//! Metadata crash safety: the daemon (or `passwd`) is killed with SIGKILL at
//! each step of making a directory, a long name and a new config
//! (`CIPHERFS_CRASH_AT`, src/crashpoint.rs). Afterwards the mount comes
//! back, nothing is half made (a directory is there complete with its IV, or
//! not at all; the config opens with exactly one of the two passwords), and
//! `fsck` finds at most garbage, which `--repair` removes.

use crate::common;

use std::fs;
use std::process::{Command, Output, Stdio};

use crate::common::mount::{cipherfs, wait_until, Mounted, BIN};
use cipherfs::crashpoint::POINTS;

fn fsck(m: &Mounted, repair: bool) -> Output {
    m.fsck(if repair { &["--repair"] } else { &[] })
}

/// fsck finds nothing, or only garbage that --repair removes.
fn fsck_clean_after_repair(m: &Mounted, point: &str) {
    let out = fsck(m, false);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        assert!(
            text.lines()
                .filter(|l| !l.contains(" checked, "))
                .all(|l| l.contains("(garbage")),
            "{point}: fsck found more than garbage:\n{text}"
        );
        let out = fsck(m, true);
        assert!(
            out.status.success(),
            "{point}: --repair left problems: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(
        fsck(m, false).status.success(),
        "{point}: not clean after --repair"
    );
}

/// Runs `op` against a foreground daemon that dies at `point`, then mounts
/// again normally.
fn crash_daemon_at(m: &Mounted, point: &str, op: impl FnOnce()) {
    let mut daemon = m
        .foreground_command()
        .env("CIPHERFS_CRASH_AT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the mount", 20, || m.is_mounted());
    op();
    let status = daemon.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "{point}: the daemon was not killed there"
    );
    m.unmount();
}

#[test]
fn a_crash_at_any_step_of_mkdir_or_a_long_name_or_target_leaves_nothing_half_made() {
    let Some(m) = Mounted::new("crashpoints", &[]) else {
        return;
    };
    fs::write(m.plain.join("before"), b"data").unwrap();
    m.unmount();
    let long_target = "T/".repeat(2000);
    for point in POINTS.iter().filter(|p| !p.starts_with("config")) {
        // One long name per point: each point's name is made afterwards.
        let long = format!("{point}{}", "N".repeat(200));
        let dir = m.plain.join(format!("dir-{point}"));
        crash_daemon_at(&m, point, || {
            if point.starts_with("mkdir") {
                assert!(fs::create_dir(&dir).is_err(), "{point}: mkdir answered");
            } else if point.starts_with("longlink") {
                assert!(
                    std::os::unix::fs::symlink(&long_target, m.plain.join("longlink")).is_err(),
                    "{point}: symlink answered"
                );
            } else {
                assert!(
                    fs::write(m.plain.join(&long), b"x").is_err(),
                    "{point}: create answered"
                );
            }
        });
        fsck_clean_after_repair(&m, point);
        m.mount();
        assert_eq!(fs::read(m.plain.join("before")).unwrap(), b"data");
        if *point == "mkdir-renamed" {
            assert!(
                dir.is_dir(),
                "{point}: the directory was complete and renamed"
            );
        }
        if point.starts_with("mkdir") {
            // There complete, or not at all: then it can be made now.
            if !dir.exists() {
                fs::create_dir(&dir).unwrap();
            }
            fs::write(dir.join("inside"), b"in").unwrap();
            assert_eq!(fs::read(dir.join("inside")).unwrap(), b"in");
        } else if point.starts_with("longlink") {
            let link = m.plain.join("longlink");
            assert!(
                fs::symlink_metadata(&link).is_err(),
                "{point}: a link without its target"
            );
            std::os::unix::fs::symlink(&long_target, &link).unwrap();
            assert_eq!(fs::read_link(&link).unwrap().as_os_str().len(), 4000);
        } else {
            assert!(
                !m.plain.join(&long).exists(),
                "{point}: a name without its entry"
            );
            fs::write(m.plain.join(&long), b"long").unwrap();
            assert_eq!(fs::read(m.plain.join(&long)).unwrap(), b"long");
        }
        m.unmount();
    }
    assert!(fsck(&m, false).status.success());
}

#[test]
fn a_crash_at_any_step_of_passwd_keeps_one_working_password() {
    let Some(m) = Mounted::new("crashpasswd", &[]) else {
        return;
    };
    fs::write(m.plain.join("keep"), b"kept").unwrap();
    m.unmount();
    let master = m.master_key();
    let newpw = m.root.join("newpw");
    common::mount::write_private(&newpw, "another password\n");
    let opens = |pw: &std::path::Path| {
        cipherfs(&[
            "info",
            "--show-masterkey",
            "--passfile",
            pw.to_str().unwrap(),
            m.cipher.to_str().unwrap(),
        ])
        .status
        .success()
    };
    // m.passfile always holds the password that opens the directory.
    for point in POINTS.iter().filter(|p| p.starts_with("config")) {
        common::mount::write_private(&newpw, &format!("new password at {point}\n"));
        let status = Command::new(BIN)
            .args(["passwd", "--passfile"])
            .arg(&m.passfile)
            .arg("--new-passfile")
            .arg(&newpw)
            .arg(&m.cipher)
            .env("CIPHERFS_CRASH_AT", point)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "{point}: passwd was not killed there"
        );
        let (old_ok, new_ok) = (opens(&m.passfile), opens(&newpw));
        assert!(
            old_ok != new_ok,
            "{point}: old password opens: {old_ok}, new: {new_ok}"
        );
        assert_eq!(new_ok, *point == "config-renamed", "{point}");
        if new_ok {
            fs::copy(&newpw, &m.passfile).unwrap();
        }
        fsck_clean_after_repair(&m, point);
        assert_eq!(m.master_key(), master, "{point}: the master key changed");
        m.mount();
        assert_eq!(fs::read(m.plain.join("keep")).unwrap(), b"kept");
        m.unmount();
    }
}
