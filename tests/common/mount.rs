//! A cipher directory initialised and mounted for one test, through the
//! real `cipherfs` binary; unmounted (and the daemon gone) when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_cipherfs");

pub struct Mounted {
    pub root: PathBuf,
    pub cipher: PathBuf,
    pub plain: PathBuf,
    pub passfile: PathBuf,
    pub extra: Vec<String>,
}

/// Writes a password file readable by its owner only (cipherfs refuses
/// world-readable ones).
pub fn write_private(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The KDF flags tests give init and recover: 1 MiB and one pass, the floor.
pub const CHEAP_KDF: [&str; 4] = ["--kdf-memory-mib", "1", "--kdf-iterations", "1"];

/// `cipherfs init` of `dir` with the cheap KDF, the password in `passfile`,
/// and `extra` flags.
pub fn init_cheap(passfile: &Path, dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["init"];
    args.extend(CHEAP_KDF);
    args.extend(["--passfile", passfile.to_str().unwrap()]);
    args.extend_from_slice(extra);
    args.push(dir.to_str().unwrap());
    cipherfs(&args)
}

pub fn cipherfs(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run cipherfs")
}

/// Whether this machine can run mount tests; why not, otherwise. The test
/// command sets CIPHERFS_REQUIRE_FUSE=1 on the host, so there they cannot skip.
pub fn fuse_usable(test: &str) -> bool {
    let missing = if !Path::new("/dev/fuse").exists() {
        Some("/dev/fuse is missing".to_string())
    } else if !Path::new(BIN).exists() {
        Some(format!("the cipherfs binary is not at {BIN}"))
    } else if Command::new("fusermount3")
        .arg("--version")
        .output()
        .is_err()
    {
        Some("fusermount3 is not installed (apt-get install fuse3)".to_string())
    } else {
        None
    };
    let Some(why) = missing else { return true };
    if std::env::var("CIPHERFS_REQUIRE_FUSE").as_deref() == Ok("1") {
        panic!("{test}: CIPHERFS_REQUIRE_FUSE=1 but {why}");
    }
    eprintln!("SKIP {test}: {why}");
    false
}

impl Mounted {
    /// Inits a fresh cipher directory (cheap KDF) and mounts it; `None`
    /// (after saying why) where FUSE is not available.
    pub fn new(test: &str, init_args: &[&str]) -> Option<Self> {
        Self::new_on(test, init_args, None)
    }

    /// As `new`, with the cipher directory at `cipher` (say, on a small
    /// filesystem the test mounted) instead of in the test's own directory.
    pub fn new_on(test: &str, init_args: &[&str], cipher: Option<&Path>) -> Option<Self> {
        if !fuse_usable(test) {
            return None;
        }
        let root = std::env::temp_dir().join(format!("cipherfs-{test}-{}", std::process::id()));
        let _ = Command::new("fusermount3")
            .arg("-u")
            .arg(root.join("p"))
            .output();
        let _ = std::fs::remove_dir_all(&root);
        let cipher = cipher.map_or_else(|| root.join("c"), Path::to_path_buf);
        let (plain, passfile) = (root.join("p"), root.join("pw"));
        std::fs::create_dir_all(&cipher).unwrap();
        std::fs::create_dir_all(&plain).unwrap();
        write_private(&passfile, "test password\n");
        let out = init_cheap(&passfile, &cipher, init_args);
        assert!(
            out.status.success(),
            "init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let m = Mounted {
            root,
            cipher,
            plain,
            passfile,
            extra: Vec::new(),
        };
        m.mount();
        Some(m)
    }

    pub fn mount(&self) {
        let mut args = vec!["mount", "--passfile", self.passfile.to_str().unwrap()];
        args.extend(self.extra.iter().map(String::as_str));
        args.push(self.cipher.to_str().unwrap());
        args.push(self.plain.to_str().unwrap());
        let out = cipherfs(&args);
        assert!(
            out.status.success(),
            "mount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Mounts detached with `args` (`mount` and its options, maybe global
    /// flags before it), the daemon logging to the syslog socket `sock`.
    pub fn mount_logging_to(&self, args: &[&str], sock: &Path) {
        let out = Command::new(BIN)
            .args(args)
            .arg("--passfile")
            .arg(&self.passfile)
            .arg(&self.cipher)
            .arg(&self.plain)
            .env("CIPHERFS_SYSLOG_SOCKET", sock)
            .output()
            .expect("run cipherfs");
        assert!(
            out.status.success(),
            "mount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Mounts again with `--pidfile`, returning the daemon's PID, so a test
    /// can look at its /proc entries.
    pub fn remount_with_pidfile(&mut self) -> String {
        self.unmount();
        let pidfile = self.root.join("pid");
        self.extra
            .extend(["--pidfile".into(), pidfile.display().to_string()]);
        self.mount();
        std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn is_mounted(&self) -> bool {
        let target = self.plain.to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(target.as_str()))
    }

    pub fn unmount(&self) {
        // Right after a file is closed the kernel may hold the mount busy for
        // a moment; retry a busy refusal (only that) for up to 5 seconds.
        let start = Instant::now();
        let out = loop {
            let out = Command::new("fusermount3")
                .arg("-u")
                .arg(&self.plain)
                .output()
                .expect("fusermount3");
            let busy = String::from_utf8_lossy(&out.stderr).contains("busy");
            if out.status.success() || !busy || start.elapsed() > Duration::from_secs(5) {
                break out;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            out.status.success(),
            "fusermount3 -u: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let start = Instant::now();
        while self.is_mounted() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!self.is_mounted(), "still mounted after fusermount3 -u");
    }

    pub fn remount(&self) {
        self.unmount();
        self.mount();
    }

    /// `cipherfs mount -f` for this directory, for a test that runs the
    /// daemon as its own child (add env or stderr before spawning).
    pub fn foreground_command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.args(["mount", "-f", "--passfile"])
            .arg(&self.passfile)
            .arg(&self.cipher)
            .arg(&self.plain);
        c
    }

    /// `cipherfs fsck` of this cipher directory (unmounted), with `extra`
    /// flags such as `--repair`.
    pub fn fsck(&self, extra: &[&str]) -> Output {
        let mut args = vec!["fsck", "--passfile", self.passfile.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(self.cipher.to_str().unwrap());
        cipherfs(&args)
    }

    /// Mounts in the foreground as a child whose log goes to `log`, and
    /// waits for the mount.
    pub fn spawn_logging_to(&self, log: &Path) -> std::process::Child {
        let child = self
            .foreground_command()
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        wait_until("the mount", 20, || self.is_mounted());
        child
    }

    /// The master key, through `cipherfs info --show-masterkey`.
    pub fn master_key(&self) -> [u8; 64] {
        let out = cipherfs(&[
            "info",
            "--show-masterkey",
            "--passfile",
            self.passfile.to_str().unwrap(),
            self.cipher.to_str().unwrap(),
        ]);
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let line = text.lines().find(|l| l.starts_with("master key")).unwrap();
        let hex: String = line["master key".len()..]
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .collect();
        let mut k = [0u8; 64];
        for (i, b) in k.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        k
    }

    /// Every regular file under the cipher directory that is not cipherfs's own.
    pub fn cipher_files(&self) -> Vec<PathBuf> {
        fn walk(d: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(d).unwrap().flatten() {
                let p = e.path();
                let ft = e.file_type().unwrap();
                if ft.is_dir() {
                    walk(&p, out);
                } else if ft.is_file() {
                    let n = e.file_name().to_string_lossy().into_owned();
                    if n != "cipherfs.conf" && n != "cipherfs.diriv" && !n.ends_with(".name") {
                        out.push(p);
                    }
                }
            }
        }
        let mut v = Vec::new();
        walk(&self.cipher, &mut v);
        v
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.is_mounted() {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg(&self.plain)
                .output();
            let start = Instant::now();
            while self.is_mounted() && start.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Polls `f` until it holds; fails the test after `secs` seconds.
#[allow(dead_code)]
pub fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGTERM to a child process.
#[allow(dead_code)]
pub fn sigterm(child: &std::process::Child) {
    signal(child, "-TERM");
}

/// Sends a signal (`kill`'s option: "-STOP", "-TERM") to a child process.
#[allow(dead_code)]
pub fn signal(child: &std::process::Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(sig)
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(ok.success(), "kill {sig} failed");
}
