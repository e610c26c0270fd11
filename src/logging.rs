//! Where log lines go: stderr in the foreground (env_logger: -v, -q,
//! RUST_LOG), syslog (journald on systemd machines) when the daemon has
//! detached. Every line of a mount carries its mount point; lines about a
//! file name it by its cipher path (`CipherFs::describe`), never by its
//! plaintext name, and no line ever carries key material.
//!
//! Other crates log too, and not by those rules: fuser's debug log shows
//! every request with its names (`LOOKUP name "plan.txt"`), and its
//! warnings can quote a request. So only cipherfs's own lines pass as they
//! are, at any level and whatever RUST_LOG says; another crate's warning or
//! error becomes a line saying one was withheld, and its lower levels are
//! dropped, unless the mount was asked for `--debug-names`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use log::{LevelFilter, Log, Metadata, Record};
use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

static LABEL: OnceLock<String> = OnceLock::new();
/// Lines syslog could not take at once, reported with the next line it takes.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// The last line could not be handed over even after waiting.
static STALLED: AtomicBool = AtomicBool::new(false);
/// `--debug-names`: other crates' lines pass as they are.
static DEPENDENCY_LINES: AtomicBool = AtomicBool::new(false);
/// The mount is gone: other crates' complaints about unmounting it are moot.
static MOUNT_GONE: AtomicBool = AtomicBool::new(false);

/// The mount is gone: fuser's own attempt to unmount it as its session ends
/// fails (EINVAL) and warns, which says nothing; such lines are dropped.
pub fn mount_gone() {
    MOUNT_GONE.store(true, Ordering::Relaxed);
}

/// Lets other crates' log lines through unchanged (`--debug-names`): they
/// may carry plaintext names.
pub fn show_dependency_lines(on: bool) {
    DEPENDENCY_LINES.store(on, Ordering::Relaxed);
}

/// What may be logged of `record`: itself (cipherfs's own lines, or any
/// line with `--debug-names`), a notice in its place, or nothing.
fn screen(record: &Record<'_>) -> Option<Option<String>> {
    let target = record.target();
    if target == "cipherfs" || target.starts_with("cipherfs::") {
        return Some(None);
    }
    if says_nothing_is_wrong(record) {
        return None;
    }
    if DEPENDENCY_LINES.load(Ordering::Relaxed) {
        return Some(None);
    }
    if record.level() > log::Level::Warn || MOUNT_GONE.load(Ordering::Relaxed) {
        return None;
    }
    let krate = target.split("::").next().unwrap_or(target);
    Some(Some(format!(
        "{krate} logged a{} {}; its text is withheld because it may name files \
         (mount with --debug-names to see such lines)",
        if record.level() == log::Level::Error {
            "n"
        } else {
            ""
        },
        record.level().as_str().to_lowercase()
    )))
}

/// fuser's complaints about the normal end of a mount, dropped even with
/// --debug-names: its own unmount of a mount already gone (EINVAL), and a
/// reply the kernel no longer takes because the request was interrupted
/// (ENOENT) or the connection ended at unmount (ENODEV), which a busy
/// machine shows now and then.
fn says_nothing_is_wrong(record: &Record<'_>) -> bool {
    if !record.target().starts_with("fuser") {
        return false;
    }
    let text = record.args().to_string();
    (text.starts_with("Unmount failed") && MOUNT_GONE.load(Ordering::Relaxed))
        || (text.starts_with("Failed to send FUSE reply")
            && (text.ends_with("(os error 2)") || text.ends_with("(os error 19)")))
}

/// A log line as one line: cipher paths come from the cipher directory,
/// whose writer could put a newline or a terminal escape in a name to forge
/// or hide log lines; control characters are shown escaped instead.
fn one_line(text: &str) -> String {
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        text.to_string()
    }
}

/// A logger that shows only what `screen` lets through.
struct Screened<L>(L);

impl<L: Log> Log for Screened<L> {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        self.0.enabled(m)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.0.enabled(record.metadata()) {
            return;
        }
        let (text, target) = match screen(record) {
            None => return,
            Some(None) => (one_line(&record.args().to_string()), record.target()),
            Some(Some(notice)) => (notice, "cipherfs"),
        };
        self.0.log(
            &Record::builder()
                .args(format_args!("{text}"))
                .level(record.level())
                .target(target)
                .build(),
        );
    }

    fn flush(&self) {
        self.0.flush()
    }
}

/// Names the mount in every later log line.
pub fn set_label(label: &str) {
    let _ = LABEL.set(label.to_string());
}

fn prefix() -> String {
    LABEL.get().map(|l| format!("{l}: ")).unwrap_or_default()
}

