//! Known-answer tests, run through a backend before it is trusted with data (a
//! kernel in FIPS mode or a broken driver must not silently corrupt files), and
//! by the test suite through every backend. Vectors are the published ones:
//! IEEE 1619 (XTS-AES), NIST SP 800-38A (CBC and ECB), RFC 3962 (CTS), the
//! HCTR2 authors' vectors (github.com/google/hctr2, the 32-byte tweaks the
//! kernel's hctr2(aes) takes); ESSIV has
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
    Kat { alg: "hctr2(aes)", source: "HCTR2 authors' vector (hctr2_aes256_tv, 32-byte tweak, 48 bytes)", key: "7c4b879410907828d27f828487ae21141c31366e2fb0a3e6501500bf89f34c24", iv: "c0e02d708dbae503638df4f1851da8fac9392adc6518a74dc72ef131a9f81b23", pt: Data::Hex("2a664481aecba489cc3d3be5ccd88904fbc0bd0985878db32f2f76468328653473711851a53be2eb1cc2a12bb33d5431"), ct: Expect::Hex("1fe369110d9b7c713fb0c9ff9452d1fd675f7f9c9c6181ef34b7b51dcfb173489c430d9c06df913960675ab1fcbccb53") },
    Kat { alg: "hctr2(aes)", source: "HCTR2 authors' vector (hctr2_aes256_tv, 32-byte tweak, 48 bytes, second)", key: "1da2d7cd21e047bc1944a1dff45813cceb543001f966a4e5ae7ec5a414fee5ff", iv: "2bb2703ed5145dfacda0231f1b3b4084c4418db675833b5a72e36d2b49ab1116", pt: Data::Hex("932cd6e3e8a1e5a024218e66eab4887b54bbbef03a9dfd2dd65fd2be70ddbcf2b4546c3b966a2ebc0a16f0624aab2ad2"), ct: Expect::Hex("4eb90ec2b1a789189234664906cc0a75e86ed2391d38cf2396697856020d2d99232ca5ac0b0837ff3ddecea570edbf23") },
    Kat { alg: "hctr2(aes)", source: "HCTR2 authors' vector (hctr2_aes256_tv, 32-byte tweak, 255 bytes: a partial block)", key: "364511a2985f967cc6b494310a6709326c6f6f00f017cbaca5a9479e2e852ffa", iv: "2888aa9b593b1e9782e55c9e6d1411196e388fd5402bcaf97b4ce4a3d0d28a13", pt: Data::Hex(HCTR2_255_PT), ct: Expect::Hex(HCTR2_255_CT) },
    Kat { alg: "essiv(cbc(aes),sha256)", source: "openssl: AES-256-CBC with IV = AES-256-ECB_{SHA256(key)}(le64(5))", key: ESSIV_KEY, iv: "05000000000000000000000000000000", pt: Data::Hex(SP800_PT), ct: Expect::Hex(ESSIV_CT) },
];

const HCTR2_255_PT: &str = "95d2f7711bcaa586d94801932f7955297113150ee612bc4d8a31e3402ac65e0d68bb4a628dc74577d2b8c71df1d25d97cfac52e53277b6da3085cf2b98e9aa3462b5239eb7a6d4e0b458188c4dde4d01838924cafb11d482307a8135a0b4d4b684ea47918c198625a6068d78e6ed87ebdaea737cbf66b872e30ab80ccb1a73f1a7ca0ade572bbd2beb8b243822d30e1f17a084983177fd346a4e3d844c0efbedc82a51fad873218adbb5fe1feec4e8655484dd966dfdd3317736526b804f9eb4a255bf6641494e87a70ccae7a5c5f66f2756e24822dd5f593cf19f83e52dfb71add1ae1b205c47b73bd314ce8142b10af049fac2e786bfcdb0959f8f794154";
const HCTR2_255_CT: &str = "f65751c425612dfad6d93f9a8151dd8e3de7aa2db1dac8a69daa3cab62f280c32ce758721d44c5287fb4f9bc9cb2ab8efad14d72d979f5a0243e90253114384559c8f6e2c6f6c1a7b2f8a7a92b6f123ab081a4085759b1564c8f1855335fd66ac6a04bd66b643e9efd6616e2dbeb5fb350503ede8d727601beccc952092d8de7d6c366db3608d177c87346262429bf682d2a99435655e493afae4de7554ac04526eb3b12907cdcd1d56f0ad0a9d74b890b07d886ada1c4691f5e8bc49e914125569869783a9eae91d8d9fafbff812509fced2d87bc04629735e126c2461ccfd714ed0209a5b2b6aa274e61b3716b4716b7e8d4af52eb6a6bdb4c65219e1c36";
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
