//! The inode table. Each node the kernel knows holds an `O_PATH` descriptor
//! of its backing file (libfuse's passthrough_ll does the same), so renames
//! and hard links need no path bookkeeping.
//!
//! A node's id is its backing inode number. fuser sends the id as both the
//! FUSE node id and `attr.ino`, so this is what makes `st_ino` the backing
//! inode: stable across the kernel forgetting a node and across remounts,
//! shared by hard links, as backup and sync tools expect. The id cannot be
//! reused for another file while the kernel knows the node: the node's
//! descriptor keeps the backing inode, and so its number, alive. The root is
//! FUSE's node 1. Where the backing number cannot serve (an entry on another
//! filesystem mounted inside the cipher directory, whose numbers could
//! collide with the root filesystem's; a number already taken by a node the
//! table still holds for a different file, as a network filesystem may
//! reuse one; the number 1), the node gets an id from a range of its own,
//! at 2^63 and up, stable only while it is known.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use rustix::fs::{fstat, FileType, Stat};

use crate::content::FileCipher;
use crate::names::DIRIV_LEN;

pub const ROOT_ID: u64 = 1;
/// Where ids that are not backing inode numbers start.
pub const PRIVATE_IDS: u64 = 1 << 63;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Other,
}

impl Kind {
    pub fn of(st: &Stat) -> Kind {
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => Kind::Dir,
            FileType::RegularFile => Kind::File,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        }
    }
}

pub struct Node {
    pub id: u64,
    pub fd: OwnedFd,
    pub kind: Kind,
    pub backing: (u64, u64),
    nlookup: AtomicU64,
    /// A directory's name IV, read once.
    pub diriv: OnceLock<[u8; DIRIV_LEN]>,
    /// A symlink's plaintext target length, its `st_size`. A symlink's
    /// target never changes, and reading it touches the link's atime (under
    /// relatime, when that is older than a day or than its mtime), so it is
    /// read once per node rather than at every stat.
    pub link_len: OnceLock<u64>,
    /// Reads share it; writes and truncates of this file take it alone, so
    /// read-modify-write of a sector never interleaves across handles.
    pub io: RwLock<()>,
    /// This daemon's lock on the backing file beyond one request, against
    /// other machines (shared storage).
    pub lock: super::shared::NodeLock,
    /// The file's content cipher, keyed from its header; `None` until first
    /// needed and again after the file is truncated to zero (new nonce).
    pub cipher: Mutex<Option<CachedCipher>>,
    /// The plaintext name it was last reached by; kept only with
    /// `--debug-names`, so plaintext names are not in memory otherwise.
    pub debug_name: Mutex<Option<Vec<u8>>>,
}

impl Node {
    fn new(id: u64, fd: OwnedFd, st: &Stat) -> Self {
        Self {
            id,
            fd,
            kind: Kind::of(st),
            backing: (st.st_dev, st.st_ino),
            nlookup: AtomicU64::new(0),
            diriv: OnceLock::new(),
            link_len: OnceLock::new(),
            io: RwLock::new(()),
            lock: Default::default(),
            cipher: Mutex::new(None),
            debug_name: Mutex::new(None),
        }
    }

    pub fn stat(&self) -> rustix::io::Result<Stat> {
        fstat(&self.fd)
    }

    /// What the backing filesystem answered to cipherfs's own change (see
    /// `stat_after_change`).
    pub fn stat_after_change(&self) -> rustix::io::Result<Stat> {
        stat_after_change(&self.fd)
    }
}

/// The attributes the backing filesystem's client already holds for `fd`,
/// right after cipherfs looked it up, changed it or made it: the server sent
/// them with its answer to that lookup or change, so a network filesystem
/// need not be asked again (AT_STATX_DONT_SYNC; local filesystems are always
/// in sync). Not for a GETATTR of a node looked up earlier: another machine
/// may have changed it since.
///
/// Through `statx`: `newfstatat` takes the flag but still asks the server
/// (a round trip each on GlusterFS, measured). Where `statx` is missing or
/// answers less than the basic fields, a plain `fstat`.
pub fn stat_after_change(fd: &impl std::os::fd::AsFd) -> rustix::io::Result<Stat> {
    use rustix::fs::{statx, AtFlags, StatxFlags};
    let flags = AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW | AtFlags::STATX_DONT_SYNC;
    match statx(fd, "", flags, StatxFlags::BASIC_STATS) {
        Ok(x) if x.stx_mask & StatxFlags::BASIC_STATS.bits() == StatxFlags::BASIC_STATS.bits() => {
            match blank_stat() {
                Some(blank) => Ok(from_statx(blank, &x)),
                None => fstat(fd),
            }
        }
        _ => fstat(fd),
    }
}

/// A `Stat` to fill in: rustix's cannot be built field by field (it has
/// private padding), so a local one, taken once, is copied and overwritten.
fn blank_stat() -> Option<Stat> {
    static BLANK: OnceLock<Option<Stat>> = OnceLock::new();
    *BLANK.get_or_init(|| rustix::fs::stat("/").ok())
}

fn from_statx(mut st: Stat, x: &rustix::fs::Statx) -> Stat {
    use rustix::fs::makedev;
    st.st_dev = makedev(x.stx_dev_major, x.stx_dev_minor);
    st.st_ino = x.stx_ino;
    st.st_mode = x.stx_mode.into();
    st.st_nlink = x.stx_nlink.into();
    st.st_uid = x.stx_uid;
    st.st_gid = x.stx_gid;
    st.st_rdev = makedev(x.stx_rdev_major, x.stx_rdev_minor);
    st.st_size = x.stx_size as i64;
    st.st_blksize = x.stx_blksize.into();
    st.st_blocks = x.stx_blocks as i64;
    st.st_atime = x.stx_atime.tv_sec;
    st.st_atime_nsec = x.stx_atime.tv_nsec.into();
    st.st_mtime = x.stx_mtime.tv_sec;
    st.st_mtime_nsec = x.stx_mtime.tv_nsec.into();
    st.st_ctime = x.stx_ctime.tv_sec;
    st.st_ctime_nsec = x.stx_ctime.tv_nsec.into();
    st
}