pub fn init_stderr(level: LevelFilter) {
    let logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level.as_str()))
            .format(|buf, record| {
                let ts = buf.timestamp_seconds();
                writeln!(
                    buf,
                    "[{ts} {}] {}{}",
                    record.level(),
                    prefix(),
                    record.args()
                )
            })
            .build();
    let max = logger.filter();
    if log::set_boxed_logger(Box::new(Screened(logger))).is_ok() {
        log::set_max_level(max);
    }
}

struct Syslog(Mutex<Logger<LoggerBackend, Formatter3164>>);

impl Log for Syslog {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let dropped = DROPPED.swap(0, Ordering::Relaxed);
        let msg = if dropped > 0 {
            format!(
                "{}({dropped} earlier lines dropped: syslog was not keeping up) {}",
                prefix(),
                record.args()
            )
        } else {
            format!("{}{}", prefix(), record.args())
        };
        let mut l = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut send = || match record.level() {
            log::Level::Error => l.err(&msg),
            log::Level::Warn => l.warning(&msg),
            log::Level::Info => l.info(&msg),
            _ => l.debug(&msg),
        };
        let mut sent = send().is_ok();
        // A burst (the lines of a mount with -v) can fill a small socket
        // queue for a moment: wait for room up to 200 ms, unless syslog
        // already failed to make room last time.
        if !sent && !STALLED.load(Ordering::Relaxed) {
            for _ in 0..40 {
                std::thread::sleep(std::time::Duration::from_millis(5));
                sent = send().is_ok();
                if sent {
                    break;
                }
            }
        }
        STALLED.store(!sent, Ordering::Relaxed);
        if !sent {
            DROPPED.fetch_add(1 + dropped, Ordering::Relaxed);
        }
    }

    fn flush(&self) {}
}

/// Sends the log to syslog: /dev/log, or the socket named by
/// CIPHERFS_SYSLOG_SOCKET (for tests and containers).
pub fn init_syslog(level: LevelFilter) -> Result<(), String> {
    let formatter = Formatter3164 {
        facility: Facility::LOG_DAEMON,
        hostname: None,
        process: "cipherfs".into(),
        pid: std::process::id(),
    };
    let logger = match std::env::var_os("CIPHERFS_SYSLOG_SOCKET") {
        Some(path) => syslog::unix_custom(formatter, path),
        None => syslog::unix(formatter),
    }
    .map_err(|e| format!("cannot reach syslog: {e}"))?;
    // A log line must never hold up a file system request: a syslog that
    // stops reading would otherwise hang every caller of the mount.
    match &logger.backend {
        LoggerBackend::Unix(sock) => sock
            .set_nonblocking(true)
            .map_err(|e| format!("syslog socket: {e}"))?,
        LoggerBackend::UnixStream(w) => w
            .get_ref()
            .set_write_timeout(Some(std::time::Duration::from_millis(200)))
            .map_err(|e| format!("syslog socket: {e}"))?,
        _ => {}
    }
    log::set_boxed_logger(Box::new(Screened(Syslog(Mutex::new(logger)))))
        .map_err(|e| e.to_string())?;
    log::set_max_level(level);
    Ok(())
}

/// The -v/-q flags that reproduce the current level in a child process.
pub fn verbosity_args() -> Vec<&'static str> {
    match log::max_level() {
        LevelFilter::Off | LevelFilter::Error => vec!["-q"],
        LevelFilter::Warn => vec![],
        LevelFilter::Info => vec!["-v"],
        LevelFilter::Debug => vec!["-vv"],
        LevelFilter::Trace => vec!["-vvv"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_cannot_forge_a_log_line() {
        assert_eq!(one_line("plain /c/abc"), "plain /c/abc");
        assert_eq!(
            one_line("/c/x\n[WARN] forged\x1b[2J"),
            "/c/x\\n[WARN] forged\\u{1b}[2J"
        );
    }

    fn screened(target: &str, level: log::Level, text: &str) -> Option<Option<String>> {
        screen(
            &Record::builder()
                .target(target)
                .level(level)
                .args(format_args!("{text}"))
                .build(),
        )
    }

    #[test]
    fn the_normal_end_of_a_mount_is_not_an_error() {
        use log::Level::{Error, Info};
        assert_eq!(screened("cipherfs::fs", Info, "mounted"), Some(None));
        for gone in [
            "No such file or directory (os error 2)",
            "No such device (os error 19)",
        ] {
            let line = format!("Failed to send FUSE reply: {gone}");
            assert_eq!(screened("fuser::reply", Error, &line), None, "{line}");
        }
        // Any other failure is still reported, its text withheld.
        let other = screened(
            "fuser::reply",
            Error,
            "Failed to send FUSE reply: x (os error 32)",
        );
        assert!(matches!(other, Some(Some(n)) if n.contains("fuser logged an error")));
    }
}
