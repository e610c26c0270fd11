//! Daemon behaviour: --idle unmounts after no use, --pidfile, and a busy
//! mount on SIGTERM is detached lazily and says so; a daemon exits when its
//! mount goes, even if another takes its place; READDIRPLUS keeps the
//! kernel's references balanced.

use crate::common;

use std::fs;
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::mount::{cipherfs, signal, sigterm, wait_until, Mounted};

#[test]
fn idle_unmounts_after_no_use_and_the_pidfile_comes_and_goes() {
    let Some(m) = Mounted::new("idle", &[]) else {
        return;
    };
    m.unmount();
    let pidfile = m.root.join("pid");
    let out = cipherfs(&[
        "mount",
        "--idle",
        "2s",
        "--pidfile",
        pidfile.to_str().unwrap(),
        "--passfile",
        m.passfile.to_str().unwrap(),
        m.cipher.to_str().unwrap(),
        m.plain.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid: u32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "PID file names no live process"
    );
    // Use keeps it mounted...
    for _ in 0..6 {
        fs::write(m.plain.join("f"), b"x").unwrap();
        std::thread::sleep(Duration::from_millis(400));
    }
    assert!(m.is_mounted(), "unmounted while in use");
    // ...and quiet unmounts it.
    wait_until("the idle unmount", 10, || !m.is_mounted());
    wait_until("the daemon to exit", 10, || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    assert!(!pidfile.exists(), "PID file left behind");
}

/// --idle never detaches a mount in use: with a file open, or a process's
/// working directory inside, it stays past the idle time (and says so once);
/// once let go, it goes.
#[test]
fn idle_leaves_a_mount_in_use_alone_and_unmounts_it_once_let_go() {
    let Some(m) = Mounted::new("idlebusy", &[]) else {
        return;
    };
    fs::write(m.plain.join("held"), b"open while idle").unwrap();
    fs::create_dir(m.plain.join("home")).unwrap();
    m.unmount();
    let log = m.root.join("log");
    let mut daemon = m
        .foreground_command()
        .args(["--idle", "1s"])
        .stderr(Stdio::from(fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    wait_until("the mount", 20, || m.is_mounted());
    // Held by an open file, for several idle periods: it stays, and serves.
    let mut file = fs::File::open(m.plain.join("held")).unwrap();
    std::thread::sleep(Duration::from_millis(3500));
    assert!(m.is_mounted(), "unmounted with a file open");
    let mut s = String::new();
    file.read_to_string(&mut s).unwrap();
    assert_eq!(s, "open while idle");
    // Then by a process's working directory alone.
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .current_dir(m.plain.join("home"))
        .spawn()
        .unwrap();
    drop(file);
    std::thread::sleep(Duration::from_millis(3500));
    assert!(m.is_mounted(), "unmounted with a working directory inside");
    assert!(daemon.try_wait().unwrap().is_none(), "the daemon left");
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    wait_until("the idle unmount once let go", 20, || !m.is_mounted());
    let status = daemon.wait().unwrap();
    assert!(status.success(), "{status}");
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("is idle but in use").count(), 1, "{text}");
    assert!(
        text.contains("unmounted") && text.contains("(idle for 1s)"),
        "{text}"
    );
    assert!(!text.contains("lazily"), "{text}");
}

#[test]
fn a_busy_mount_on_sigterm_is_detached_lazily_and_says_so() {
    let Some(m) = Mounted::new("busy", &[]) else {
        return;
    };
    fs::write(m.plain.join("held"), b"still being read").unwrap();
    m.unmount();
    let log = m.root.join("log");
    let mut child = m
        .foreground_command()
        .stderr(Stdio::from(fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    wait_until("the mount", 10, || m.is_mounted());
    let mut held = fs::File::open(m.plain.join("held")).unwrap();
    sigterm(&child);
    wait_until("the lazy detach", 10, || !m.is_mounted());
    // The open file still works through the detached mount.
    let mut s = String::new();
    held.read_to_string(&mut s).unwrap();
    assert_eq!(s, "still being read");
    assert!(
        child.try_wait().unwrap().is_none(),
        "daemon exited while the mount was still in use"
    );
    drop(held);
    let status = wait_for_exit(&mut child, "after the last user left");
    let text = fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{status}; daemon log: {text}");
    assert!(text.contains("busy: detached lazily"), "{text}");
}

/// A daemon whose mount is unmounted exits, even when a new mount is made
/// at the same path before it looks (the daemon was stopped meanwhile, so
/// the new mount is always first), and it leaves the new mount alone.
#[test]
fn a_daemon_exits_when_its_mount_goes_though_a_new_one_takes_its_place() {
    let Some(m) = Mounted::new("replaced", &[]) else {
        return;
    };
    m.unmount();
    let log = m.root.join("log");
    let mut old = m.spawn_logging_to(&log);
    signal(&old, "-STOP");
    m.unmount();
    m.mount();
    signal(&old, "-CONT");
    let status = wait_for_exit(&mut old, "after its mount was unmounted");
    let text = fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{status}; daemon log: {text}");
    assert!(text.contains("by umount or fusermount3 -u"), "{text}");
    assert!(m.is_mounted(), "the new mount went with the old daemon");
    fs::write(m.plain.join("f"), b"the new mount answers").unwrap();
}

/// The daemon's exit status, once it exits (`when` says after what); a
/// daemon still running after 10 seconds is killed and fails the test.
fn wait_for_exit(child: &mut std::process::Child, when: &str) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("the daemon did not exit {when}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn backend_afalg_without_af_alg_exits_14_with_the_reason() {
    let Some(m) = Mounted::new("noafalg", &[]) else {
        return;
    };
    if cipherfs::skcipher::Skcipher::has("xts(aes)", cipherfs::skcipher::Backend::Afalg) {
        eprintln!("SKIP: this kernel has AF_ALG; the refusal cannot be shown here");
        return;
    }
    m.unmount();
    let out = cipherfs(&[
        "mount",
        "--backend",
        "afalg",
        "--passfile",
        m.passfile.to_str().unwrap(),
        m.cipher.to_str().unwrap(),
        m.plain.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(14),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no AF_ALG skcipher interface"));
    assert!(!m.is_mounted());
}

#[test]
fn mount_options_carry_what_the_flags_carry() {
    let Some(m) = Mounted::new("oopts", &[]) else {
        return;
    };
    let key = m.master_key();
    m.unmount();
    let keyfile = m.root.join("key");
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    // A key file its group may read is refused, as a world-readable passfile is.
    fs::write(&keyfile, &hex).unwrap();
    fs::set_permissions(
        &keyfile,
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    let out = cipherfs(&[
        "mount",
        "--masterkey-file",
        keyfile.to_str().unwrap(),
        m.cipher.to_str().unwrap(),
        m.plain.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("readable by its group or other users"),
        "{err}"
    );
    assert!(!m.is_mounted());
    common::mount::write_private(&keyfile, &hex);
    let pidfile = m.root.join("pid");
    let opts = format!(
        "masterkey_file={},pidfile={},idle=1h,backend=soft,debug_names,ro,nofail",
        keyfile.display(),
        pidfile.display()
    );
    let out = cipherfs(&[
        "mount",
        "-o",
        &opts,
        m.cipher.to_str().unwrap(),
        m.plain.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(pidfile.exists(), "pidfile= was not honoured");
    let e = fs::write(m.plain.join("x"), b"y").unwrap_err();
    assert_eq!(
        e.raw_os_error(),
        Some(libc::EROFS),
        "ro was not honoured: {e}"
    );
}

/// `ls -l` gets names and attributes in READDIRPLUS replies: each entry sent
/// counts one kernel reference, an entry that did not fit in a reply must
/// not, and when the kernel drops its caches every reference is given back
/// (the daemon's descriptors return to where they were).
#[test]
fn listings_with_attributes_give_right_sizes_and_keep_lookups_balanced() {
    let Some(mut m) = Mounted::new("readdirplus", &[]) else {
        return;
    };
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP readdirplus balance test: dropping the kernel's caches needs root");
        return;
    }
    let pid = m.remount_with_pidfile();
    let fds = || fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    let dir = m.plain.join("many");
    fs::create_dir(&dir).unwrap();
    let n = 600;
    for i in 0..n {
        // Long names fill a reply after a few dozen entries.
        fs::write(
            dir.join(format!("a-rather-long-file-name-{i:04}")),
            vec![7u8; i],
        )
        .unwrap();
    }
    let drop_caches = || fs::write("/proc/sys/vm/drop_caches", "2").unwrap();
    drop_caches();
    wait_until("the kernel to forget the new files", 10, || fds() < n);
    // FORGETs arrive asynchronously: count once the number has settled.
    let mut last = fds();
    wait_until("the descriptor count to settle", 10, || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = fds();
        std::mem::replace(&mut last, now) == now
    });
    let before = last;
    let out = std::process::Command::new("ls")
        .arg("-ln")
        .arg(&dir)
        .output()
        .unwrap();
    let listing = String::from_utf8(out.stdout).unwrap();
    let mut seen = 0;
    for line in listing.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let i: usize = f[8]
            .trim_start_matches("a-rather-long-file-name-")
            .parse()
            .unwrap();
        assert_eq!(f[4], i.to_string(), "size of {}", f[8]);
        seen += 1;
    }
    assert_eq!(seen, n);
    assert!(
        fds() >= before + n,
        "READDIRPLUS looked every entry up ({} descriptors, {before} before)",
        fds()
    );
    drop_caches();
    wait_until("every reference to come back", 10, || fds() <= before);
}

/// A daemon started with the usual soft limit of open files still serves
/// more files than that at once: it raises its own limit, and sizes its
/// descriptor table for it at start.
#[test]
fn more_files_in_use_than_the_soft_descriptor_limit() {
    let Some(m) = Mounted::new("nofile", &[]) else {
        return;
    };
    m.unmount();
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(u64::MAX);
    let soft = 256;
    let n = 600;
    if hard < (n as u64) * 2 {
        eprintln!("SKIP descriptor limit test: the hard limit ({hard}) leaves no room");
        return;
    }
    let pidfile = m.root.join("pid");
    let out = std::process::Command::new("prlimit")
        .arg(format!("--nofile={soft}:{hard}"))
        .arg(common::mount::BIN)
        .args([
            "mount",
            "--pidfile",
            pidfile.to_str().unwrap(),
            "--passfile",
        ])
        .arg(&m.passfile)
        .arg(&m.cipher)
        .arg(&m.plain)
        .output()
        .expect("prlimit (util-linux)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = fs::read_to_string(&pidfile).unwrap().trim().to_string();
    // The descriptor table is grown once at start, not under load, where
    // each growth stalls a request for an RCU grace period.
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let table: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("FDSize:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(
        table >= hard.min(1 << 16),
        "descriptor table of {table} slots at start (hard limit {hard})"
    );
    let dir = m.plain.join("d");
    fs::create_dir(&dir).unwrap();
    for i in 0..n {
        fs::write(dir.join(format!("f{i}")), b"x").unwrap();
    }
    // Every file is looked up and stays referenced by the kernel.
    let files: Vec<fs::File> = (0..n)
        .map(|i| fs::File::open(dir.join(format!("f{i}"))).unwrap())
        .collect();
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    assert!(fds > soft, "{fds} descriptors in use by the daemon");
    drop(files);
    assert_eq!(fs::read(dir.join("f0")).unwrap(), b"x");
}

/// While mounted, the daemon keeps the master key's page locked in RAM
/// (VmLck counts it), so the key is never written to swap.
#[test]
fn the_daemon_locks_the_master_key_in_memory() {
    let Some(mut m) = Mounted::new("mlock", &[]) else {
        return;
    };
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP mlock test: RLIMIT_MEMLOCK may forbid it for this user");
        return;
    }
    let pid = m.remount_with_pidfile();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let locked_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(locked_kb >= 4, "VmLck {locked_kb} kB");
}

/// The daemon gets the master key on a pipe: neither the password nor the
/// key (raw or hex) is in its argv or environment, where other users' `ps`
/// or /proc could read them.
#[test]
fn no_secret_in_the_daemons_argv_or_environment() {
    let Some(m) = Mounted::new("secrets", &[]) else {
        return;
    };
    let key = m.master_key();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    m.unmount();
    let pidfile = m.root.join("pid");
    let extpass = format!("cat {}", m.passfile.display());
    let out = cipherfs(&[
        "mount",
        "--extpass",
        &extpass,
        "--pidfile",
        pidfile.to_str().unwrap(),
        m.cipher.to_str().unwrap(),
        m.plain.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = fs::read_to_string(&pidfile).unwrap().trim().to_string();
    let password = fs::read(&m.passfile).unwrap();
    let password = &password[..password.len() - 1];
    for what in ["cmdline", "environ"] {
        let v = fs::read(format!("/proc/{pid}/{what}")).unwrap();
        let has = |needle: &[u8]| v.windows(needle.len()).any(|w| w == needle);
        assert!(!has(password), "the password is in the daemon's {what}");
        assert!(
            !has(hex.as_bytes()),
            "the hex master key is in the daemon's {what}"
        );
        assert!(
            !has(hex.to_uppercase().as_bytes()),
            "the hex master key is in the daemon's {what}"
        );
        assert!(!has(&key[..16]), "raw key bytes in the daemon's {what}");
    }
    let cmdline = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.contains("--masterkey-file\0-"), "{cmdline:?}");
}

/// The mount's type and source, as findmnt shows them: fuse.cipherfs and
/// the cipher directory's absolute path, even when mounted with relative
/// paths (as root, which mounts directly); -o fsname= and subtype= win.
#[test]
fn mounts_show_type_fuse_cipherfs_and_the_absolute_source() {
    let Some(m) = Mounted::new("fstype", &[]) else {
        return;
    };
    m.unmount();
    let entry = || {
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = info
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(m.plain.to_str().unwrap()))
            .expect("mounted")
            .to_string();
        let after = line.split(" - ").nth(1).unwrap().to_string();
        let mut f = after.split(' ');
        (f.next().unwrap().to_string(), f.next().unwrap().to_string())
    };
    let mount = |extra: &[&str]| {
        let out = std::process::Command::new(common::mount::BIN)
            .args(["mount", "--passfile"])
            .arg(&m.passfile)
            .args(extra)
            .args(["c", "p"])
            .current_dir(&m.root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    mount(&[]);
    let cipher = m.cipher.canonicalize().unwrap().display().to_string();
    assert_eq!(entry(), ("fuse.cipherfs".to_string(), cipher));
    m.unmount();
    mount(&["-o", "fsname=myvault,subtype=vaultfs"]);
    assert_eq!(entry(), ("fuse.vaultfs".to_string(), "myvault".to_string()));
    m.unmount();
}
