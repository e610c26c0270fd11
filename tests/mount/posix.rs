//! POSIX behaviour programs rely on, compared call by call with a local
//! directory (the test's own, on the machine's disk) where it is defined:
//! the same result or errno, the same `stat` fields.

use crate::common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::SystemTime;

use crate::common::mount::Mounted;
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
            // (Two UTIME_NOW calls may fall on either side of a clock tick.)
            if mtime.tv_nsec != UTIME_NOW {
                assert_eq!(
                    link_times(&dir.join("to-file")).1,
                    after.1,
                    "case {i}: the links differ"
                );
            }
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

/// Every name under `root` with its type and, for files, contents.
fn tree(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = fs::symlink_metadata(&p).unwrap();
            let what = if m.is_dir() {
                stack.push(p);
                "dir".to_string()
            } else if m.is_file() {
                format!("file {:?}", fs::read(&p).unwrap())
            } else {
                format!("link {:?}", fs::read_link(&p).unwrap())
            };
            out.push((rel, what));
        }
    }
    out.sort();
    out
}

fn errno<T>(r: rustix::io::Result<T>) -> Result<(), i32> {
    r.map(|_| ()).map_err(|e| e.raw_os_error())
}

/// rename(2) onto an existing directory, in every case around the one that
/// must work (an empty target is replaced), with the same result or errno
/// as a local directory; a target that stays keeps working (its IV).
#[test]
fn rename_onto_an_empty_directory_replaces_it_as_on_a_local_filesystem() {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    let Some(m) = Mounted::new("renamedir", &[]) else {
        return;
    };
    let reference = m.root.join("reference");
    fs::create_dir_all(&reference).unwrap();
    type Step = (&'static str, &'static str, &'static str, RenameFlags);
    let none = RenameFlags::empty();
    // (label, from, to, flags); directories are made fresh before each.
    let steps: [Step; 12] = [
        ("dir onto empty dir", "a", "b", none),
        ("dir onto non-empty dir", "a", "full", none),
        ("file onto empty dir", "f", "b", none),
        ("dir onto file", "a", "f", none),
        ("dir onto its own empty child", "a", "a/child", none),
        ("empty child onto its parent", "a/child", "a", none),
        ("dir onto itself", "a", "a", none),
        ("empty dir onto empty dir", "b", "c", none),
        ("NOREPLACE onto empty dir", "a", "b", RenameFlags::NOREPLACE),
        ("EXCHANGE with empty dir", "a", "b", RenameFlags::EXCHANGE),
        ("across directories", "x/a", "y/b", none),
        ("onto empty dir, long name", "a", "long-name-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", none),
    ];
    for (n, (label, from, to, flags)) in steps.iter().enumerate() {
        let mut results = Vec::new();
        let mut trees = Vec::new();
        for root in [&m.plain, &reference] {
            let w = root.join(format!("case{n}"));
            for d in ["a/child", "b", "c", "full/inside", "x/a", "y/b"] {
                fs::create_dir_all(w.join(d)).unwrap();
            }
            let long = w.join(steps[11].2);
            fs::create_dir(&long).unwrap();
            fs::write(w.join("a/in-a"), b"moved with a").unwrap();
            fs::write(w.join("x/a/in-xa"), b"moved with x/a").unwrap();
            fs::write(w.join("f"), b"a file").unwrap();
            let r = errno(renameat_with(CWD, w.join(from), CWD, w.join(to), *flags));
            // Whatever stayed a directory still takes new names (its IV is there).
            for d in ["a", "b", "c", "a/child", "y/b"] {
                if w.join(d).is_dir() {
                    fs::write(w.join(d).join("new"), d).unwrap();
                }
            }
            results.push(r);
            trees.push(tree(&w));
        }
        assert_eq!(
            results[0], results[1],
            "{label}: mount and local directory differ"
        );
        assert_eq!(
            trees[0], trees[1],
            "{label}: trees differ after {:?}",
            results[0]
        );
    }
    let before = tree(&m.plain);
    m.remount();
    assert_eq!(tree(&m.plain), before, "a remount changes the tree");
}

/// In a sticky directory (mode 1777) only the owner of an entry may rename
/// it or rename over it: two ordinary users on a root mount with allow_other
/// get exactly the answers they get in a local sticky directory.
#[test]
fn rename_in_a_sticky_directory_checks_owners_as_a_local_filesystem_does() {
    use common::users::{as_named_user, TestUser};
    use std::os::unix::fs::PermissionsExt;
    let Some(m) = Mounted::new("sticky", &[]) else {
        return;
    };
    let (Some(_u1), Some(_u2)) = (
        TestUser::create("cipherfs-pa"),
        TestUser::create("cipherfs-pb"),
    ) else {
        return;
    };
    let mut m = m;
    m.extra = vec!["--allow-other".into()];
    m.remount();
    let reference = m.root.join("reference");
    fs::create_dir_all(&reference).unwrap();
    // (user, from, to): u1 owns d1 and e1, u2 owns d2 and e2; e* are empty.
    let cases = [
        ("cipherfs-pa", "d1", "e2"),
        ("cipherfs-pb", "d2", "e1"),
        ("cipherfs-pa", "d2", "moved"),
        ("cipherfs-pa", "d1", "e1"),
        ("cipherfs-pb", "e2", "d2/inner"),
    ];
    let mut answers = Vec::new();
    for root in [&m.plain, &reference] {
        let s = root.join("sticky");
        fs::create_dir(&s).unwrap();
        fs::set_permissions(&s, fs::Permissions::from_mode(0o1777)).unwrap();
        let setup = |u: &str, d: &str| {
            let o = as_named_user(
                u,
                &format!(
                    "mkdir {0}/{d} && touch {0}/{d}/.keep 2>/dev/null; true",
                    s.display()
                ),
            );
            assert!(o.status.success());
        };
        setup("cipherfs-pa", "d1");
        as_named_user("cipherfs-pa", &format!("mkdir {}/e1", s.display()));
        setup("cipherfs-pb", "d2");
        as_named_user("cipherfs-pb", &format!("mkdir {}/e2", s.display()));
        let mut got = Vec::new();
        for (u, from, to) in cases {
            let o = as_named_user(u, &format!("mv -T {0}/{from} {0}/{to}", s.display()));
            // The reason mv gives, without the paths.
            let err = String::from_utf8_lossy(&o.stderr);
            let why = err.rsplit(": ").next().unwrap_or("").trim().to_string();
            got.push((u, from, to, o.status.code(), why));
        }
        got.push(("tree", "", "", None, format!("{:?}", tree(&s))));
        answers.push(got);
    }
    assert_eq!(
        answers[0], answers[1],
        "mount (left) and local sticky directory (right) differ"
    );
    assert!(
        answers[1]
            .iter()
            .any(|a| a.4.contains("Operation not permitted")),
        "the cases never met the sticky rule: {:?}",
        answers[1]
    );
}

/// Whether some entry of `m`'s cipher directory has inode number `ino`.
fn backing_inode_exists(m: &Mounted, ino: u64) -> bool {
    let mut stack = vec![m.cipher.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let md = fs::symlink_metadata(e.path()).unwrap();
            if md.ino() == ino {
                return true;
            }
            if md.is_dir() {
                stack.push(e.path());
            }
        }
    }
    false
}

