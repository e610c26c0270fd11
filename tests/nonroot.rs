//! An ordinary user mounts and unmounts their own cipher directory through
//! fusermount3, with a user created for the test; allow_other without
//! user_allow_other in /etc/fuse.conf is refused with a clear message.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_cipherfs");
const USER: &str = "cipherfs-test";

fn as_user(cmd: &str) -> Output {
    Command::new("runuser")
        .args(["-u", USER, "--", "sh", "-c", cmd])
        .env("HOME", "/tmp")
        .output()
        .unwrap()
}

struct TestUser;

impl TestUser {
    fn create() -> Option<Self> {
        if !rustix::process::geteuid().is_root()
            || Command::new("runuser").arg("--version").output().is_err()
        {
            eprintln!("SKIP nonroot test: needs root and runuser to create and act as a test user");
            return None;
        }
        let _ = Command::new("userdel").arg(USER).output();
        let ok = Command::new("useradd")
            .args(["--system", "--no-create-home", "--shell", "/bin/sh", USER])
            .status()
            .unwrap();
        assert!(ok.success(), "useradd failed");
        Some(TestUser)
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // The user's daemon may still be exiting; -f removes the user anyway.
        for _ in 0..20 {
            if Command::new("userdel")
                .args(["-f", USER])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
                || Command::new("id")
                    .arg(USER)
                    .output()
                    .map(|o| !o.status.success())
                    .unwrap_or(true)
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// /dev/fuse as Debian sets it (0666) for the test, its mode restored after.
/// With a root-only /dev/fuse no ordinary user can mount at all: fusermount3
/// opens it with the user's rights.
struct DevFuseMode(u32);

impl DevFuseMode {
    fn debian_default() -> Self {
        let old = fs::metadata("/dev/fuse").unwrap().permissions().mode() & 0o7777;
        fs::set_permissions("/dev/fuse", fs::Permissions::from_mode(0o666)).unwrap();
        DevFuseMode(old)
    }
}

impl Drop for DevFuseMode {
    fn drop(&mut self) {
        let _ = fs::set_permissions("/dev/fuse", fs::Permissions::from_mode(self.0));
    }
}

fn mounted(p: &Path) -> bool {
    let t = p.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(t.as_str()))
}

#[test]
fn an_ordinary_user_mounts_and_unmounts_their_own_directory() {
    if !Path::new("/dev/fuse").exists() || !Path::new(BIN).exists() {
        eprintln!("SKIP nonroot test: no /dev/fuse or no binary");
        return;
    }
    let Some(_user) = TestUser::create() else {
        return;
    };
    let root = std::env::temp_dir().join(format!("cipherfs-nonroot-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
    let r = root.display();
    let original = fs::metadata("/dev/fuse").unwrap().permissions().mode() & 0o7777;
    if original & 0o006 != 0o006 {
        // First, with /dev/fuse closed to users: a clear refusal, exit 14.
        let pre = as_user(&format!("mkdir -p {r}/x/c {r}/x/p && echo pw > {r}/x/pw && {BIN} init --kdf-memory-mib 1 --kdf-iterations 1 --passfile {r}/x/pw {r}/x/c && {BIN} mount --passfile {r}/x/pw {r}/x/c {r}/x/p"));
        assert_eq!(
            pre.status.code(),
            Some(14),
            "{}",
            String::from_utf8_lossy(&pre.stderr)
        );
        assert!(String::from_utf8_lossy(&pre.stderr).contains("/dev/fuse is not open to this user"));
    }
    let _mode = DevFuseMode::debian_default();
    let setup = as_user(&format!(
        "mkdir {r}/c {r}/p && echo 'user pw' > {r}/pw && {BIN} init --kdf-memory-mib 1 --kdf-iterations 1 --passfile {r}/pw {r}/c"
    ));
    assert!(
        setup.status.success(),
        "init as user: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let m = as_user(&format!("{BIN} mount --passfile {r}/pw {r}/c {r}/p"));
    assert!(
        m.status.success(),
        "mount as user: {}",
        String::from_utf8_lossy(&m.stderr)
    );
    let p = root.join("p");
    assert!(mounted(&p));
    let io = as_user(&format!(
        "echo hello > {r}/p/f && cat {r}/p/f && ls -ln {r}/c | wc -l"
    ));
    assert!(
        io.status.success(),
        "{}",
        String::from_utf8_lossy(&io.stderr)
    );
    assert!(String::from_utf8_lossy(&io.stdout).starts_with("hello"));
    let fc = fs::read_to_string("/etc/fuse.conf").unwrap_or_default();
    if !fc.lines().any(|l| l.trim() == "user_allow_other") {
        let out = as_user(&format!(
            "{BIN} mount --allow-other --passfile {r}/pw {r}/c {r}/c"
        ));
        assert_eq!(out.status.code(), Some(13));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("user_allow_other"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let u = as_user(&format!("fusermount3 -u {r}/p"));
    assert!(
        u.status.success(),
        "fusermount3 -u as user: {}",
        String::from_utf8_lossy(&u.stderr)
    );
    let start = std::time::Instant::now();
    while mounted(&p) && start.elapsed().as_secs() < 5 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!mounted(&p));
    // The daemon ran as the user, and its files belong to the user.
    let uid = String::from_utf8(
        Command::new("id")
            .args(["-u", USER])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let conf_owner =
        std::os::unix::fs::MetadataExt::uid(&fs::metadata(root.join("c/cipherfs.conf")).unwrap());
    assert_eq!(conf_owner.to_string(), uid.trim());
    let _ = fs::remove_dir_all(&root);
}
