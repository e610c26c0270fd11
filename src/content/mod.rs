//! File contents on disk: the header, the size and offset arithmetic (pure),
//! and sector encryption. Knows nothing about FUSE or paths.

pub mod aead_sector;
pub mod header;
pub mod offsets;
pub mod sector;

pub use header::{FileHeader, HeaderError, HEADER_LEN};
pub use offsets::{Layout, SectorMode};
pub use sector::{mode_of, sector_iv, ContentError, FileCipher};
