//! The one way cipherfs opens its own files in a cipher directory (the
//! config, every `cipherfs.diriv`, long-name companions, and what fsck
//! reads). Whoever can write the storage can put anything under those
//! names: a symlink out of the directory, a FIFO that blocks `open` for
//! ever, a device, a directory, or a file of any size. So each open is
//! `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC` (a link is refused, a FIFO opens
//! without waiting for a writer), the result is `fstat`-checked to be a
//! regular file before a byte is read, and reads stop at a fixed bound
//! whatever the file's size says.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;

use rustix::fs::{fstat, openat, FileType, Mode, OFlags};
use rustix::io::Errno;
use rustix::path::Arg;

/// Why a file of cipherfs's own in the cipher directory cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UntrustedError {
    #[error("{0}")]
    Os(Errno),
    #[error("is a symbolic link, not a regular file")]
    Symlink,
    #[error("is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("is {len} bytes, more than the {max} allowed")]
    TooLong { len: u64, max: usize },
    #[error("is {len} bytes, not {want}")]
    WrongLength { len: usize, want: usize },
}

impl UntrustedError {
    /// The errno for the plaintext view: the backing error where there was
    /// one (ENOENT stays ENOENT, EACCES stays EACCES), EIO for a file that
    /// is there but is not what cipherfs wrote.
    pub fn errno(&self) -> i32 {
        match self {
            UntrustedError::Os(e) => e.raw_os_error(),
            _ => libc::EIO,
        }
    }
}

impl From<UntrustedError> for std::io::Error {
    fn from(e: UntrustedError) -> Self {
        match e {
            UntrustedError::Os(errno) => errno.into(),
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

fn kind_name(ft: FileType) -> &'static str {
    match ft {
        FileType::Directory => "a directory",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Symlink => "a symbolic link",
        _ => "not a regular file",
    }
}

const READ: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::CLOEXEC);

/// Opens `name` in the directory `dir` for reading, only if it is a regular
/// file. Never blocks, never follows a link.
pub fn open_regular(dir: impl AsFd, name: impl Arg) -> Result<File, UntrustedError> {
    open_checked(dir, name, READ, Mode::empty())
}

/// Opens (creating with `mode` if absent) `name` in `dir` for writing and
/// empties it, only if it is a regular file: an existing FIFO, device or
/// link in its place is refused, not written to or truncated.
pub fn create_regular(dir: impl AsFd, name: impl Arg, mode: u32) -> Result<File, UntrustedError> {
    let flags =
        OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let f = open_checked(dir, name, flags, Mode::from_raw_mode(mode))?;
    rustix::fs::ftruncate(&f, 0).map_err(UntrustedError::Os)?;
    Ok(f)
}

fn open_checked(
    dir: impl AsFd,
    name: impl Arg,
    flags: OFlags,
    mode: Mode,
) -> Result<File, UntrustedError> {
    let fd = openat(dir, name, flags, mode).map_err(|e| match e {
        // O_NOFOLLOW on a symlink: ELOOP, which would read as a loop.
        Errno::LOOP => UntrustedError::Symlink,
        // O_WRONLY|O_NONBLOCK on a FIFO without a reader.
        Errno::NXIO => UntrustedError::NotRegular("a FIFO or socket"),
        e => UntrustedError::Os(e),
    })?;
    let st = fstat(&fd).map_err(UntrustedError::Os)?;
    let ft = FileType::from_raw_mode(st.st_mode);
    if ft != FileType::RegularFile {
        return Err(UntrustedError::NotRegular(kind_name(ft)));
    }
    Ok(File::from(fd))
}

/// The whole of regular file `name` in `dir`, refused if longer than `max`
/// bytes; no more than `max + 1` bytes are ever read, whatever its size.
pub fn read_bounded(dir: impl AsFd, name: impl Arg, max: usize) -> Result<Vec<u8>, UntrustedError> {
    let f = open_regular(dir, name)?;
    read_bounded_from(f, max)
}

/// As `read_bounded`, from a file already checked to be regular.
pub fn read_bounded_from(f: File, max: usize) -> Result<Vec<u8>, UntrustedError> {
    let size = fstat(&f).map_or(0, |st| st.st_size as u64);
    let mut out = Vec::with_capacity(max.min(64 * 1024) + 1);
    f.take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| UntrustedError::Os(Errno::from_io_error(&e).unwrap_or(Errno::IO)))?;
    if out.len() > max {
        return Err(UntrustedError::TooLong {
            len: size.max(out.len() as u64),
            max,
        });
    }
    Ok(out)
}

