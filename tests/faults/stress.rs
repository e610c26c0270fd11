//! Many threads on one mount for a while (CIPHERFS_STRESS_SECS, default 20;
//! the test command runs 120): writers sharing one file through their own
//! handles, in 700-byte stripes so that neighbours share and straddle
//! sectors; O_DIRECT readers that must never see a torn stripe; creates,
//! renames and unlinks racing with opens; shared writable mmaps; more open
//! files than the default limit of 1024. Afterwards every byte matches the
//! model the threads kept. A watchdog fails the test on a hang, with the
//! daemon's stacks; the daemon's descriptors are counted before and after.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::mount::Mounted;

const STRIPE: usize = 700;
const WRITERS: usize = 4;
const SLOTS: usize = 40;
const SHARED_LEN: usize = STRIPE * WRITERS * SLOTS;
const MM_LEN: usize = 16 * 4096;

/// Stripe `slot` of writer `w` at version `v`: a label, then bytes that
/// follow from it.
fn stripe(w: usize, slot: usize, v: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(STRIPE);
    out.extend_from_slice(&(w as u32).to_le_bytes());
    out.extend_from_slice(&(slot as u32).to_le_bytes());
    out.extend_from_slice(&v.to_le_bytes());
    let mut x = v.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (w * SLOTS + slot) as u64 | 1;
    while out.len() < STRIPE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(x as u8);
    }
    out
}

fn stripe_at(i: usize) -> (usize, usize, usize) {
    (i % WRITERS, i / WRITERS, i * STRIPE)
}

/// A file's content in the churn directory: its id, then a pattern of it.
fn churn_content(id: u64) -> Vec<u8> {
    let len = 100 + (id as usize * 37) % 9000;
    let mut v = id.to_le_bytes().to_vec();
    v.extend((0..len).map(|i| (i as u64 ^ id) as u8));
    v
}

const THREADS: usize = 11;

struct Shared {
    stop: AtomicBool,
    /// Per thread, so that one stuck thread among busy ones is seen.
    progress: [AtomicU64; THREADS],
}

thread_local! {
    static ME: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Shared {
    fn tick(&self) {
        self.progress[ME.with(|m| m.get())].fetch_add(1, Ordering::Relaxed);
    }
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }
}

fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Writer `w` rewrites its own stripes of the shared file; returns the
/// version each of them holds. O_DIRECT, so each stripe reaches the daemon
/// as one request: buffered writes are split by the kernel at a page that
/// is not cached, and a reader may then see half a stripe on any filesystem.
fn writer(path: PathBuf, w: usize, s: Arc<Shared>) -> Vec<u64> {
    let f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .unwrap();
    let mut versions = vec![0u64; SLOTS];
    let mut next = rng(w as u64 + 11);
    let mut v = 0;
    while s.running() {
        v += 1;
        let slot = next() as usize % SLOTS;
        let i = slot * WRITERS + w;
        f.write_all_at(&stripe(w, slot, v), stripe_at(i).2 as u64)
            .unwrap_or_else(|e| panic!("writer {w}: {e}"));
        versions[slot] = v;
        s.tick();
    }
    versions
}

/// O_DIRECT reads reach the daemon, which serialises them against writes:
/// every whole stripe they return must be one that was written.
fn direct_reader(path: PathBuf, seed: u64, s: Arc<Shared>) {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .unwrap();
    let mut raw = vec![0u8; 3 * 4096 + 4096];
    let off = (4096 - raw.as_ptr() as usize % 4096) % 4096;
    let buf = &mut raw[off..off + 3 * 4096];
    let mut next = rng(seed);
    while s.running() {
        let at = (next() as usize % (SHARED_LEN / 4096)) * 4096;
        let n = f.read_at(buf, at as u64).expect("O_DIRECT read");
        assert_eq!(n, buf.len().min(SHARED_LEN - at), "short read at {at}");
        for i in (at.div_ceil(STRIPE))..(WRITERS * SLOTS) {
            let (w, slot, start) = stripe_at(i);
            if start + STRIPE > at + n {
                break;
            }
            let got = &buf[start - at..start - at + STRIPE];
            let v = u64::from_le_bytes(got[8..16].try_into().unwrap());
            assert!(
                got == stripe(w, slot, v).as_slice(),
                "torn stripe {i} at {start}"
            );
        }
        s.tick();
    }
}

