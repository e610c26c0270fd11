//! The operations of the plaintext view, one method each, as the FUSE
//! adapter calls them.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::SystemTime;

use rustix::fs::{
    openat, AtFlags, Mode, OFlags, RenameFlags, Timespec, Timestamps, UTIME_NOW, UTIME_OMIT,
};

use super::error::{FsError, FsResult};
use super::node::{Kind, Node};
use super::{Attr, CipherFs, Handle};

/// A time to set, as FUSE gives it.
#[derive(Clone, Copy, Debug)]
pub enum SetTime {
    Now,
    At(SystemTime),
}

/// What setattr may change.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<SetTime>,
    pub mtime: Option<SetTime>,
    /// The caller may not keep set-user/group-ID bits through a truncate.
    pub kill_suidgid: bool,
}

/// Who asks for a new file, directory, node or symlink. A daemon running as
/// root gives it to them, as gocryptfs does; otherwise everything belongs to
/// the user who mounted.
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
}

/// A file `create` opened: its node (one kernel reference), attributes,
/// handle, and whether it made the file or found it there.
#[derive(Clone, Copy, Debug)]
pub struct CreatedFile {
    pub id: u64,
    pub attr: Attr,
    pub fh: u64,
    pub made: bool,
}

/// Filesystem statistics for statfs.
#[derive(Clone, Copy, Debug)]
pub struct StatFs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
}

fn proc_path(node: &Node) -> String {
    format!("/proc/self/fd/{}", node.fd.as_raw_fd())
}

fn timespec(t: Option<SetTime>) -> Timespec {
    match t {
        None => Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        Some(SetTime::Now) => Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_NOW,
        },
        Some(SetTime::At(t)) => {
            let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
            Timespec {
                tv_sec: d.as_secs() as i64,
                tv_nsec: d.subsec_nanos() as _,
            }
        }
    }
}

const O_PATH: OFlags = OFlags::PATH.union(OFlags::NOFOLLOW).union(OFlags::CLOEXEC);

impl CipherFs {
    /// Opens the entry `entry` of `parent` as a node, counting a kernel reference.
    pub(super) fn enter(&self, parent: &Node, entry: &str) -> FsResult<(Arc<Node>, Attr)> {
        let fd = openat(&parent.fd, entry, O_PATH, Mode::empty())?;
        // The open looked the entry up, attributes and all.
        let st = super::node::stat_after_change(&fd)?;
        self.remember(fd, &st)
    }

    /// A node for the `O_PATH` descriptor `fd` of a file cipherfs just
    /// made, counting a kernel reference.
    fn adopt(&self, fd: OwnedFd) -> FsResult<(Arc<Node>, Attr)> {
        let st = super::node::stat_after_change(&fd)?;
        self.remember(fd, &st)
    }

    /// A node for `fd` and its stat `st`, counting a kernel reference.
    fn remember(&self, fd: OwnedFd, st: &rustix::fs::Stat) -> FsResult<(Arc<Node>, Attr)> {
        let node = self.nodes.remember(fd, st);
        match self.attr(&node, st) {
            Ok(a) => Ok((node, a)),
            Err(e) => {
                self.nodes.forget(node.id, 1);
                Err(e)
            }
        }
    }

    pub fn lookup(&self, parent: u64, name: &OsStr) -> FsResult<(u64, Attr)> {
        let parent = self.node(parent)?;
        let stored = match self.stored_name(&parent, name) {
            Ok(s) => s,
            // A name this scheme cannot store cannot exist either.
            Err(e) if e == FsError::EPERM || e == FsError::EINVAL => return Err(FsError::ENOENT),
            Err(e) => return Err(e),
        };
        let (node, attr) = self.enter(&parent, stored.entry())?;
        self.note_name(&node, name);
        Ok((node.id, attr))
    }

    pub fn forget(&self, id: u64, n: u64) {
        self.nodes.forget(id, n);
    }

    /// The backing file's full mode (type bits included).
    pub fn raw_mode(&self, id: u64) -> FsResult<u32> {
        Ok(self.node(id)?.stat()?.st_mode)
    }

    pub fn getattr(&self, id: u64) -> FsResult<Attr> {
        let node = self.node(id)?;
        let st = node.stat()?;
        self.attr(&node, &st)
    }