/// Regular file `name` in `dir`, which must hold exactly `N` bytes.
pub fn read_exact<const N: usize>(
    dir: impl AsFd,
    name: impl Arg,
) -> Result<[u8; N], UntrustedError> {
    let v = read_bounded(dir, name, N)?;
    v.as_slice()
        .try_into()
        .map_err(|_| UntrustedError::WrongLength {
            len: v.len(),
            want: N,
        })
}

/// Opens a directory the user named (a cipher directory on the command
/// line), following links in that path: it is the user's choice, not the
/// storage's. What is inside is then reached only through the helpers above.
pub fn open_dir(path: &std::path::Path) -> Result<std::os::fd::OwnedFd, UntrustedError> {
    openat(
        rustix::fs::CWD,
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(UntrustedError::Os)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir() -> (tempdir::Dir, std::os::fd::OwnedFd) {
        let d = tempdir::Dir::new();
        let fd = open_dir(d.path()).unwrap();
        (d, fd)
    }

    mod tempdir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "cipherfs-untrusted-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn a_regular_file_is_read_within_its_bound() {
        let (d, fd) = dir();
        std::fs::write(d.path().join("f"), [7u8; 16]).unwrap();
        assert_eq!(read_exact::<16>(&fd, "f").unwrap(), [7u8; 16]);
        assert_eq!(
            read_exact::<17>(&fd, "f"),
            Err(UntrustedError::WrongLength { len: 16, want: 17 })
        );
        assert_eq!(
            read_exact::<15>(&fd, "f"),
            Err(UntrustedError::TooLong { len: 16, max: 15 })
        );
        assert_eq!(read_bounded(&fd, "f", 100).unwrap().len(), 16);
        assert_eq!(
            read_bounded(&fd, "missing", 100).unwrap_err().errno(),
            libc::ENOENT
        );
    }

    #[test]
    fn links_fifos_devices_and_directories_are_refused_without_blocking() {
        let (d, fd) = dir();
        let p = d.path();
        std::os::unix::fs::symlink("/etc/hostname", p.join("link")).unwrap();
        rustix::fs::mknodat(&fd, "fifo", FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        std::fs::create_dir(p.join("dir")).unwrap();
        assert_eq!(read_bounded(&fd, "link", 10), Err(UntrustedError::Symlink));
        assert_eq!(
            read_bounded(&fd, "fifo", 10),
            Err(UntrustedError::NotRegular("a FIFO"))
        );
        assert_eq!(
            read_bounded(&fd, "dir", 10),
            Err(UntrustedError::NotRegular("a directory"))
        );
        // Writing: a FIFO without a reader fails at once, and nothing is created through a link.
        assert!(create_regular(&fd, "fifo", 0o400).is_err());
        assert_eq!(
            create_regular(&fd, "link", 0o400).unwrap_err(),
            UntrustedError::Symlink
        );
        if rustix::process::geteuid().is_root() {
            rustix::fs::mknodat(
                &fd,
                "zero",
                FileType::CharacterDevice,
                Mode::from_raw_mode(0o600),
                rustix::fs::makedev(1, 5),
            )
            .unwrap();
            assert_eq!(
                read_bounded(&fd, "zero", 10),
                Err(UntrustedError::NotRegular("a character device"))
            );
        }
    }

    #[test]
    fn a_huge_file_costs_only_the_bound() {
        let (d, fd) = dir();
        let f = std::fs::File::create(d.path().join("big")).unwrap();
        f.set_len(1 << 30).unwrap();
        assert_eq!(
            read_bounded(&fd, "big", 4096),
            Err(UntrustedError::TooLong {
                len: 1 << 30,
                max: 4096
            })
        );
        let created = create_regular(&fd, "new", 0o400).unwrap();
        let mode = created.metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o400);
    }
}
