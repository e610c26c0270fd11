//! A cipher directory written by an attacker, generated rather than made by
//! hand: every position where cipherfs reads a file of its own or an entry
//! (the config, the root's and a subdirectory's IV, a long-name companion,
//! a content file, a symlink, a directory entry) is replaced in turn by every
//! substitute an unprivileged writer of the storage (or its root) can plant:
//! links out of the directory, a FIFO, a socket, a device, a directory, and
//! files of the wrong size. For each cell a root daemon with allow_other
//! mounts it and the usual tools run on it, each under a watchdog. Nothing
//! may hang, the daemon stays small, no byte of a root-only file outside
//! the cipher directory shows anywhere, the bad entry gives an error (and a
//! log line naming its cipher path), and the rest of the tree reads as written.

mod common;

use std::cell::Cell;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::mount::{write_private, BIN};

/// Longer than any operation here needs on a loaded 2-core machine.
const WATCHDOG: Duration = Duration::from_secs(30);
const RSS_LIMIT_KIB: u64 = 64 * 1024;

thread_local! {
    /// Operations run under the watchdog, for the count the test prints.
    static OPS: Cell<usize> = const { Cell::new(0) };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    Config,
    RootDiriv,
    SubdirDiriv,
    Companion,
    Content,
    Symlink,
    DirEntry,
}

const POSITIONS: [Position; 7] = [
    Position::Config,
    Position::RootDiriv,
    Position::SubdirDiriv,
    Position::Companion,
    Position::Content,
    Position::Symlink,
    Position::DirEntry,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Substitute {
    LinkToSecret,
    LinkToDevZero,
    Fifo,
    Socket,
    CharDevice,
    Directory,
    Empty,
    Sparse1GiB,
    ByteTooLong,
    ByteTooShort,
}

const SUBSTITUTES: [Substitute; 10] = [
    Substitute::LinkToSecret,
    Substitute::LinkToDevZero,
    Substitute::Fifo,
    Substitute::Socket,
    Substitute::CharDevice,
    Substitute::Directory,
    Substitute::Empty,
    Substitute::Sparse1GiB,
    Substitute::ByteTooLong,
    Substitute::ByteTooShort,
];

/// The plaintext tree every cell starts from: (path, contents).
const LONG: &str = "a-name-long-enough-that-its-encrypted-form-exceeds-255-bytes-and-so-is-stored-as-a-long-name-with-a-companion-file-beside-it-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.txt";

fn files() -> Vec<(&'static str, Vec<u8>)> {
    let pat = |n: usize, seed: u8| (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
    vec![
        ("file.txt", pat(5000, 1)),
        ("other.txt", pat(3000, 2)),
        ("d/inner.txt", pat(1234, 3)),
        (LONG, pat(777, 4)),
    ]
}

/// The cipher-side paths of each position in the template.
struct Layout {
    config: PathBuf,
    root_diriv: PathBuf,
    subdir: PathBuf,
    companion: PathBuf,
    long_entry: String,
    content: PathBuf,
    symlink: PathBuf,
    dir_entry: PathBuf,
}

impl Layout {
    /// Finds each position in a cipher directory by its shape alone.
    fn find(c: &Path) -> Layout {
        let mut dirs = Vec::new();
        let (mut symlink, mut long, mut files) = (None, None, Vec::new());
        for e in fs::read_dir(c).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let ft = e.file_type().unwrap();
            if name.starts_with("cipherfs.") && !name.starts_with("cipherfs.longname.") {
                continue;
            }
            if ft.is_dir() {
                dirs.push(e.path());
            } else if ft.is_symlink() {
                symlink = Some(e.path());
            } else if name.starts_with("cipherfs.longname.") {
                if !name.ends_with(".name") {
                    long = Some(name);
                }
            } else {
                files.push((e.metadata().unwrap().len(), e.path()));
            }
        }
        files.sort();
        let (sub, empty): (Vec<_>, Vec<_>) = dirs
            .into_iter()
            .partition(|d| fs::read_dir(d).unwrap().count() > 1);
        let long = long.expect("a long name");
        Layout {
            config: c.join("cipherfs.conf"),
            root_diriv: c.join("cipherfs.diriv"),
            subdir: sub[0].clone(),
            companion: c.join(format!("{long}.name")),
            long_entry: long,
            content: files.last().unwrap().1.clone(),
            symlink: symlink.expect("a symlink"),
            dir_entry: empty[0].clone(),
        }
    }

    /// Where the substitute goes. A subdirectory's IV is replaced in both
    /// subdirectories: the full one (its names) and the empty one (rmdir,
    /// which once read whatever stood there and wrote it back).
    fn targets(&self, p: Position) -> Vec<PathBuf> {
        match p {
            Position::Config => vec![self.config.clone()],
            Position::RootDiriv => vec![self.root_diriv.clone()],
            Position::SubdirDiriv => vec![
                self.subdir.join("cipherfs.diriv"),
                self.dir_entry.join("cipherfs.diriv"),
            ],
            Position::Companion => vec![self.companion.clone()],
            Position::Content => vec![self.content.clone()],
            Position::Symlink => vec![self.symlink.clone()],
            Position::DirEntry => vec![self.dir_entry.clone()],
        }
    }

    /// What the daemon's and fsck's messages must name for this position.
    fn named_as(&self, p: Position) -> Option<String> {
        let rel = |q: &Path| q.file_name().unwrap().to_string_lossy().into_owned();
        match p {
            Position::RootDiriv => Some("c/cipherfs.diriv".into()),
            Position::SubdirDiriv => Some(format!("{}/cipherfs.diriv", rel(&self.subdir))),
            Position::Companion => Some(self.long_entry.clone()),
            _ => None,
        }
    }
}

/// Plaintext entries a damaged position may take down with it; everything
/// else must read exactly as written.
fn affected(p: Position) -> &'static [&'static str] {
    match p {
        Position::Config => &[],
        Position::RootDiriv => &["file.txt", "other.txt", "d/inner.txt", LONG],
        Position::SubdirDiriv => &["d/inner.txt"],
        Position::Companion => &[LONG],
        Position::Content => &["file.txt"],
        Position::Symlink | Position::DirEntry => &[],
    }
}

