//! Shared storage (`-o sharedstorage`): one cipher directory mounted by
//! several machines at once. Within one daemon a node's `io` lock orders
//! readers and writers; across daemons only the backing filesystem can, so
//! here they take open-file-description locks (`F_OFD_SETLKW`, which NFS,
//! CephFS, SMB and GlusterFS's FUSE client pass on to the server) on the
//! backing file:
//!
//! - the *size byte*, far past any data: shared by a write that stays within
//!   the file, exclusive for whatever changes the size or writes a header
//!   (a growing write, a truncate), so the size and header are read afresh
//!   under it and never change under anyone holding it;
//! - the stored range a write rewrites, exclusive, so read-modify-write of a
//!   sector is whole across machines;
//! - the whole file, shared, while a daemon reads, so no read sees half of
//!   another machine's write. A daemon's concurrent readers of one node
//!   share one such lock (see `ReadLock`): OFD locks of one description
//!   merge, and the first reader to unlock would drop the others' lock.
//!
//! The readers' lock, and the size byte after a growing write, linger a
//! little after their last use (see `LINGER`, `NodeLock`).

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg};

use super::error::{FsError, FsResult};
use super::node::{Node, Stamp};
use crate::content::FileCipher;

/// The byte that stands for a file's size and header. Far past any size a
/// stored file reaches, and below every filesystem's largest offset.
pub const SIZE_BYTE: u64 = 1 << 62;

/// Filesystems that other machines write too, by `statfs` magic: NFS, SMB
/// (three), CephFS, AFS, GFS2, OCFS2, Lustre, 9P, and FUSE, under which
/// GlusterFS, MooseFS, sshfs and the like run.
const SHARED_FILESYSTEMS: &[(i64, &str)] = &[
    (0x6969, "nfs"),
    (0xFF53_4D42, "cifs"),
    (0xFE53_4D42, "smb2"),
    (0x517B, "smb"),
    (0x00C3_6400, "ceph"),
    (0x5346_414F, "afs"),
    (0x0116_1970, "gfs2"),
    (0x7461_636F, "ocfs2"),
    (0x0BD0_0BD0, "lustre"),
    (0x0102_1997, "9p"),
    (0x6573_5546, "fuse"),
];

/// The type of `dir`'s filesystem when it is a network or cluster one.
pub fn network_filesystem(dir: &Path) -> Option<&'static str> {
    let st = rustix::fs::statfs(dir).ok()?;
    let magic = st.f_type as i64;
    SHARED_FILESYSTEMS
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, name)| *name)
}

/// Drops what this machine's page cache holds of a backing file, once a
/// lock is held: a network filesystem's client (GlusterFS's FUSE mount,
/// say) fills it when read and drops it only at open, and a daemon keeps
/// its backing files open, so a read would otherwise return what another
/// machine has since rewritten. Clean pages only, and this daemon writes
/// through, so nothing is lost.
fn drop_cached(file: &File) {
    if let Err(e) = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed) {
        log::debug!("fadvise(DONTNEED) on a backing file: {e}");
    }
}

/// A lock on `[start, start + len)` of one open file description, released
/// when dropped. `len` 0 reaches to the end of every possible file.
pub struct RangeLock<'a> {
    file: &'a File,
    start: u64,
    len: u64,
}

fn flock(kind: i32, start: u64, len: u64) -> libc::flock {
    libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: start as libc::off_t,
        l_len: len as libc::off_t,
        // OFD locks require 0 here.
        l_pid: 0,
    }
}

fn set(file: &File, fl: &libc::flock, wait: bool) -> FsResult<()> {
    loop {
        let arg = if wait {
            FcntlArg::F_OFD_SETLKW(fl)
        } else {
            FcntlArg::F_OFD_SETLK(fl)
        };
        match fcntl(file.as_fd(), arg) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(FsError(e as i32)),
        }
    }
}

