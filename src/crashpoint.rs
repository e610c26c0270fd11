//! Crash points for the crash-safety tests: with `CIPHERFS_CRASH_AT=NAME`
//! in its environment, the process kills itself with SIGKILL at the step of
//! that name, exactly as a power cut or `kill -9` would stop it there. Unset
//! (always, outside tests), each point costs one cached comparison.

use std::sync::OnceLock;

/// The named steps, in the order they happen (listed for tests and docs).
pub const POINTS: &[&str] = &[
    "mkdir-made-temp",
    "mkdir-wrote-iv",
    "mkdir-set-mode",
    "mkdir-renamed",
    "longname-wrote-temp",
    "longname-wrote-companion",
    "longlink-wrote-companion",
    "config-wrote-temp",
    "config-synced-temp",
    "config-renamed",
];

pub fn at(name: &str) {
    static WHERE: OnceLock<Option<String>> = OnceLock::new();
    let target = WHERE.get_or_init(|| std::env::var("CIPHERFS_CRASH_AT").ok());
    if target.as_deref() == Some(name) {
        debug_assert!(POINTS.contains(&name));
        eprintln!("cipherfs: crash point {name} (CIPHERFS_CRASH_AT): killing myself");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}