/// Creates, renames and unlinks in `dir` while `opener` opens what it lists.
fn churner(dir: PathBuf, s: Arc<Shared>) {
    let mut next = rng(5);
    let mut id = 0u64;
    while s.running() {
        id += 1;
        let a = dir.join(format!("f{id}"));
        fs::write(&a, churn_content(id)).unwrap();
        match next() % 3 {
            0 => fs::rename(&a, dir.join(format!("g{}", next() % 50))).unwrap(),
            1 => fs::remove_file(&a).unwrap(),
            _ => {}
        }
        if id.is_multiple_of(40) {
            for e in fs::read_dir(&dir).unwrap().flatten() {
                if next().is_multiple_of(2) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        s.tick();
    }
}

fn check_churn_file(p: &Path, data: &[u8]) {
    let id = u64::from_le_bytes(data[..8].try_into().unwrap());
    assert!(
        data == churn_content(id).as_slice(),
        "{}: content is not file {id}'s",
        p.display()
    );
}

fn opener(dir: PathBuf, s: Arc<Shared>) {
    while s.running() {
        for e in fs::read_dir(&dir).unwrap() {
            let Ok(e) = e else { continue };
            match fs::read(e.path()) {
                // A file is written by create+write: it may be seen empty.
                Ok(d) if d.is_empty() => {}
                Ok(d) => {
                    // Or half-written, as on any filesystem: check what is whole.
                    if d.len() >= 8 {
                        let id = u64::from_le_bytes(d[..8].try_into().unwrap());
                        let want = churn_content(id);
                        assert!(
                            want.starts_with(&d),
                            "{}: bytes of no file",
                            e.path().display()
                        );
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => panic!("{}: {err}", e.path().display()),
            }
            s.tick();
        }
    }
}

/// Writes pages through a shared writable mapping, reads them back with
/// pread and through a fresh read-only mapping; returns the file's content.
fn mapper(path: PathBuf, s: Arc<Shared>) -> Vec<u8> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut next = rng(9);
    let mut model = vec![0u8; MM_LEN];
    while s.running() {
        // SAFETY: only this thread maps, reads or writes this file while
        // the mapping lives, so nothing changes the memory under it.
        let mut map = unsafe { memmap2::MmapMut::map_mut(&f) }.unwrap();
        let page = next() as usize % (MM_LEN / 4096);
        let b = next() as u8;
        map[page * 4096..(page + 1) * 4096].fill(b);
        map.flush_range(page * 4096, 4096).unwrap();
        drop(map);
        model[page * 4096..(page + 1) * 4096].fill(b);
        let mut back = vec![0u8; 4096];
        f.read_exact_at(&mut back, (page * 4096) as u64).unwrap();
        assert!(
            back.iter().all(|&x| x == b),
            "mmap write of page {page} not read back"
        );
        // SAFETY: as above; this read-only mapping is dropped before the
        // next write.
        let view = unsafe { memmap2::Mmap::map(&f) }.unwrap();
        assert!(
            view[..] == model[..],
            "the file read through a fresh mapping"
        );
        drop(view);
        s.tick();
    }
    model
}

/// Holds more files open at once than the default limit of 1024.
fn hoarder(dir: PathBuf, s: Arc<Shared>) {
    let n = 1500;
    for i in 0..n {
        fs::write(dir.join(format!("h{i}")), i.to_string()).unwrap();
    }
    while s.running() {
        let open: Vec<File> = (0..n)
            .map(|i| File::open(dir.join(format!("h{i}"))).unwrap())
            .collect();
        for (i, f) in open.iter().enumerate() {
            let mut buf = [0u8; 8];
            let k = f.read_at(&mut buf, 0).unwrap();
            assert_eq!(&buf[..k], i.to_string().as_bytes());
            s.tick();
        }
    }
}

fn raise_own_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    l.current = l.maximum;
    setrlimit(Resource::Nofile, l).unwrap();
}

fn fd_count(pid: &str) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

/// The daemon's threads and where they wait, for a hang report.
fn stacks(pid: &str) -> String {
    let mut out = String::new();
    for t in fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let p = t.path();
        let comm = fs::read_to_string(p.join("comm")).unwrap_or_default();
        let stack = fs::read_to_string(p.join("stack")).unwrap_or_default();
        out += &format!(
            "thread {} {}{}\n",
            t.file_name().to_string_lossy(),
            comm,
            stack
        );
    }
    if let Ok(gdb) = std::process::Command::new("gdb")
        .args(["-batch", "-ex", "thread apply all bt", "-p", pid])
        .output()
    {
        out += &String::from_utf8_lossy(&gdb.stdout);
    }
    out
}

crate::in_both_content_modes!(many_threads_for_a_while_lose_nothing_and_leak_nothing);

fn many_threads_for_a_while_lose_nothing_and_leak_nothing(mode: crate::common::ContentMode) {
    stress(&mode.test("stress"), mode.init, false);
}

/// The same threads, every other one on a second mount of the same cipher
/// directory, both in shared-storage mode: two clients of one store.
#[test]
fn the_stress_threads_split_across_two_shared_storage_mounts_lose_nothing() {
    stress("stress-two-mounts", &[], true);
}

/// A second mount of a cipher directory, unmounted when dropped (also when
/// the test fails).
struct SecondMount(PathBuf);

impl Drop for SecondMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("fusermount3")
            .arg("-u")
            .arg(&self.0)
            .output();
    }
}