/// A command on a plaintext entry that must fail with EIO in this cell,
/// where one is certain: the damaged IV takes the names under it, and an
/// entry that cannot be cipherfs's (a directory without an IV, a link whose
/// target is not encrypted, a header of zeros) is not shown as anything else.
fn must_fail_with_eio(
    pos: Position,
    sub: Substitute,
) -> Option<(&'static [&'static str], &'static str)> {
    use Substitute::*;
    match (pos, sub) {
        (Position::RootDiriv, _) => Some((&["cat"], "other.txt")),
        (Position::SubdirDiriv, _) => Some((&["cat"], "d/inner.txt")),
        (Position::Content, LinkToSecret | LinkToDevZero | Sparse1GiB) => {
            Some((&["cat"], "file.txt"))
        }
        (Position::Content, Directory) => Some((&["ls"], "file.txt")),
        (Position::Symlink, LinkToSecret | LinkToDevZero) => Some((&["readlink", "-v"], "link")),
        (Position::Symlink, Directory) => Some((&["ls"], "link")),
        (Position::DirEntry, Directory) => Some((&["ls"], "e")),
        (Position::DirEntry, LinkToSecret | LinkToDevZero) => Some((&["readlink", "-v"], "e")),
        _ => None,
    }
}

/// Replaces `path` with `sub`, built from `original` (the bytes that were
/// there: a file's contents or a symlink's target).
fn plant(path: &Path, sub: Substitute, original: &[u8], secret: &Path) {
    use rustix::fs::{mknodat, FileType, Mode, CWD};
    let meta = fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        fs::remove_dir_all(path).unwrap();
    } else {
        fs::remove_file(path).unwrap();
    }
    let mode = Mode::from_raw_mode(0o666);
    match sub {
        Substitute::LinkToSecret => std::os::unix::fs::symlink(secret, path).unwrap(),
        Substitute::LinkToDevZero => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
        Substitute::Fifo => mknodat(CWD, path, FileType::Fifo, mode, 0).unwrap(),
        Substitute::Socket => {
            // Bound at a short path (sun_path holds 108 bytes), then moved.
            let short = secret.with_file_name("sock");
            drop(std::os::unix::net::UnixListener::bind(&short).unwrap());
            fs::rename(&short, path).unwrap();
        }
        Substitute::CharDevice => mknodat(
            CWD,
            path,
            FileType::CharacterDevice,
            mode,
            rustix::fs::makedev(1, 5),
        )
        .unwrap(),
        Substitute::Directory => fs::create_dir(path).unwrap(),
        Substitute::Empty => fs::write(path, b"").unwrap(),
        Substitute::Sparse1GiB => fs::File::create(path).unwrap().set_len(1 << 30).unwrap(),
        Substitute::ByteTooLong => {
            let mut v = original.to_vec();
            v.push(b'x');
            fs::write(path, v).unwrap()
        }
        Substitute::ByteTooShort => {
            fs::write(path, &original[..original.len().saturating_sub(1)]).unwrap()
        }
    }
}

