//! Shared storage: one cipher directory mounted by two clients at once
//! (`-o sharedstorage`), with nothing lost. The battery (battery.rs) runs
//! on two stores:
//!
//! - two bind mounts of one local directory (always, as root), the
//!   coherent case;
//! - GlusterFS, when scripts/shared-test has started a volume and mounted
//!   it three times (CIPHERFS_SHARED_A, _B, _C): the real one.
//!
//! Each store first gets the battery raw, without cipherfs, plus a locked
//! read-modify-write: if the store itself loses updates, the run reports a
//! setup problem instead of blaming cipherfs. Then cipherfs is mounted on
//! client A and B, each case is checked through a third, fresh mount, and
//! `cipherfs fsck` must find the directory clean afterwards.

#[path = "../common/mod.rs"]
mod common;

mod battery;

use std::path::{Path, PathBuf};
use std::process::Command;

use battery::{Outcome, CASES};
use common::mount::{cipherfs, init_cheap, write_private, BIN};

/// Three views of one store: clients A and B, and C for checking.
struct Views {
    name: String,
    a: PathBuf,
    b: PathBuf,
    c: PathBuf,
}

/// Two bind mounts (and a third) of one local directory, undone on drop.
struct LocalViews {
    root: PathBuf,
    views: Views,
}