/// A second mount of `m`'s cipher directory, in shared-storage mode.
fn second_mount(m: &Mounted) -> SecondMount {
    let p = m.root.join("p2");
    fs::create_dir_all(&p).unwrap();
    let out = crate::common::mount::cipherfs(&[
        "mount",
        "--passfile",
        m.passfile.to_str().unwrap(),
        "-o",
        "sharedstorage",
        m.cipher.to_str().unwrap(),
        p.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "second mount: {out:?}");
    SecondMount(p)
}

fn stress(test: &str, init: &[&str], two_mounts: bool) {
    let Some(mut m) = Mounted::new(test, init) else {
        return;
    };
    raise_own_fd_limit();
    if two_mounts {
        m.extra = vec!["-o".into(), "sharedstorage".into()];
    }
    let secs: u64 = std::env::var("CIPHERFS_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let pid = m.remount_with_pidfile();
    let drop_caches = || fs::write("/proc/sys/vm/drop_caches", "3").is_ok();
    drop_caches();
    let fds_before = fd_count(&pid);

    let second = two_mounts.then(|| second_mount(&m));
    let plain_b = second
        .as_ref()
        .map_or_else(|| m.plain.clone(), |s| s.0.clone());
    // Thread i works on mount A when even, on B when odd.
    let on = |i: usize| {
        if i.is_multiple_of(2) {
            &m.plain
        } else {
            &plain_b
        }
    };
    let shared_path = m.plain.join("shared");
    let mut init = Vec::with_capacity(SHARED_LEN);
    for i in 0..WRITERS * SLOTS {
        let (w, slot, _) = stripe_at(i);
        init.extend_from_slice(&stripe(w, slot, 0));
    }
    fs::write(&shared_path, &init).unwrap();
    let mm_path = m.plain.join("mm");
    fs::write(&mm_path, vec![0u8; MM_LEN]).unwrap();
    for d in ["churn", "many"] {
        fs::create_dir(m.plain.join(d)).unwrap();
    }

    let s = Arc::new(Shared {
        stop: AtomicBool::new(false),
        progress: std::array::from_fn(|_| AtomicU64::new(0)),
    });
    let mut n = 0;
    let mut spawn = |f: Box<dyn FnOnce() + Send>| {
        let me = n;
        n += 1;
        std::thread::spawn(move || {
            ME.with(|m| m.set(me));
            f()
        })
    };
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (p, s) = (on(w).join("shared"), Arc::clone(&s));
        let (tx, rx) = std::sync::mpsc::channel();
        spawn(Box::new(move || tx.send(writer(p, w, s)).unwrap()));
        writers.push(rx);
    }
    let (p, s2, (mtx, mrx)) = (mm_path.clone(), Arc::clone(&s), std::sync::mpsc::channel());
    let mapper_t = spawn(Box::new(move || mtx.send(mapper(p, s2)).unwrap()));
    let mut others = Vec::new();
    for r in 0..2 {
        let (p, s) = (on(r as usize).join("shared"), Arc::clone(&s));
        others.push(spawn(Box::new(move || direct_reader(p, r + 1, s))));
    }
    for which in 0..3 {
        let (d, s) = (on(which).join("churn"), Arc::clone(&s));
        others.push(spawn(match which {
            0 => Box::new(move || churner(d, s)),
            _ => Box::new(move || opener(d, s)),
        }));
    }
    {
        let (d, s) = (on(1).join("many"), Arc::clone(&s));
        others.push(spawn(Box::new(move || hoarder(d, s))));
    }

    others.push(mapper_t);
    assert_eq!(others.len(), THREADS - WRITERS);
    // The watchdog: a thread without progress for 30 s is hung.
    let progress = |t: usize| s.progress[t].load(Ordering::Relaxed);
    let start = Instant::now();
    let mut last: Vec<(u64, Instant)> = (0..THREADS).map(|_| (0, Instant::now())).collect();
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(500));
        for (t, l) in last.iter_mut().enumerate() {
            if progress(t) != l.0 {
                *l = (progress(t), Instant::now());
            } else if l.1.elapsed() > Duration::from_secs(30) {
                panic!(
                    "thread {t}: no progress for 30 s, a hang. Daemon {pid}:\n{}",
                    stacks(&pid)
                );
            }
        }
        assert!(
            !others.iter().any(|t| t.is_finished()),
            "a worker stopped early (see its panic above)"
        );
    }
    s.stop.store(true, Ordering::Relaxed);
    let versions: Vec<Vec<u64>> = writers
        .into_iter()
        .map(|rx| {
            rx.recv_timeout(Duration::from_secs(60))
                .expect("a writer hung or panicked")
        })
        .collect();
    let mm_model = mrx
        .recv_timeout(Duration::from_secs(60))
        .expect("the mapper hung or panicked");
    for t in others {
        t.join().unwrap();
    }
    let ops: u64 = (0..THREADS).map(progress).sum();
    eprintln!("stress: {ops} operations by {THREADS} threads in {secs} s");

    // Every byte as the model says, also after a remount.
    let check = |when: &str| {
        let got = fs::read(&shared_path).unwrap();
        assert_eq!(got.len(), SHARED_LEN);
        for i in 0..WRITERS * SLOTS {
            let (w, slot, at) = stripe_at(i);
            assert!(
                got[at..at + STRIPE] == stripe(w, slot, versions[w][slot]),
                "{when}: stripe {i} (writer {w}) is not its last version"
            );
        }
        assert!(fs::read(&mm_path).unwrap() == mm_model, "{when}: mmap file");
        let mut churned = HashMap::new();
        for e in fs::read_dir(m.plain.join("churn")).unwrap().flatten() {
            let d = fs::read(e.path()).unwrap();
            check_churn_file(&e.path(), &d);
            churned.insert(e.file_name(), d.len());
        }
        churned
    };
    let a = check("mounted");
    assert!(
        ops > 1000,
        "too little work ({ops} operations) to mean anything"
    );
    // Descriptors of looked-up nodes close once the kernel forgets them.
    let settle = Instant::now();
    let mut fds_after = fd_count(&pid);
    while fds_after > fds_before + 2 && settle.elapsed() < Duration::from_secs(10) {
        drop_caches();
        std::thread::sleep(Duration::from_millis(200));
        fds_after = fd_count(&pid);
    }
    assert!(
        fds_after <= fds_before + 2,
        "the daemon holds {fds_after} descriptors after the run, {fds_before} before: a leak"
    );
    if let Some(b) = second {
        let out = std::process::Command::new("fusermount3")
            .arg("-u")
            .arg(&b.0)
            .output()
            .unwrap();
        assert!(out.status.success(), "unmounting B: {out:?}");
    }
    m.remount();
    assert_eq!(check("after a remount"), a);
}
