//! Mounting the way admins do: fstab entries of type `fuse.cipherfs`
//! (through mount.fuse3) and `cipherfs` (through mount.cipherfs), with
//! mount(8)'s own options, mounted by `mount -T FILE` and unmounted by `umount`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::mount::{Mounted, BIN};

/// A symlink to the built binary where mount(8) and mount.fuse3 look for
/// helpers, removed on drop; never replaces something that is not ours.
struct Installed(Vec<PathBuf>);

impl Installed {
    fn new(paths: &[&str]) -> Option<Self> {
        let mut made = Vec::new();
        for p in paths {
            let p = Path::new(p);
            if let Ok(existing) = fs::read_link(p) {
                if !existing.to_string_lossy().contains("cipherfs") {
                    eprintln!("SKIP: {} exists and is not ours", p.display());
                    return None;
                }
            } else if p.exists() {
                eprintln!(
                    "SKIP: {} is a real installation; not replacing it",
                    p.display()
                );
                return None;
            }
            let _ = fs::remove_file(p);
            if std::os::unix::fs::symlink(BIN, p).is_err() {
                eprintln!("SKIP: cannot install {} (not root?)", p.display());
                return None;
            }
            made.push(p.to_path_buf());
        }
        Some(Installed(made))
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

fn mount_with_fstab(m: &Mounted, fstype: &str, options: &str) {
    let fstab = m.root.join("fstab");
    fs::write(
        &fstab,
        format!(
            "# test\n{} {} {fstype} {options} 0 0\n",
            m.cipher.display(),
            m.plain.display()
        ),
    )
    .unwrap();
    let out = Command::new("mount")
        .arg("-T")
        .arg(&fstab)
        .arg(&m.plain)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mount -T: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        m.is_mounted(),
        "{fstype}: not mounted after mount(8) returned"
    );
    // nodev and nosuid hold whichever way the entry is mounted (mount.fuse3
    // appends dev,suid to fuse.cipherfs entries).
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(m.plain.to_str().unwrap()))
        .unwrap();
    let flags = line.split(' ').nth(5).unwrap_or("");
    assert!(
        flags.split(',').any(|f| f == "nodev") && flags.split(',').any(|f| f == "nosuid"),
        "{fstype}: {line}"
    );
    fs::write(m.plain.join("via-fstab"), fstype).unwrap();
    assert_eq!(
        fs::read_to_string(m.plain.join("via-fstab")).unwrap(),
        fstype
    );
    let out = Command::new("umount").arg(&m.plain).output().unwrap();
    assert!(
        out.status.success(),
        "umount: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let start = Instant::now();
    while m.is_mounted() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!m.is_mounted());
}

#[test]
fn fstab_entries_mount_through_mount8_and_unmount_with_umount() {
    if unsafe_to_touch_system() {
        return;
    }
    let Some(m) = Mounted::new("fstab", &[]) else {
        return;
    };
    m.unmount();
    let Some(_installed) = Installed::new(&["/usr/local/bin/cipherfs", "/sbin/mount.cipherfs"])
    else {
        return;
    };
    let pw = m.passfile.display().to_string();
    // mount(8)'s and systemd's own options must be understood, not passed on.
    let opts = format!("passfile={pw},nofail,_netdev,x-systemd.automount,x-systemd.idle-timeout=60,defaults,noatime,comment=test");
    mount_with_fstab(&m, "fuse.cipherfs", &opts);
    mount_with_fstab(&m, "cipherfs", &format!("passfile={pw},rw,nosuid,nodev"));
    // mount -a mounts every entry not marked noauto, and skips those that are.
    let fstab = m.root.join("fstab-all");
    let skipped = m.root.join("skipped");
    fs::create_dir_all(&skipped).unwrap();
    fs::write(
        &fstab,
        format!(
            "{c} {p} fuse.cipherfs passfile={pw} 0 0\n{c} {s} fuse.cipherfs passfile={pw},noauto 0 0\n",
            c = m.cipher.display(),
            p = m.plain.display(),
            s = skipped.display()
        ),
    )
    .unwrap();
    let out = Command::new("mount")
        .arg("-a")
        .arg("-T")
        .arg(&fstab)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mount -a: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(m.is_mounted(), "mount -a did not mount the entry");
    let skipped_mounted = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(&format!(" {} ", skipped.display()));
    assert!(!skipped_mounted, "mount -a mounted a noauto entry");
    m.unmount();
    // Both mounts wrote through the same key: the data is all there.
    m.mount();
    assert_eq!(
        fs::read_to_string(m.plain.join("via-fstab")).unwrap(),
        "cipherfs"
    );
}

/// The test installs helpers system-wide; it runs only as root (as in CI)
/// and says so otherwise.
fn unsafe_to_touch_system() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        eprintln!("SKIP fstab test: needs root to install mount helpers");
    }
    !root
}
