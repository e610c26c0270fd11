//! The filesystem layer's error: an errno for the kernel. Every lower layer's
//! error is converted once, here; what is logged is decided where it happens.

use std::fmt;

use crate::content::ContentError;
use crate::names::NameError;

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FsError(pub i32);

pub type FsResult<T> = Result<T, FsError>;

impl FsError {
    pub const EIO: FsError = FsError(libc::EIO);
    pub const ENOENT: FsError = FsError(libc::ENOENT);
    pub const EINVAL: FsError = FsError(libc::EINVAL);
    pub const EBADF: FsError = FsError(libc::EBADF);
    pub const EPERM: FsError = FsError(libc::EPERM);
    pub const ENAMETOOLONG: FsError = FsError(libc::ENAMETOOLONG);
    pub const EOPNOTSUPP: FsError = FsError(libc::EOPNOTSUPP);
}

impl fmt::Debug for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", std::io::Error::from_raw_os_error(self.0))
    }
}

impl From<rustix::io::Errno> for FsError {
    fn from(e: rustix::io::Errno) -> Self {
        FsError(e.raw_os_error())
    }
}

impl From<std::io::Error> for FsError {
    fn from(e: std::io::Error) -> Self {
        FsError(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

impl From<NameError> for FsError {
    fn from(e: NameError) -> Self {
        FsError(e.errno())
    }
}

impl From<ContentError> for FsError {
    fn from(e: ContentError) -> Self {
        match e {
            ContentError::Cipher(c) => FsError(c.errno()),
            _ => FsError::EIO,
        }
    }
}
