//! Regular file contents: read, write (read-modify-write of partial
//! sectors) and truncate, on an open backing file. Writers and truncates of
//! one file hold its node's `io` lock exclusively, readers share it, so a
//! sector is never rewritten by two writers at once.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::error::{FsError, FsResult};
use super::node::{CachedCipher, Node, Stamp};
use super::shared::{RangeLock, ReadLock, SizeHold};
use super::{CipherFs, Handle};
use crate::content::{ContentError, FileCipher, FileHeader, HEADER_LEN};

impl CipherFs {
    /// Plaintext size of an open file, or EIO (logged) for an impossible one.
    pub(super) fn file_plain_size(&self, node: &Node, file: &File) -> FsResult<u64> {
        Ok(self.file_state(node, file)?.0)
    }

    /// Plaintext size and the backing file's state.
    pub(super) fn file_state(&self, node: &Node, file: &File) -> FsResult<(u64, Stamp)> {
        let m = file.metadata()?;
        let p = self.layout.plain_size(m.len()).map_err(|e| {
            log::warn!("{}: {e}", self.describe(node));
            FsError::EIO
        })?;
        Ok((p, Stamp::of(&m)))
    }

    /// The file's cipher from its header, cached on the node while the
    /// backing file stays as cipherfs last saw it (`stamp`). On shared
    /// storage the header is read every time (under the caller's lock): a
    /// caching network filesystem may return a stale stamp.
    fn cipher_for(&self, node: &Node, file: &File, stamp: Stamp) -> FsResult<Arc<FileCipher>> {
        let mut slot = node.cipher.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = slot
            .as_ref()
            .filter(|c| c.stamp == stamp && !self.is_shared())
        {
            return Ok(Arc::clone(&c.cipher));
        }
        let mut hb = [0u8; HEADER_LEN];
        file.read_exact_at(&mut hb, 0).map_err(|e| {
            log::warn!("{}: cannot read the file header: {e}", self.describe(node));
            FsError::EIO
        })?;
        let header = FileHeader::parse(&hb, self.format_version).map_err(|e| {
            log::warn!("{}: {e}", self.describe(node));
            FsError::EIO
        })?;
        if let Some(c) = slot.as_mut().filter(|c| c.nonce == header.nonce) {
            c.stamp = stamp;
            return Ok(Arc::clone(&c.cipher));
        }
        let c = Arc::new(self.file_cipher(&header)?);
        *slot = Some(CachedCipher {
            cipher: Arc::clone(&c),
            nonce: header.nonce,
            stamp,
        });
        Ok(c)
    }

