//! A cipher directory written by an attacker, generated rather than made by
//! hand: every position where cipherfs reads a file of its own or an entry
//! (the config, the root's and a subdirectory's IV, a long-name companion,
//! a content file, a symlink, a directory entry, a long symlink target's
//! companion) is replaced in turn by every
//! substitute an unprivileged writer of the storage (or its root) can plant:
//! links out of the directory, a FIFO, a socket, a device, a directory, and
//! files of the wrong size. For each cell a root daemon with allow_other
//! mounts it and the usual tools run on it, each under a watchdog. Nothing
//! may hang, the daemon stays small, no byte of a root-only file outside
//! the cipher directory shows anywhere, the bad entry gives an error (and a
//! log line naming its cipher path), and the rest of the tree reads as written.

#[path = "../common/mod.rs"]
mod common;
mod corpus;
mod watch;

use std::cell::Cell;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::mount::{write_private, BIN};
use corpus::*;
use watch::{holds, is_mounted, peak_rss_kib, shows, watched, OPS, WATCHDOG};

const RSS_LIMIT_KIB: u64 = 64 * 1024;

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
    // Over 3040 bytes: its stored target lives in a companion at the root.
    std::os::unix::fs::symlink("t/".repeat(2000), m.plain.join("longlink")).unwrap();
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
            "longlink",
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
        for l in ["link", "longlink"] {
            let o = watched(
                &name,
                "readlink",
                Command::new("readlink").arg(p.join(l)),
                d,
            );
            plaintext_seen.extend(o.stdout);
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
        for e in ["file.txt", "link", "longlink", LONG, "e"] {
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
