//! The filesystem core: every operation of the plaintext view, on the cipher
//! directory, in terms the FUSE adapter maps one to one. It never sees
//! fuser's types, so it can be driven without a mount. Backing files are
//! reached only through descriptors and `*at()` calls.

mod acl;
mod dir;
mod error;
mod file;
mod link;
mod node;
mod ops;
mod shared;
mod xattr;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{openat, Mode, OFlags, Stat};

pub use acl::Inherited;
pub use dir::{write_diriv, DirEntry};
pub use error::{FsError, FsResult};
pub use node::{Kind, Node, ROOT_ID};
pub use ops::{Caller, CreatedFile, SetAttr, SetTime, StatFs};
pub use shared::network_filesystem;

use crate::config::Params;
use crate::content::{mode_of, Layout};
use crate::crypto::MasterKey;
use crate::names::xattr::XattrCipher;
use crate::names::{NameCipher, NameError};
use crate::skcipher::Backend;
use node::NodeTable;

/// When the mount was last used (milliseconds since it started).
pub struct Activity {
    start: std::time::Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: std::time::Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Counts idle time from now again (after an idle unmount that found
    /// the mount still in use).
    pub fn restart(&self) {
        self.touch();
    }

    pub fn idle_for(&self) -> Duration {
        self.start
            .elapsed()
            .saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// Attributes in the plaintext view.
#[derive(Clone, Copy, Debug)]
pub struct Attr {
    /// The backing inode number: stable, shared by hard links.
    pub ino: u64,
    pub size: u64,
    pub blocks: u64,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
    pub kind: Kind,
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u32,
    pub blksize: u32,
}

pub enum Handle {
    File {
        node: Arc<Node>,
        /// Shared with the node's lingering lock on shared storage, which
        /// lives on this open file description.
        file: Arc<File>,
    },
    Dir {
        node: Arc<Node>,
        entries: Mutex<Option<Vec<DirEntry>>>,
    },
}

pub struct CipherFs {
    cipherdir: PathBuf,
    nodes: NodeTable,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    next_fh: AtomicU64,
    activity: Arc<Activity>,
    debug_names: bool,
    /// POSIX ACLs (`--acl`).
    acl: bool,
    /// The daemon runs as root: new entries are given to their creators.
    as_root: bool,
    master: MasterKey,
    names: NameCipher,
    xattrs: XattrCipher,
    alg: String,
    key_len: usize,
    /// The stored layout of files: sector mode and size.
    layout: Layout,
    backend: Backend,
    /// What new file headers say, and old ones must (cipherfs(5)).
    format_version: u16,
    /// Other machines mount the same cipher directory (`-o sharedstorage`):
    /// then file I/O takes locks, and this lets lingering ones go.
    shared: Option<shared::Releaser>,
    /// The backing filesystem refused RENAME_NOREPLACE once (see mkdir).
    no_noreplace: std::sync::atomic::AtomicBool,
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH - Duration::new(secs.unsigned_abs(), 0) + Duration::new(0, nsecs as u32)
    }
}

impl CipherFs {
    /// Opens the cipher directory with an unlocked master key; contents run
    /// on `backend`, format 2's names on `names_backend`.
    pub fn new(
        cipherdir: &Path,
        params: &Params,
        master: MasterKey,
        backend: Backend,
        names_backend: Backend,
    ) -> Result<Self, String> {
        let root = openat(
            rustix::fs::CWD,
            cipherdir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("{}: {e}", cipherdir.display()))?;
        let names = NameCipher::new(&master, params.name_mode, names_backend)
            .map_err(|e: NameError| e.to_string())?;
        let xattrs = XattrCipher::new(&master, params.format_version, names_backend)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            cipherdir: cipherdir.to_path_buf(),
            nodes: NodeTable::new(root).map_err(|e| format!("{}: {e}", cipherdir.display()))?,
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            activity: Arc::new(Activity::new()),
            debug_names: false,
            acl: false,
            as_root: rustix::process::geteuid().is_root(),
            master,
            names,
            xattrs,
            alg: params.content_cipher.clone(),
            key_len: params.content_key_bytes,
            layout: Layout::new(
                mode_of(&params.content_cipher),
                u64::from(params.sector_size),
            ),
            backend,
            format_version: params.format_version as u16,
            shared: None,
            no_noreplace: Default::default(),
        })
    }

