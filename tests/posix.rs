//! POSIX behaviour programs rely on, compared call by call with a local
//! directory (the test's own, on the machine's disk) where it is defined:
//! the same result or errno, the same `stat` fields.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::SystemTime;

use common::mount::Mounted;
use rustix::fs::{
    openat, utimensat, AtFlags, Mode, OFlags, Timespec, Timestamps, UTIME_NOW, UTIME_OMIT,
};

fn ts(sec: i64, nsec: i64) -> Timespec {
    Timespec {
        tv_sec: sec,
        tv_nsec: nsec as _,
    }
}

/// (atime, mtime) of `p` itself (not followed), as (seconds, nanoseconds).
fn link_times(p: &Path) -> ((i64, i64), (i64, i64)) {
    let m = fs::symlink_metadata(p).unwrap();
    ((m.atime(), m.atime_nsec()), (m.mtime(), m.mtime_nsec()))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `touch -h`, `cp -a`, `rsync -a` and tar set a symlink's own times with
/// utimensat(AT_SYMLINK_NOFOLLOW); each field may be a time, UTIME_OMIT or
/// UTIME_NOW. The link shows exactly what was asked, as on a local
/// filesystem, and a remount keeps it.
#[test]
fn a_symlinks_own_times_are_set_field_by_field() {
    let Some(m) = Mounted::new("symtimes", &[]) else {
        return;
    };
    let reference = m.root.join("reference");
    fs::create_dir_all(&reference).unwrap();
    let cases: [(Timespec, Timespec); 5] = [
        (
            ts(1_000_000_000, 123_456_789),
            ts(1_100_000_000, 987_654_321),
        ),
        (ts(0, UTIME_OMIT), ts(1_200_000_000, 5)),
        (ts(1_300_000_000, 7), ts(0, UTIME_OMIT)),
        (ts(0, UTIME_NOW), ts(0, UTIME_OMIT)),
        (ts(0, UTIME_OMIT), ts(0, UTIME_NOW)),
    ];
    for dir in [&m.plain, &reference] {
        std::os::unix::fs::symlink("no-such-target", dir.join("link")).unwrap();
        std::os::unix::fs::symlink("file", dir.join("to-file")).unwrap();
        fs::write(dir.join("file"), b"x").unwrap();
    }
    for (i, (atime, mtime)) in cases.iter().enumerate() {
        let mut seen = Vec::new();
        for dir in [&m.plain, &reference] {
            let before = link_times(&dir.join("link"));
            let target_before = link_times(&dir.join("file"));
            let dfd = openat(
                rustix::fs::CWD,
                dir.as_path(),
                OFlags::PATH | OFlags::DIRECTORY,
                Mode::empty(),
            )
            .unwrap();
            let t0 = now();
            for name in ["link", "to-file"] {
                let times = Timestamps {
                    last_access: ts(atime.tv_sec, atime.tv_nsec),
                    last_modification: ts(mtime.tv_sec, mtime.tv_nsec),
                };
                utimensat(&dfd, name, &times, AtFlags::SYMLINK_NOFOLLOW)
                    .unwrap_or_else(|e| panic!("case {i}: utimensat on {}: {e}", dir.display()));
            }
            let t1 = now();
            let after = link_times(&dir.join("link"));
            for (what, set, old, new) in [
                ("atime", atime, before.0, after.0),
                ("mtime", mtime, before.1, after.1),
            ] {
                match set.tv_nsec {
                    n if n == UTIME_OMIT => assert_eq!(
                        new,
                        old,
                        "case {i}: {what} changed under UTIME_OMIT in {}",
                        dir.display()
                    ),
                    n if n == UTIME_NOW => assert!(
                        new.0 >= t0 - 1 && new.0 <= t1 + 1,
                        "case {i}: {what} {new:?} is not now in {}",
                        dir.display()
                    ),
                    n => assert_eq!(
                        new,
                        (set.tv_sec, n),
                        "case {i}: {what} in {}",
                        dir.display()
                    ),
                }
            }
            // The link's target is not touched.
            assert_eq!(
                link_times(&dir.join("file")),
                target_before,
                "case {i}: the target changed"
            );
            assert_eq!(
                link_times(&dir.join("to-file")).1,
                after.1,
                "case {i}: the links differ"
            );
            seen.push(after);
        }
        if atime.tv_nsec != UTIME_NOW && mtime.tv_nsec != UTIME_NOW {
            assert_eq!(
                seen[0], seen[1],
                "case {i}: mount and local directory differ"
            );
        }
    }
    let last = link_times(&m.plain.join("link"));
    m.remount();
    assert_eq!(
        link_times(&m.plain.join("link")),
        last,
        "times lost in a remount"
    );
}
