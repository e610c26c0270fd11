//! A regular file's size, header and, in the AEAD sector mode, every
//! sector's tag. Files are opened without following links, as regular files
//! only, and read in runs of a fixed size; holes (SEEK_DATA) are skipped.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;

use crate::content::{ContentError, FileCipher, FileHeader, Layout, SectorMode, HEADER_LEN};
use crate::crypto::MasterKey;
use crate::skcipher::Backend;
use crate::untrusted;

/// Sectors read at once while verifying.
const RUN: u64 = 64;

/// What a file must satisfy in this cipher directory.
pub(super) struct Files<'a> {
    pub master: &'a MasterKey,
    pub layout: Layout,
    pub alg: String,
    pub key_len: usize,
    /// What the file headers say (the config's format version).
    pub version: u16,
}

impl Files<'_> {
    /// Checks one file of `len` stored bytes; `progress` is told how many
    /// stored bytes were verified. The error says what is wrong, naming
    /// every sector that fails authentication.
    pub fn check(
        &self,
        dir: &OwnedFd,
        entry: &str,
        len: u64,
        progress: impl Fn(u64),
    ) -> Result<(), String> {
        // Whatever was not counted as it was read (the header, the rest
        // of a file that stopped early) is counted at the end.
        let done = std::cell::Cell::new(0);
        let r = self.check_inner(dir, entry, len, &|n| {
            done.set(done.get() + n);
            progress(n)
        });
        progress(len.saturating_sub(done.get()));
        r
    }

    fn check_inner(
        &self,
        dir: &OwnedFd,
        entry: &str,
        len: u64,
        progress: &impl Fn(u64),
    ) -> Result<(), String> {
        let p_size = self.layout.plain_size(len).map_err(|e| e.to_string())?;
        if len < HEADER_LEN as u64 {
            return Ok(());
        }
        let mut file = untrusted::open_regular(dir, entry)
            .map_err(|e| format!("cannot read the file header: {e}"))?;
        let mut hb = [0u8; HEADER_LEN];
        file.read_exact(&mut hb)
            .map_err(|e| format!("cannot read the file header: {e}"))?;
        let header = FileHeader::parse(&hb, self.version).map_err(|e| e.to_string())?;
        if self.layout.mode != SectorMode::Aead || p_size == 0 {
            return Ok(());
        }
        let fc = FileCipher::new(
            self.master,
            &header,
            &self.alg,
            self.key_len,
            Backend::Soft,
            self.layout.sector as usize,
        )
        .map_err(|e| format!("cannot set up the content cipher: {e}"))?;
        let l = self.layout;
        let count = p_size.div_ceil(l.sector);
        let mut forged = Vec::new();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut first = 0;
        while first < count {
            // Holes read as zeros and need no check: a sparse file's
            // unwritten terabytes are skipped, not read.
            match next_data(&file, l.c_sector_offset(first)) {
                None => break,
                Some(data) => {
                    let skip_to = ((data - HEADER_LEN as u64) / l.stride()).max(first);
                    if skip_to > first {
                        progress(l.c_sector_offset(skip_to) - l.c_sector_offset(first));
                        first = skip_to;
                        if first >= count {
                            break;
                        }
                    }
                }
            }
            let last = (first + RUN).min(count) - 1;
            buf.resize(l.run_len(first, last, p_size) as usize, 0);
            file.read_exact_at(&mut buf, l.c_sector_offset(first))
                .map_err(|e| format!("sectors {first}..={last} unreadable: {e}"))?;
            for n in first..=last {
                let at = ((n - first) * l.stride()) as usize;
                let t = l.sector_plain_len(n, p_size);
                let stored = &buf[at..at + l.stored_len(t) as usize];
                match fc.decrypt_sector(n, stored, t as usize, &mut out) {
                    Ok(()) => {}
                    Err(ContentError::Forged { sector }) => forged.push(sector),
                    Err(e) => return Err(e.to_string()),
                }
            }
            progress(buf.len() as u64);
            first = last + 1;
        }
        if forged.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{} {} fail{} authentication (changed, or moved from another position or file)",
            if forged.len() == 1 {
                "sector"
            } else {
                "sectors"
            },
            ranges(&forged),
            if forged.len() == 1 { "s" } else { "" }
        ))
    }
}

/// Where the next stored data at or after `from` starts; `None` when only a
/// hole follows. A filesystem without SEEK_DATA answers `from` itself.
fn next_data(file: &std::fs::File, from: u64) -> Option<u64> {
    use rustix::fs::{seek, SeekFrom};
    match seek(file, SeekFrom::Data(from)) {
        Ok(at) => Some(at),
        Err(rustix::io::Errno::NXIO) => None,
        Err(_) => Some(from),
    }
}

/// Sector numbers in ascending order as "1, 4-7, 9".
fn ranges(v: &[u64]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}-{}", v[i], v[j])
        });
        i = j + 1;
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn ranges_read_as_written() {
        assert_eq!(super::ranges(&[1]), "1");
        assert_eq!(super::ranges(&[0, 1, 2, 5, 7, 8]), "0-2, 5, 7-8");
    }
}