impl<'a> RangeLock<'a> {
    /// Waits for the lock: `exclusive` for writing, else shared.
    pub fn take(file: &'a File, start: u64, len: u64, exclusive: bool) -> FsResult<Self> {
        let kind = if exclusive {
            libc::F_WRLCK
        } else {
            libc::F_RDLCK
        };
        set(file, &flock(kind, start, len), true).inspect_err(|e| {
            log::warn!("cannot lock a backing file (shared storage): errno {}", e.0)
        })?;
        drop_cached(file);
        Ok(Self { file, start, len })
    }

    /// The size byte.
    pub fn size(file: &'a File, exclusive: bool) -> FsResult<Self> {
        Self::take(file, SIZE_BYTE, 1, exclusive)
    }
}

impl Drop for RangeLock<'_> {
    fn drop(&mut self) {
        let _ = set(
            self.file,
            &flock(libc::F_UNLCK, self.start, self.len),
            false,
        );
    }
}

/// How long a daemon keeps a file's lock after its last read or growing
/// write. Sequential reads and writes come as trains of requests with gaps
/// between them; taking the lock anew for each would cost two round trips
/// and drop the backing file's cached pages (readahead included) each time,
/// and the release is done by the `Releaser`, off the request's path.
/// Another machine waits this long at most.
const LINGER: Duration = Duration::from_millis(20);

/// How long a lock in constant use is kept before it is let go and taken
/// again: without a bound, a daemon that reads or writes a file without a
/// pause would keep another machine out of it for good.
const MAX_HOLD: Duration = Duration::from_millis(100);

/// After letting an old lock go, a pause before taking it again: the other
/// machine's waiting request gets the lock first (a local filesystem wakes
/// waiters but does not queue them).
const YIELD: Duration = Duration::from_millis(1);

/// The lock this daemon holds on a node's backing file beyond a single
/// request: the readers' shared whole-file lock (taken by the first reader,
/// kept while any reads), or the size byte alone after a growing write or a
/// truncate. Either is let go `LINGER` after its last use, or at once when
/// a writer of this daemon needs something else. The node keeps the open
/// file it was taken on (a handle's, which may have been released since)
/// until then: a duplicate descriptor would cost a flush on network storage
/// when closed.
#[derive(Default)]
pub struct NodeLock {
    held: Mutex<Held>,
    /// Signalled when the last reader is done.
    drained: Condvar,
}

#[derive(Default)]
struct Held {
    /// The open file description the lock lives on.
    lock: Option<Arc<File>>,
    /// When the lock was taken: one in use without a break is let go after
    /// `MAX_HOLD`, so that other machines get their turn.
    since: Option<Instant>,
    /// The lock is the size byte alone (else the whole file, shared).
    exclusive: bool,
    readers: usize,
    /// Counts the times the lock went unused, so that a release scheduled
    /// then is skipped once it is used again.
    idle: u64,
    /// The file's plaintext size and state, read or set under this lock: no
    /// one else can change them while it is held, so no stat is needed (a
    /// round trip on network storage) until it is let go.
    known: Option<(u64, Stamp)>,
    /// The file's cipher, from a header read or written under this lock:
    /// the header cannot change either while it is held, so it need not be
    /// read again (another round trip).
    cipher: Option<Arc<FileCipher>>,
}

impl Held {
    fn let_go(&mut self) {
        self.known = None;
        self.cipher = None;
        self.since = None;
        if let Some(f) = self.lock.take() {
            unlock_all(&f);
        }
    }

    /// Unused from now: released after LINGER unless used again.
    fn schedule(&mut self, node: &Arc<Node>, releaser: &Releaser) {
        self.idle += 1;
        let due = Instant::now() + LINGER;
        if releaser
            .tx
            .send((due, Arc::downgrade(node), self.idle))
            .is_err()
        {
            self.let_go();
        }
    }
}

