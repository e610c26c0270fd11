//! Directories: their name IV, the stored form of a name, long-name
//! companion files, listing with names decrypted, and creating a directory
//! complete with its IV before it becomes visible.

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, Mutex};

use rustix::fs::{openat, renameat, renameat_with, Dir, Mode, OFlags, RenameFlags};

use super::error::{FsError, FsResult};
use super::node::{Kind, Node};
use super::{Attr, CipherFs, Handle};
use crate::crashpoint;
use crate::names::{
    is_internal, parse_long_name, StoredName, DIRIV_LEN, DIRIV_NAME, LONGNAME_MAX, LONGNAME_PREFIX,
    LONGNAME_SUFFIX, LONGNAME_TMP_PREFIX, MKDIR_TMP_PREFIX,
};
use crate::untrusted;

/// How often, and how long each time, a missing directory IV is waited
/// for on shared storage before the directory gives EIO.
const IV_WAITS: u32 = 20;
const IV_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// One entry of a plaintext listing.
#[derive(Clone, Debug)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub ino: u64,
    pub kind: Kind,
    /// The entry's name in the cipher directory.
    stored: String,
}

/// Entries, each with the offset of the one after it.
type Listing = Vec<(u64, DirEntry)>;

/// A directory about to be removed or replaced, with its IV taken out: the
/// IV is kept, if it read as one, to be put back should that fail.
pub(super) struct Emptied {
    fd: OwnedFd,
    iv: Option<[u8; DIRIV_LEN]>,
}

impl Emptied {
    /// Puts the IV back (the operation failed: the directory stays).
    /// Only an IV that was read as one is written, never other bytes.
    pub(super) fn restore(self) {
        if let Some(iv) = self.iv {
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
            if let Ok(fd) = openat(&self.fd, DIRIV_NAME, flags, Mode::from_raw_mode(0o444)) {
                let _ = std::fs::File::from(fd).write_all(&iv);
            }
        }
    }
}

impl CipherFs {
    /// The directory's name IV, read from its `cipherfs.diriv` once.
    pub(super) fn diriv(&self, dir: &Node) -> FsResult<[u8; DIRIV_LEN]> {
        if let Some(iv) = dir.diriv.get() {
            return Ok(*iv);
        }
        if self.names.is_plaintext() {
            return Ok([0; DIRIV_LEN]);
        }
        let iv = match self.read_diriv(dir) {
            Ok(iv) => iv,
            Err(e) => {
                log::warn!(
                    "{}/{DIRIV_NAME}: {e}; names in this directory cannot be used",
                    self.describe(dir)
                );
                return Err(FsError::EIO);
            }
        };
        Ok(*dir.diriv.get_or_init(|| iv))
    }

    /// Reads a directory's IV. cipherfs never shows a directory without
    /// its IV, but on shared storage another program may make one IV-first
    /// or a client may list a directory before its files: a missing IV is
    /// waited for there, for a second at most, before EIO.
    fn read_diriv(&self, dir: &Node) -> Result<[u8; DIRIV_LEN], untrusted::UntrustedError> {
        let tries = if self.is_shared() { IV_WAITS } else { 0 };
        for _ in 0..tries {
            match untrusted::read_exact::<DIRIV_LEN>(&dir.fd, DIRIV_NAME) {
                Err(untrusted::UntrustedError::Os(rustix::io::Errno::NOENT)) => {
                    std::thread::sleep(IV_WAIT);
                }
                r => return r,
            }
        }
        untrusted::read_exact::<DIRIV_LEN>(&dir.fd, DIRIV_NAME)
    }

