//! Property tests over everything that parses bytes from the cipher
//! directory: the config, file headers, stored names and long names, symlink
//! targets, xattr values, and the size arithmetic. Hostile input must give an
//! error, never a panic or an allocation it does not bound; well-formed
//! input must round-trip. Case counts are set per property to fit CI.

use std::sync::OnceLock;

use cipherfs::config::{Config, NameMode, NewConfig};
use cipherfs::content::offsets::{
    c_sector_offset, cipher_size, plain_size, sector_plain_len, sectors_touched, stored_len,
};
use cipherfs::content::{FileHeader, Layout, SectorMode, HEADER_LEN};
use cipherfs::crypto::kdf::KdfParams;
use cipherfs::crypto::MasterKey;
use cipherfs::names::xattr::XattrCipher;
use cipherfs::names::{is_internal, long_entry, NameCipher, StoredName, NAME_MAX};
use cipherfs::skcipher::Backend;
use proptest::prelude::*;

fn master() -> &'static MasterKey {
    static M: OnceLock<MasterKey> = OnceLock::new();
    M.get_or_init(|| MasterKey::generate().unwrap())
}

/// Both formats' names: format 1's CTS-CBC and format 2's HCTR2.
fn names() -> &'static [NameCipher; 2] {
    static N: OnceLock<[NameCipher; 2]> = OnceLock::new();
    N.get_or_init(|| {
        [NameMode::CtsCbc, NameMode::Hctr2]
            .map(|mode| NameCipher::new(master(), mode, Backend::Soft).unwrap())
    })
}

/// A valid config's JSON, the seed the config mutations start from.
fn config_text() -> &'static str {
    static T: OnceLock<String> = OnceLock::new();
    T.get_or_init(|| {
        let new = NewConfig {
            kdf_params: KdfParams::FLOOR,
            ..NewConfig::default()
        };
        Config::create(&new, b"pw", master())
            .unwrap()
            .to_json()
            .unwrap()
    })
}

#[derive(Debug, Clone)]
enum Edit {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, String),
    Delete(usize, usize),
}

