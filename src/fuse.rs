//! The only module that speaks fuser: each kernel request becomes one call
//! into the filesystem core, and its result becomes the reply. Nothing here
//! decides anything about encryption.

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    Request, TimeOrNow, WriteFlags,
};

use crate::fs::{Attr, Caller, CipherFs, FsError, Kind, SetAttr, SetTime};
use fuser::ReplyXattr;

/// How long the kernel may cache attributes and names: short, so changes
/// made to the cipher directory underneath show up within a second; not at
/// all on shared storage, where another machine's change must show at the
/// next call. (Negative entries are never cached: a missing name is an
/// ENOENT reply, not an entry with node id 0.)
const TTL: Duration = Duration::from_secs(1);
const SHARED_TTL: Duration = Duration::ZERO;

pub struct FuseAdapter {
    fs: CipherFs,
    xattrs: bool,
}

impl FuseAdapter {
    pub fn new(fs: CipherFs) -> Self {
        Self { fs, xattrs: true }
    }

    fn ttl(&self) -> &'static Duration {
        if self.fs.is_shared() {
            &SHARED_TTL
        } else {
            &TTL
        }
    }

    /// Answers every xattr request with ENOSYS, after which the kernel stops
    /// sending them: `ls -l` alone asks for two per file (SELinux label and
    /// ACL), each a round trip to the daemon.
    pub fn without_xattrs(mut self) -> Self {
        self.xattrs = false;
        self
    }
}

fn errno(e: FsError) -> Errno {
    Errno::from_i32(e.0)
}

fn kind(k: Kind) -> FileType {
    match k {
        Kind::Dir => FileType::Directory,
        Kind::File => FileType::RegularFile,
        Kind::Symlink => FileType::Symlink,
        Kind::Other => FileType::NamedPipe,
    }
}

fn file_attr(a: &Attr, special: Option<FileType>) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: a.atime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.ctime,
        kind: special.unwrap_or_else(|| kind(a.kind)),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: a.blksize,
        flags: 0,
    }
}

/// The exact type of a special file, from its mode (Kind lumps them together).
fn special_type(mode: u32) -> Option<FileType> {
    match mode & libc::S_IFMT {
        libc::S_IFIFO => Some(FileType::NamedPipe),
        libc::S_IFSOCK => Some(FileType::Socket),
        libc::S_IFCHR => Some(FileType::CharDevice),
        libc::S_IFBLK => Some(FileType::BlockDevice),
        _ => None,
    }
}

impl FuseAdapter {
    /// FUSE's node id is ours; the kernel shows `attr.ino` (the backing
    /// inode) as st_ino.
    fn reply_entry(&self, r: Result<(u64, Attr), FsError>, reply: ReplyEntry) {
        match r {
            Ok((id, attr)) => {
                let mut fa = file_attr(&attr, None);
                if attr.kind == Kind::Other {
                    fa.kind = self.special_kind(id).unwrap_or(fa.kind);
                }
                fa.ino = INodeNo(id);
                reply.entry(self.ttl(), &fa, Generation(0));
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn special_kind(&self, id: u64) -> Option<FileType> {
        self.fs.raw_mode(id).ok().and_then(special_type)
    }

    fn reply_attr(&self, id: u64, r: Result<Attr, FsError>, reply: ReplyAttr) {
        match r {
            Ok(attr) => {
                let mut fa = file_attr(&attr, None);
                if attr.kind == Kind::Other {
                    fa.kind = self.special_kind(id).unwrap_or(fa.kind);
                }
                fa.ino = INodeNo(id);
                reply.attr(self.ttl(), &fa);
            }
            Err(e) => reply.error(errno(e)),
        }
    }
}

fn reply_data(r: Result<Vec<u8>, FsError>, reply: ReplyData) {
    match r {
        Ok(d) => reply.data(&d),
        Err(e) => reply.error(errno(e)),
    }
}

fn reply_empty(r: Result<(), FsError>, reply: ReplyEmpty) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(e)),
    }
}

/// FUSE's two-step xattr reply: size 0 asks for the length only.
fn reply_xattr(r: Result<Vec<u8>, FsError>, size: u32, reply: ReplyXattr) {
    match r {
        Ok(v) if size == 0 => reply.size(v.len() as u32),
        Ok(v) if v.len() <= size as usize => reply.data(&v),
        Ok(_) => reply.error(Errno::ERANGE),
        Err(e) => reply.error(errno(e)),
    }
}

fn caller(req: &Request) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
    }
}

fn set_time(t: Option<TimeOrNow>) -> Option<SetTime> {
    t.map(|t| match t {
        TimeOrNow::Now => SetTime::Now,
        TimeOrNow::SpecificTime(s) => SetTime::At(s),
    })
}

