//! Known-answer tests, run through a backend before it is trusted with data (a
//! kernel in FIPS mode or a broken driver must not silently corrupt files), and
//! by the test suite through every backend. Vectors are the published ones:
//! IEEE 1619 (XTS-AES), NIST SP 800-38A (CBC and ECB), RFC 3962 (CTS); ESSIV has
//! no published vector, so its entry was computed independently with the
//! `openssl` command line (see `tests/crypto/kat.rs`).

use sha2::{Digest, Sha256};

use super::{Backend, Skcipher, SkcipherError};

/// Plaintext of a vector: hex bytes, or the IEEE 1619 512-byte counting pattern.
pub enum Data {
    Hex(&'static str),
    Counting(usize),
}

/// Expected ciphertext: hex bytes, or the SHA-256 of a long ciphertext.
pub enum Expect {
    Hex(&'static str),
    Sha256(&'static str),
}

pub struct Kat {
    pub alg: &'static str,
    pub source: &'static str,
    pub key: &'static str,
    pub iv: &'static str,
    pub pt: Data,
    pub ct: Expect,
}

const IEEE_STEAL_KEY: &str = "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0bfbebdbcbbbab9b8b7b6b5b4b3b2b1b0";
const IEEE_STEAL_IV: &str = "9a785634120000000000000000000000";
const IEEE_KEY_128: &str = "2718281828459045235360287471352631415926535897932384626433832795";
const IEEE_KEY_256: &str = "27182818284590452353602874713526624977572470936999595749669676273141592653589793238462643383279502884197169399375105820974944592";
const SP800_PT: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
const SP800_IV: &str = "000102030405060708090a0b0c0d0e0f";
const RFC3962_KEY: &str = "636869636b656e207465726979616b69";
const ZERO_IV: &str = "00000000000000000000000000000000";

pub static KATS: &[Kat] = &[
    Kat { alg: "xts(aes)", source: "IEEE 1619 vector 2", key: "1111111111111111111111111111111122222222222222222222222222222222", iv: "33333333330000000000000000000000", pt: Data::Hex("4444444444444444444444444444444444444444444444444444444444444444"), ct: Expect::Hex("c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0") },
    Kat { alg: "xts(aes)", source: "IEEE 1619 vector 3", key: "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f022222222222222222222222222222222", iv: "33333333330000000000000000000000", pt: Data::Hex("4444444444444444444444444444444444444444444444444444444444444444"), ct: Expect::Hex("af85336b597afc1a900b2eb21ec949d292df4c047e0b21532186a5971a227a89") },
    Kat { alg: "xts(aes)", source: "IEEE 1619 vector 4", key: IEEE_KEY_128, iv: ZERO_IV, pt: Data::Counting(512), ct: Expect::Sha256("ebee4d64dd2395bb2d6a2d37a0a48ecb2bf4913cfc99d27c2214f2f4144715ea") },
    Kat { alg: "xts(aes)", source: "IEEE 1619 vector 10", key: IEEE_KEY_256, iv: "ff000000000000000000000000000000", pt: Data::Counting(512), ct: Expect::Sha256("e97e974fa393af794f7a4684395814cf820de60a01eaec677d87b452e316b364") },
    Kat { alg: "xts(aes)", source: "IEEE 1619 vector 11", key: IEEE_KEY_256, iv: "ffff0000000000000000000000000000", pt: Data::Counting(512), ct: Expect::Sha256("def4fad29e95dfe1a24b1ad4620f86d7be094cced5b19e0b121aa82d9e6baf98") },
    Kat { alg: "xts(aes)", source: "IEEE 1619 vector 14", key: IEEE_KEY_256, iv: "ffffffffff0000000000000000000000", pt: Data::Counting(512), ct: Expect::Sha256("afba71abc4e95b186d89a63a5437c1bafcfd1a18ca273970c534aba4f8d05282") },
    Kat { alg: "xts(aes)", source: "IEEE 1619 vector 15 (17 bytes, stealing)", key: IEEE_STEAL_KEY, iv: IEEE_STEAL_IV, pt: Data::Hex("000102030405060708090a0b0c0d0e0f10"), ct: Expect::Hex("6c1625db4671522d3d7599601de7ca09ed") },
    Kat { alg: "xts(aes)", source: "IEEE 1619 vector 16 (18 bytes, stealing)", key: IEEE_STEAL_KEY, iv: IEEE_STEAL_IV, pt: Data::Hex("000102030405060708090a0b0c0d0e0f1011"), ct: Expect::Hex("d069444b7a7e0cab09e24447d24deb1fedbf") },
    Kat { alg: "xts(aes)", source: "IEEE 1619 vector 17 (19 bytes, stealing)", key: IEEE_STEAL_KEY, iv: IEEE_STEAL_IV, pt: Data::Hex("000102030405060708090a0b0c0d0e0f101112"), ct: Expect::Hex("e5df1351c0544ba1350b3363cd8ef4beedbf9d") },
    Kat { alg: "xts(aes)", source: "IEEE 1619 vector 18 (20 bytes, stealing)", key: IEEE_STEAL_KEY, iv: IEEE_STEAL_IV, pt: Data::Hex("000102030405060708090a0b0c0d0e0f10111213"), ct: Expect::Hex("9d84c813f719aa2c7be3f66171c7c5c2edbf9dac") },
    Kat { alg: "cbc(aes)", source: "NIST SP 800-38A F.2.1 CBC-AES128", key: "2b7e151628aed2a6abf7158809cf4f3c", iv: SP800_IV, pt: Data::Hex(SP800_PT), ct: Expect::Hex("7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b273bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7") },
    Kat { alg: "cbc(aes)", source: "NIST SP 800-38A F.2.5 CBC-AES256", key: "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", iv: SP800_IV, pt: Data::Hex(SP800_PT), ct: Expect::Hex("f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b") },
    Kat { alg: "ecb(aes)", source: "NIST SP 800-38A F.1.1 ECB-AES128", key: "2b7e151628aed2a6abf7158809cf4f3c", iv: "", pt: Data::Hex(SP800_PT), ct: Expect::Hex("3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf43b1cd7f598ece23881b00e3ed0306887b0c785e27e8ad3f8223207104725dd4") },
    Kat { alg: "cts(cbc(aes))", source: "RFC 3962 B (17 bytes)", key: RFC3962_KEY, iv: ZERO_IV, pt: Data::Hex("4920776f756c64206c696b652074686520"), ct: Expect::Hex("c6353568f2bf8cb4d8a580362da7ff7f97") },
    Kat { alg: "cts(cbc(aes))", source: "RFC 3962 B (31 bytes)", key: RFC3962_KEY, iv: ZERO_IV, pt: Data::Hex("4920776f756c64206c696b65207468652047656e6572616c20476175277320"), ct: Expect::Hex("fc00783e0efdb2c1d445d4c8eff7ed2297687268d6ecccc0c07b25e25ecfe5") },
    Kat { alg: "cts(cbc(aes))", source: "RFC 3962 B (32 bytes)", key: RFC3962_KEY, iv: ZERO_IV, pt: Data::Hex("4920776f756c64206c696b65207468652047656e6572616c2047617527732043"), ct: Expect::Hex("39312523a78662d5be7fcbcc98ebf5a897687268d6ecccc0c07b25e25ecfe584") },
    Kat { alg: "cts(cbc(aes))", source: "RFC 3962 B (47 bytes)", key: RFC3962_KEY, iv: ZERO_IV, pt: Data::Hex("4920776f756c64206c696b65207468652047656e6572616c20476175277320436869636b656e2c20706c656173652c"), ct: Expect::Hex("97687268d6ecccc0c07b25e25ecfe584b3fffd940c16a18c1b5549d2f838029e39312523a78662d5be7fcbcc98ebf5") },
    Kat { alg: "cts(cbc(aes))", source: "RFC 3962 B (48 bytes)", key: RFC3962_KEY, iv: ZERO_IV, pt: Data::Hex("4920776f756c64206c696b65207468652047656e6572616c20476175277320436869636b656e2c20706c656173652c20"), ct: Expect::Hex("97687268d6ecccc0c07b25e25ecfe5849dad8bbb96c4cdc03bc103e1a194bbd839312523a78662d5be7fcbcc98ebf5a8") },
    Kat { alg: "cts(cbc(aes))", source: "RFC 3962 B (64 bytes)", key: RFC3962_KEY, iv: ZERO_IV, pt: Data::Hex("4920776f756c64206c696b65207468652047656e6572616c20476175277320436869636b656e2c20706c656173652c20616e6420776f6e746f6e20736f75702e"), ct: Expect::Hex("97687268d6ecccc0c07b25e25ecfe58439312523a78662d5be7fcbcc98ebf5a84807efe836ee89a526730dbc2f7bc8409dad8bbb96c4cdc03bc103e1a194bbd8") },
    Kat { alg: "essiv(cbc(aes),sha256)", source: "openssl: AES-256-CBC with IV = AES-256-ECB_{SHA256(key)}(le64(5))", key: ESSIV_KEY, iv: "05000000000000000000000000000000", pt: Data::Hex(SP800_PT), ct: Expect::Hex(ESSIV_CT) },
];

const ESSIV_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const ESSIV_CT: &str = "6f0430625bd0dc6527ba35674ba813acf71d9d87fb02c50324421a3b1cbf714ee79017879e6aa679a02ae1eaeafa8fb4e7f112fa8e461660990c71acb996bdbf";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Kat {
    pub fn key_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        zeroize::Zeroizing::new(unhex(self.key))
    }

    pub fn iv_bytes(&self) -> Vec<u8> {
        unhex(self.iv)
    }

    pub fn plaintext(&self) -> Vec<u8> {
        match self.pt {
            Data::Hex(h) => unhex(h),
            Data::Counting(n) => (0..n).map(|i| i as u8).collect(),
        }
    }

    /// Whether `ct` is the expected ciphertext; on mismatch, says what differs.
    pub fn check(&self, ct: &[u8]) -> Result<(), String> {
        let (want, got) = match self.ct {
            Expect::Hex(h) => (h.to_string(), to_hex(ct)),
            Expect::Sha256(h) => (h.to_string(), to_hex(&Sha256::digest(ct))),
        };
        if want == got {
            Ok(())
        } else {
            Err(format!("{}: expected {want}, got {got}", self.source))
        }
    }
}

/// Runs every vector of `alg` through a fresh handle on `backend`: encrypt
/// (separate buffers and in place) and decrypt back.
pub fn run(backend: Backend, alg: &str) -> Result<usize, SkcipherError> {
    let tfm = Skcipher::alloc(alg, backend)?;
    let fail = |detail: String| SkcipherError::SelfTestFailed {
        backend: backend.name(),
        alg: tfm.name(),
        detail,
    };
    let mut n = 0;
    for kat in KATS.iter().filter(|k| k.alg == tfm.name()) {
        tfm.setkey(&kat.key_bytes())?;
        let (iv, pt) = (kat.iv_bytes(), kat.plaintext());
        let mut ct = vec![0u8; pt.len()];
        tfm.encrypt(&iv, &pt, &mut ct)?;
        kat.check(&ct).map_err(&fail)?;
        let mut inplace = pt.clone();
        tfm.encrypt_in_place(&iv, &mut inplace)?;
        kat.check(&inplace).map_err(&fail)?;
        tfm.decrypt_in_place(&iv, &mut inplace)?;
        if inplace != pt {
            return Err(fail(format!(
                "{}: decryption did not give the plaintext back",
                kat.source
            )));
        }
        n += 1;
    }
    Ok(n)
}