fn drop_caches() {
    // Makes the kernel forget every unused inode, FUSE ones included.
    let _ = fs::write("/proc/sys/vm/drop_caches", "3");
}

/// st_ino is the backing inode: equal for hard links, the same after the
/// kernel forgets the node and after a remount, for files, directories and
/// symlinks; and a backing number freed and reused by a new file names the
/// new file, while a deleted file still open keeps its own.
#[test]
fn st_ino_is_the_backing_inode_and_stays_put() {
    let Some(m) = Mounted::new("stino", &[]) else {
        return;
    };
    let p = |s: &str| m.plain.join(s);
    fs::create_dir(p("dir")).unwrap();
    fs::write(p("dir/file"), b"one").unwrap();
    fs::hard_link(p("dir/file"), p("hard")).unwrap();
    std::os::unix::fs::symlink("dir/file", p("link")).unwrap();
    let names = ["dir", "dir/file", "hard", "link"];
    let inos = || -> Vec<u64> {
        names
            .iter()
            .map(|n| fs::symlink_metadata(p(n)).unwrap().ino())
            .collect()
    };
    let first = inos();
    for (n, ino) in names.iter().zip(&first) {
        assert!(
            backing_inode_exists(&m, *ino),
            "{n}: st_ino {ino} is no backing inode"
        );
    }
    assert_eq!(first[1], first[2], "hard links differ");
    drop_caches();
    assert_eq!(inos(), first, "after drop_caches");
    m.remount();
    assert_eq!(inos(), first, "after a remount");
    // readdir's d_ino agrees with stat.
    for e in fs::read_dir(m.plain.join("dir")).unwrap().flatten() {
        use std::os::unix::fs::DirEntryExt;
        assert_eq!(e.ino(), fs::symlink_metadata(e.path()).unwrap().ino());
    }

    // A deleted file still open keeps its number and its data; the backing
    // filesystem cannot hand the number on while the daemon holds it.
    fs::write(p("old"), b"old data").unwrap();
    let old = fs::File::open(p("old")).unwrap();
    let old_ino = old.metadata().unwrap().ino();
    fs::remove_file(p("old")).unwrap();
    for i in 0..50 {
        fs::write(p(&format!("new{i}")), format!("new {i}")).unwrap();
        assert_ne!(fs::metadata(p(&format!("new{i}"))).unwrap().ino(), old_ino);
    }
    let mut s = String::new();
    std::io::Read::read_to_string(&mut &old, &mut s).unwrap();
    assert_eq!(s, "old data");
    drop(old);
    // Closed and forgotten, its number may go to a new file, which then
    // shows that number and its own contents.
    for i in 0..50 {
        fs::remove_file(p(&format!("new{i}"))).unwrap();
    }
    drop_caches();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut reused = None;
    for i in 0..200 {
        let name = format!("again{i}");
        fs::write(p(&name), format!("again {i}")).unwrap();
        let ino = fs::metadata(p(&name)).unwrap().ino();
        assert!(backing_inode_exists(&m, ino), "{name}: st_ino {ino}");
        assert_eq!(fs::read_to_string(p(&name)).unwrap(), format!("again {i}"));
        if ino == old_ino {
            reused = Some(name);
            break;
        }
    }
    eprintln!("backing inode {old_ino} reused by: {reused:?}");
}

