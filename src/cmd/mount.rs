//! `cipherfs mount`: unlock, pick the backend, mount, and stay until
//! unmounted or signalled.
//!
//! Without `-f` the command does the unlocking itself (so a wrong password
//! gets its exit code at once), then runs itself again in the foreground as
//! the daemon, handing it the master key on a pipe, and returns only when
//! the daemon reports the mount answering, or with the daemon's error.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::place::{check_mountpoint, check_placement};
use super::{load_config, master_hex, unlock};
use crate::config::NameMode;
use crate::crypto::MasterKey;
use crate::exitcode::{self, Failure};
use crate::fs::CipherFs;
use crate::fuse::FuseAdapter;
use crate::names::HCTR2;
use crate::password;
use crate::skcipher::{self, BackendChoice};

#[derive(Clone, Debug)]
pub struct MountOptions {
    pub foreground: bool,
    pub backend: BackendChoice,
    pub password: password::Source,
    /// Read the raw master key (hex) from this file, or stdin for "-".
    pub masterkey_file: Option<PathBuf>,
    pub read_only: bool,
    pub allow_other: bool,
    /// Options passed to the kernel as they are.
    pub extra: Vec<String>,
    /// Report readiness on stdout (the daemon protocol between parent and child).
    pub ready_stdout: bool,
    /// Unmount after this long without use.
    pub idle: Option<Duration>,
    /// Write the daemon's PID here while mounted.
    pub pidfile: Option<PathBuf>,
    /// Name files by their plaintext names in the log too.
    pub debug_names: bool,
    /// No extended attributes: fewer round trips for `ls -l` and untar.
    pub no_xattr: bool,
    /// POSIX ACLs, stored encrypted, enforced by the kernel.
    pub acl: bool,
    /// Mount over a non-empty directory (`-o nonempty`).
    pub nonempty: bool,
    /// The kernel checks permissions even without allow_other.
    pub default_permissions: bool,
    /// Shared-storage mode: `Some` as `-o [no]sharedstorage` said, `None`
    /// to decide by the cipher directory's filesystem type.
    pub shared_storage: Option<bool>,
}

/// Set (to 1) in the daemon's environment: report readiness on stdout.
/// `main` reads and removes it before anything else runs.
pub const READY_ENV: &str = "CIPHERFS_READY_STDOUT";

const READY: &str = "cipherfs-ready";
const FAILED: &str = "cipherfs-failed";

fn master_key(
    cipherdir: &Path,
    opts: &MountOptions,
    config: &crate::config::Config,
) -> Result<MasterKey, Failure> {
    match &opts.masterkey_file {
        Some(p) => super::recover::read_master_key(p),
        None => {
            let _ = cipherdir;
            unlock(config, &opts.password)
        }
    }
}

pub fn run(cipherdir: &Path, mountpoint: &Path, opts: &MountOptions) -> Result<(), Failure> {
    let result = run_inner(cipherdir, mountpoint, opts);
    if opts.ready_stdout {
        if let Err(f) = &result {
            println!("{FAILED} {} {}", f.code, f.message);
        }
    }
    result
}

fn run_inner(cipherdir: &Path, mountpoint: &Path, opts: &MountOptions) -> Result<(), Failure> {
    crate::logging::set_label(&mountpoint.display().to_string());
    crate::logging::show_dependency_lines(opts.debug_names);
    check_mountpoint(mountpoint, opts)?;
    let config = load_config(cipherdir)?;
    check_placement(cipherdir, mountpoint, opts)?;
    let master = master_key(cipherdir, opts, &config)?;
    let selection = skcipher::select(opts.backend, &config.params.content_cipher)?;
    if !opts.foreground {
        return spawn_daemon(cipherdir, mountpoint, opts, &master, selection.backend);
    }
    // Before any thread starts: see presize_fd_table.
    raise_fd_limit();
    let mut what = format!(
        "content {} on the {} backend ({})",
        config.params.content_cipher, selection.backend, selection.reason
    );
    // Format 2's names have an algorithm of their own, which a kernel may lack.
    let names_backend = if config.params.name_mode == NameMode::Hctr2 {
        let names = skcipher::select_beside(opts.backend, HCTR2)?;
        what.push_str(&format!(
            "; names {HCTR2} on the {} backend ({})",
            names.backend, names.reason
        ));
        names.backend
    } else {
        selection.backend
    };
    let mut fs = CipherFs::new(
        cipherdir,
        &config.params,
        master,
        selection.backend,
        names_backend,
    )
    .map_err(|e| Failure::new(exitcode::CIPHERDIR, e))?;
    fs.set_debug_names(opts.debug_names);
    fs.set_acl(opts.acl);
    // Said in the mount's own log line, so a mount still logs two lines.
    if let Some(why) = shared_storage(cipherdir, opts) {
        what.push_str(&format!("; shared-storage mode ({why})"));
        fs.set_shared(true);
    }
    // The kernel applied the caller's umask to every mode it sends; the
    // daemon's own would take bits away a second time.
    rustix::process::umask(rustix::fs::Mode::empty());
    serve(fs, cipherdir, mountpoint, opts, &what)
}

