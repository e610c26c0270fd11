//! An ordinary user mounts and unmounts their own cipher directory through
//! fusermount3, with a user created for the test; allow_other without
//! user_allow_other in /etc/fuse.conf is refused with a clear message.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::users::{as_named_user, TestUser};

const BIN: &str = env!("CARGO_BIN_EXE_cipherfs");
const USER: &str = "cipherfs-test";

fn as_user(cmd: &str) -> Output {
    as_named_user(USER, cmd)
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
    let Some(_user) = TestUser::create(USER) else {
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
        let pre = as_user(&format!("mkdir -p {r}/x/c {r}/x/p && echo pw > {r}/x/pw && chmod 600 {r}/x/pw && {BIN} init --kdf-memory-mib 1 --kdf-iterations 1 --passfile {r}/x/pw {r}/x/c && {BIN} mount --passfile {r}/x/pw {r}/x/c {r}/x/p"));
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
        "mkdir {r}/c {r}/p && echo 'user pw' > {r}/pw && chmod 600 {r}/pw && {BIN} init --kdf-memory-mib 1 --kdf-iterations 1 --passfile {r}/pw {r}/c"
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
    // The user's daemon is not dumpable: the kernel then gives its /proc
    // files to root, so not even its own user can read its memory, attach
    // a debugger or have a core of it written.
    // This test's daemon: the other test here may run one as the same user.
    let pgrep = Command::new("pgrep")
        .args(["-u", USER, "-f"])
        .arg(format!("cipherfs .*mount -f .* {r}/c {r}/p$"))
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&pgrep.stdout).trim().to_string();
    assert!(
        !pid.is_empty() && !pid.contains('\n'),
        "daemon pid: {pid:?}"
    );
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        !uid_line.contains("\t0\t"),
        "the daemon runs as root? {uid_line}"
    );
    let mem_owner =
        std::os::unix::fs::MetadataExt::uid(&fs::metadata(format!("/proc/{pid}/mem")).unwrap());
    assert_eq!(
        mem_owner, 0,
        "the daemon is dumpable: /proc/{pid}/mem belongs to its user"
    );
    let peek = as_user(&format!("head -c 1 /proc/{pid}/environ"));
    assert!(
        !peek.status.success(),
        "the user read the daemon's /proc/{pid}/environ"
    );
    // Backing trouble reaches the user as such: a backing file the daemon's
    // user may not open gives EACCES, not EIO, and the daemon stays up.
    let backing = fs::read_dir(root.join("c"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("cipherfs")
        })
        .unwrap();
    fs::set_permissions(&backing, fs::Permissions::from_mode(0o000)).unwrap();
    let denied = as_user(&format!("cat {r}/p/f"));
    assert!(
        !denied.status.success()
            && String::from_utf8_lossy(&denied.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    fs::set_permissions(&backing, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(as_user(&format!("cat {r}/p/f")).status.success());
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

/// The daemon runs as root, so the backing filesystem keeps set-ID bits
/// through its writes; cipherfs must drop them itself when the writer could
/// not keep them (FUSE_HANDLE_KILLPRIV_V2), and only then.
#[test]
fn writes_and_truncates_by_an_ordinary_user_drop_set_id_bits() {
    const KP_USER: &str = "cipherfs-kp";
    if !Path::new("/dev/fuse").exists() || !Path::new(BIN).exists() {
        eprintln!("SKIP set-ID test: no /dev/fuse or no binary");
        return;
    }
    let Some(_user) = TestUser::create(KP_USER) else {
        return;
    };
    let root = std::env::temp_dir().join(format!("cipherfs-killpriv-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("c")).unwrap();
    fs::create_dir_all(root.join("p")).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("pw"), "pw\n").unwrap();
    fs::set_permissions(root.join("pw"), fs::Permissions::from_mode(0o600)).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (c, p, pw) = (root.join("c"), root.join("p"), root.join("pw"));
    let (c, p, pw) = (
        c.to_str().unwrap(),
        p.to_str().unwrap(),
        pw.to_str().unwrap(),
    );
    run(&[
        "init",
        "--kdf-memory-mib",
        "1",
        "--kdf-iterations",
        "1",
        "--passfile",
        pw,
        c,
    ]);
    run(&["mount", "--allow-other", "--passfile", pw, c, p]);
    // Unmounted and removed however the test ends, so a failed assertion
    // leaves no mount behind.
    struct Cleanup<'a>(&'a Path);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let p = self.0.join("p");
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(p)
                .status();
            let _ = fs::remove_dir_all(self.0);
        }
    }
    let _cleanup = Cleanup(&root);
    let shared = root.join("p/shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    let f = shared.join("f");
    let fs_ = f.display();
    let mode = || fs::metadata(&f).unwrap().permissions().mode() & 0o7777;
    let user = |cmd: &str| {
        let out = as_named_user(KP_USER, cmd);
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    user(&format!("umask 002 && echo a > {fs_} && mkdir {fs_}.d"));
    // The creator owns what they create, with their umask only.
    let uid = String::from_utf8(
        Command::new("id")
            .args(["-u", KP_USER])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let owner = std::os::unix::fs::MetadataExt::uid(&fs::metadata(&f).unwrap());
    let created_mode = mode();
    let dir_mode = fs::metadata(shared.join("f.d"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    user(&format!("chmod 6775 {fs_}"));
    assert_eq!(mode(), 0o6775, "the owner may set both bits");
    user(&format!("echo b >> {fs_}"));
    let after_write = mode();
    user(&format!("chmod 6775 {fs_} && truncate -s 1 {fs_}"));
    let after_truncate = mode();
    user(&format!("chmod 2765 {fs_} && echo c >> {fs_}"));
    let sgid_without_group_exec = mode();
    // Root (CAP_FSETID) keeps them.
    fs::set_permissions(&f, fs::Permissions::from_mode(0o6775)).unwrap();
    fs::OpenOptions::new()
        .append(true)
        .open(&f)
        .unwrap()
        .write_all(b"d")
        .unwrap();
    let after_root_write = mode();
    assert_eq!(owner.to_string(), uid.trim(), "a user's new file is theirs");
    assert_eq!(
        created_mode, 0o664,
        "the creator's umask 002 applies, no other"
    );
    assert_eq!(dir_mode, 0o775, "the same for a directory");
    assert_eq!(
        after_write, 0o775,
        "a user's write drops S_ISUID and S_ISGID"
    );
    assert_eq!(after_truncate, 0o775, "a user's truncate drops them");
    assert_eq!(
        sgid_without_group_exec, 0o2765,
        "S_ISGID without group execute stays"
    );
    assert_eq!(after_root_write, 0o6775, "root's write keeps them");
}