/// Runs `cmd` under the watchdog: past it, the daemon is killed (which
/// frees any caller stuck in the mount) and the test fails naming the cell.
fn watched(cell: &str, what: &str, cmd: &mut Command, daemon: Option<u32>) -> Output {
    OPS.with(|n| n.set(n.get() + 1));
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cell}: cannot run {what}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            if let Some(d) = daemon {
                let _ = Command::new("kill")
                    .args(["-KILL", &d.to_string()])
                    .status();
            }
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{cell}: `{what}` hung for more than {WATCHDOG:?}");
        }
    }
}

/// Part of the secret: any 8 of its bytes in a row (random data holds a
/// given 8 bytes with odds of 2^-64 per position).
const PART: usize = 8;

/// Whether any PART bytes in a row of `secret` occur in `data`.
fn shows(data: &[u8], secret: &[u8]) -> bool {
    let parts: std::collections::HashSet<&[u8]> = secret.windows(PART).collect();
    data.windows(PART).any(|w| parts.contains(w))
}

/// Whether part of `needle` (see `shows`) occurs in the regular files under `dir` (links are not
/// followed; holes are skipped, so a 1 GiB sparse file costs nothing).
fn holds(dir: &Path, needle: &[u8]) -> Option<PathBuf> {
    let meta = fs::symlink_metadata(dir).ok()?;
    if meta.is_dir() {
        for e in fs::read_dir(dir).ok()?.flatten() {
            if let Some(p) = holds(&e.path(), needle) {
                return Some(p);
            }
        }
        return None;
    }
    if !meta.is_file() {
        return None;
    }
    let f = fs::File::open(dir).ok()?;
    let mut pos = 0u64;
    while let Ok(data) = rustix::fs::seek(&f, rustix::fs::SeekFrom::Data(pos)) {
        let hole = rustix::fs::seek(&f, rustix::fs::SeekFrom::Hole(data)).ok()?;
        let mut buf = vec![0u8; (hole - data) as usize];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf, data).ok()?;
        if shows(&buf, needle) {
            return Some(dir.to_path_buf());
        }
        pos = hole;
    }
    None
}