/// Why the mount runs in shared-storage mode, if it does: asked for, or
/// the cipher directory is on a network or cluster filesystem.
fn shared_storage(cipherdir: &Path, opts: &MountOptions) -> Option<String> {
    match opts.shared_storage {
        Some(true) => Some("-o sharedstorage".into()),
        Some(false) => None,
        None => crate::fs::network_filesystem(cipherdir).map(|t| {
            format!("the cipher directory is on {t}, which other machines may mount; -o nosharedstorage turns it off")
        }),
    }
}

/// Every node the kernel holds keeps a descriptor open, so the daemon needs
/// more than the usual soft limit of 1024: it takes the hard limit, as
/// gocryptfs does.
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    // None is unlimited, so compare for difference, not order.
    if lim.current != lim.maximum {
        lim.current = lim.maximum;
        match setrlimit(Resource::Nofile, lim) {
            Ok(()) => log::debug!("open file limit raised to {:?}", lim.maximum),
            Err(e) => log::warn!("cannot raise the open file limit: {e}"),
        }
    }
    let limit = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    presize_fd_table(limit.min(FD_TABLE_SLOTS) as i32);
}

/// Descriptor slots the daemon reserves at start (512 KiB of kernel memory).
const FD_TABLE_SLOTS: u64 = 1 << 16;

/// The kernel grows a process's descriptor table by doubling, and in a
/// multi-threaded process each growth waits for an RCU grace period, 10 to
/// 30 ms here. A cold `find` over 10,000 files crossed five of them (at 256,
/// 512, ... 4,096 nodes) and spent half its time waiting. Growing the table
/// once, now, moves that wait to mount time; tables never shrink.
fn presize_fd_table(slots: i32) {
    if slots <= 1 {
        return;
    }
    // The duplicate is dropped at once: only the table's size is wanted.
    match rustix::io::fcntl_dupfd_cloexec(std::io::stderr(), slots - 1) {
        Ok(_) => log::debug!("descriptor table sized for {slots} descriptors"),
        Err(e) => log::debug!("cannot presize the descriptor table: {e}"),
    }
}