    pub fn setattr(&self, id: u64, fh: Option<u64>, set: SetAttr) -> FsResult<Attr> {
        let node = self.node(id)?;
        if let Some(mode) = set.mode {
            if node.kind != Kind::Symlink {
                rustix::fs::chmodat(
                    rustix::fs::CWD,
                    proc_path(&node),
                    Mode::from_raw_mode(mode & 0o7777),
                    AtFlags::empty(),
                )?;
                if self.acl {
                    self.acl_after_chmod(&node, mode)?;
                }
            }
        }
        if set.uid.is_some() || set.gid.is_some() {
            rustix::fs::chownat(
                &node.fd,
                "",
                set.uid.map(rustix::fs::Uid::from_raw),
                set.gid.map(rustix::fs::Gid::from_raw),
                AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
            )?;
        }
        if let Some(size) = set.size {
            if node.kind != Kind::File {
                return Err(FsError::EINVAL);
            }
            match fh.map(|fh| self.handle(fh)).transpose()?.as_deref() {
                Some(Handle::File { file, .. }) => self.truncate_file(&node, file, size)?,
                _ => {
                    let file = Arc::new(self.reopen(&node, libc::O_RDWR)?);
                    self.truncate_file(&node, &file, size)?
                }
            }
            if set.kill_suidgid {
                self.kill_suidgid(&node)?;
            }
        }
        if set.atime.is_some() || set.mtime.is_some() {
            let times = Timestamps {
                last_access: timespec(set.atime),
                last_modification: timespec(set.mtime),
            };
            if node.kind == Kind::Symlink {
                // The link itself, through its own O_PATH descriptor: by its
                // /proc/self/fd path, NOFOLLOW would stop at the /proc link.
                rustix::fs::utimensat(
                    &node.fd,
                    "",
                    &times,
                    AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
                )?;
            } else {
                rustix::fs::utimensat(rustix::fs::CWD, proc_path(&node), &times, AtFlags::empty())?;
            }
        }
        // What the backing filesystem answered to these changes.
        self.attr(&node, &node.stat_after_change()?)
    }

    pub fn readlink(&self, id: u64) -> FsResult<Vec<u8>> {
        let node = self.node(id)?;
        self.read_link(&node)
    }

    /// Runs `make` to create the entry for `name` in `parent` (writing a long
    /// name's companion first, removing it if `make` fails and no entry of
    /// that name is there), then looks it up, or takes the `O_PATH`
    /// descriptor `make` returns for what it made (no lookup by name: a
    /// round trip on network storage).
    fn create_entry(
        &self,
        parent: u64,
        name: &OsStr,
        owner: Option<Caller>,
        make: impl FnOnce(&Node, &str) -> FsResult<Option<OwnedFd>>,
    ) -> FsResult<(u64, Attr)> {
        let parent = self.node(parent)?;
        let stored = self.stored_name(&parent, name)?;
        self.write_companion(&parent, &stored)?;
        let made = match make(&parent, stored.entry()) {
            Ok(made) => made,
            Err(e) => {
                self.drop_companion(&parent, &stored);
                return Err(e);
            }
        };
        self.keep_companion(&parent, &stored)?;
        if let Some(caller) = owner {
            self.give_to(&parent, stored.entry(), caller)?;
        }
        let (node, attr) = match made {
            Some(fd) => self.adopt(fd)?,
            None => self.enter(&parent, stored.entry())?,
        };
        self.note_name(&node, name);
        Ok((node.id, attr))
    }

