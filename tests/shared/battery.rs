//! The shared-storage battery: each case runs from two clients (A and B,
//! two views of one store) and is then checked from a third, fresh view.
//! A case fails on any lost update, any read of bytes that were never
//! written, and any error where a local filesystem would give none.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

pub type Outcome = Result<(), String>;
/// Runs its argument on a fresh third view of the case's directory.
pub type Check<'a> = &'a dyn Fn(&mut dyn FnMut(&Path) -> Outcome) -> Outcome;

pub struct Case {
    pub name: &'static str,
    pub run: fn(&Path, &Path, Check) -> Outcome,
    pub on: On,
}

/// Where a case runs.
#[derive(PartialEq, Eq)]
pub enum On {
    Both,
    /// The raw store: needs locks that reach the other client.
    Raw,
    /// cipherfs: about what it does not pass on.
    Cipherfs,
}

const fn case(name: &'static str, run: fn(&Path, &Path, Check) -> Outcome) -> Case {
    Case {
        name,
        run,
        on: On::Both,
    }
}

pub const CASES: &[Case] = &[
    case("create in A, read in B", create_read),
    case("mkdir in A, files from B", mkdir_then_files),
    case("the same directory name from both", same_dir_name),
    case("2x500 creates in one directory", creates_2x500),
    case("the same long name from both", long_names),
    case("open(O_CREAT) of one name from both", open_creat),
    case(
        "rename and unlink in A while B holds it open",
        rename_unlink_open,
    ),
    case(
        "A renames a directory, B creates through the old path",
        rename_dir,
    ),
    case("hard links", hard_links),
    case(
        "A replaces a file by rename, B opens it again",
        replace_reopen,
    ),
    case(
        "disjoint aligned 4 KiB writes of a growing file",
        aligned_growing,
    ),
    case(
        "disjoint unaligned slots in shared sectors",
        unaligned_slots,
    ),
    case("append in A while B follows", append_follow),
    case("truncate and rewrite in A while B reads", truncate_rewrite),
    Case {
        name: "locked read-modify-write of a counter",
        run: locked_counter,
        on: On::Raw,
    },
    Case {
        name: "a program's lock holds on its own machine only",
        run: program_locks,
        on: On::Cipherfs,
    },
];

fn err(what: impl std::fmt::Display) -> String {
    what.to_string()
}

/// Bytes that follow from `seed`.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Runs `a` and `b` at once (released together), returning both results.
fn both<RA: Send, RB: Send>(
    a: impl FnOnce() -> RA + Send,
    b: impl FnOnce() -> RB + Send,
) -> (RA, RB) {
    let start = Barrier::new(2);
    std::thread::scope(|s| {
        let ta = s.spawn(|| {
            start.wait();
            a()
        });
        let tb = s.spawn(|| {
            start.wait();
            b()
        });
        (
            ta.join().expect("client A panicked"),
            tb.join().expect("client B panicked"),
        )
    })
}