fn fuse_config(cipherdir: &Path, opts: &MountOptions, shared: bool) -> fuser::Config {
    use fuser::MountOption as M;
    let mut cfg = fuser::Config::default();
    // The source is the cipher directory's absolute path and the type
    // fuse.cipherfs (findmnt -t fuse.cipherfs), unless -o says otherwise.
    let named = |key: &str| {
        opts.extra
            .iter()
            .rev()
            .find_map(|o| o.strip_prefix(key).map(str::to_string))
    };
    let fsname = named("fsname=").unwrap_or_else(|| {
        cipherdir
            .canonicalize()
            .unwrap_or_else(|_| cipherdir.to_path_buf())
            .display()
            .to_string()
    });
    let subtype = named("subtype=").unwrap_or_else(|| "cipherfs".into());
    cfg.mount_options = vec![
        M::FSName(fsname),
        M::Subtype(subtype.clone()),
        M::NoDev,
        M::NoSuid,
    ];
    if rustix::process::geteuid().is_root() {
        // Root mounts directly, and fuser gives mount(2) no subtype: the
        // kernel takes it as an option of its own. (fusermount3, for users,
        // turns Subtype into the type itself.)
        cfg.mount_options
            .push(M::CUSTOM(format!("subtype={subtype}")));
    }
    // Shared with other users, the kernel must check their permissions.
    // Alone, the kernel admits only the mounting user, and the backing
    // filesystem checks what the daemon does as that user: the kernel's own
    // check would cost a GETATTR of the directory after each create or
    // unlink in it (the change makes its cached attributes stale).
    if opts.allow_other || opts.default_permissions {
        cfg.mount_options.push(M::DefaultPermissions);
    }
    if opts.read_only {
        cfg.mount_options.push(M::RO);
    }
    for o in opts
        .extra
        .iter()
        .filter(|o| !o.starts_with("fsname=") && !o.starts_with("subtype="))
    {
        // Generic mount flags (mount(8) expands "defaults" into some of them)
        // are flags for the mount call, not FUSE options, which the kernel
        // would refuse with EINVAL.
        let flag = match o.as_str() {
            "dev" => Some(M::Dev),
            "nodev" => Some(M::NoDev),
            "suid" => Some(M::Suid),
            "nosuid" => Some(M::NoSuid),
            "exec" => Some(M::Exec),
            "noexec" => Some(M::NoExec),
            "async" => Some(M::Async),
            "sync" => Some(M::Sync),
            "atime" => Some(M::Atime),
            "noatime" => Some(M::NoAtime),
            "dirsync" => Some(M::DirSync),
            "relatime" | "strictatime" | "nodiratime" | "diratime" | "lazytime" | "nolazytime" => {
                None
            }
            _ => {
                cfg.mount_options.push(M::CUSTOM(o.clone()));
                None
            }
        };
        if let Some(f) = flag {
            let opposite = match f {
                M::Dev => Some(M::NoDev),
                M::Suid => Some(M::NoSuid),
                _ => None,
            };
            cfg.mount_options.retain(|x| Some(x) != opposite.as_ref());
            cfg.mount_options.push(f);
        }
    }
    if opts.allow_other {
        cfg.acl = fuser::SessionACL::All;
    }
    // One FUSE thread more than CPUs: a thread that has just replied waits
    // for the scheduler to wake it for the next request, and an extra reader
    // keeps the queue served meanwhile. Untar of 10,000 files took 3.4 s
    // instead of 3.9 s (medians of 5 rounds); a second extra thread paid nothing.
    // On shared storage a request mostly waits for the network (a lock, a
    // stat, a read are round trips each), so more of them are served at
    // once: the kernel's readahead keeps several reads in flight.
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    cfg.n_threads = Some(if shared {
        cpus.max(2) * 4
    } else {
        cpus.max(2) + 1
    });
    cfg
}

fn is_mounted(mountpoint: &Path) -> bool {
    let Ok(canon) = mountpoint.canonicalize() else {
        return false;
    };
    let target = canon.to_string_lossy().into_owned();
    // mountinfo: field 5 is the mount point; after " - " comes the type,
    // "fuse" or "fuse.cipherfs" depending on how the mount was made.
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            m.lines().any(|l| {
                let fstype = l
                    .split(" - ")
                    .nth(1)
                    .and_then(|r| r.split(' ').next())
                    .unwrap_or("");
                l.split(' ').nth(4) == Some(target.as_str()) && fstype.starts_with("fuse")
            })
        })
        .unwrap_or(false)
}