fn apply(text: &str, edits: &[Edit]) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    for e in edits {
        let n = b.len().max(1);
        match e {
            Edit::Truncate(at) => b.truncate(at % n),
            Edit::Flip(at, x) => {
                if let Some(c) = b.get_mut(at % n) {
                    *c ^= x | 1;
                }
            }
            Edit::Insert(at, s) => {
                let at = (at % n).min(b.len());
                b.splice(at..at, s.bytes());
            }
            Edit::Delete(at, len) => {
                let at = (at % n).min(b.len());
                let end = (at + len % 16).min(b.len());
                b.drain(at..end);
            }
        }
    }
    b
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(a, x)| Edit::Flip(a, x)),
        (any::<usize>(), "[\\[\\]{}\",:0-9a-z\\-]{0,12}").prop_map(|(a, s)| Edit::Insert(a, s)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, l)| Edit::Delete(a, l)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Damaged configs parse to an error (or to a config that validated);
    /// the KDF is not run, so its parameters are checked before any use.
    #[test]
    fn damaged_configs_never_panic(edits in prop::collection::vec(edit(), 1..4)) {
        let bytes = apply(config_text(), &edits);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            if let Ok(c) = Config::parse(text) {
                prop_assert!(c.params.validate().is_ok());
            }
        }
    }

    #[test]
    fn arbitrary_text_is_not_a_config(text in ".{0,300}") {
        let _ = Config::parse(&text);
    }

    #[test]
    fn file_headers(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(h) = FileHeader::parse(&bytes, 2) {
            prop_assert!(bytes.len() >= HEADER_LEN);
            prop_assert_eq!(&h.to_bytes()[..], &bytes[..HEADER_LEN]);
        }
    }

    /// Every stored name decrypts to an error or to a name that is valid
    /// and encrypts back to exactly that stored name (one name, one form).
    #[test]
    fn stored_names_decrypt_to_a_valid_name_or_an_error(
        stored in "[A-Za-z0-9_\\-]{0,120}|.{0,40}",
        iv in any::<[u8; 16]>(),
    ) {
        for names in names() {
            if let Ok(name) = names.decrypt(&stored, &iv) {
                prop_assert!(!name.is_empty() && name.len() <= NAME_MAX);
                prop_assert!(!name.contains(&b'/') && !name.contains(&0));
                prop_assert!(name != b"." && name != b"..");
                match names.encrypt(&name, &iv).unwrap() {
                    StoredName::Short(s) => prop_assert_eq!(s, stored.clone()),
                    StoredName::Long { full, .. } => prop_assert_eq!(full, stored.clone()),
                }
            }
        }
    }

    #[test]
    fn names_round_trip_and_long_names_hash_their_full_form(
        name in prop::collection::vec(1u8..=255, 1..=NAME_MAX),
        iv in any::<[u8; 16]>(),
    ) {
        let ok_name = !name.contains(&b'/') && name != b"." && name != b"..";
        for names in names() {
            match names.encrypt(&name, &iv) {
                Err(_) => prop_assert!(!ok_name),
                Ok(StoredName::Short(s)) => {
                    prop_assert!(ok_name && s.len() <= NAME_MAX && !is_internal(&s));
                    prop_assert_eq!(names.decrypt(&s, &iv).unwrap(), name.clone());
                }
                Ok(StoredName::Long { short, full }) => {
                    prop_assert!(ok_name && full.len() > NAME_MAX && short.len() <= NAME_MAX);
                    prop_assert_eq!(&short, &long_entry(&full));
                    prop_assert_eq!(names.decrypt(&full, &iv).unwrap(), name.clone());
                }
            }
        }
    }

    #[test]
    fn symlink_targets(stored in prop::collection::vec(any::<u8>(), 0..200),
                       target in prop::collection::vec(1u8..=255, 1..300)) {
        for names in names() {
            let _ = names.decrypt_target(&stored);
            let enc = names.encrypt_target(&target).unwrap();
            prop_assert_eq!(names.decrypt_target(enc.as_bytes()).unwrap(), target.clone());
        }
    }

    #[test]
    fn xattr_values(stored in prop::collection::vec(any::<u8>(), 0..200),
                    value in prop::collection::vec(any::<u8>(), 0..300)) {
        static X: OnceLock<[XattrCipher; 2]> = OnceLock::new();
        let both = X.get_or_init(|| [1, 2].map(|v| XattrCipher::new(master(), v, Backend::Soft).unwrap()));
        for x in both {
            let _ = x.decrypt_value(&stored);
            let _ = x.decrypt_name(&stored);
            prop_assert_eq!(x.decrypt_value(&x.encrypt_value(&value).unwrap()).unwrap(), value.clone());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20000, ..ProptestConfig::default() })]

    /// Every stored size maps to one plaintext size or an error, and back.
    #[test]
    fn sizes_round_trip(c in any::<u64>(), p in 0u64..(1 << 62)) {
        if let Ok(q) = plain_size(c) {
            prop_assert!(q <= c);
            if c != HEADER_LEN as u64 && c != 0 {
                prop_assert_eq!(cipher_size(q), c);
            }
        }
        prop_assert_eq!(plain_size(cipher_size(p)).unwrap(), p);
    }

    /// Offsets up to the kernel's largest file and 1 MiB requests: the sectors
    /// a request touches cover it, and stored positions do not overflow.
    #[test]
    fn sector_arithmetic(off in 0u64..(i64::MAX as u64 - (1 << 21)), len in 1u64..(1 << 20),
                         shift in 9u32..=12) {
        let s = 1u64 << shift;
        let r = sectors_touched(off, len, s);
        prop_assert!(r.start * s <= off && r.end * s >= off + len && r.end > r.start);
        let size = off + len;
        let last = r.end - 1;
        let t = sector_plain_len(last, size, s);
        prop_assert!(t >= 1 && t <= s);
        let end = c_sector_offset(last, s).checked_add(stored_len(t));
        prop_assert_eq!(end, Some(cipher_size(size)));
    }

    /// The same for both sector modes through their layout, with the AEAD
    /// mode's 28 bytes per sector: sizes invert, stored positions do not
    /// overflow, and the last sector ends the stored file.
    #[test]
    fn layouts_round_trip_and_cover_requests(c in any::<u64>(), p in 0u64..(1 << 62),
                                             off in 0u64..(i64::MAX as u64 / 2), len in 1u64..(1 << 20),
                                             shift in 9u32..=12, aead in any::<bool>()) {
        let mode = if aead { SectorMode::Aead } else { SectorMode::Skcipher };
        let l = Layout::new(mode, 1u64 << shift);
        if let Ok(q) = l.plain_size(c) {
            prop_assert!(q <= c);
            if c != HEADER_LEN as u64 && c != 0 {
                prop_assert_eq!(l.cipher_size(q), c);
            }
        }
        prop_assert_eq!(l.plain_size(l.cipher_size(p)).unwrap(), p);
        let r = l.sectors_touched(off, len);
        let size = off + len;
        let last = r.end - 1;
        let end = l.c_sector_offset(last).checked_add(l.stored_len(l.sector_plain_len(last, size)));
        prop_assert_eq!(end, Some(l.cipher_size(size)));
        prop_assert_eq!(l.c_sector_offset(r.start) + l.run_len(r.start, last, size), l.cipher_size(size));
    }
}
