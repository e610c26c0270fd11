//! Running tools on a mount that may hang, and looking for a secret in
//! what they produced.

use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Longer than any operation here needs on a loaded 2-core machine.
pub const WATCHDOG: Duration = Duration::from_secs(30);

thread_local! {
    /// Operations run under the watchdog, for the count the test prints.
    pub static OPS: Cell<usize> = const { Cell::new(0) };
}

/// Runs `cmd` under the watchdog: past it, the daemon is killed (which
/// frees any caller stuck in the mount) and the test fails naming the cell.
pub fn watched(cell: &str, what: &str, cmd: &mut Command, daemon: Option<u32>) -> Output {
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
pub fn shows(data: &[u8], secret: &[u8]) -> bool {
    let parts: std::collections::HashSet<&[u8]> = secret.windows(PART).collect();
    data.windows(PART).any(|w| parts.contains(w))
}

/// Whether part of `needle` (see `shows`) occurs in the regular files under `dir` (links are not
/// followed; holes are skipped, so a 1 GiB sparse file costs nothing).
pub fn holds(dir: &Path, needle: &[u8]) -> Option<PathBuf> {
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

pub fn is_mounted(p: &Path) -> bool {
    let target = p.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(target.as_str()))
}

pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}