/// Mounts and serves until unmounted (fusermount3 -u, umount) or SIGINT/SIGTERM.
/// The journal gets two lines from a mount at the default level, as from
/// gocryptfs: "mounted CIPHERDIR on MNT: content …" and "unmounted MNT (why)".
fn serve(
    fs: CipherFs,
    cipherdir: &Path,
    mountpoint: &Path,
    opts: &MountOptions,
    what: &str,
) -> Result<(), Failure> {
    let activity = fs.activity();
    let shared = fs.is_shared();
    // Handlers first: a SIGTERM that comes as soon as the mount is visible
    // must unmount cleanly, not kill the daemon with the mount still there.
    let (tx, rx) = mpsc::channel();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| Failure::new(exitcode::OTHER, format!("cannot handle signals: {e}")))?;
    let handle = signals.handle();
    let session = fuser::spawn_mount(
        if opts.no_xattr {
            FuseAdapter::new(fs).without_xattrs()
        } else {
            FuseAdapter::new(fs)
        },
        mountpoint,
        &fuse_config(cipherdir, opts, shared),
    )
    .map_err(|e| {
        let code = if e.kind() == std::io::ErrorKind::NotFound {
            exitcode::KERNEL_FEATURE
        } else {
            exitcode::MOUNTPOINT
        };
        Failure::new(
            code,
            format!("cannot mount on {}: {e}", mountpoint.display()),
        )
    })?;
    // The mount exists once spawn_mount returns; a stat through it proves it answers.
    std::fs::metadata(mountpoint).map_err(|e| {
        Failure::new(
            exitcode::MOUNTPOINT,
            format!("the mount does not answer: {e}"),
        )
    })?;
    // The PID file exists before anyone is told the mount is ready.
    if let Some(p) = &opts.pidfile {
        std::fs::write(p, format!("{}\n", std::process::id())).map_err(|e| {
            Failure::new(
                exitcode::OTHER,
                format!("cannot write the PID file {}: {e}", p.display()),
            )
        })?;
    }
    if opts.ready_stdout {
        println!("{READY}");
        let _ = std::io::stdout().flush();
    }
    // systemd Type=notify: ready only now that the mount answers. Without
    // NOTIFY_SOCKET this does nothing.
    let status = format!(
        "mounted {} on {}",
        cipherdir.display(),
        mountpoint.display()
    );
    let _ = sd_notify::notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&status),
    ]);
    log::info!(
        "mounted {} on {}: {what}",
        cipherdir.display(),
        mountpoint.display()
    );

    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let _ = tx.send(sig);
        }
    });
    let mut busy_logged = false;
    let reason = loop {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(sig) => break Some(format!("signal {sig}")),
            // The session ends when the kernel ends this mount's connection.
            // Not "is something mounted at the path": a new mount there, made
            // as soon as this one went, would keep this daemon waiting for good.
            Err(mpsc::RecvTimeoutError::Timeout) if !session.guard.is_finished() => {
                let Some(idle) = opts.idle else { continue };
                if activity.idle_for() < idle {
                    continue;
                }
                // Never lazily: a mount with a file open or a working
                // directory inside stays, and is tried again after another
                // idle period.
                if fusermount(mountpoint, false) {
                    break Some(format!("idle for {}s", idle.as_secs()));
                }
                if !busy_logged {
                    log::info!(
                        "{} is idle but in use (an open file or a working directory): \
                         it stays mounted, and is tried again after {}s without use",
                        mountpoint.display(),
                        idle.as_secs()
                    );
                    busy_logged = true;
                }
                activity.restart();
            }
            Err(_) => break None,
        }
    };
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    handle.close();
    // By path, so only while this mount is still the one there.
    if reason.is_some() && !session.guard.is_finished() && is_mounted(mountpoint) {
        unmount(mountpoint);
    }
    if session.guard.is_finished() || !is_mounted(mountpoint) {
        // Should the session end with an error, fuser then tries to
        // unmount it again and warns that it could not: not worth a line.
        crate::logging::mount_gone();
    }
    let joined = join_session(session);
    if let Some(p) = &opts.pidfile {
        let _ = std::fs::remove_file(p);
    }
    log::info!(
        "unmounted {} ({})",
        mountpoint.display(),
        reason.as_deref().unwrap_or("by umount or fusermount3 -u")
    );
    joined
}

/// Waits for the FUSE session to end. Once the mount is gone the kernel ends
/// the connection, with ENODEV or, after a lazy detach, sometimes
/// ECONNABORTED: both are the normal end, and then fuser's own unmount is
/// skipped. It goes by path, and fuser 0.18 takes a dead connection for a
/// live one, so it would unmount whatever was mounted at the path since: a
/// restarted daemon's new mount (fixed upstream in fuser pull request 703,
/// not released).
fn join_session(mut session: fuser::BackgroundSession) -> Result<(), Failure> {
    let guard = std::mem::replace(&mut session.guard, std::thread::spawn(|| Ok(())));
    let ended = guard
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the FUSE session thread panicked")));
    match ended {
        Ok(()) => {}
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENODEV | libc::ECONNABORTED)) => {}
        // The session ended by itself: fuser unmounts as it is dropped.
        Err(e) => return Err(Failure::new(exitcode::OTHER, e.to_string())),
    }
    std::mem::forget(session);
    Ok(())
}

