//! The AEAD layer: the GCM specification's vectors, round trips on random
//! lengths and associated data, EBADMSG for any change to the associated
//! data, the ciphertext or the tag, and the async API's one completion.

use crate::common;
use crate::common::Rng;
use cipherfs::aead::{selftest, Aead, AeadError, AeadRequest};
use cipherfs::skcipher::{Backend, Direction};

#[test]
fn the_gcm_specification_vectors_pass_on_every_backend() {
    for backend in common::backends("aead vectors") {
        assert_eq!(
            selftest::run(backend).unwrap_or_else(|e| panic!("{backend}: {e}")),
            selftest::AEAD_KATS.len()
        );
        assert!(Aead::has("gcm(aes)", backend));
    }
    assert!(!Aead::has("ccm(aes)", Backend::Soft));
}

/// The kernel's gcm(aes) and ours agree byte for byte on random keys, IVs,
/// associated data and lengths, each decrypts what the other sealed, and
/// both refuse the same forgery with EBADMSG.
#[test]
fn soft_and_kernel_gcm_agree() {
    if !common::afalg_available("soft_and_kernel_gcm_agree") {
        return;
    }
    let mut rng = Rng::new(0x6c3);
    let soft = Aead::alloc("gcm(aes)", Backend::Soft).unwrap();
    let kern = Aead::alloc("gcm(aes)", Backend::Afalg).unwrap();
    for round in 0..200 {
        let key_len = [16, 24, 32][rng.below(3)];
        let key = rng.bytes(key_len);
        soft.setkey(&key).unwrap();
        kern.setkey(&key).unwrap();
        // The edges first: nothing at all, no text, no associated data.
        let (aad_len, pt_len) = match round {
            0 => (0, 0),
            1 => (7, 0),
            2 => (0, 1),
            _ => (rng.below(64), rng.below(20_000)),
        };
        let (aad, iv) = (rng.bytes(aad_len), rng.bytes(12));
        let plain = [aad.clone(), rng.bytes(pt_len)].concat();
        let (mut a, mut b) = (plain.clone(), plain.clone());
        soft.crypt(Direction::Encrypt, &iv, aad.len(), &mut a)
            .unwrap();
        kern.crypt(Direction::Encrypt, &iv, aad.len(), &mut b)
            .unwrap();
        assert_eq!(
            a, b,
            "round {round}: {aad_len} + {pt_len} bytes, key {key_len}"
        );
        let (mut a2, mut b2) = (b.clone(), a.clone());
        soft.crypt(Direction::Decrypt, &iv, aad.len(), &mut a2)
            .unwrap();
        kern.crypt(Direction::Decrypt, &iv, aad.len(), &mut b2)
            .unwrap();
        assert_eq!((&a2, &b2), (&plain, &plain), "round {round}");
        let at = rng.below(a.len());
        a[at] ^= 1;
        let mut b3 = a.clone();
        assert!(matches!(
            soft.crypt(Direction::Decrypt, &iv, aad.len(), &mut a),
            Err(AeadError::BadMessage)
        ));
        assert!(
            matches!(
                kern.crypt(Direction::Decrypt, &iv, aad.len(), &mut b3),
                Err(AeadError::BadMessage)
            ),
            "round {round}: the kernel took a forgery"
        );
    }
}