#[derive(Default)]
struct Maps {
    nodes: HashMap<u64, Arc<Node>>,
    by_backing: HashMap<(u64, u64), u64>,
}

pub struct NodeTable {
    maps: Mutex<Maps>,
    /// The next id from the private range.
    next: AtomicU64,
    /// The cipher directory's filesystem: only its inode numbers serve as ids.
    root_dev: u64,
}

impl NodeTable {
    pub fn new(root_fd: OwnedFd) -> rustix::io::Result<Self> {
        let st = fstat(&root_fd)?;
        let root = Arc::new(Node::new(ROOT_ID, root_fd, &st));
        let mut maps = Maps::default();
        maps.by_backing.insert(root.backing, ROOT_ID);
        maps.nodes.insert(ROOT_ID, root);
        Ok(Self {
            maps: Mutex::new(maps),
            next: AtomicU64::new(PRIVATE_IDS),
            root_dev: st.st_dev,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, id: u64) -> Option<Arc<Node>> {
        self.lock().nodes.get(&id).cloned()
    }

    /// The node for a backing file just looked up (`fd` is its new `O_PATH`
    /// descriptor, `st` its stat), counting one more kernel reference.
    pub fn remember(&self, fd: OwnedFd, st: &Stat) -> Arc<Node> {
        let mut m = self.lock();
        let key = (st.st_dev, st.st_ino);
        if let Some(existing) = m
            .by_backing
            .get(&key)
            .and_then(|id| m.nodes.get(id))
            .cloned()
        {
            // Same file only if the node's own descriptor still names a live
            // inode. The lookup that found `key` just refreshed the attributes
            // a network client holds for that inode, so they need not be
            // fetched again (a round trip made under this lock).
            let alive = existing
                .stat_after_change()
                .map(|s| s.st_nlink > 0 || existing.kind == Kind::Dir)
                .unwrap_or(false);
            if alive && existing.kind == Kind::of(st) {
                existing.nlookup.fetch_add(1, Ordering::Relaxed);
                return existing;
            }
        }
        let id = if st.st_dev == self.root_dev
            && st.st_ino > ROOT_ID
            && st.st_ino < PRIVATE_IDS
            && !m.nodes.contains_key(&st.st_ino)
        {
            st.st_ino
        } else {
            self.next.fetch_add(1, Ordering::Relaxed)
        };
        let node = Arc::new(Node::new(id, fd, st));
        node.nlookup.store(1, Ordering::Relaxed);
        m.by_backing.insert(key, id);
        m.nodes.insert(id, Arc::clone(&node));
        node
    }

    /// The kernel dropped `n` references to `id`.
    pub fn forget(&self, id: u64, n: u64) {
        if id == ROOT_ID {
            return;
        }
        let mut m = self.lock();
        let Some(node) = m.nodes.get(&id).cloned() else {
            return;
        };
        let before = node.nlookup.fetch_sub(
            n.min(node.nlookup.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        if before <= n {
            m.nodes.remove(&id);
            if m.by_backing.get(&node.backing) == Some(&id) {
                m.by_backing.remove(&node.backing);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lock().nodes.len()
    }
}

/// A file's content cipher, the header nonce it was keyed from, and the
/// backing file's state when that was last checked: another program that
/// rewrites the backing file in place (a restore from backup, say) changes
/// the state, and the header is read again before the cipher is used.
pub struct CachedCipher {
    pub cipher: Arc<FileCipher>,
    pub nonce: [u8; 16],
    pub stamp: Stamp,
}

/// What cipherfs last saw of a backing file: its ctime and size.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stamp {
    ctime: (i64, i64),
    size: u64,
}

impl Stamp {
    /// The backing file's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The same state at another size (after cipherfs set it).
    pub fn with_size(self, size: u64) -> Self {
        Self { size, ..self }
    }

    pub fn of(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            ctime: (m.ctime(), m.ctime_nsec()),
            size: m.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{open, Mode, OFlags};

    /// Field for field what `fstat` says, for a directory, a regular file,
    /// a character device (rdev) and a symlink's own O_PATH descriptor.
    #[test]
    fn stat_after_change_is_fstat_field_for_field() {
        let fields = |s: &Stat| {
            (
                (
                    s.st_dev, s.st_ino, s.st_mode, s.st_nlink, s.st_uid, s.st_gid,
                ),
                (s.st_rdev, s.st_size, s.st_blksize, s.st_blocks),
                (s.st_atime, s.st_atime_nsec, s.st_mtime, s.st_mtime_nsec),
                (s.st_ctime, s.st_ctime_nsec),
            )
        };
        let mut seen_rdev = false;
        for (path, extra) in [
            ("/", OFlags::empty()),
            ("/proc/self/exe", OFlags::empty()),
            ("/dev/null", OFlags::empty()),
            ("/proc/self/cwd", OFlags::NOFOLLOW),
        ] {
            let fd = open(path, OFlags::PATH | OFlags::CLOEXEC | extra, Mode::empty()).unwrap();
            let want = fstat(&fd).unwrap();
            let got = stat_after_change(&fd).unwrap();
            seen_rdev |= got.st_rdev != 0;
            assert_eq!(fields(&got), fields(&want), "{path}");
        }
        assert!(seen_rdev, "no device number was compared");
    }
}