impl Filesystem for FuseAdapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Large requests mean fewer round trips; the kernel caps what it takes.
        let _ = config.set_max_write(1024 * 1024);
        let _ = config.set_max_readahead(1024 * 1024);
        // Each is worth a request per file or more (see the README's
        // performance section); a kernel without one simply does without.
        for cap in [
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_READDIRPLUS_AUTO,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_HANDLE_KILLPRIV_V2,
        ] {
            if config.add_capabilities(cap).is_err() {
                log::debug!("the kernel does not offer {cap:?}");
            }
        }
        if self.fs.is_shared() {
            // The page cache of a file is dropped on open (no
            // FOPEN_KEEP_CACHE), and with this also whenever a getattr (at
            // every read, with no attribute caching) finds its size or mtime
            // changed by another machine.
            if let Err(missing) = config.add_capabilities(InitFlags::FUSE_AUTO_INVAL_DATA) {
                log::warn!("the kernel does not offer {missing:?}: an open file may show another machine's writes late");
            }
        }
        if self.fs.acl_enabled() {
            // The kernel enforces ACLs (with its own permission checks), and
            // leaves the umask to the daemon, which skips it where a default
            // ACL applies.
            let acl = InitFlags::FUSE_POSIX_ACL | InitFlags::FUSE_DONT_MASK;
            if let Err(missing) = config.add_capabilities(acl) {
                log::error!("the kernel does not offer {missing:?}: --acl cannot work");
                return Err(std::io::Error::from_raw_os_error(libc::ENOSYS));
            }
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.reply_entry(self.fs.lookup(parent.0, name), reply);
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.reply_attr(ino.0, self.fs.getattr(ino.0), reply);
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: set_time(atime),
            mtime: set_time(mtime),
            // FUSE_HANDLE_KILLPRIV_V2 makes this ours; fuser does not pass
            // FATTR_KILL_SUIDGID, so root stands for CAP_FSETID.
            kill_suidgid: size.is_some() && req.uid() != 0,
        };
        self.reply_attr(ino.0, self.fs.setattr(ino.0, fh.map(|f| f.0), set), reply);
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        reply_data(self.fs.readlink(ino.0), reply);
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let r = self
            .fs
            .creation_mode(parent.0, mode, umask, false)
            .and_then(|(mode, inherited)| {
                let made = self.fs.mknod(parent.0, name, mode, rdev, caller(req))?;
                self.fs.inherit(made.0, inherited)?;
                Ok(made)
            });
        self.reply_entry(r, reply);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let r = self
            .fs
            .creation_mode(parent.0, mode, umask, true)
            .and_then(|(mode, inherited)| {
                let made = self.fs.mkdir(parent.0, name, mode, caller(req))?;
                self.fs.inherit(made.0, inherited)?;
                Ok(made)
            });
        self.reply_entry(r, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(self.fs.unlink(parent.0, name), reply)
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(self.fs.rmdir(parent.0, name), reply)
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        self.reply_entry(
            self.fs
                .symlink(parent.0, link_name, target.as_os_str(), caller(req)),
            reply,
        );
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply_empty(
            self.fs
                .rename(parent.0, name, newparent.0, newname, flags.bits()),
            reply,
        )
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        self.reply_entry(self.fs.link(ino.0, newparent.0, newname), reply);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.fs.open(ino.0, flags.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        reply_data(self.fs.read(fh.0, offset, size), reply);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let kill = write_flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID);
        match self.fs.write(fh.0, offset, data, kill) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Writes go to the backing file as they come; nothing is buffered
        // here. ENOSYS tells the kernel so once, and it stops sending FLUSH
        // on every close.
        reply.error(Errno::ENOSYS);
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.fs.release(fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(self.fs.fsync(fh.0, datasync), reply)
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.fs.opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.fs.readdir(fh.0, offset) {
            Ok(entries) => {
                for (next, e) in entries {
                    let name = <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&e.name);
                    if reply.add(INodeNo(e.ino), next, kind(e.kind), name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let r = self.fs.readdirplus(fh.0, offset, |next, e, id, attr| {
            let name = <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&e.name);
            let mut fa = file_attr(attr, None);
            if attr.kind == Kind::Other {
                fa.kind = self.special_kind(id).unwrap_or(fa.kind);
            }
            fa.ino = INodeNo(id);
            !reply.add(INodeNo(id), next, name, self.ttl(), &fa, Generation(0))
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.release(fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(self.fs.fsync(fh.0, datasync), reply)
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.fs.statfs() {
            Ok(s) => reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let r = self
            .fs
            .creation_mode(parent.0, mode, umask, false)
            .and_then(|(mode, inherited)| {
                let c = self.fs.create(parent.0, name, mode, flags, caller(req))?;
                // A file found there keeps its ACL, as open(2) leaves it.
                if c.made {
                    if let Err(e) = self.fs.inherit(c.id, inherited) {
                        self.fs.release(c.fh);
                        return Err(e);
                    }
                }
                Ok((c.id, c.attr, c.fh))
            });
        match r {
            Ok((id, attr, fh)) => {
                let mut fa = file_attr(&attr, None);
                fa.ino = INodeNo(id);
                reply.created(
                    self.ttl(),
                    &fa,
                    Generation(0),
                    FileHandle(fh),
                    FopenFlags::empty(),
                );
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        if !self.xattrs {
            return reply.error(Errno::ENOSYS);
        }
        reply_empty(self.fs.setxattr(ino.0, name, value, flags), reply)
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        if !self.xattrs {
            return reply.error(Errno::ENOSYS);
        }
        reply_xattr(self.fs.getxattr(ino.0, name), size, reply);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        if !self.xattrs {
            return reply.error(Errno::ENOSYS);
        }
        reply_xattr(self.fs.listxattr(ino.0), size, reply);
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        if !self.xattrs {
            return reply.error(Errno::ENOSYS);
        }
        reply_empty(self.fs.removexattr(ino.0, name), reply)
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        reply_empty(self.fs.fallocate(fh.0, offset, length, mode), reply)
    }
}