#[test]
fn any_change_is_ebadmsg_and_the_rest_round_trips() {
    let mut rng = Rng::new(0x9c3);
    let tfm = Aead::alloc("gcm(aes)", Backend::Soft).unwrap();
    assert_eq!((tfm.ivsize(), tfm.authsize(), tfm.blocksize()), (12, 16, 1));
    for round in 0..300 {
        let key_len = [16, 24, 32][rng.below(3)];
        tfm.setkey(&rng.bytes(key_len)).unwrap();
        let (aad_len, pt_len) = (rng.below(40), rng.below(5000));
        let (aad, pt, iv) = (rng.bytes(aad_len), rng.bytes(pt_len), rng.bytes(12));
        let mut data = [aad.clone(), pt.clone()].concat();
        tfm.crypt(Direction::Encrypt, &iv, aad.len(), &mut data)
            .unwrap();
        assert_eq!(data.len(), aad.len() + pt.len() + 16);
        assert_eq!(
            data[..aad.len()],
            aad[..],
            "round {round}: the AAD is not encrypted"
        );
        let sealed = data.clone();
        tfm.crypt(Direction::Decrypt, &iv, aad.len(), &mut data)
            .unwrap();
        assert_eq!(data, [aad.clone(), pt].concat(), "round {round}");
        let mut bad = sealed.clone();
        let at = rng.below(bad.len());
        bad[at] ^= 1 << rng.below(8);
        let e = tfm
            .crypt(Direction::Decrypt, &iv, aad.len(), &mut bad)
            .unwrap_err();
        assert!(
            matches!(e, AeadError::BadMessage),
            "round {round}, byte {at}: {e}"
        );
        assert_eq!(e.errno(), libc::EBADMSG);
        let mut wrong_iv = sealed.clone();
        let mut iv2 = iv.clone();
        iv2[0] ^= 1;
        assert!(matches!(
            tfm.crypt(Direction::Decrypt, &iv2, aad.len(), &mut wrong_iv),
            Err(AeadError::BadMessage)
        ));
    }
}

#[test]
fn bad_requests_are_refused_before_any_work() {
    let tfm = Aead::alloc("gcm(aes)", Backend::Soft).unwrap();
    let mut data = vec![0u8; 40];
    assert!(matches!(
        tfm.crypt(Direction::Encrypt, &[0; 12], 0, &mut data),
        Err(AeadError::NoKey)
    ));
    assert!(tfm.setkey(&[0; 20]).is_err());
    tfm.setkey(&[1; 32]).unwrap();
    assert!(tfm.setauthsize(16).is_ok() && tfm.setauthsize(8).is_err());
    let e = tfm
        .crypt(Direction::Encrypt, &[0; 16], 0, &mut data)
        .unwrap_err();
    assert!(e.to_string().contains("takes 12 bytes"), "{e}");
    let e = tfm
        .crypt(Direction::Decrypt, &[0; 12], 30, &mut data)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("30 bytes of associated data and a 16-byte tag"),
        "{e}"
    );
    assert!(Aead::alloc("ccm(aes)", Backend::Soft).is_err());
}

#[test]
fn an_async_request_completes_once_with_the_sync_result() {
    let tfm = Aead::alloc("gcm(aes)", Backend::Soft).unwrap();
    tfm.setkey(&[5; 32]).unwrap();
    let mut sync = b"header+body".to_vec();
    tfm.crypt(Direction::Encrypt, &[7; 12], 6, &mut sync)
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut req = AeadRequest::new(&tfm, 42u32);
    req.set_crypt(b"header+body".to_vec(), &[7; 12]);
    req.set_ad(6);
    req.submit(Direction::Encrypt, move |r, res| {
        let _ = tx.send((r.into_parts(), res));
    });
    let ((data, ctx), res) = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    res.unwrap();
    assert_eq!((data, ctx), (sync, 42));
    assert!(rx
        .recv_timeout(std::time::Duration::from_millis(200))
        .is_err());
}

