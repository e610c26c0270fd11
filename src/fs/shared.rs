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

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Mutex;

use nix::fcntl::{fcntl, FcntlArg};

use super::error::{FsError, FsResult};
use super::node::Node;

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

/// The whole-file shared lock of one node's readers in this daemon, taken by
/// the first and released by the last (on a duplicate of the first reader's
/// descriptor, which shares its open file description).
#[derive(Default)]
pub struct Readers {
    held: Mutex<(usize, Option<File>)>,
}

/// One reader's share of its node's read lock.
pub struct ReadLock<'a> {
    node: &'a Node,
}

impl<'a> ReadLock<'a> {
    pub fn take(node: &'a Node, file: &File) -> FsResult<Self> {
        let mut held = node.readers.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.0 == 0 {
            let dup = file.try_clone()?;
            set(&dup, &flock(libc::F_RDLCK, 0, 0), true)?;
            // While this daemon holds the lock, no one else writes: what
            // its readers cache from now on stays true until the last ends.
            drop_cached(&dup);
            held.1 = Some(dup);
        }
        held.0 += 1;
        Ok(Self { node })
    }
}

impl Drop for ReadLock<'_> {
    fn drop(&mut self) {
        let mut held = self
            .node
            .readers
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        held.0 -= 1;
        if held.0 == 0 {
            if let Some(f) = held.1.take() {
                let _ = set(&f, &flock(libc::F_UNLCK, 0, 0), false);
            }
        }
    }
}