    /// Makes a just-created entry the caller's, when the daemon is root and
    /// the caller is not. In a set-group-ID directory the group stays the
    /// directory's, which the backing filesystem already gave it.
    fn give_to(&self, parent: &Node, entry: &str, caller: Caller) -> FsResult<()> {
        if !self.as_root || caller.uid == 0 {
            return Ok(());
        }
        let gid = if parent.stat()?.st_mode & libc::S_ISGID != 0 {
            None
        } else {
            Some(rustix::fs::Gid::from_raw(caller.gid))
        };
        rustix::fs::chownat(
            &parent.fd,
            entry,
            Some(rustix::fs::Uid::from_raw(caller.uid)),
            gid,
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        Ok(())
    }

    pub fn mkdir(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        caller: Caller,
    ) -> FsResult<(u64, Attr)> {
        self.create_entry(parent, name, Some(caller), |p, entry| {
            self.make_dir(p, entry, mode).map(|()| None)
        })
    }

    pub fn mknod(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        rdev: u32,
        caller: Caller,
    ) -> FsResult<(u64, Attr)> {
        self.create_entry(parent, name, Some(caller), |p, entry| {
            let ft = rustix::fs::FileType::from_raw_mode(mode);
            if ft == rustix::fs::FileType::RegularFile {
                let fd = openat(
                    &p.fd,
                    entry,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                    Mode::from_raw_mode(mode & 0o7777),
                )?;
                drop(fd);
                return Ok(None);
            }
            rustix::fs::mknodat(
                &p.fd,
                entry,
                ft,
                Mode::from_raw_mode(mode & 0o7777),
                u64::from(rdev),
            )?;
            Ok(None)
        })
    }

    pub fn symlink(
        &self,
        parent: u64,
        name: &OsStr,
        target: &OsStr,
        caller: Caller,
    ) -> FsResult<(u64, Attr)> {
        self.create_entry(parent, name, Some(caller), |p, entry| {
            self.make_symlink(p, entry, target.as_bytes())
                .map(|()| None)
        })
    }

    pub fn link(&self, id: u64, newparent: u64, newname: &OsStr) -> FsResult<(u64, Attr)> {
        let node = self.node(id)?;
        // Through /proc, as linkat(2) documents for unprivileged callers.
        self.create_entry(newparent, newname, None, |p, entry| {
            rustix::fs::linkat(
                rustix::fs::CWD,
                proc_path(&node),
                &p.fd,
                entry,
                AtFlags::SYMLINK_FOLLOW,
            )?;
            Ok(None)
        })
    }

    /// Creates and opens a regular file. Without O_EXCL, a file of that
    /// name made meanwhile (by another machine: the kernel asked because
    /// its lookup found none) is opened instead, as open(2) would, and
    /// truncated for O_TRUNC; `made` tells which.
    pub fn create(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> FsResult<CreatedFile> {
        let mut created: Option<File> = None;
        let made = self.create_entry(parent, name, Some(caller), |p, entry| {
            let fd = openat(
                &p.fd,
                entry,
                OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode & 0o7777),
            )?;
            // The node's O_PATH descriptor, through the open one's /proc
            // link: the same file, with no lookup by name.
            let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
            let node_fd =
                rustix::fs::open(path.as_str(), OFlags::PATH | OFlags::CLOEXEC, Mode::empty());
            created = Some(File::from(fd));
            Ok(node_fd.ok())
        });
        let (id, attr) = match made {
            Err(e) if e == FsError(libc::EEXIST) && flags & libc::O_EXCL == 0 => {
                let (id, _) = self.lookup(parent, name)?;
                let fh = self.open(id, flags).inspect_err(|_| self.forget(id, 1))?;
                if flags & libc::O_TRUNC != 0 {
                    let set = SetAttr {
                        size: Some(0),
                        ..SetAttr::default()
                    };
                    if let Err(e) = self.setattr(id, Some(fh), set) {
                        self.release(fh);
                        self.forget(id, 1);
                        return Err(e);
                    }
                }
                let attr = self.getattr(id)?;
                return Ok(CreatedFile {
                    id,
                    attr,
                    fh,
                    made: false,
                });
            }
            r => r?,
        };
        let node = self.node(id)?;
        let file = match created {
            Some(f) => f,
            None => self.reopen(&node, flags)?,
        };
        let fh = self.add_handle(Handle::File {
            node,
            file: Arc::new(file),
        });
        Ok(CreatedFile {
            id,
            attr,
            fh,
            made: true,
        })
    }

    pub fn unlink(&self, parent: u64, name: &OsStr) -> FsResult<()> {
        let parent = self.node(parent)?;
        let stored = self.stored_name(&parent, name)?;
        let last = self.last_long_link(&parent, stored.entry(), None);
        rustix::fs::unlinkat(&parent.fd, stored.entry(), AtFlags::empty())?;
        self.drop_companion(&parent, &stored);
        self.drop_long_target(last);
        Ok(())
    }

    pub fn rmdir(&self, parent: u64, name: &OsStr) -> FsResult<()> {
        let parent = self.node(parent)?;
        let stored = self.stored_name(&parent, name)?;
        let entry = stored.entry();
        let emptied = if self.names.is_plaintext() {
            None
        } else {
            Some(self.empty_out(&parent, entry)?)
        };
        if let Err(e) = rustix::fs::unlinkat(&parent.fd, entry, AtFlags::REMOVEDIR) {
            // Something appeared meanwhile: put the same IV back.
            if let Some(emptied) = emptied {
                emptied.restore();
            }
            return Err(e.into());
        }
        self.drop_companion(&parent, &stored);
        Ok(())
    }

    pub fn rename(
        &self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
    ) -> FsResult<()> {
        let (p, np) = (self.node(parent)?, self.node(newparent)?);
        let from = self.stored_name(&p, name)?;
        let to = self.stored_name(&np, newname)?;
        self.write_companion(&np, &to)?;
        let rflags = RenameFlags::from_bits_truncate(flags);
        // rename(2) replaces an empty directory; the backing one still
        // holds its IV, which must go first (and come back on failure).
        let replaced = self.replaceable_dir(&p, from.entry(), &np, to.entry(), rflags);
        // A symlink renamed over loses a name; its long target may go with it.
        let last = (!rflags.contains(RenameFlags::EXCHANGE))
            .then(|| self.last_long_link(&np, to.entry(), Some((&p, from.entry()))))
            .flatten();
        if let Err(e) = rustix::fs::renameat_with(&p.fd, from.entry(), &np.fd, to.entry(), rflags) {
            if let Some(emptied) = replaced {
                emptied.restore();
            }
            self.drop_companion(&np, &to);
            return Err(e.into());
        }
        self.keep_companion(&np, &to)?;
        // After an exchange both names still have entries; otherwise the old one is gone.
        if !rflags.contains(RenameFlags::EXCHANGE) && (p.id != np.id || from != to) {
            self.drop_companion(&p, &from);
        }
        self.drop_long_target(last);
        Ok(())
    }

    /// Opens the backing file of `node` for I/O. Read-write where allowed, as
    /// writes re-encrypt whole sectors and so must read. Only the caller's
    /// durability and atime flags carry over. O_APPEND and O_TRUNC are the
    /// kernel's business (offsets here are plaintext offsets), and so is
    /// O_DIRECT: backing I/O is unaligned by design (the 32-byte header),
    /// which O_DIRECT refuses with EINVAL. O_NOFOLLOW (cp, tar, rsync) was
    /// honoured by the kernel at lookup; on the /proc/self/fd link it would
    /// fail with ELOOP.
    fn reopen(&self, node: &Node, flags: i32) -> FsResult<File> {
        let path = proc_path(node);
        let keep = flags & (libc::O_SYNC | libc::O_DSYNC | libc::O_NOATIME);
        let try_open = |acc: i32| {
            rustix::fs::open(
                path.as_str(),
                OFlags::from_bits_retain((keep | acc) as u32) | OFlags::CLOEXEC,
                Mode::empty(),
            )
        };
        let fd = match try_open(libc::O_RDWR) {
            Ok(fd) => fd,
            Err(_) => try_open(flags & libc::O_ACCMODE)?,
        };
        Ok(File::from(fd))
    }

    pub fn open(&self, id: u64, flags: i32) -> FsResult<u64> {
        let node = self.node(id)?;
        if node.kind != Kind::File {
            return Err(FsError(libc::EISDIR));
        }
        let file = self.reopen(&node, flags)?;
        Ok(self.add_handle(Handle::File {
            node,
            file: Arc::new(file),
        }))
    }

    pub(super) fn file_handle(&self, fh: u64) -> FsResult<Arc<Handle>> {
        let h = self.handle(fh)?;
        match &*h {
            Handle::File { .. } => Ok(h),
            Handle::Dir { .. } => Err(FsError(libc::EISDIR)),
        }
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        let h = self.file_handle(fh)?;
        let Handle::File { node, file } = &*h else {
            return Err(FsError::EBADF);
        };
        self.read_file(node, file, offset, size)
    }

    /// `kill_suidgid`: the kernel asks us to drop set-user/group-ID bits,
    /// as a write by a caller without CAP_FSETID must (FUSE_HANDLE_KILLPRIV_V2:
    /// the daemon runs as root, so the backing filesystem would keep them).
    pub fn write(&self, fh: u64, offset: u64, data: &[u8], kill_suidgid: bool) -> FsResult<u32> {
        let h = self.file_handle(fh)?;
        let Handle::File { node, file } = &*h else {
            return Err(FsError::EBADF);
        };
        let n = self.write_file(node, file, offset, data)?;
        if kill_suidgid {
            self.kill_suidgid(node)?;
        }
        Ok(n)
    }

    /// Clears S_ISUID, and S_ISGID where group execute is set (without it,
    /// S_ISGID means mandatory locking, which stays), as the kernel does.
    fn kill_suidgid(&self, node: &Node) -> FsResult<()> {
        let mode = node.stat()?.st_mode;
        let mut kept = mode & !libc::S_ISUID;
        if mode & libc::S_IXGRP != 0 {
            kept &= !libc::S_ISGID;
        }
        if kept != mode {
            rustix::fs::chmodat(
                rustix::fs::CWD,
                proc_path(node),
                Mode::from_raw_mode(kept & 0o7777),
                AtFlags::empty(),
            )?;
        }
        Ok(())
    }

    pub fn fsync(&self, fh: u64, datasync: bool) -> FsResult<()> {
        let h = self.handle(fh)?;
        match &*h {
            Handle::File { file, .. } if datasync => file.sync_data()?,
            Handle::File { file, .. } => file.sync_all()?,
            Handle::Dir { node, .. } => rustix::fs::fsync(openat(
                &node.fd,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?)?,
        }
        Ok(())
    }

    pub fn statfs(&self) -> FsResult<StatFs> {
        let root = self.node(super::ROOT_ID)?;
        let s = rustix::fs::fstatvfs(&root.fd)?;
        Ok(StatFs {
            blocks: s.f_blocks,
            bfree: s.f_bfree,
            bavail: s.f_bavail,
            files: s.f_files,
            ffree: s.f_ffree,
            bsize: s.f_bsize as u32,
            // The longest plaintext name; longer encodings become long names.
            namelen: crate::names::NAME_MAX as u32,
            frsize: s.f_frsize as u32,
        })
    }
}