/// A filesystem mounted inside the cipher directory has inode numbers of
/// its own that could collide with the cipher directory's: its entries get
/// numbers from the private range (2^63 and up) instead, all distinct.
#[test]
fn entries_on_another_filesystem_get_private_inode_numbers() {
    if !rustix::process::geteuid().is_root() {
        assert!(
            std::env::var("CIPHERFS_REQUIRE_FUSE").as_deref() != Ok("1"),
            "posix: CIPHERFS_REQUIRE_FUSE=1 but mounting a tmpfs needs root"
        );
        eprintln!("SKIP private inode numbers: mounting a tmpfs needs root");
        return;
    }
    let Some(m) = Mounted::new("otherfs", &[]) else {
        return;
    };
    fs::create_dir(m.plain.join("sub")).unwrap();
    fs::write(m.plain.join("top"), b"top").unwrap();
    m.unmount();
    let backing = fs::read_dir(&m.cipher)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .unwrap();
    let iv = fs::read(backing.join("cipherfs.diriv")).unwrap();
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&backing)
        .status()
        .unwrap();
    assert!(ok.success());
    let _tmpfs = Unmount(backing.clone());
    fs::write(backing.join("cipherfs.diriv"), iv).unwrap();
    m.mount();
    for i in 0..5 {
        fs::write(m.plain.join(format!("sub/f{i}")), format!("{i}")).unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    for name in ["sub", "sub/f0", "sub/f1", "sub/f2", "sub/f3", "sub/f4"] {
        let ino = fs::metadata(m.plain.join(name)).unwrap().ino();
        assert!(ino >= 1 << 63, "{name}: st_ino {ino} is not private");
        assert!(seen.insert(ino), "{name}: st_ino {ino} shown twice");
    }
    assert_eq!(fs::read_to_string(m.plain.join("sub/f3")).unwrap(), "3");
    let top = fs::metadata(m.plain.join("top")).unwrap().ino();
    assert!(top < 1 << 63 && backing_inode_exists(&m, top));
    m.unmount();
}

fn long_targets(m: &Mounted) -> usize {
    fs::read_dir(&m.cipher)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("cipherfs.longlink.")
        })
        .count()
}