fn expect_file(dir: &Path, name: &str, want: &[u8]) -> Outcome {
    let got = fs::read(dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
    if got != want {
        let first = got.iter().zip(want).position(|(g, w)| g != w);
        return Err(format!(
            "{name}: {} bytes, {} expected; first difference at {:?}",
            got.len(),
            want.len(),
            first
        ));
    }
    Ok(())
}

fn create_read(a: &Path, b: &Path, check: Check) -> Outcome {
    let data = pattern(1, 10_000);
    fs::write(a.join("f"), &data).map_err(err)?;
    expect_file(b, "f", &data)?;
    check(&mut |c| expect_file(c, "f", &data))
}

fn mkdir_then_files(a: &Path, b: &Path, check: Check) -> Outcome {
    fs::create_dir(a.join("d")).map_err(|e| format!("mkdir in A: {e}"))?;
    for i in 0..20 {
        fs::write(b.join(format!("d/x{i}")), pattern(i, 100))
            .map_err(|e| format!("B writing d/x{i}: {e}"))?;
    }
    let seen = fs::read_dir(a.join("d")).map_err(err)?.count();
    if seen != 20 {
        return Err(format!("A lists {seen} of B's 20 files"));
    }
    check(&mut |c| (0..20).try_for_each(|i| expect_file(c, &format!("d/x{i}"), &pattern(i, 100))))
}

fn same_dir_name(a: &Path, b: &Path, _check: Check) -> Outcome {
    for i in 0..20 {
        let name = format!("n{i}");
        let (ra, rb) = both(
            || fs::create_dir(a.join(&name)),
            || fs::create_dir(b.join(&name)),
        );
        match (&ra, &rb) {
            (Ok(()), Err(e)) | (Err(e), Ok(())) if e.kind() == ErrorKind::AlreadyExists => {}
            _ => return Err(format!("mkdir {name} from both: A {ra:?}, B {rb:?}")),
        }
        fs::write(a.join(&name).join("from-a"), b"a").map_err(err)?;
        fs::write(b.join(&name).join("from-b"), b"b").map_err(err)?;
    }
    _check(&mut |c| {
        (0..20).try_for_each(|i| {
            expect_file(c, &format!("n{i}/from-a"), b"a")?;
            expect_file(c, &format!("n{i}/from-b"), b"b")
        })
    })
}

fn creates_2x500(a: &Path, b: &Path, check: Check) -> Outcome {
    let make = |dir: &Path, p: &str| -> Outcome {
        (0..500).try_for_each(|i| {
            let n = format!("{p}{i}");
            fs::write(dir.join(&n), n.as_bytes()).map_err(|e| format!("{n}: {e}"))
        })
    };
    let (ra, rb) = both(|| make(a, "a"), || make(b, "b"));
    ra?;
    rb?;
    check(&mut |c| {
        let n = fs::read_dir(c).map_err(err)?.count();
        if n != 1000 {
            return Err(format!("{n} entries of 1000"));
        }
        ["a", "b"].iter().try_for_each(|p| {
            (0..500).try_for_each(|i| {
                let n = format!("{p}{i}");
                expect_file(c, &n, n.as_bytes())
            })
        })
    })
}

fn long_name(kind: &str, i: usize) -> String {
    format!("{kind}{i:03}{}", "L".repeat(200))
}

fn long_names(a: &Path, b: &Path, check: Check) -> Outcome {
    for i in 0..30 {
        let n = long_name("x", i);
        let excl = |dir: &Path| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dir.join(&n))
        };
        let (ra, rb) = both(|| excl(a), || excl(b));
        match (&ra, &rb) {
            (Ok(_), Err(e)) | (Err(e), Ok(_)) if e.kind() == ErrorKind::AlreadyExists => {}
            _ => {
                return Err(format!(
                    "O_EXCL create of long name {i}: A {ra:?}, B {rb:?}"
                ))
            }
        }
        let n = long_name("c", i);
        let open = |dir: &Path| {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(dir.join(&n))
        };
        let (ra, rb) = both(|| open(a), || open(b));
        if ra.is_err() || rb.is_err() {
            return Err(format!("O_CREAT of long name {i}: A {ra:?}, B {rb:?}"));
        }
    }
    check(&mut |c| {
        let names: Vec<String> = fs::read_dir(c)
            .map_err(err)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()
            .map_err(err)?;
        for i in 0..30 {
            for n in [long_name("x", i), long_name("c", i)] {
                if !names.contains(&n) {
                    return Err(format!("long name {} is not listed", &n[..4]));
                }
                fs::metadata(c.join(&n)).map_err(|e| format!("{}: {e}", &n[..4]))?;
            }
        }
        Ok(())
    })
}

fn open_creat(a: &Path, b: &Path, check: Check) -> Outcome {
    let open = |dir: &Path| -> Outcome {
        (0..200).try_for_each(|i| {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(dir.join(format!("o{i}")))
                .map(drop)
                .map_err(|e| format!("open(O_CREAT) o{i}: {e}"))
        })
    };
    let (ra, rb) = both(|| open(a), || open(b));
    ra?;
    rb?;
    check(&mut |c| {
        let n = fs::read_dir(c).map_err(err)?.count();
        (n == 200)
            .then_some(())
            .ok_or(format!("{n} entries of 200"))
    })
}