/// Unmounts; a busy mount is detached lazily (it goes away when its last
/// user leaves), and the log says so.
fn unmount(mountpoint: &Path) {
    if fusermount(mountpoint, false) {
        return;
    }
    if is_mounted(mountpoint) && fusermount(mountpoint, true) {
        log::warn!(
            "{} is busy: detached lazily; it disappears when the last process using it lets go",
            mountpoint.display()
        );
    } else if is_mounted(mountpoint) {
        log::error!("cannot unmount {}", mountpoint.display());
    }
}

/// `fusermount3 -u` (with `-z`: lazily); whether it unmounted.
fn fusermount(mountpoint: &Path, lazy: bool) -> bool {
    let mut c = Command::new("fusermount3");
    c.arg("-u");
    if lazy {
        c.arg("-z");
    }
    c.arg(mountpoint)
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs `cipherfs mount -f` as the daemon and waits for its verdict.
fn spawn_daemon(
    cipherdir: &Path,
    mountpoint: &Path,
    opts: &MountOptions,
    master: &MasterKey,
    backend: skcipher::Backend,
) -> Result<(), Failure> {
    let exe = std::env::current_exe().map_err(|e| {
        Failure::new(
            exitcode::OTHER,
            format!("cannot find my own executable: {e}"),
        )
    })?;
    let mut cmd = Command::new(exe);
    cmd.args(crate::logging::verbosity_args());
    // The daemon protocol is an environment variable, not a flag: a flag
    // would show in shell completions, which clap generates hidden or not.
    cmd.env(READY_ENV, "1");
    cmd.arg("mount").arg("-f").arg("--masterkey-file").arg("-");
    cmd.arg("--backend").arg(backend.name());
    if opts.read_only {
        cmd.arg("--ro");
    }
    if opts.allow_other {
        cmd.arg("--allow-other");
    }
    for o in &opts.extra {
        cmd.arg("-o").arg(o);
    }
    if let Some(idle) = opts.idle {
        cmd.arg("--idle").arg(format!("{}s", idle.as_secs()));
    }
    if opts.debug_names {
        cmd.arg("--debug-names");
    }
    if opts.no_xattr {
        cmd.arg("--no-xattr");
    }
    if opts.acl {
        cmd.arg("--acl");
    }
    if opts.nonempty {
        cmd.arg("-o").arg("nonempty");
    }
    match opts.shared_storage {
        Some(true) => _ = cmd.arg("-o").arg("sharedstorage"),
        Some(false) => _ = cmd.arg("-o").arg("nosharedstorage"),
        None => {}
    }
    if opts.default_permissions {
        cmd.arg("-o").arg("default_permissions");
    }
    if let Some(p) = &opts.pidfile {
        cmd.arg("--pidfile").arg(p);
    }
    cmd.arg(cipherdir).arg(mountpoint);
    // Its own process group, so the terminal's Ctrl-C does not reach it.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::new(exitcode::OTHER, format!("cannot start the daemon: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(master_hex(master).as_bytes())
            .map_err(|e| {
                Failure::new(
                    exitcode::OTHER,
                    format!("cannot hand the key to the daemon: {e}"),
                )
            })?;
    }
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Failure::new(exitcode::OTHER, "no daemon output"))?;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap_or_default();
        if line == READY {
            return Ok(());
        }
        if let Some(rest) = line.strip_prefix(FAILED) {
            let rest = rest.trim_start();
            let (code, msg) = rest.split_once(' ').unwrap_or((rest, ""));
            let _ = child.wait();
            return Err(Failure::new(
                code.parse().unwrap_or(exitcode::OTHER),
                msg.to_string(),
            ));
        }
    }
    let status = child
        .wait()
        .map_err(|e| Failure::new(exitcode::OTHER, e.to_string()))?;
    Err(Failure::new(
        exitcode::OTHER,
        format!("the daemon exited ({status}) before the mount was ready"),
    ))
}
