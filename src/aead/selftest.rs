//! Known-answer tests of the AEAD layer, run through a backend before it is
//! trusted and by the test suite: the GCM specification's test cases
//! (McGrew and Viega, "The Galois/Counter Mode of Operation", test cases 4,
//! 13 to 16, as NIST's GCM validation uses them), with and without
//! associated data, and a flipped tag that must give EBADMSG.

use std::sync::Arc;

use super::{Aead, AeadError, AeadRequest};
use crate::skcipher::Backend;

pub struct AeadKat {
    pub source: &'static str,
    pub key: &'static str,
    pub iv: &'static str,
    pub aad: &'static str,
    pub pt: &'static str,
    pub ct: &'static str,
    pub tag: &'static str,
}

const K15: &str = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
const IV15: &str = "cafebabefacedbaddecaf888";
const P15: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
const C15: &str = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
const AAD16: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";

pub static AEAD_KATS: &[AeadKat] = &[
    AeadKat { source: "GCM spec test case 13 (AES-256, empty)", key: "0000000000000000000000000000000000000000000000000000000000000000", iv: "000000000000000000000000", aad: "", pt: "", ct: "", tag: "530f8afbc74536b9a963b4f1c4cb738b" },
    AeadKat { source: "GCM spec test case 14 (AES-256, one block)", key: "0000000000000000000000000000000000000000000000000000000000000000", iv: "000000000000000000000000", aad: "", pt: "00000000000000000000000000000000", ct: "cea7403d4d606b6e074ec5d3baf39d18", tag: "d0d1c8a799996bf0265b98b5d48ab919" },
    AeadKat { source: "GCM spec test case 15 (AES-256, 64 bytes)", key: K15, iv: IV15, aad: "", pt: P15, ct: C15, tag: "b094dac5d93471bdec1a502270e3cc6c" },
    AeadKat { source: "GCM spec test case 16 (AES-256, 60 bytes, 20 bytes of AAD)", key: K15, iv: IV15, aad: AAD16, pt: P15_60, ct: C15_60, tag: "76fc6ece0f4e1768cddf8853bb2d551b" },
    AeadKat { source: "GCM spec test case 4 (AES-128, 60 bytes, 20 bytes of AAD)", key: "feffe9928665731c6d6a8f9467308308", iv: IV15, aad: AAD16, pt: P15_60, ct: "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091", tag: "5bc94fbc3221a5db94fae95ae7121a47" },
];

/// Test case 16's 60 bytes: test case 15's, less the last 4.
const P15_60: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
const C15_60: &str = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662";

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect()
}

/// Runs every vector through a fresh `gcm(aes)` handle on `backend`:
/// encrypt to AAD || CT || tag, decrypt back, and a flipped tag bit must be
/// refused with EBADMSG. Returns how many vectors passed.
pub fn run(backend: Backend) -> Result<usize, String> {
    let tfm: Arc<Aead> = Aead::alloc("gcm(aes)", backend).map_err(|e| e.to_string())?;
    for k in AEAD_KATS {
        tfm.setkey(&unhex(k.key)).map_err(|e| e.to_string())?;
        let (aad, pt) = (unhex(k.aad), unhex(k.pt));
        let want: Vec<u8> = [aad.clone(), unhex(k.ct), unhex(k.tag)].concat();
        let mut req = AeadRequest::new(&tfm, ());
        req.set_crypt([aad.clone(), pt.clone()].concat(), &unhex(k.iv));
        req.set_ad(aad.len());
        req.encrypt().map_err(|e| format!("{}: {e}", k.source))?;
        if req.data() != want {
            return Err(format!("{}: wrong ciphertext or tag", k.source));
        }
        req.decrypt().map_err(|e| format!("{}: {e}", k.source))?;
        if req.data() != [aad.clone(), pt].concat() {
            return Err(format!(
                "{}: decryption did not give the plaintext back",
                k.source
            ));
        }
        let mut forged = want.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        req.set_crypt(forged, &unhex(k.iv));
        match req.decrypt() {
            Err(AeadError::BadMessage) => {}
            other => return Err(format!("{}: a flipped tag gave {other:?}", k.source)),
        }
    }
    Ok(AEAD_KATS.len())
}
