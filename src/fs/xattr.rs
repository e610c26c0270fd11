//! Extended attributes of the plaintext view, stored encrypted (see
//! `names::xattr`). Reached through /proc/self/fd, as xattr calls do not
//! work on the nodes' O_PATH descriptors.

use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

use rustix::fs::XattrFlags;

use super::error::{FsError, FsResult};
use super::node::{Kind, Node};
use super::CipherFs;

fn path(node: &Node) -> String {
    format!("/proc/self/fd/{}", node.fd.as_raw_fd())
}

impl CipherFs {
    fn stored_xattr(&self, name: &OsStr) -> FsResult<String> {
        match self.xattrs.encrypt_name(name.as_bytes()) {
            Ok(Some(s)) => Ok(s),
            // Only user.* is offered; other namespaces are not ours to store.
            Ok(None) => Err(FsError::EOPNOTSUPP),
            Err(e) => Err(FsError(if e.errno() == libc::ENAMETOOLONG {
                libc::ERANGE
            } else {
                libc::EINVAL
            })),
        }
    }

    /// The ACL an xattr name means, with `--acl`.
    fn acl_name(&self, name: &OsStr) -> Option<super::acl::Which> {
        self.acl.then(|| super::acl::Which::of(name)).flatten()
    }

    /// Regular files and directories carry user xattrs; symlinks cannot.
    fn xattr_node(&self, id: u64) -> FsResult<std::sync::Arc<Node>> {
        let node = self.node(id)?;
        match node.kind {
            Kind::File | Kind::Dir => Ok(node),
            _ => Err(FsError::EOPNOTSUPP),
        }
    }

    /// Names outside user.* fail with EOPNOTSUPP, as on a filesystem without
    /// those namespaces: `ls -l` and libacl then stop asking for the SELinux
    /// label and the ACL on this device, saving two requests per file.
    pub fn getxattr(&self, id: u64, name: &OsStr) -> FsResult<Vec<u8>> {
        if let Some(which) = self.acl_name(name) {
            return self.acl_get(&*self.node(id)?, which);
        }
        let node = self.xattr_node(id)?;
        let stored = self.stored_xattr(name)?;
        let p = path(&node);
        let mut raw = vec![0u8; rustix::fs::getxattr_query(p.as_str(), stored.as_str())?];
        let n = rustix::fs::getxattr(p.as_str(), stored.as_str(), &mut raw[..])?;
        raw.truncate(n);
        self.xattrs.decrypt_value(&raw).map_err(|e| {
            log::warn!(
                "{}: xattr value does not decrypt: {e}",
                self.describe(&node)
            );
            FsError::EIO
        })
    }

    pub fn setxattr(&self, id: u64, name: &OsStr, value: &[u8], flags: i32) -> FsResult<()> {
        if let Some(which) = self.acl_name(name) {
            return self.acl_set(&*self.node(id)?, which, value);
        }
        let node = self.xattr_node(id)?;
        let stored = self.stored_xattr(name)?;
        let enc = self
            .xattrs
            .encrypt_value(value)
            .map_err(|_| FsError(libc::E2BIG))?;
        rustix::fs::setxattr(
            path(&node),
            stored.as_str(),
            &enc,
            XattrFlags::from_bits_truncate(flags as u32),
        )?;
        Ok(())
    }

    /// NUL-separated plaintext names; xattrs that are not ours are left out.
    pub fn listxattr(&self, id: u64) -> FsResult<Vec<u8>> {
        let node = self.node(id)?;
        if !matches!(node.kind, Kind::File | Kind::Dir) {
            return Ok(Vec::new());
        }
        let p = path(&node);
        let mut raw = vec![0u8; rustix::fs::listxattr_query(p.as_str())?];
        let n = rustix::fs::listxattr(p.as_str(), &mut raw[..])?;
        raw.truncate(n);
        let mut out = if self.acl {
            self.acl_names(&node)?
        } else {
            Vec::new()
        };
        for stored in raw.split(|&b| b == 0).filter(|s| !s.is_empty()) {
            if let Some(name) = self.xattrs.decrypt_name(stored) {
                out.extend_from_slice(&name);
                out.push(0);
            }
        }
        Ok(out)
    }

    pub fn removexattr(&self, id: u64, name: &OsStr) -> FsResult<()> {
        if let Some(which) = self.acl_name(name) {
            return self.acl_remove(&*self.node(id)?, which);
        }
        let node = self.xattr_node(id)?;
        let stored = self.stored_xattr(name)?;
        rustix::fs::removexattr(path(&node), stored.as_str())?;
        Ok(())
    }
}
