//! File contents on disk: the header, the size and offset arithmetic (pure),
//! and sector encryption. Knows nothing about FUSE or paths.

pub mod header;
pub mod offsets;
pub mod sector;

pub use header::{FileHeader, HeaderError, HEADER_LEN};
pub use sector::{sector_iv, ContentError, FileCipher};
