//! A long random sequence of operations on a mount and on a plain
//! directory, compared operation by operation (success or errno) and tree
//! by tree (names, types, sizes, contents, targets, modes), across remounts.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::common::mount::Mounted;
use crate::common::Rng;

const NAMES: &[&str] = &["a", "b", "c", "d0/a", "d0/e", "d1/f", "d0/d2/g"];
/// Directories mkdir/rmdir pick from: the e* ones hold no files, so they are
/// often empty; the d* ones exercise ENOTEMPTY and EEXIST.
const DIRS: &[&str] = &["e0", "e1", "d1/e2", "e0/e3", "d0", "d1"];

#[derive(Debug, PartialEq, Eq)]
enum Node {
    File { size: u64, mode: u32, data: Vec<u8> },
    Dir { mode: u32 },
    Link(PathBuf),
}

fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, Node>) {
        for e in fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = fs::symlink_metadata(&p).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                out.insert(rel, Node::Link(fs::read_link(&p).unwrap()));
            } else if meta.is_dir() {
                out.insert(rel, Node::Dir { mode });
                walk(root, &p, out);
            } else {
                out.insert(
                    rel,
                    Node::File {
                        size: meta.len(),
                        mode,
                        data: fs::read(&p).unwrap(),
                    },
                );
            }
        }
    }
    walk(root, root, &mut out);
    out
}

/// An operation's outcome: success or the errno.
fn outcome<T>(r: std::io::Result<T>) -> Result<(), i32> {
    r.map(|_| ()).map_err(|e| e.raw_os_error().unwrap_or(-1))
}

struct Op {
    kind: u8,
    a: &'static str,
    b: &'static str,
    off: u64,
    len: usize,
    seed: u64,
}

fn apply(root: &Path, op: &Op) -> Result<(), i32> {
    let p = |s: &str| root.join(s);
    match op.kind {
        0 | 1 => {
            let data = Rng::new(op.seed).bytes(op.len);
            outcome(
                fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(p(op.a))
                    .and_then(|f| f.write_all_at(&data, op.off)),
            )
        }
        2 => outcome(
            fs::OpenOptions::new()
                .write(true)
                .open(p(op.a))
                .and_then(|f| f.set_len(op.off)),
        ),
        3 => {
            let data = Rng::new(op.seed).bytes(op.len);
            outcome(
                fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(p(op.a))
                    .and_then(|mut f| std::io::Write::write_all(&mut f, &data)),
            )
        }
        4 => outcome(fs::rename(p(op.a), p(op.b))),
        5 => outcome(fs::hard_link(p(op.a), p(op.b))),
        6 => outcome(fs::remove_file(p(op.a))),
        7 => outcome(fs::create_dir(p(DIRS[op.seed as usize % DIRS.len()]))),
        8 => outcome(fs::remove_dir(p(DIRS[op.seed as usize % DIRS.len()]))),
        9 => outcome(std::os::unix::fs::symlink(
            format!("target-{}", op.seed % 100),
            p(op.a),
        )),
        10 => outcome(fs::set_permissions(
            p(op.a),
            fs::Permissions::from_mode(0o600 | (op.seed as u32 & 0o077)),
        )),
        12 => outcome(fs::rename(
            p(DIRS[op.seed as usize % DIRS.len()]),
            p(DIRS[(op.seed >> 8) as usize % DIRS.len()]),
        )),
        13 => {
            // A symlink's own mtime (touch -h): the result is the mtime lstat then shows.
            let t = rustix::fs::Timespec {
                tv_sec: 1_000_000_000 + (op.seed % 1_000_000) as i64,
                tv_nsec: (op.seed % 1_000_000_000) as _,
            };
            let times = rustix::fs::Timestamps {
                last_access: rustix::fs::Timespec {
                    tv_sec: 0,
                    tv_nsec: rustix::fs::UTIME_OMIT,
                },
                last_modification: t,
            };
            match rustix::fs::utimensat(
                rustix::fs::CWD,
                p(op.a),
                &times,
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            ) {
                Ok(()) => {
                    let m = fs::symlink_metadata(p(op.a)).unwrap();
                    let kind = if m.file_type().is_symlink() { 0 } else { 500 };
                    Err(1000 + kind + (std::os::unix::fs::MetadataExt::mtime_nsec(&m) % 500) as i32)
                }
                Err(e) => Err(e.raw_os_error()),
            }
        }
        14 => {
            // Far past the end: a hole of up to 8 MiB, then a few bytes.
            let data = Rng::new(op.seed).bytes(op.len % 100 + 1);
            outcome(
                fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(p(op.a))
                    .and_then(|f| f.write_all_at(&data, op.seed % (8 << 20))),
            )
        }
        11 => {
            let mut buf = vec![0u8; op.len];
            match fs::File::open(p(op.a)).and_then(|f| f.read_at(&mut buf, op.off)) {
                Ok(n) => Err(1000 + (buf[..n].iter().map(|&b| b as i32).sum::<i32>() % 1000)),
                Err(e) if e.kind() == ErrorKind::NotFound => Err(libc::ENOENT),
                Err(e) => Err(e.raw_os_error().unwrap_or(-1)),
            }
        }
        _ => unreachable!("no operation kind {}", op.kind),
    }
}

/// Operation kinds: 0-10 and 12-14 change the tree, 11 reads.
const KINDS: usize = 15;

crate::in_both_content_modes!(random_operations_match_a_plain_directory_across_remounts);

fn random_operations_match_a_plain_directory_across_remounts(mode: crate::common::ContentMode) {
    let Some(m) = Mounted::new(&mode.test("model"), &mode.args(&["--sector-size", "512"])) else {
        return;
    };
    let reference = m.root.join("reference");
    fs::create_dir_all(&reference).unwrap();
    for d in ["d0", "d1", "d0/d2"] {
        fs::create_dir(m.plain.join(d)).unwrap();
        fs::create_dir(reference.join(d)).unwrap();
    }
    let mut rng = Rng::new(0xc1f3);
    let steps = 3000;
    let mut succeeded = [0usize; KINDS];
    for step in 0..steps {
        let op = Op {
            kind: rng.below(KINDS) as u8,
            a: NAMES[rng.below(NAMES.len())],
            b: NAMES[rng.below(NAMES.len())],
            off: rng.below(3 * 512 + 100) as u64,
            len: rng.below(2 * 512 + 50),
            seed: rng.next_u64(),
        };
        let (got, want) = (apply(&m.plain, &op), apply(&reference, &op));
        assert_eq!(
            got, want,
            "step {step}: op {} on {} / {}",
            op.kind, op.a, op.b
        );
        // Reads report their checksum as Err(1000 + sum): count those as successes too.
        if got.is_ok() || got.is_err_and(|e| e >= 1000) {
            succeeded[op.kind as usize] += 1;
        }
        if step % 250 == 249 {
            assert_eq!(
                snapshot(&m.plain),
                snapshot(&reference),
                "trees differ after step {step}"
            );
        }
        if step == steps / 2 {
            m.remount();
        }
    }
    m.remount();
    assert_eq!(
        snapshot(&m.plain),
        snapshot(&reference),
        "trees differ after the final remount"
    );
    // The sequence must have done real work of every kind, not failed alike.
    eprintln!("successful operations by kind: {succeeded:?}");
    assert!(
        succeeded.iter().all(|&n| n >= 10),
        "some operation kind rarely succeeded: {succeeded:?}"
    );
}