fn read_all_at(f: &File, len: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; len + 1];
    let n = f.read_at(&mut buf, 0).map_err(err)?;
    buf.truncate(n);
    Ok(buf)
}

fn rename_unlink_open(a: &Path, b: &Path, check: Check) -> Outcome {
    let data = pattern(7, 9000);
    fs::write(a.join("f"), &data).map_err(err)?;
    let held = File::open(b.join("f")).map_err(|e| format!("B opening f: {e}"))?;
    fs::rename(a.join("f"), a.join("g")).map_err(err)?;
    if read_all_at(&held, data.len())? != data {
        return Err("B's open file reads differently after A's rename".into());
    }
    expect_file(b, "g", &data).map_err(|e| format!("B by the new name: {e}"))?;
    if b.join("f").exists() {
        return Err("B still sees the old name after A's rename".into());
    }
    fs::remove_file(a.join("g")).map_err(err)?;
    if read_all_at(&held, data.len())? != data {
        return Err("B's open file reads differently after A's unlink".into());
    }
    if b.join("g").exists() {
        return Err("B still sees the name after A's unlink".into());
    }
    drop(held);
    check(&mut |c| {
        let n = fs::read_dir(c).map_err(err)?.count();
        (n == 0).then_some(()).ok_or(format!("{n} entries left"))
    })
}

fn rename_dir(a: &Path, b: &Path, check: Check) -> Outcome {
    fs::create_dir(a.join("d")).map_err(err)?;
    fs::write(b.join("d/first"), b"1").map_err(err)?;
    fs::rename(a.join("d"), a.join("e")).map_err(err)?;
    match fs::write(b.join("d/second"), b"2") {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        r => {
            return Err(format!(
                "B creating d/second after A renamed d: {r:?}, not ENOENT"
            ))
        }
    }
    fs::write(b.join("e/third"), b"3").map_err(|e| format!("B creating e/third: {e}"))?;
    check(&mut |c| {
        let mut names: Vec<_> = fs::read_dir(c.join("e"))
            .map_err(err)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(err)?;
        names.sort();
        (names == ["first", "third"] && !c.join("d").exists())
            .then_some(())
            .ok_or(format!("e holds {names:?}"))
    })
}

fn hard_links(a: &Path, b: &Path, check: Check) -> Outcome {
    let data = pattern(8, 5000);
    fs::write(a.join("f"), &data).map_err(err)?;
    fs::hard_link(a.join("f"), a.join("h")).map_err(err)?;
    expect_file(b, "h", &data)?;
    let patch = pattern(9, 100);
    let f = OpenOptions::new()
        .write(true)
        .open(b.join("h"))
        .map_err(err)?;
    f.write_all_at(&patch, 4090).map_err(err)?;
    drop(f);
    let mut want = data.clone();
    want[4090..4190].copy_from_slice(&patch);
    expect_file(a, "f", &want).map_err(|e| format!("A after B wrote the link: {e}"))?;
    check(&mut |c| {
        expect_file(c, "f", &want)?;
        expect_file(c, "h", &want)?;
        let n = fs::metadata(c.join("f")).map_err(err)?.nlink();
        (n == 2)
            .then_some(())
            .ok_or(format!("nlink {n}, 2 expected"))
    })
}

fn replace_reopen(a: &Path, b: &Path, check: Check) -> Outcome {
    fs::write(a.join("f"), pattern(20, 3000)).map_err(err)?;
    expect_file(b, "f", &pattern(20, 3000))?;
    for k in 21..31 {
        let new = pattern(k, 3000 + k as usize);
        fs::write(a.join("new"), &new).map_err(err)?;
        fs::rename(a.join("new"), a.join("f")).map_err(err)?;
        expect_file(b, "f", &new).map_err(|e| format!("B after replacement {k}: {e}"))?;
    }
    check(&mut |c| expect_file(c, "f", &pattern(30, 3030)))
}