    /// After cipherfs's own change to the file: what it now looks like.
    fn restamp(&self, node: &Node, m: &std::fs::Metadata) {
        if let Some(c) = node
            .cipher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            c.stamp = Stamp::of(m);
        }
    }

    fn file_cipher(&self, header: &FileHeader) -> FsResult<FileCipher> {
        FileCipher::new(
            &self.master,
            header,
            &self.alg,
            self.key_len,
            self.backend,
            self.layout.sector as usize,
        )
        .map_err(|e| {
            log::error!("cannot set up the content cipher: {e}");
            FsError::EIO
        })
    }

    /// Starts an empty file: a header with a fresh nonce, for the caller
    /// to write at offset 0 (with the first sectors, when it can). The
    /// cipher is cached under `stamp`, which the caller's restamp replaces.
    fn start_file(
        &self,
        node: &Node,
        stamp: Stamp,
    ) -> FsResult<(Arc<FileCipher>, [u8; HEADER_LEN])> {
        let header = FileHeader::random(self.format_version).map_err(|_| FsError::EIO)?;
        let c = Arc::new(self.file_cipher(&header)?);
        *node.cipher.lock().unwrap_or_else(|e| e.into_inner()) = Some(CachedCipher {
            cipher: Arc::clone(&c),
            nonce: header.nonce,
            stamp,
        });
        Ok((c, header.to_bytes()))
    }

    /// EIO for sectors that do not decrypt, with one log line: a forged
    /// sector names itself; other failures name the sectors being read.
    fn undecryptable(
        &self,
        node: &Node,
        sectors: std::ops::RangeInclusive<u64>,
        e: ContentError,
    ) -> FsError {
        match e {
            ContentError::Forged { .. } => log::warn!("{}: {e}", self.describe(node)),
            _ if sectors.start() == sectors.end() => {
                log::warn!("{}: sector {}: {e}", self.describe(node), sectors.start())
            }
            _ => log::warn!(
                "{}: sectors {}..={}: {e}",
                self.describe(node),
                sectors.start(),
                sectors.end()
            ),
        }
        FsError::EIO
    }

    /// Decrypts sector `n` of a file of plaintext size `p_size`.
    fn read_sector(
        &self,
        node: &Node,
        file: &File,
        fc: &FileCipher,
        n: u64,
        p_size: u64,
        out: &mut Vec<u8>,
    ) -> FsResult<()> {
        let l = self.layout;
        let t = l.sector_plain_len(n, p_size);
        let mut stored = vec![0u8; l.stored_len(t) as usize];
        file.read_exact_at(&mut stored, l.c_sector_offset(n))
            .map_err(|e| {
                log::warn!("{}: sector {n} unreadable: {e}", self.describe(node));
                FsError::EIO
            })?;
        fc.decrypt_sector(n, &stored, t as usize, out)
            .map_err(|e| self.undecryptable(node, n..=n, e))
    }

    pub(super) fn read_file(
        &self,
        node: &Arc<Node>,
        file: &Arc<File>,
        offset: u64,
        size: u32,
    ) -> FsResult<Vec<u8>> {
        let _shared = node.io.read().unwrap_or_else(|e| e.into_inner());
        // Declared after the io guard, so released before it.
        let other_machines = self
            .shared
            .as_ref()
            .map(|r| ReadLock::take(node, file, r))
            .transpose()?;
        let (p_size, stamp) = match &other_machines {
            Some(lock) => lock.size(|| self.file_state(node, file))?,
            None => self.file_state(node, file)?,
        };
        if offset >= p_size || size == 0 {
            return Ok(Vec::new());
        }
        let end = p_size.min(offset + u64::from(size));
        let fc = match &other_machines {
            Some(lock) => lock.cipher(|| self.cipher_for(node, file, stamp))?,
            None => self.cipher_for(node, file, stamp)?,
        };
        let l = self.layout;
        let s = l.sector;
        let range = l.sectors_touched(offset, end - offset);
        let (first, last) = (range.start, range.end - 1);
        let c_start = l.c_sector_offset(first);
        // One read for the whole range, decrypted where it landed; the
        // plaintext ends up at the buffer's start (sector `first + i` at
        // `i * S`).
        let mut buf = vec![0u8; l.run_len(first, last, p_size) as usize];
        file.read_exact_at(&mut buf, c_start).map_err(|e| {
            log::warn!(
                "{}: sectors {first}..={last} unreadable: {e}",
                self.describe(node)
            );
            FsError::EIO
        })?;
        fc.decrypt_run_in_place(first, &mut buf, p_size)
            .map_err(|e| self.undecryptable(node, first..=last, e))?;
        let start = (offset - first * s) as usize;
        buf.truncate(start + (end - offset) as usize);
        // Reads are page-aligned as a rule, and then this moves nothing.
        buf.drain(..start);
        Ok(buf)
    }

    /// Re-encrypts sector `n` at `new_t` bytes (truncate, gap before a write).
    fn rewrite_sector(
        &self,
        node: &Node,
        file: &File,
        fc: &FileCipher,
        n: u64,
        old_p: u64,
        new_t: u64,
    ) -> FsResult<()> {
        // Its old content (of a file of size `old_p`), zero-extended or cut.
        let l = self.layout;
        let mut plain = Vec::with_capacity(l.sector as usize);
        if n * l.sector < old_p {
            self.read_sector(node, file, fc, n, old_p, &mut plain)?;
        }
        plain.resize(new_t as usize, 0);
        let mut stored = Vec::with_capacity(l.stride() as usize + 16);
        fc.encrypt_sector(n, &plain, &mut stored)?;
        file.write_all_at(&stored, l.c_sector_offset(n))?;
        Ok(())
    }

    /// When a file grows from `old_p` to `new_p`, a partial old last sector
    /// becomes longer: it is re-encrypted zero-extended. Sectors past it stay
    /// holes, which read as zeros.
    fn extend_last_sector(
        &self,
        node: &Node,
        file: &File,
        fc: &FileCipher,
        old_p: u64,
        new_p: u64,
    ) -> FsResult<()> {
        let s = self.layout.sector;
        if old_p == 0 || old_p.is_multiple_of(s) || new_p <= old_p {
            return Ok(());
        }
        let last = (old_p - 1) / s;
        let t = self.layout.sector_plain_len(last, new_p);
        self.rewrite_sector(node, file, fc, last, old_p, t)
    }

    pub(super) fn write_file(
        &self,
        node: &Arc<Node>,
        file: &Arc<File>,
        offset: u64,
        data: &[u8],
    ) -> FsResult<u32> {
        if data.is_empty() {
            return Ok(0);
        }
        let _excl = node.io.write().unwrap_or_else(|e| e.into_inner());
        let end = offset + data.len() as u64;
        let Some(releaser) = &self.shared else {
            let (old_p, stamp) = self.file_state(node, file)?;
            self.write_run(node, file, offset, data, old_p, stamp, None)?;
            return Ok(data.len() as u32);
        };
        let (hold, old_p, stamp) = self.lock_size(node, file, end)?;
        match self.write_run(node, file, offset, data, old_p, stamp, Some(&hold)) {
            // What the write left is unknown: no one may rely on it.
            Err(e) => {
                node.lock.release();
                return Err(e);
            }
            // Holding the size, the write left the backing file exactly
            // as long as the new plaintext size asks.
            Ok((new_p, fc)) => {
                let known = (new_p, stamp.with_size(self.layout.cipher_size(new_p)));
                let keep = |taken| {
                    node.lock
                        .keep_after_write(node, releaser, file, taken, known, Some(fc))
                };
                match hold {
                    SizeHold::Owned(_) => keep(None),
                    SizeHold::Taken {
                        lock,
                        exclusive: true,
                    } => keep(Some(lock)),
                    SizeHold::Taken { .. } => {}
                }
            }
        }
        Ok(data.len() as u32)
    }

    /// Writes `data` at `offset` into a file of plaintext size `old_p`,
    /// holding `hold` on shared storage; returns the new plaintext size and
    /// the file's cipher.
    #[allow(clippy::too_many_arguments)]
    fn write_run(
        &self,
        node: &Node,
        file: &File,
        offset: u64,
        data: &[u8],
        old_p: u64,
        stamp: Stamp,
        hold: Option<&SizeHold>,
    ) -> FsResult<(u64, Arc<FileCipher>)> {
        let end = offset + data.len() as u64;
        let l = self.layout;
        let s = l.sector;
        let new_p = old_p.max(end);
        let range = l.sectors_touched(offset, data.len() as u64);
        let (first, last) = (range.start, range.end - 1);
        let buf_len = l.run_len(first, last, new_p);
        // A partial old last sector that the write does not reach becomes a
        // longer one: it is re-encrypted zero-extended before the gap.
        let old_last =
            (!old_p.is_multiple_of(s) && (old_p - 1) / s < first).then(|| (old_p - 1) / s);
        // A write past the old end that leaves the old sectors as they are
        // (a new file, an append after a whole sector) is undone when it
        // fails, by cutting the file back, instead of reserving space first
        // (a round trip on network storage, for every write of a sequence).
        let appends = old_last.is_none() && first * s >= old_p;
        let c_first = l.c_sector_offset(first);
        // A new file's header goes out with its first sectors when they
        // follow it: one backing write (a round trip on network storage).
        let pre = if old_p == 0 && first == 0 {
            HEADER_LEN
        } else {
            0
        };
        // Space for what is rewritten, and only that: the old last sector
        // and the written sectors. The gap between them stays a hole, as a
        // write past the end leaves one on a local filesystem.
        if let Some(n) = old_last {
            let at = l.c_sector_offset(n);
            reserve(file, at, at + l.stored_len(l.sector_plain_len(n, new_p)))?;
        }
        // Another machine may rewrite other sectors meanwhile, not these.
        let _range = match hold {
            Some(SizeHold::Taken {
                exclusive: false, ..
            }) => Some(RangeLock::take(file, c_first, buf_len, true)?),
            _ => None,
        };
        if !appends {
            reserve(file, c_first, c_first + buf_len)?;
        }
        let mut buf = vec![0u8; pre + buf_len as usize];
        let fc = if old_p == 0 {
            let (fc, header) = self.start_file(node, stamp)?;
            if pre > 0 {
                buf[..pre].copy_from_slice(&header);
            } else if let Err(e) = file.write_all_at(&header, 0) {
                // Nothing was there: leave no stray header behind.
                let _ = file.set_len(0);
                return Err(e.into());
            }
            fc
        } else if let Some(SizeHold::Owned(Some(fc))) = hold {
            Arc::clone(fc)
        } else {
            self.cipher_for(node, file, stamp)?
        };
        if old_last.is_some() {
            self.extend_last_sector(node, file, &fc, old_p, new_p)?;
        }
        // The touched sectors' plaintext in one buffer as long as their
        // stored form: old content where the write covers a sector only
        // partly, the new data over it, then encryption in place and one
        // backing write.
        let run = &mut buf[pre..];
        let partial = |n: u64| {
            let covered = offset <= n * s && end >= n * s + l.sector_plain_len(n, new_p);
            n * s < old_p && !covered
        };
        let ends = [first, last];
        let ends = if first == last { &ends[..1] } else { &ends[..] };
        for &n in ends {
            if partial(n) {
                let mut old = Vec::with_capacity(s as usize);
                self.read_sector(node, file, &fc, n, old_p, &mut old)?;
                let at = ((n - first) * s) as usize;
                run[at..at + old.len()].copy_from_slice(&old);
            }
        }
        let at = (offset - first * s) as usize;
        run[at..at + data.len()].copy_from_slice(data);
        fc.encrypt_run_in_place(first, run, new_p)?;
        file.write_all_at(&buf, c_first - pre as u64)
            .inspect_err(|_| {
                if appends {
                    let _ = file.set_len(l.cipher_size(old_p));
                }
            })?;
        // The stored size must match the new plaintext size exactly: a last
        // sector that grew within its 16-byte block leaves stale filler.
        let want = l.cipher_size(new_p);
        if let Some(hold) = hold {
            // On shared storage only a write that holds the size may set
            // it: any other would cut off what another machine appended
            // meanwhile. The length follows from what was there and what
            // was written (a stat is a round trip there), and nothing is
            // restamped: the header is read again under the next lock.
            if hold.exclusive() && stamp.size().max(c_first + buf_len) != want {
                file.set_len(want)?;
            }
            return Ok((new_p, fc));
        }
        let mut m = file.metadata()?;
        if m.len() != want {
            file.set_len(want)?;
            m = file.metadata()?;
        }
        self.restamp(node, &m);
        Ok((new_p, fc))
    }

    /// Modes 0 and KEEP_SIZE: backing space for the range is reserved, so
    /// writes there cannot fail for lack of space; with mode 0 the file grows
    /// to cover the range, whose new part reads as zeros.
    pub fn fallocate(&self, fh: u64, offset: u64, length: u64, mode: i32) -> FsResult<()> {
        if mode & !libc::FALLOC_FL_KEEP_SIZE != 0 {
            return Err(FsError::EOPNOTSUPP);
        }
        let h = self.file_handle(fh)?;
        let Handle::File { node, file } = &*h else {
            return Err(FsError::EBADF);
        };
        let end = offset.checked_add(length).ok_or(FsError::EINVAL)?;
        let l = self.layout;
        // Whole sectors (a last one at its longest), and the header.
        let from = if offset < l.sector {
            0
        } else {
            l.c_sector_offset(offset / l.sector)
        };
        reserve(file, from, l.c_sector_offset(end.div_ceil(l.sector)) + 16)?;
        if mode == 0 && end > self.file_plain_size(node, file)? {
            self.truncate_file(node, file, end)?;
        }
        Ok(())
    }

    pub(super) fn truncate_file(
        &self,
        node: &Arc<Node>,
        file: &Arc<File>,
        new_p: u64,
    ) -> FsResult<()> {
        let _excl = node.io.write().unwrap_or_else(|e| e.into_inner());
        let Some(releaser) = &self.shared else {
            let (old_p, stamp) = self.file_state(node, file)?;
            return self
                .truncate_run(node, file, new_p, old_p, stamp, None)
                .map(drop);
        };
        let (taken, old_p, stamp, fc) = match node.lock.owned_by_writer() {
            Some((p, stamp, fc)) => (None, p, stamp, fc),
            None => {
                let lock = RangeLock::size(file, true)?;
                let (p, stamp) = self.file_state(node, file)?;
                (Some(lock), p, stamp, None)
            }
        };
        match self.truncate_run(node, file, new_p, old_p, stamp, Some(fc)) {
            Ok(fc) => {
                let known = (new_p, stamp.with_size(self.layout.cipher_size(new_p)));
                node.lock
                    .keep_after_write(node, releaser, file, taken, known, fc);
                Ok(())
            }
            Err(e) => {
                node.lock.release();
                Err(e)
            }
        }
    }

    /// Truncates a file of plaintext size `old_p` to `new_p`; returns the
    /// cipher it used, if any. On shared storage `held` is given, with the
    /// cipher known under the lock held if there is one.
    fn truncate_run(
        &self,
        node: &Node,
        file: &File,
        new_p: u64,
        old_p: u64,
        stamp: Stamp,
        held: Option<Option<Arc<FileCipher>>>,
    ) -> FsResult<Option<Arc<FileCipher>>> {
        let l = self.layout;
        let s = l.sector;
        if new_p == 0 {
            // The header goes too, so the next write picks a fresh nonce.
            file.set_len(0)?;
            *node.cipher.lock().unwrap_or_else(|e| e.into_inner()) = None;
            return Ok(None);
        }
        if new_p == old_p {
            return Ok(None);
        }
        let shared = held.is_some();
        // Growing writes a header or a longer old last sector; the rest are holes.
        if old_p == 0 {
            reserve(file, 0, HEADER_LEN as u64)?;
        } else if new_p > old_p {
            let n = (old_p - 1) / s;
            let at = l.c_sector_offset(n);
            reserve(file, at, at + l.stored_len(l.sector_plain_len(n, new_p)))?;
        }
        let fc = if old_p == 0 {
            let (fc, header) = self.start_file(node, stamp)?;
            file.write_all_at(&header, 0)?;
            fc
        } else if let Some(Some(fc)) = held {
            fc
        } else {
            self.cipher_for(node, file, stamp)?
        };
        if new_p < old_p {
            // The new last sector keeps its first bytes, re-encrypted at its new length.
            let last = (new_p - 1) / s;
            let t = l.sector_plain_len(last, new_p);
            if t != l.sector_plain_len(last, old_p) {
                self.rewrite_sector(node, file, &fc, last, old_p, t)?;
            }
        } else {
            self.extend_last_sector(node, file, &fc, old_p, new_p)?;
        }
        file.set_len(l.cipher_size(new_p))?;
        if !shared {
            self.restamp(node, &file.metadata()?);
        }
        Ok(Some(fc))
    }
}

/// Reserves backing space for the stored bytes `[from, to)` before anything
/// is rewritten, as gocryptfs preallocates: on a full disk the request then
/// fails with ENOSPC up front instead of leaving a half-written last sector
/// that no longer decrypts. KEEP_SIZE, so a failed request changes no size.
/// Where the backing filesystem has no fallocate, writes go ahead unreserved;
/// copy-on-write filesystems can still run out of space mid-write.
pub(super) fn reserve(file: &File, from: u64, to: u64) -> FsResult<()> {
    if to <= from {
        return Ok(());
    }
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::KEEP_SIZE, from, to - from) {
        Ok(()) | Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