fn is_mounted(p: &Path) -> bool {
    let target = p.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(target.as_str()))
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Setup {
    root: PathBuf,
    template: PathBuf,
    passfile: PathBuf,
    secret: PathBuf,
    secret_bytes: Vec<u8>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn setup() -> Option<Setup> {
    let m = common::mount::Mounted::new("hostile", &[])?;
    for (p, data) in files() {
        let path = m.plain.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    }
    fs::create_dir(m.plain.join("e")).unwrap();
    std::os::unix::fs::symlink("file.txt", m.plain.join("link")).unwrap();
    m.unmount();
    let root = std::env::temp_dir().join(format!("cipherfs-hostile-cells-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    let template = root.join("template");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&m.cipher)
        .arg(&template)
        .status()
        .unwrap();
    assert!(cp.success());
    let passfile = root.join("pw");
    write_private(&passfile, "test password\n");
    // A root-only file outside the cipher directory: exactly 16 bytes, so
    // that it would pass for a directory IV if it were ever followed.
    let secret = root.join("secret");
    let secret_bytes = b"SECRET-7f3a9c21!".to_vec();
    write_private(&secret, std::str::from_utf8(&secret_bytes).unwrap());
    Some(Setup {
        root,
        template,
        passfile,
        secret,
        secret_bytes,
    })
}

/// One cell: plant, mount, use, check.
fn run_cell(s: &Setup, pos: Position, sub: Substitute, n: usize) {
    let name = format!("cell {n} ({pos:?} replaced by {sub:?})");
    let dir = s.root.join(format!("cell{n}"));
    let (c, p, out) = (dir.join("c"), dir.join("p"), dir.join("out"));
    fs::create_dir_all(&p).unwrap();
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&s.template)
        .arg(&c)
        .status()
        .unwrap();
    assert!(cp.success());
    let layout = Layout::find(&c);
    for target in layout.targets(pos) {
        let original = match fs::symlink_metadata(&target).unwrap() {
            m if m.is_file() => fs::read(&target).unwrap(),
            m if m.file_type().is_symlink() => fs::read_link(&target)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes(),
            _ => Vec::new(),
        };
        plant(&target, sub, &original, &s.secret);
    }
    // `info` reads the config alone; a planted one must not hang or grow it.
    let info = watched(
        &name,
        "cipherfs info",
        Command::new(BIN).arg("info").arg(&c),
        None,
    );
    let code = info.status.code();
    assert!(
        code == Some(0) || (pos == Position::Config && code == Some(11)),
        "{name}: info: {}",
        String::from_utf8_lossy(&info.stderr)
    );

    // fsck first: using the mount may mend what it finds (a rename writes
    // a long name's companion afresh, from the plaintext name).
    let fsck = watched(
        &name,
        "cipherfs fsck",
        Command::new(BIN)
            .arg("fsck")
            .arg("--passfile")
            .arg(&s.passfile)
            .arg(&c),
        None,
    );
    let report =
        String::from_utf8_lossy(&fsck.stdout).into_owned() + &String::from_utf8_lossy(&fsck.stderr);
    if pos != Position::Config {
        assert!(
            matches!(fsck.status.code(), Some(0 | 15)),
            "{name}: fsck: {report}"
        );
        if let Some(named) = layout.named_as(pos) {
            assert_eq!(
                fsck.status.code(),
                Some(15),
                "{name}: fsck missed it: {report}"
            );
            assert!(
                report.contains(&named),
                "{name}: fsck does not name {named}: {report}"
            );
        }
    } else if fsck.status.code() != Some(0) {
        assert_eq!(fsck.status.code(), Some(11), "{name}: fsck: {report}");
        assert!(report.contains("cipherfs.conf"), "{name}: fsck: {report}");
    }

    let log = dir.join("daemon.log");
    let pidfile = dir.join("pid");
    let daemon = Command::new(BIN)
        .args(["mount", "-f", "--allow-other", "--pidfile"])
        .arg(&pidfile)
        .arg("--passfile")
        .arg(&s.passfile)
        .arg(&c)
        .arg(&p)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // However the cell ends, its mount and daemon do not outlive it.
    // (Child::kill does nothing to a child already waited for.)
    struct Cleanup(PathBuf, std::process::Child);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            if is_mounted(&self.0) {
                let _ = Command::new("fusermount3").arg("-uz").arg(&self.0).status();
            }
            let _ = self.1.kill();
            let _ = self.1.wait();
        }
    }
    let mut guard = Cleanup(p.clone(), daemon);
    let daemon = &mut guard.1;
    let start = Instant::now();
    let mounted = loop {
        if is_mounted(&p) && pidfile.exists() {
            break true;
        }
        if let Some(st) = daemon.try_wait().unwrap() {
            let text = fs::read_to_string(&log).unwrap();
            assert_eq!(
                pos,
                Position::Config,
                "{name}: the mount failed ({st}): {text}"
            );
            assert_eq!(st.code(), Some(11), "{name}: mount exit code; {text}");
            assert!(
                text.contains("cipherfs.conf"),
                "{name}: unclear error: {text}"
            );
            break false;
        }
        if start.elapsed() > WATCHDOG {
            let _ = daemon.kill();
            panic!("{name}: the mount hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut plaintext_seen = Vec::new();
    if mounted {
        let pid = daemon.id();
        let d = Some(pid);
        let sh = |script: &str| {
            let mut c = Command::new("sh");
            c.arg("-c").arg(script).current_dir(&p);
            c
        };
        watched(&name, "ls -lR", Command::new("ls").arg("-lR").arg(&p), d);
        let entries = [
            "file.txt",
            "other.txt",
            "d",
            "d/inner.txt",
            "e",
            "link",
            LONG,
        ];
        for e in entries {
            watched(&name, "stat", Command::new("stat").arg(p.join(e)), d);
        }
        for e in ["file.txt", "other.txt", "d/inner.txt", "link", LONG] {
            // A FIFO in the plaintext view blocks its reader on any
            // filesystem; that is the kernel's pipe, not the daemon.
            let fifo = fs::metadata(p.join(e)).is_ok_and(|m| m.file_type().is_fifo());
            if !fifo {
                let o = watched(&name, "cat", Command::new("cat").arg(p.join(e)), d);
                plaintext_seen.extend(o.stdout);
            }
        }
        // The bad entry gives EIO where nothing else could be meant.
        if let Some((tool, entry)) = must_fail_with_eio(pos, sub) {
            let o = watched(
                &name,
                tool[0],
                Command::new(tool[0]).args(&tool[1..]).arg(p.join(entry)),
                d,
            );
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                !o.status.success() && err.contains("Input/output error"),
                "{name}: `{} {entry}` should fail with EIO: {err}",
                tool.join(" ")
            );
        }
        watched(&name, "rmdir", Command::new("rmdir").arg(p.join("e")), d);
        watched(&name, "rmdir", Command::new("rmdir").arg(p.join("d")), d);
        for e in ["file.txt", "link", LONG, "e"] {
            watched(
                &name,
                "rename",
                &mut sh(&format!("mv -T '{e}' renamed && mv -T renamed '{e}'")),
                d,
            );
        }
        watched(
            &name,
            "cp -a",
            Command::new("cp").arg("-a").arg(&p).arg(&out),
            d,
        );

        // The rest of the tree reads exactly as written.
        for (f, data) in files() {
            if affected(pos).contains(&f) {
                continue;
            }
            let o = watched(&name, "cat", Command::new("cat").arg(p.join(f)), d);
            assert!(
                o.status.success() && o.stdout == data,
                "{name}: {f} does not read as written: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let rss = peak_rss_kib(pid);
        assert!(
            rss > 0 && rss < RSS_LIMIT_KIB,
            "{name}: daemon peak RSS {rss} KiB"
        );
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "{name}: the daemon died: {}",
            fs::read_to_string(&log).unwrap()
        );
        watched(
            &name,
            "fusermount3 -u",
            Command::new("fusermount3").arg("-u").arg(&p),
            d,
        );
        let st = daemon.wait().unwrap();
        assert!(st.success(), "{name}: daemon exit {st}");
        let text = fs::read_to_string(&log).unwrap();
        if let Some(named) = layout.named_as(pos) {
            assert!(
                text.lines()
                    .any(|l| l.contains(&named) && l.contains("WARN")),
                "{name}: no log line names {named}:\n{text}"
            );
        }
    }

    // No byte of the secret reached the plaintext view or the cipher directory.
    let canary = &s.secret_bytes;
    assert!(
        !shows(&plaintext_seen, canary),
        "{name}: the secret outside the cipher directory showed through the mount"
    );
    for place in [&out, &c, &log] {
        assert_eq!(holds(place, canary), None, "{name}: the secret was copied");
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_hostile_cipher_directory_cannot_hang_leak_or_reach_outside() {
    if !rustix::process::geteuid().is_root() {
        let why = "needs root (allow_other, device nodes)";
        assert!(
            std::env::var("CIPHERFS_REQUIRE_FUSE").as_deref() != Ok("1"),
            "hostile: CIPHERFS_REQUIRE_FUSE=1 but the test {why}"
        );
        eprintln!("SKIP hostile: {why}");
        return;
    }
    let Some(s) = setup() else { return };
    let mut cells = 0;
    for pos in POSITIONS {
        for sub in SUBSTITUTES {
            run_cell(&s, pos, sub, cells);
            cells += 1;
        }
    }
    let ops = OPS.with(Cell::get);
    let want = POSITIONS.len() * SUBSTITUTES.len();
    println!(
        "hostile cipher directories: {cells} of {want} cells ran ({} positions x {} substitutes), {ops} operations",
        POSITIONS.len(),
        SUBSTITUTES.len()
    );
    assert_eq!(cells, want);
}