impl LocalViews {
    fn new(test: &str) -> Option<Self> {
        if !common::mount::fuse_usable(test) {
            return None;
        }
        if !rustix::process::geteuid().is_root() {
            if std::env::var("CIPHERFS_REQUIRE_FUSE").as_deref() == Ok("1") {
                panic!("{test}: bind mounts need root, and the test command requires this test");
            }
            eprintln!("SKIP {test}: bind mounts need root");
            return None;
        }
        let root = std::env::temp_dir().join(format!("cipherfs-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let store = root.join("store");
        std::fs::create_dir_all(&store).unwrap();
        let view = |n: &str| {
            let p = root.join(n);
            std::fs::create_dir_all(&p).unwrap();
            let ok = Command::new("mount")
                .arg("--bind")
                .arg(&store)
                .arg(&p)
                .status()
                .unwrap()
                .success();
            assert!(ok, "mount --bind {}", p.display());
            p
        };
        let views = Views {
            name: "two bind mounts of one local directory".into(),
            a: view("a"),
            b: view("b"),
            c: view("c"),
        };
        Some(Self { root, views })
    }
}

impl Drop for LocalViews {
    fn drop(&mut self) {
        for v in [&self.views.a, &self.views.b, &self.views.c] {
            let _ = Command::new("umount").arg(v).status();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A cipherfs mount of `cipher` on `plain`, unmounted on drop.
struct CipherMount {
    plain: PathBuf,
}

impl CipherMount {
    fn new(cipher: &Path, plain: &Path, passfile: &Path) -> Self {
        std::fs::create_dir_all(plain).unwrap();
        let out = cipherfs(&[
            "mount",
            "--passfile",
            passfile.to_str().unwrap(),
            "-o",
            "sharedstorage",
            cipher.to_str().unwrap(),
            plain.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "mount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            plain: plain.to_path_buf(),
        }
    }
}

impl Drop for CipherMount {
    fn drop(&mut self) {
        for _ in 0..100 {
            let out = Command::new("fusermount3")
                .arg("-u")
                .arg(&self.plain)
                .output()
                .unwrap();
            if out.status.success() || !String::from_utf8_lossy(&out.stderr).contains("busy") {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// Runs its second argument on the third view of the case named first.
type CheckCase<'a> = &'a dyn Fn(&str, &mut dyn FnMut(&Path) -> Outcome) -> Outcome;

/// Runs the cases for the raw store or for cipherfs (see `battery::On`) with A's and B's
/// working directories made by `mkdir` under `a`/`b`, and `check` giving
/// the third view's; returns the failures, one line each.
fn run_cases(a: &Path, b: &Path, raw: bool, check: CheckCase) -> Vec<String> {
    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let wanted = match case.on {
            battery::On::Both => true,
            battery::On::Raw => raw,
            battery::On::Cipherfs => !raw,
        };
        if !wanted {
            continue;
        }
        let dir = format!("case{i}");
        let started = std::time::Instant::now();
        let outcome = std::fs::create_dir(a.join(&dir))
            .map_err(|e| format!("mkdir {dir} in A: {e}"))
            .and_then(|()| (case.run)(&a.join(&dir), &b.join(&dir), &|f| check(&dir, f)));
        let took = started.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => println!("  ok    {:<52} {took:6.2} s", case.name),
            Err(e) => {
                println!("  FAIL  {:<52} {took:6.2} s: {e}", case.name);
                failures.push(format!("{}: {e}", case.name));
            }
        }
    }
    failures
}

/// The raw store through the battery: it must be coherent on its own.
fn raw_battery(v: &Views, tag: &str) {
    println!("{}: the store itself, without cipherfs", v.name);
    let dir = format!("raw-{tag}");
    std::fs::create_dir(v.a.join(&dir)).unwrap();
    let failures = run_cases(&v.a.join(&dir), &v.b.join(&dir), true, &|case, f| {
        f(&v.c.join(&dir).join(case))
    });
    assert!(
        failures.is_empty(),
        "SETUP PROBLEM, not cipherfs: {} loses updates or shows stale data on its own \
         (see cipherfs(1), SHARED STORAGE, for how to set it up):\n{}",
        v.name,
        failures.join("\n")
    );
}

/// cipherfs on clients A and B in shared-storage mode, checked through a
/// fresh third mount per case, and fsck afterwards.
fn cipher_battery(v: &Views, tag: &str, init_args: &[&str], scratch: &Path) {
    println!("{}: cipherfs -o sharedstorage {init_args:?}", v.name);
    std::fs::create_dir_all(scratch).unwrap();
    let passfile = scratch.join("pw");
    write_private(&passfile, "shared password\n");
    let dir = format!("cipher-{tag}");
    let cipher_a = v.a.join(&dir);
    std::fs::create_dir(&cipher_a).unwrap();
    let out = init_cheap(&passfile, &cipher_a, init_args);
    assert!(out.status.success(), "init: {out:?}");
    let failures = {
        let ma = CipherMount::new(&cipher_a, &scratch.join("pa"), &passfile);
        let mb = CipherMount::new(&v.b.join(&dir), &scratch.join("pb"), &passfile);
        run_cases(&ma.plain, &mb.plain, false, &|case, f| {
            let mc = CipherMount::new(&v.c.join(&dir), &scratch.join("pc"), &passfile);
            f(&mc.plain.join(case))
        })
    };
    let fsck = Command::new(BIN)
        .args(["fsck", "--passfile", passfile.to_str().unwrap()])
        .arg(&cipher_a)
        .output()
        .unwrap();
    println!(
        "  fsck: {}",
        String::from_utf8_lossy(&fsck.stdout)
            .lines()
            .last()
            .unwrap_or("")
    );
    let mut failures = failures;
    if !fsck.status.success() {
        failures.push(format!(
            "fsck is not clean afterwards: {}{}",
            String::from_utf8_lossy(&fsck.stdout),
            String::from_utf8_lossy(&fsck.stderr)
        ));
    }
    assert!(
        failures.is_empty(),
        "cipherfs on {}: {}",
        v.name,
        failures.join("\n")
    );
}

fn battery(v: &Views, test: &str) {
    let tag = std::process::id().to_string();
    let scratch = std::env::temp_dir().join(format!("cipherfs-{test}-mnt-{tag}"));
    raw_battery(v, &tag);
    for (mode, args) in [("xts", &[][..]), ("gcm", &["--cipher", "gcm-aes-256"][..])] {
        cipher_battery(v, &format!("{mode}-{tag}"), args, &scratch.join(mode));
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn two_views_of_a_local_directory_lose_nothing() {
    let Some(local) = LocalViews::new("shared-local") else {
        return;
    };
    battery(&local.views, "shared-local");
}

/// On a local filesystem the mode is off unless asked for.
#[test]
fn on_a_local_directory_the_mode_is_off_unless_asked_for() {
    let Some(local) = LocalViews::new("shared-local-mode") else {
        return;
    };
    let (plain, asked) = mount_lines(
        &local.views.a.join("c"),
        &local.root.join("scratch"),
        &["-o", "sharedstorage"],
    );
    assert!(
        plain.contains("mounted ") && !plain.contains("shared-storage"),
        "{plain}"
    );
    assert!(
        asked.contains("shared-storage mode (-o sharedstorage)"),
        "{asked}"
    );
}

#[test]
fn two_glusterfs_clients_lose_nothing() {
    let var = |n: &str| std::env::var_os(format!("CIPHERFS_SHARED_{n}")).map(PathBuf::from);
    let (Some(a), Some(b), Some(c)) = (var("A"), var("B"), var("C")) else {
        eprintln!(
            "SKIP two_glusterfs_clients_lose_nothing: no volume (scripts/shared-test, which \
             the test command runs, starts one and sets CIPHERFS_SHARED_A/B/C)"
        );
        return;
    };
    let name = std::env::var("CIPHERFS_SHARED_NAME").unwrap_or_else(|_| "the shared store".into());
    let views = Views { name, a, b, c };
    the_mode_turns_itself_on(&views);
    battery(&views, "shared-gluster");
}

/// The mount's log line, from a foreground mount of `cipher` with `opts`.
fn mount_line(cipher: &Path, plain: &Path, passfile: &Path, opts: &[&str]) -> String {
    std::fs::create_dir_all(plain).unwrap();
    let log = plain.with_extension("log");
    let mut child = Command::new(BIN)
        .args(["mount", "-f", "--passfile", passfile.to_str().unwrap()])
        .args(opts)
        .arg(cipher)
        .arg(plain)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mounted = || std::fs::read_to_string(&log).unwrap().contains("mounted ");
    common::mount::wait_until("the mount's log line", 20, mounted);
    drop(CipherMount {
        plain: plain.to_path_buf(),
    });
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    text.lines()
        .find(|l| l.contains("mounted "))
        .unwrap_or_default()
        .to_string()
}

/// Makes a cipher directory at `cipher` and mounts it twice in turn
/// (scratch space in `scratch`): the mount log lines without options and
/// with `opts`.
fn mount_lines(cipher: &Path, scratch: &Path, opts: &[&str]) -> (String, String) {
    std::fs::create_dir_all(scratch).unwrap();
    let passfile = scratch.join("pw");
    write_private(&passfile, "pw\n");
    std::fs::create_dir(cipher).unwrap();
    assert!(init_cheap(&passfile, cipher, &[]).status.success());
    (
        mount_line(cipher, &scratch.join("p1"), &passfile, &[]),
        mount_line(cipher, &scratch.join("p2"), &passfile, opts),
    )
}

/// On GlusterFS (a FUSE filesystem) the mode is on without being asked for,
/// the log line says why, and `-o nosharedstorage` turns it off.
fn the_mode_turns_itself_on(v: &Views) {
    let scratch = std::env::temp_dir().join(format!("cipherfs-shared-auto-{}", std::process::id()));
    let cipher = v.a.join(format!("auto-{}", std::process::id()));
    let (auto, off) = mount_lines(&cipher, &scratch, &["-o", "nosharedstorage"]);
    assert!(
        auto.contains("shared-storage mode (the cipher directory is on fuse"),
        "{auto}"
    );
    assert!(
        off.contains("mounted ") && !off.contains("shared-storage"),
        "{off}"
    );
    println!("{}: {auto}", v.name);
    let _ = std::fs::remove_dir_all(&scratch);
}

/// On shared storage a directory whose IV is missing is waited for (a
/// second at most): an IV that appears meanwhile is used; one that does
/// not gives EIO.
#[test]
fn a_directory_seen_before_its_iv_is_waited_for_then_eio() {
    use std::time::{Duration, Instant};
    let Some(mut m) = common::mount::Mounted::new("shared-iv-wait", &[]) else {
        return;
    };
    std::fs::create_dir(m.plain.join("d")).unwrap();
    std::fs::write(m.plain.join("d/f"), b"x").unwrap();
    m.unmount();
    m.extra = vec!["-o".into(), "sharedstorage".into()];
    let dir = std::fs::read_dir(&m.cipher)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let (iv, aside) = (dir.join("cipherfs.diriv"), m.root.join("iv"));
    std::fs::rename(&iv, &aside).unwrap();
    m.mount();
    let (from, to) = (aside.clone(), iv.clone());
    let restore = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        std::fs::rename(from, to).unwrap();
    });
    let start = Instant::now();
    assert_eq!(std::fs::read(m.plain.join("d/f")).unwrap(), b"x");
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
    restore.join().unwrap();
    m.unmount();

    std::fs::rename(&iv, &aside).unwrap();
    m.mount();
    let start = Instant::now();
    let e = std::fs::read(m.plain.join("d/f")).unwrap_err();
    let waited = start.elapsed();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    m.unmount();
    std::fs::rename(&aside, &iv).unwrap();
}

/// A lock that another client of the store holds on a file's backing file
/// (here a plain OFD lock on it) makes this machine's reads and writes of
/// that file wait until it is let go, and then they go through
/// (cipherfs(1), SHARED STORAGE).
#[test]
fn reads_and_writes_wait_for_another_clients_lock() {
    use nix::fcntl::{fcntl, FcntlArg};
    use std::io::Write;
    use std::time::{Duration, Instant};
    let Some(mut m) = common::mount::Mounted::new("shared-lock-wait", &[]) else {
        return;
    };
    std::fs::write(m.plain.join("f"), b"before").unwrap();
    m.unmount();
    m.extra = vec!["-o".into(), "sharedstorage".into()];
    m.mount();
    let backing = m.cipher_files();
    assert_eq!(backing.len(), 1, "{backing:?}");
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&backing[0])
        .unwrap();
    let whole = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    fcntl(&held, FcntlArg::F_OFD_SETLK(&whole)).unwrap();

    let start = Instant::now();
    let f = m.plain.join("f");
    let reader = {
        let f = f.clone();
        std::thread::spawn(move || (std::fs::read(f), start.elapsed()))
    };
    let writer = std::thread::spawn(move || {
        let r = std::fs::OpenOptions::new()
            .append(true)
            .open(f)
            .and_then(|mut a| a.write_all(b", after"));
        (r, start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !reader.is_finished() && !writer.is_finished(),
        "a read or write went past another client's lock"
    );
    drop(held);
    let (read, read_at) = reader.join().unwrap();
    let (written, written_at) = writer.join().unwrap();
    written.unwrap();
    let read = read.unwrap();
    assert!(
        read == b"before" || read == b"before, after",
        "{:?}",
        String::from_utf8_lossy(&read)
    );
    assert!(read_at >= Duration::from_millis(450), "{read_at:?}");
    assert!(written_at >= Duration::from_millis(450), "{written_at:?}");
    assert_eq!(std::fs::read(m.plain.join("f")).unwrap(), b"before, after");
}
