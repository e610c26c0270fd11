//! Where a mount may go: the mount point exists and is a directory, FUSE is
//! there for this user, the mount would hide no files, and the mount point
//! and the cipher directory are not inside one another.

use std::path::Path;

use super::mount::MountOptions;
use crate::exitcode::{self, Failure};

/// Whether /etc/fuse.conf lets ordinary users mount with allow_other.
fn user_allow_other() -> bool {
    std::fs::read_to_string("/etc/fuse.conf")
        .map(|c| {
            c.lines()
                .any(|l| l.split('#').next().unwrap_or("").trim() == "user_allow_other")
        })
        .unwrap_or(false)
}

pub fn check_mountpoint(mountpoint: &Path, opts: &MountOptions) -> Result<(), Failure> {
    if !mountpoint.exists() {
        return Err(Failure::new(
            exitcode::MOUNTPOINT,
            format!(
                "{}: the mount point does not exist (create it with mkdir)",
                mountpoint.display()
            ),
        ));
    }
    if !mountpoint.is_dir() {
        return Err(Failure::new(
            exitcode::MOUNTPOINT,
            format!(
                "{}: the mount point is not a directory",
                mountpoint.display()
            ),
        ));
    }
    if opts.allow_other && !rustix::process::geteuid().is_root() && !user_allow_other() {
        return Err(Failure::new(
            exitcode::MOUNTPOINT,
            "allow_other is refused for users other than root unless /etc/fuse.conf contains the line \
             'user_allow_other' (ask the administrator to add it, or mount without allow_other)",
        ));
    }
    let root = rustix::process::geteuid().is_root();
    let dev_fuse_open = rustix::fs::access(
        "/dev/fuse",
        rustix::fs::Access::READ_OK | rustix::fs::Access::WRITE_OK,
    )
    .is_ok();
    if Path::new("/dev/fuse").exists() && !root && !dev_fuse_open {
        // fusermount3 opens /dev/fuse with the user's own rights, so this is
        // the administrator's decision, not something a helper can bypass.
        return Err(Failure::new(
            exitcode::KERNEL_FEATURE,
            "/dev/fuse is not open to this user, so only root may mount FUSE filesystems here \
             (Debian's default is mode 0666; ask the administrator)",
        ));
    }
    if !Path::new("/dev/fuse").exists() {
        return Err(Failure::new(
            exitcode::KERNEL_FEATURE,
            "/dev/fuse is missing: this kernel has no FUSE (modprobe fuse)",
        ));
    }
    Ok(())
}

/// A mount point inside the cipher directory (or the other way round) would
/// make the mount read its own output; a non-empty one would hide files
/// (allowed with `-o nonempty`, as fuse2 did).
pub fn check_placement(
    cipherdir: &Path,
    mountpoint: &Path,
    opts: &MountOptions,
) -> Result<(), Failure> {
    let (Ok(c), Ok(m)) = (cipherdir.canonicalize(), mountpoint.canonicalize()) else {
        return Ok(());
    };
    if m.starts_with(&c) || c.starts_with(&m) {
        return Err(Failure::new(
            exitcode::MOUNTPOINT,
            format!(
                "{}: the mount point and the cipher directory {} must not be inside one another",
                m.display(),
                c.display()
            ),
        ));
    }
    // An automount point (systemd's .automount) is an autofs mount that is
    // waiting for this very mount: listing it would wait for itself.
    let non_empty = !is_autofs(&m) && std::fs::read_dir(&m).is_ok_and(|mut d| d.next().is_some());
    if non_empty && !opts.nonempty {
        return Err(Failure::new(
            exitcode::MOUNTPOINT,
            format!(
                "{}: the mount point is not empty; mounting would hide its files \
                 (-o nonempty mounts anyway)",
                m.display()
            ),
        ));
    }
    Ok(())
}

/// Whether `dir` (canonical) is an autofs mount point.
fn is_autofs(dir: &Path) -> bool {
    let target = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| {
        m.lines().any(|l| {
            l.split(' ').nth(4) == Some(target.as_str())
                && l.split(" - ").nth(1).and_then(|r| r.split(' ').next()) == Some("autofs")
        })
    })
}