impl NodeLock {
    fn state(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the lock has been held for `MAX_HOLD` without a break.
    fn overdue(held: &Held) -> bool {
        held.since.is_some_and(|t| t.elapsed() > MAX_HOLD)
    }

    /// Lets the lock go now (after a failed write, whose size is unknown).
    pub fn release(&self) {
        self.state().let_go();
    }

    /// For a writer of this daemon, which holds the node's io lock alone:
    /// the file's size and state, and its cipher if known, when this daemon
    /// still holds the size byte from its last write (nothing to lock, stat
    /// or read then). A readers'
    /// lock is let go instead: the writer takes its own, on another
    /// description, which that would block.
    pub fn owned_by_writer(&self) -> Option<(u64, Stamp, Option<Arc<FileCipher>>)> {
        let mut held = self.state();
        if Self::overdue(&held) {
            held.let_go();
            drop(held);
            std::thread::sleep(YIELD);
            return None;
        }
        match (&held.lock, held.exclusive, held.known) {
            (Some(_), true, Some((p, stamp))) => {
                // In use again: a release already scheduled is skipped.
                held.idle += 1;
                Some((p, stamp, held.cipher.clone()))
            }
            _ => {
                held.let_go();
                None
            }
        }
    }

    /// After a growing write or a truncate that held the size byte alone
    /// (taken now as `taken`, on `file`, or still held): keeps it, with the
    /// file's new plaintext size and, when the caller used it, its cipher.
    pub fn keep_after_write(
        &self,
        node: &Arc<Node>,
        releaser: &Releaser,
        file: &Arc<File>,
        taken: Option<RangeLock<'_>>,
        known: (u64, Stamp),
        cipher: Option<Arc<FileCipher>>,
    ) {
        let mut held = self.state();
        if let Some(lock) = taken {
            // Kept with the description it lives on, unlocked when let go.
            std::mem::forget(lock);
            held.lock = Some(Arc::clone(file));
            held.exclusive = true;
            held.since = Some(Instant::now());
        }
        if known.0 == 0 {
            // No header any more: the next write makes a new one.
            held.cipher = None;
        } else if cipher.is_some() {
            held.cipher = cipher;
        }
        held.known = Some(known);
        held.schedule(node, releaser);
    }
}

fn unlock_all(f: &File) {
    let _ = set(f, &flock(libc::F_UNLCK, 0, 0), false);
}

/// Releases lingering locks once their time is up: one thread per
/// mount, sleeping while there is nothing to do.
pub struct Releaser {
    tx: crossbeam_channel::Sender<(Instant, Weak<Node>, u64)>,
}

impl Releaser {
    pub fn start() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded::<(Instant, Weak<Node>, u64)>();
        let spawned = std::thread::Builder::new()
            .name("cipherfs-unlock".into())
            .spawn(move || {
                // Deadlines arrive in order: each is the same time after
                // the moment it was sent.
                for (due, node, idle) in rx {
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    let Some(node) = node.upgrade() else { continue };
                    // Busy means a reader is coming or going, and it sees
                    // to the lock itself: never wait here behind a reader
                    // that waits for another machine.
                    let Ok(mut held) = node.lock.held.try_lock() else {
                        continue;
                    };
                    if held.readers == 0 && held.idle == idle {
                        held.let_go();
                    }
                }
            });
        if let Err(e) = spawned {
            log::error!("cannot start the lock releaser thread: {e}");
        }
        Self { tx }
    }
}

/// One reader's share of its node's lock.
pub struct ReadLock<'a> {
    node: &'a Arc<Node>,
    releaser: &'a Releaser,
}