const BLOCK: usize = 4096;

fn aligned_growing(a: &Path, b: &Path, check: Check) -> Outcome {
    File::create(a.join("f")).map_err(err)?;
    let write = |dir: &Path, first: usize| -> Outcome {
        let f = OpenOptions::new()
            .write(true)
            .open(dir.join("f"))
            .map_err(err)?;
        (first..64).step_by(2).try_for_each(|i| {
            f.write_all_at(&pattern(i as u64, BLOCK), (i * BLOCK) as u64)
                .map_err(|e| format!("block {i}: {e}"))
        })
    };
    let (ra, rb) = both(|| write(a, 0), || write(b, 1));
    ra?;
    rb?;
    let want: Vec<u8> = (0..64).flat_map(|i| pattern(i, BLOCK)).collect();
    check(&mut |c| {
        let got = fs::read(c.join("f")).map_err(err)?;
        let lost = (0..64)
            .filter(|&i| got.get(i * BLOCK..(i + 1) * BLOCK) != Some(&want[i * BLOCK..][..BLOCK]))
            .count();
        (lost == 0 && got.len() == want.len())
            .then_some(())
            .ok_or(format!("{lost} of 64 blocks lost; size {}", got.len()))
    })
}

const SLOT: usize = 64;
const SLOTS: usize = 1024;

fn unaligned_slots(a: &Path, b: &Path, check: Check) -> Outcome {
    fs::write(a.join("f"), vec![0u8; SLOT * SLOTS]).map_err(err)?;
    let write = |dir: &Path, first: usize| -> Outcome {
        let f = OpenOptions::new()
            .write(true)
            .open(dir.join("f"))
            .map_err(err)?;
        (first..SLOTS).step_by(2).try_for_each(|i| {
            f.write_all_at(&pattern(i as u64 + 1000, SLOT), (i * SLOT) as u64)
                .map_err(|e| format!("slot {i}: {e}"))
        })
    };
    let (ra, rb) = both(|| write(a, 0), || write(b, 1));
    ra?;
    rb?;
    check(&mut |c| {
        let got = fs::read(c.join("f")).map_err(err)?;
        let lost = (0..SLOTS)
            .filter(|&i| {
                got.get(i * SLOT..(i + 1) * SLOT) != Some(&pattern(i as u64 + 1000, SLOT)[..])
            })
            .count();
        (lost == 0)
            .then_some(())
            .ok_or(format!("{lost} of {SLOTS} slot updates lost"))
    })
}

const RECORD: usize = 100;
const RECORDS: usize = 300;