    /// Takes the IV out of directory `entry` of `parent`, if it holds
    /// nothing else (ENOTEMPTY if it does). Whatever stands under the IV's
    /// name is removed, but only a regular file of exactly 16 bytes is kept.
    pub(super) fn empty_out(&self, parent: &Node, entry: &str) -> FsResult<Emptied> {
        let fd = openat(
            &parent.fd,
            entry,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let iv = untrusted::read_exact::<DIRIV_LEN>(&fd, DIRIV_NAME).ok();
        let visible = Dir::read_from(&fd)?
            .filter_map(Result::ok)
            .any(|e| !matches!(e.file_name().to_bytes(), b"." | b".." | b"cipherfs.diriv"));
        if visible {
            return Err(FsError(libc::ENOTEMPTY));
        }
        let _ = rustix::fs::unlinkat(&fd, DIRIV_NAME, rustix::fs::AtFlags::empty());
        Ok(Emptied { fd, iv })
    }

    /// For a rename of directory `src` (in `sdir`) over `dst` (in `ddir`):
    /// `dst` emptied of its IV when it is an empty directory that the rename
    /// replaces. `None` when there is nothing to do, or when the rename will
    /// fail anyway (a non-empty or non-directory target, NOREPLACE, EXCHANGE,
    /// a file onto a directory, the same directory), so the target is left
    /// exactly as it was.
    pub(super) fn replaceable_dir(
        &self,
        sdir: &Node,
        src: &str,
        ddir: &Node,
        dst: &str,
        flags: RenameFlags,
    ) -> Option<Emptied> {
        use rustix::fs::{statat, AtFlags, FileType};
        if self.names.is_plaintext()
            || flags.intersects(RenameFlags::NOREPLACE | RenameFlags::EXCHANGE)
        {
            return None;
        }
        let is_dir =
            |st: &rustix::fs::Stat| FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        let t = statat(&ddir.fd, dst, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        let s = statat(&sdir.fd, src, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        if !is_dir(&t) || !is_dir(&s) || (s.st_dev, s.st_ino) == (t.st_dev, t.st_ino) {
            return None;
        }
        self.empty_out(ddir, dst).ok()
    }

    /// How `name` is stored in `dir`.
    pub(super) fn stored_name(&self, dir: &Node, name: &OsStr) -> FsResult<StoredName> {
        let iv = self.diriv(dir)?;
        Ok(self.names.encrypt(name.as_bytes(), &iv)?)
    }

    /// Writes a long name's companion before its entry is created: to a
    /// temporary name, renamed into place. Its content follows from the
    /// name, so replacing one that another machine just wrote for the same
    /// name changes nothing, and no one ever reads half of one.
    pub(super) fn write_companion(&self, dir: &Node, stored: &StoredName) -> FsResult<()> {
        let StoredName::Long { short, full } = stored else {
            return Ok(());
        };
        let companion = format!("{short}{LONGNAME_SUFFIX}");
        let tmp = format!(
            "{LONGNAME_TMP_PREFIX}{:016x}",
            u64::from_le_bytes(crate::crypto::random_array().map_err(|_| FsError::EIO)?)
        );
        let written = (|| -> FsResult<()> {
            let mut f = untrusted::create_regular(&dir.fd, tmp.as_str(), 0o400).map_err(|e| {
                log::warn!("{}/{tmp}: {e}", self.describe(dir));
                FsError(e.errno())
            })?;
            f.write_all(full.as_bytes())?;
            f.sync_all()?;
            crashpoint::at("longname-wrote-temp");
            renameat(&dir.fd, tmp.as_str(), &dir.fd, companion.as_str())?;
            Ok(())
        })();
        if written.is_err() {
            let _ = rustix::fs::unlinkat(&dir.fd, tmp.as_str(), rustix::fs::AtFlags::empty());
        }
        written?;
        crashpoint::at("longname-wrote-companion");
        Ok(())
    }

    /// After a long-named entry was made: its companion is there. Another
    /// machine removing the same name may have taken it away between the
    /// two steps (see `drop_companion`); it is written again then.
    pub(super) fn keep_companion(&self, dir: &Node, stored: &StoredName) -> FsResult<()> {
        match stored {
            StoredName::Long { short, .. }
                if !self.entry_exists(dir, &format!("{short}{LONGNAME_SUFFIX}")) =>
            {
                self.write_companion(dir, stored)
            }
            _ => Ok(()),
        }
    }

    /// Removes a long name's companion once its entry is gone, and only
    /// then: should the entry be there again (made meanwhile, by another
    /// machine), the companion is put back. With `keep_companion` on the
    /// making side, whichever step comes last leaves entry and companion
    /// agreeing.
    pub(super) fn drop_companion(&self, dir: &Node, stored: &StoredName) {
        if let StoredName::Long { short, .. } = stored {
            if self.entry_exists(dir, stored.entry()) {
                return;
            }
            let _ = rustix::fs::unlinkat(
                &dir.fd,
                format!("{short}{LONGNAME_SUFFIX}"),
                rustix::fs::AtFlags::empty(),
            );
            if self.entry_exists(dir, stored.entry()) {
                let _ = self.write_companion(dir, stored);
            }
        }
    }

    pub(super) fn entry_exists(&self, dir: &Node, entry: &str) -> bool {
        rustix::fs::statat(&dir.fd, entry, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// The encoded name behind a directory entry: the entry itself, or for a
    /// long name its companion's content (checked against the entry's hash).
    fn encoded_name(&self, dir: &Node, entry: &str) -> Result<String, String> {
        if !entry.starts_with(LONGNAME_PREFIX) {
            return Ok(entry.to_string());
        }
        let companion = format!("{entry}{LONGNAME_SUFFIX}");
        let full = untrusted::read_bounded(&dir.fd, companion.as_str(), LONGNAME_MAX)
            .map_err(|e| format!("its {LONGNAME_SUFFIX} companion {e}"))?;
        parse_long_name(&full, entry)
    }

    /// The plaintext listing of `dir`. Entries whose names do not decrypt are
    /// skipped with a warning naming their cipher path.
    pub(super) fn list(&self, dir: &Node) -> FsResult<Vec<DirEntry>> {
        // One stack wipe for the whole listing, however it ends: see
        // NameCipher::decrypt_in_listing.
        let _wipe = crate::crypto::WipeStackOnDrop;
        let iv = self.diriv(dir)?;
        let fd = openat(
            &dir.fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut out = Vec::new();
        for entry in Dir::read_from(&fd)? {
            let entry = entry?;
            let raw = entry.file_name().to_bytes();
            if raw == b"." || raw == b".." {
                continue;
            }
            let Ok(cname) = std::str::from_utf8(raw) else {
                self.warn_entry(
                    dir,
                    &String::from_utf8_lossy(raw),
                    "not a cipherfs name (not UTF-8)",
                );
                continue;
            };
            if is_internal(cname) {
                continue;
            }
            let name = self.encoded_name(dir, cname).and_then(|enc| {
                self.names
                    .decrypt_in_listing(&enc, &iv)
                    .map_err(|e| e.to_string())
            });
            match name {
                Ok(name) => out.push(DirEntry {
                    name,
                    stored: cname.to_string(),
                    ino: entry.ino(),
                    kind: match entry.file_type() {
                        rustix::fs::FileType::Directory => Kind::Dir,
                        rustix::fs::FileType::RegularFile => Kind::File,
                        rustix::fs::FileType::Symlink => Kind::Symlink,
                        _ => Kind::Other,
                    },
                }),
                Err(why) => self.warn_entry(dir, cname, &why),
            }
        }
        Ok(out)
    }

    pub fn opendir(&self, id: u64) -> FsResult<u64> {
        let node = self.node(id)?;
        if node.kind != Kind::Dir {
            return Err(FsError(libc::ENOTDIR));
        }
        Ok(self.add_handle(Handle::Dir {
            node,
            entries: Mutex::new(None),
        }))
    }

    /// The listing behind an open directory handle, from `offset` on; offset
    /// 0 lists afresh, later calls continue the same listing.
    fn listing(&self, fh: u64, offset: u64) -> FsResult<(Arc<Node>, Listing)> {
        let h = self.handle(fh)?;
        let Handle::Dir { node, entries } = &*h else {
            return Err(FsError(libc::ENOTDIR));
        };
        let mut cached = entries.lock().unwrap_or_else(|e| e.into_inner());
        if offset == 0 || cached.is_none() {
            // The directory's own id, as its st_ino shows (1 for the root).
            let dot = |name: &str| DirEntry {
                name: name.as_bytes().to_vec(),
                stored: name.to_string(),
                ino: node.id,
                kind: Kind::Dir,
            };
            let mut list = vec![dot("."), dot("..")];
            list.extend(self.list(node)?);
            *cached = Some(list);
        }
        let list = cached.as_ref().map(|l| l.as_slice()).unwrap_or_default();
        let rest = list
            .iter()
            .enumerate()
            .skip(offset as usize)
            .map(|(i, e)| (i as u64 + 1, e.clone()))
            .collect();
        Ok((Arc::clone(node), rest))
    }

    /// Entries from `offset` on; each is returned with the offset of the next.
    pub fn readdir(&self, fh: u64, offset: u64) -> FsResult<Listing> {
        Ok(self.listing(fh, offset)?.1)
    }

    /// READDIRPLUS: entries from `offset` on, each looked up as LOOKUP would
    /// (one kernel reference each), so that `ls -l` or `find` need no request
    /// per name. `add(next_offset, entry, node id, attributes)` returns false
    /// once the reply is full; the entry it refused is not counted. `.` and
    /// `..` carry the directory's own attributes and are not counted (the
    /// kernel does not link them). Entries gone since the listing, and
    /// entries whose attributes cannot be had, are left out.
    pub fn readdirplus(
        &self,
        fh: u64,
        offset: u64,
        mut add: impl FnMut(u64, &DirEntry, u64, &Attr) -> bool,
    ) -> FsResult<()> {
        let (dir, entries) = self.listing(fh, offset)?;
        for (next, e) in entries {
            if e.stored == "." || e.stored == ".." {
                let attr = self.attr(&dir, &dir.stat()?)?;
                if !add(next, &e, dir.id, &attr) {
                    break;
                }
                continue;
            }
            let (node, attr) = match self.enter(&dir, &e.stored) {
                Ok(found) => found,
                Err(err) if err == FsError::ENOENT => continue,
                // One damaged entry (an impossible size, say) must not fail
                // the whole listing; named, it gives its error. (An entry
                // without attributes would show with inode 0, which glibc's
                // readdir skips anyway.)
                Err(err) => {
                    self.warn_entry(
                        &dir,
                        &e.stored,
                        &format!("left out of the listing: {err:?}"),
                    );
                    continue;
                }
            };
            self.note_name(&node, OsStr::from_bytes(&e.name));
            if !add(next, &e, node.id, &attr) {
                self.nodes.forget(node.id, 1);
                break;
            }
        }
        Ok(())
    }

    fn warn_entry(&self, dir: &Node, cname: &str, why: &str) {
        log::warn!("{}/{cname}: skipped: {why}", self.describe(dir));
    }

    /// Creates directory `entry` in `parent` with its IV inside, under a
    /// temporary name first, so no crash leaves a directory without its IV.
    pub(super) fn make_dir(&self, parent: &Node, entry: &str, mode: u32) -> FsResult<()> {
        let tmp = format!(
            "{MKDIR_TMP_PREFIX}{:016x}",
            u64::from_le_bytes(crate::crypto::random_array().map_err(|_| FsError::EIO)?)
        );
        rustix::fs::mkdirat(&parent.fd, tmp.as_str(), Mode::from_raw_mode(0o700))?;
        crashpoint::at("mkdir-made-temp");
        let result = (|| -> FsResult<()> {
            if !self.names.is_plaintext() {
                let dfd = openat(
                    &parent.fd,
                    tmp.as_str(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                write_diriv(&dfd)?;
                crashpoint::at("mkdir-wrote-iv");
            }
            // A set-group-ID parent passes the bit on, as mkdir(2) does.
            let inherit = parent.stat()?.st_mode & libc::S_ISGID;
            rustix::fs::chmodat(
                &parent.fd,
                tmp.as_str(),
                Mode::from_raw_mode(mode & 0o7777 | inherit),
                rustix::fs::AtFlags::empty(),
            )?;
            crashpoint::at("mkdir-set-mode");
            if !self.rename_new_dir(parent, &tmp, entry)? {
                let _ =
                    rustix::fs::unlinkat(&parent.fd, tmp.as_str(), rustix::fs::AtFlags::REMOVEDIR);
            }
            crashpoint::at("mkdir-renamed");
            Ok(())
        })();
        if result.is_err() {
            let _ = rustix::fs::unlinkat(
                &parent.fd,
                format!("{tmp}/{DIRIV_NAME}"),
                rustix::fs::AtFlags::empty(),
            );
            let _ = rustix::fs::unlinkat(&parent.fd, tmp.as_str(), rustix::fs::AtFlags::REMOVEDIR);
        }
        result
    }
}

impl CipherFs {
    /// Renames a complete new directory into place, unless `entry` exists
    /// (EEXIST). Where the backing filesystem refuses RENAME_NOREPLACE
    /// (GlusterFS's FUSE client: EINVAL; some NFS servers: ENOSYS), a plain
    /// rename does the same: a directory cannot replace a non-directory
    /// (ENOTDIR, EISDIR), nor one that holds anything (ENOTEMPTY, EEXIST),
    /// and every directory cipherfs makes holds its IV from the start.
    /// Plaintext names have no IV, so there the directory is made in place
    /// with the temporary one's mode, and false says the temporary one is
    /// left to remove.
    fn rename_new_dir(&self, parent: &Node, tmp: &str, entry: &str) -> FsResult<bool> {
        use std::sync::atomic::Ordering;
        if !self.no_noreplace.load(Ordering::Relaxed) {
            match renameat_with(&parent.fd, tmp, &parent.fd, entry, RenameFlags::NOREPLACE) {
                Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                    log::info!(
                        "{}: the backing filesystem refuses RENAME_NOREPLACE; mkdir renames \
                         without it",
                        self.describe(parent)
                    );
                    self.no_noreplace.store(true, Ordering::Relaxed);
                }
                r => return Ok(r.map(|()| true)?),
            }
        }
        if self.names.is_plaintext() {
            let mode = rustix::fs::statat(&parent.fd, tmp, rustix::fs::AtFlags::empty())?.st_mode;
            rustix::fs::mkdirat(&parent.fd, entry, Mode::from_raw_mode(0o700))?;
            rustix::fs::chmodat(
                &parent.fd,
                entry,
                Mode::from_raw_mode(mode & 0o7777),
                rustix::fs::AtFlags::empty(),
            )?;
            return Ok(false);
        }
        match renameat(&parent.fd, tmp, &parent.fd, entry) {
            Err(
                rustix::io::Errno::NOTDIR
                | rustix::io::Errno::ISDIR
                | rustix::io::Errno::NOTEMPTY
                | rustix::io::Errno::EXIST,
            ) => Err(FsError(libc::EEXIST)),
            r => Ok(r.map(|()| true)?),
        }
    }
}

/// Writes a fresh random IV into the directory `dfd` and makes it durable.
pub fn write_diriv(dfd: &impl std::os::fd::AsFd) -> FsResult<()> {
    let iv: [u8; DIRIV_LEN] = crate::crypto::random_array().map_err(|_| FsError::EIO)?;
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
    let mut f = std::fs::File::from(openat(dfd, DIRIV_NAME, flags, Mode::from_raw_mode(0o444))?);
    f.write_all(&iv)?;
    f.sync_all()?;
    rustix::fs::fsync(dfd)?;
    Ok(())
}