/// `backends` and `speed` cover the AEAD algorithm as they cover skciphers.
#[test]
fn backends_and_speed_cover_gcm() {
    let bin = crate::common::mount::BIN;
    if !std::path::Path::new(bin).exists() {
        eprintln!("SKIP backends_and_speed_cover_gcm: no cipherfs binary here (as in the VM)");
        return;
    }
    let run = |args: &[&str]| {
        let o = std::process::Command::new(bin).args(args).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    let out = run(&["backends"]);
    assert!(
        out.contains("gcm(aes) (aead): ivsize 12 authsize 16"),
        "{out}"
    );
    assert!(
        out.contains("soft   ok, 5 known-answer vectors passed"),
        "{out}"
    );
    let out = run(&[
        "speed",
        "--backend",
        "soft",
        "--alg",
        "gcm(aes)",
        "--seconds",
        "0.01",
    ]);
    let row = out
        .lines()
        .find(|l| l.starts_with("gcm(aes)"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains(" 32 soft") && row.contains("GB/s"), "{row}");
}

/// The soft backend (on CPUs with VAES and VPCLMULQDQ, cipherfs's own GCM
/// kernel for 16- and 32-byte keys) against RustCrypto `aes-gcm` directly,
/// on random keys, nonces, associated data and lengths around its 256-byte
/// groups, both ways, in both APIs; and a forged tag on the same path.
#[test]
fn soft_gcm_matches_the_aes_gcm_crate() {
    let mut rng = Rng::new(0x6c6d);
    let lens: Vec<usize> = (0..=40)
        .chain([255, 256, 257, 511, 512, 513, 4095, 4096, 4097, 8192 + 100])
        .collect();
    for key_len in [16, 24, 32] {
        let tfm = Aead::alloc("gcm(aes)", Backend::Soft).unwrap();
        for &len in &lens {
            let key = rng.bytes(key_len);
            tfm.setkey(&key).unwrap();
            let nonce = rng.bytes(12);
            let aad_len = rng.below(70);
            let aad = rng.bytes(aad_len);
            let plain = rng.bytes(len);
            let mut want = plain.clone();
            let want_tag = match key_len {
                16 => reference::<aes_gcm::Aes128Gcm>(&key, &nonce, &aad, &mut want),
                24 => reference::<aes_gcm::AesGcm<aes::Aes192, aes::cipher::consts::U12>>(
                    &key, &nonce, &aad, &mut want,
                ),
                _ => reference::<aes_gcm::Aes256Gcm>(&key, &nonce, &aad, &mut want),
            };
            let what = format!("key {key_len} aad {} len {len}", aad.len());
            // Three pieces.
            let mut text = plain.clone();
            let mut tag = [0u8; 16];
            tfm.crypt_parts(Direction::Encrypt, &nonce, &aad, &mut text, &mut tag)
                .unwrap();
            assert_eq!(text, want, "{what}");
            assert_eq!(tag.to_vec(), want_tag, "{what}");
            tfm.crypt_parts(Direction::Decrypt, &nonce, &aad, &mut text, &mut tag)
                .unwrap();
            assert_eq!(text, plain, "{what}");
            // One buffer, as the kernel lays it out.
            let mut data = [aad.clone(), plain.clone()].concat();
            tfm.crypt(Direction::Encrypt, &nonce, aad.len(), &mut data)
                .unwrap();
            assert_eq!(
                data,
                [aad.clone(), want.clone(), want_tag.clone()].concat(),
                "{what}"
            );
            tfm.crypt(Direction::Decrypt, &nonce, aad.len(), &mut data)
                .unwrap();
            assert_eq!(data, [aad.clone(), plain.clone()].concat(), "{what}");
            // A flipped bit anywhere fails, and leaves no plaintext behind.
            let mut text = want.clone();
            let mut tag: [u8; 16] = want_tag.clone().try_into().unwrap();
            let bit = rng.below(8 * (len + 16));
            if bit < 8 * len {
                text[bit / 8] ^= 1 << (bit % 8);
            } else {
                tag[(bit - 8 * len) / 8] ^= 1 << (bit % 8);
            }
            let r = tfm.crypt_parts(Direction::Decrypt, &nonce, &aad, &mut text, &mut tag);
            assert!(matches!(r, Err(AeadError::BadMessage)), "{what}: {r:?}");
            assert!(text.iter().all(|&b| b == 0), "{what}");
        }
    }
}

/// Seals `text` in place with RustCrypto's `A` directly; returns the tag.
fn reference<A>(key: &[u8], nonce: &[u8], aad: &[u8], text: &mut [u8]) -> Vec<u8>
where
    A: aes_gcm::aead::KeyInit + aes_gcm::aead::AeadInOut<NonceSize = aes::cipher::consts::U12>,
{
    A::new_from_slice(key)
        .unwrap()
        .encrypt_inout_detached(nonce.try_into().unwrap(), aad, text.into())
        .unwrap()
        .to_vec()
}