fn append_follow(a: &Path, b: &Path, check: Check) -> Outcome {
    let want: Vec<u8> = (0..RECORDS as u64)
        .flat_map(|i| pattern(i + 5000, RECORD))
        .collect();
    File::create(a.join("log")).map_err(err)?;
    let append = || -> Outcome {
        let mut f = OpenOptions::new()
            .append(true)
            .open(a.join("log"))
            .map_err(err)?;
        (0..RECORDS).try_for_each(|i| f.write_all(&want[i * RECORD..][..RECORD]).map_err(err))
    };
    let follow = || -> Outcome {
        let f = File::open(b.join("log")).map_err(err)?;
        let (mut pos, start) = (0usize, Instant::now());
        let mut buf = vec![0u8; 8192];
        while pos < want.len() {
            if start.elapsed() > Duration::from_secs(120) {
                return Err(format!("B saw {pos} of {} bytes after 120 s", want.len()));
            }
            let n = f.read_at(&mut buf, pos as u64).map_err(err)?;
            if buf[..n] != want[pos..(pos + n).min(want.len())] {
                return Err(format!("B read bytes at {pos} that A never wrote there"));
            }
            pos += n;
            if n == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        Ok(())
    };
    let (ra, rb) = both(append, follow);
    ra?;
    rb?;
    check(&mut |c| expect_file(c, "log", &want))
}

fn truncate_rewrite(a: &Path, b: &Path, check: Check) -> Outcome {
    const LEN: usize = 4 * BLOCK;
    const ROUNDS: u8 = 40;
    fs::write(a.join("f"), vec![1u8; LEN]).map_err(err)?;
    let done = std::sync::atomic::AtomicBool::new(false);
    let rewrite = || -> Outcome {
        for k in 2..=ROUNDS {
            let mut f = File::create(a.join("f")).map_err(err)?;
            f.write_all(&[k; LEN]).map_err(err)?;
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    };
    let read = || -> Result<usize, String> {
        let f = File::open(b.join("f")).map_err(err)?;
        let mut buf = vec![0u8; LEN];
        let mut reads = 0;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            let n = f
                .read_at(&mut buf, 0)
                .map_err(|e| format!("B's read: {e}"))?;
            for (i, blk) in buf[..n].chunks(BLOCK).enumerate() {
                let k = blk[0];
                if !(1..=ROUNDS).contains(&k) || blk.iter().any(|&x| x != k) {
                    return Err(format!("B read garbage in block {i}: {:?}…", &blk[..8]));
                }
            }
            reads += 1;
        }
        Ok(reads)
    };
    let (ra, rb) = both(rewrite, read);
    ra?;
    rb?;
    check(&mut |c| expect_file(c, "f", &[ROUNDS; LEN]))
}

/// Both clients add 1 to a counter 200 times, each under an OFD lock:
/// the store must pass locks and the locked data between its clients.
fn locked_counter(a: &Path, b: &Path, check: Check) -> Outcome {
    fs::write(a.join("n"), 0u64.to_le_bytes()).map_err(err)?;
    let add = |dir: &Path| -> Outcome {
        for _ in 0..200 {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(dir.join("n"))
                .map_err(err)?;
            ofd_lock(&f, libc::F_WRLCK)?;
            let mut v = [0u8; 8];
            f.read_exact_at(&mut v, 0).map_err(err)?;
            let n = u64::from_le_bytes(v) + 1;
            f.write_all_at(&n.to_le_bytes(), 0).map_err(err)?;
            f.sync_all().map_err(err)?;
            ofd_lock(&f, libc::F_UNLCK)?;
        }
        Ok(())
    };
    let (ra, rb) = both(|| add(a), || add(b));
    ra?;
    rb?;
    check(&mut |c| {
        let v = fs::read(c.join("n")).map_err(err)?;
        let n = u64::from_le_bytes(v[..8].try_into().map_err(err)?);
        (n == 400)
            .then_some(())
            .ok_or(format!("counter {n}: {} locked updates lost", 400 - n))
    })
}

fn whole_file(kind: i32) -> libc::flock {
    libc::flock {
        l_type: kind as i16,
        l_whence: libc::SEEK_SET as i16,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

fn ofd_lock(f: &File, kind: i32) -> Outcome {
    nix::fcntl::fcntl(f, nix::fcntl::FcntlArg::F_OFD_SETLKW(&whole_file(kind)))
        .map(drop)
        .map_err(|e| format!("F_OFD_SETLKW: {e}"))
}

/// cipherfs(1) says so: cipherfs does not pass programs' locks on, so B
/// gets a lock that A holds (as with gocryptfs).
fn program_locks(a: &Path, b: &Path, _check: Check) -> Outcome {
    fs::write(a.join("f"), b"x").map_err(err)?;
    let rw = |p: &Path| OpenOptions::new().read(true).write(true).open(p);
    let fa = rw(&a.join("f")).map_err(err)?;
    ofd_lock(&fa, libc::F_WRLCK)?;
    let fb = rw(&b.join("f")).map_err(err)?;
    let got = nix::fcntl::fcntl(
        &fb,
        nix::fcntl::FcntlArg::F_OFD_SETLK(&whole_file(libc::F_WRLCK)),
    );
    match got {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "B could not take a lock A holds ({e}): locks reach the other machine now, \
             and cipherfs(1) says they do not"
        )),
    }
}