/// Every symlink target Linux allows (1 to 4095 bytes) works: symlink,
/// readlink, lstat size, rename, hard links, unlink; 4096 is refused with
/// ENAMETOOLONG, as on a local filesystem. Targets over 3040 bytes keep
/// their stored form in a companion, which goes with the link's last name.
#[test]
fn symlink_targets_up_to_4095_bytes_work() {
    let Some(m) = Mounted::new("longlink", &[]) else {
        return;
    };
    let reference = m.root.join("reference");
    fs::create_dir_all(&reference).unwrap();
    let target = |len: usize| -> String {
        let mut t = "dir/".repeat(len / 4 + 1);
        t.truncate(len);
        t
    };
    for root in [&m.plain, &reference] {
        fs::create_dir(root.join("sub")).unwrap();
    }
    for len in [1, 100, 3040, 3041, 3500, 4000, 4095, 4096, 5000] {
        let mut answers = Vec::new();
        for root in [&m.plain, &reference] {
            let link = root.join(format!("l{len}"));
            let made = std::os::unix::fs::symlink(target(len), &link).map_err(|e| e.raw_os_error());
            let seen = made.as_ref().ok().map(|_| {
                let size = fs::symlink_metadata(&link).unwrap().len();
                let back = fs::read_link(&link).unwrap();
                (
                    size,
                    back.as_os_str().len(),
                    back == Path::new(&target(len)),
                )
            });
            answers.push((made, seen));
        }
        assert_eq!(
            answers[0], answers[1],
            "target of {len} bytes: mount vs local"
        );
        let want = if len <= 4095 {
            (Ok(()), Some((len as u64, len, true)))
        } else {
            (Err(Some(libc::ENAMETOOLONG)), None)
        };
        assert_eq!(answers[0], want, "target of {len} bytes");
    }
    assert_eq!(
        long_targets(&m),
        4,
        "one companion per long link (3041, 3500, 4000, 4095)"
    );
    let p = |s: &str| m.plain.join(s);
    // Hard links share the link and its companion; rename keeps it.
    fs::hard_link(p("l4000"), p("sub/hard")).unwrap();
    fs::rename(p("l4095"), p("sub/moved")).unwrap();
    m.remount();
    assert_eq!(
        fs::read_link(p("sub/hard")).unwrap(),
        Path::new(&target(4000))
    );
    assert_eq!(
        fs::read_link(p("sub/moved")).unwrap(),
        Path::new(&target(4095))
    );
    assert_eq!(fs::symlink_metadata(p("sub/moved")).unwrap().len(), 4095);
    fs::remove_file(p("l4000")).unwrap();
    assert_eq!(
        fs::read_link(p("sub/hard")).unwrap(),
        Path::new(&target(4000))
    );
    assert_eq!(long_targets(&m), 4, "a hard link still names it");
    fs::remove_file(p("sub/hard")).unwrap();
    assert_eq!(long_targets(&m), 3, "the last name took its companion");
    // Renamed over, a long link's companion goes too; a rename onto itself keeps it.
    fs::rename(p("l100"), p("l3041")).unwrap();
    assert_eq!(long_targets(&m), 2);
    fs::rename(p("l3500"), p("l3500")).unwrap();
    assert_eq!(fs::read_link(p("l3500")).unwrap(), Path::new(&target(3500)));
    fs::remove_file(p("sub/moved")).unwrap();
    assert_eq!(long_targets(&m), 1);
    m.unmount();
    // fsck reads the long form; finds a lost companion; calls an unnamed one garbage.
    let fsck = |repair: bool| {
        let mut args = vec!["fsck", "--passfile", m.passfile.to_str().unwrap()];
        if repair {
            args.push("--repair");
        }
        args.push(m.cipher.to_str().unwrap());
        let o = common::mount::cipherfs(&args);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    assert_eq!(fsck(false).0, Some(0), "{}", fsck(false).1);
    let companion = fs::read_dir(&m.cipher)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("cipherfs.longlink."))
        .unwrap();
    let kept = m.root.join("kept-companion");
    fs::rename(&companion, &kept).unwrap();
    let (code, text) = fsck(false);
    assert_eq!(code, Some(15), "{text}");
    assert!(text.contains("is missing; the target is lost"), "{text}");
    fs::rename(&kept, &companion).unwrap();
    let orphan = m.cipher.join("cipherfs.longlink.orphan");
    fs::write(&orphan, b"left by a crash").unwrap();
    let (code, text) = fsck(false);
    assert_eq!(code, Some(15), "{text}");
    assert!(
        text.contains("cipherfs.longlink.orphan: long symlink target whose link is gone (garbage"),
        "{text}"
    );
    assert_eq!(fsck(true).0, Some(0));
    assert!(!orphan.exists() && companion.exists());
    m.mount();
    assert_eq!(fs::read_link(p("l3500")).unwrap(), Path::new(&target(3500)));
}