    pub fn cipherdir(&self) -> &Path {
        &self.cipherdir
    }

    /// How many nodes the kernel holds references to (for tests and logs).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// A node's cipher path, for log lines (never the plaintext name).
    pub(crate) fn describe(&self, node: &Node) -> String {
        use std::os::fd::AsRawFd;
        let path = std::fs::read_link(format!("/proc/self/fd/{}", node.fd.as_raw_fd()))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| format!("{} (node {})", self.cipherdir.display(), node.id));
        let name = node
            .debug_name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match name {
            Some(n) if self.debug_names => {
                format!("{path} (plaintext name {:?})", String::from_utf8_lossy(&n))
            }
            _ => path,
        }
    }

    /// POSIX ACLs, stored encrypted and enforced by the kernel (`--acl`).
    pub fn set_acl(&mut self, on: bool) {
        self.acl = on;
    }

    pub fn acl_enabled(&self) -> bool {
        self.acl
    }

    /// Shared storage: other machines mount the same cipher directory, so
    /// file I/O takes locks on the backing files (see `shared`).
    pub fn set_shared(&mut self, on: bool) {
        self.shared = on.then(shared::Releaser::start);
    }

    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Log lines name files by their plaintext names too (`--debug-names`).
    pub fn set_debug_names(&mut self, on: bool) {
        self.debug_names = on;
    }

    fn note_name(&self, node: &Node, name: &std::ffi::OsStr) {
        if self.debug_names {
            use std::os::unix::ffi::OsStrExt;
            *node.debug_name.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(name.as_bytes().to_vec());
        }
    }

    fn node(&self, id: u64) -> FsResult<Arc<Node>> {
        // Nearly every operation starts here, so this is where use is stamped.
        self.activity.touch();
        self.nodes.get(id).ok_or(FsError::ENOENT)
    }

    /// A handle on the time of last use, for `--idle`.
    pub fn activity(&self) -> Arc<Activity> {
        Arc::clone(&self.activity)
    }

    fn handle(&self, fh: u64) -> FsResult<Arc<Handle>> {
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&fh)
            .cloned()
            .ok_or(FsError::EBADF)
    }

    fn add_handle(&self, h: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(fh, Arc::new(h));
        fh
    }

    pub fn release(&self, fh: u64) {
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&fh);
    }

    /// Plaintext attributes from a backing stat. Regular file sizes come from
    /// the ciphertext size alone (no read); symlink sizes are the decrypted
    /// target's length.
    fn attr(&self, node: &Node, st: &Stat) -> FsResult<Attr> {
        let kind = Kind::of(st);
        let size = match kind {
            Kind::File => self.layout.plain_size(st.st_size as u64).map_err(|e| {
                log::warn!("{}: {e}", self.describe(node));
                FsError::EIO
            })?,
            Kind::Symlink => match node.link_len.get() {
                Some(&len) => len,
                None => match self.read_link(node) {
                    Ok(t) => *node.link_len.get_or_init(|| t.len() as u64),
                    Err(_) => st.st_size as u64,
                },
            },
            _ => st.st_size as u64,
        };
        Ok(Attr {
            ino: st.st_ino,
            size,
            blocks: st.st_blocks as u64,
            atime: time(st.st_atime, st.st_atime_nsec as i64),
            mtime: time(st.st_mtime, st.st_mtime_nsec as i64),
            ctime: time(st.st_ctime, st.st_ctime_nsec as i64),
            kind,
            perm: (st.st_mode & 0o7777) as u16,
            nlink: st.st_nlink as u32,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev as u32,
            blksize: self.layout.sector as u32,
        })
    }
}