impl<'a> ReadLock<'a> {
    /// The readers' lock, or the size byte this daemon holds alone (then
    /// no one else writes either).
    pub fn take(node: &'a Arc<Node>, file: &Arc<File>, releaser: &'a Releaser) -> FsResult<Self> {
        let mut held = node.lock.state();
        // An overdue lock takes no new readers: once those reading are
        // done it is let go, and taken again after a pause.
        while NodeLock::overdue(&held) {
            if held.readers == 0 {
                held.let_go();
                drop(held);
                std::thread::sleep(YIELD);
                held = node.lock.state();
            } else {
                held = node
                    .lock
                    .drained
                    .wait(held)
                    .unwrap_or_else(|e| e.into_inner());
            }
        }
        if held.lock.is_none() {
            set(file, &flock(libc::F_RDLCK, 0, 0), true)?;
            // While this daemon holds the lock, no one else writes: what
            // it caches from now on stays true until it is let go.
            drop_cached(file);
            held.lock = Some(Arc::clone(file));
            held.exclusive = false;
            held.since = Some(Instant::now());
        }
        held.readers += 1;
        Ok(Self { node, releaser })
    }

    /// The file's plaintext size and state, from `read` the first time
    /// while the lock is held.
    pub fn size(&self, read: impl FnOnce() -> FsResult<(u64, Stamp)>) -> FsResult<(u64, Stamp)> {
        if let Some(k) = self.node.lock.state().known {
            return Ok(k);
        }
        let k = read()?;
        self.node.lock.state().known = Some(k);
        Ok(k)
    }
}

impl ReadLock<'_> {
    /// The file's cipher, from `read` the first time while the lock is held.
    pub fn cipher(
        &self,
        read: impl FnOnce() -> FsResult<Arc<FileCipher>>,
    ) -> FsResult<Arc<FileCipher>> {
        if let Some(c) = &self.node.lock.state().cipher {
            return Ok(Arc::clone(c));
        }
        let c = read()?;
        self.node.lock.state().cipher = Some(Arc::clone(&c));
        Ok(c)
    }
}

impl Drop for ReadLock<'_> {
    fn drop(&mut self) {
        let mut held = self.node.lock.state();
        held.readers -= 1;
        if held.readers == 0 {
            self.node.lock.drained.notify_all();
            held.schedule(self.node, self.releaser);
        }
    }
}

impl super::CipherFs {
    /// The plaintext size before a write that ends at `end`, and the
    /// backing file's state, read under the size lock (shared storage):
    /// still held from this daemon's last write, or taken now, exclusive
    /// when the write grows the file (it then sets the size and may write
    /// the header), shared otherwise.
    pub(super) fn lock_size<'f>(
        &self,
        node: &Node,
        file: &'f File,
        end: u64,
    ) -> FsResult<(SizeHold<'f>, u64, Stamp)> {
        if let Some((p, stamp, fc)) = node.lock.owned_by_writer() {
            return Ok((SizeHold::Owned(fc), p, stamp));
        }
        // A guess from what this daemon last saw (a stat is a round trip),
        // checked under the lock; a file it knows nothing of may be new.
        let seen = node
            .cipher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|c| c.stamp.size());
        let mut exclusive = match seen.map(|size| self.layout.plain_size(size)) {
            Some(Ok(p)) => end > p,
            _ => true,
        };
        loop {
            let lock = RangeLock::size(file, exclusive)?;
            let (p, stamp) = self.file_state(node, file)?;
            if exclusive || end <= p {
                return Ok((SizeHold::Taken { lock, exclusive }, p, stamp));
            }
            // Another machine cut the file meanwhile: this write grows it.
            // Released before waiting again, so two such writers cannot
            // each hold what the other waits for.
            drop(lock);
            exclusive = true;
        }
    }
}

/// A write's hold on the size byte (shared storage): still held from this
/// daemon's last write, or taken for this one.
pub(super) enum SizeHold<'f> {
    /// With the file's cipher, if known under the lock.
    Owned(Option<Arc<FileCipher>>),
    Taken {
        lock: RangeLock<'f>,
        exclusive: bool,
    },
}

impl SizeHold<'_> {
    pub(super) fn exclusive(&self) -> bool {
        matches!(
            self,
            SizeHold::Owned(_)
                | SizeHold::Taken {
                    exclusive: true,
                    ..
                }
        )
    }
}
