//! The AEAD layer: the GCM specification's vectors, round trips on random
//! lengths and associated data, EBADMSG for any change to the associated
//! data, the ciphertext or the tag, and the async API's one completion.

use crate::common::Rng;
use cipherfs::aead::{selftest, Aead, AeadError, AeadRequest};
use cipherfs::skcipher::{Backend, Direction};

#[test]
fn the_gcm_specification_vectors_pass_on_soft() {
    assert_eq!(
        selftest::run(Backend::Soft).unwrap(),
        selftest::AEAD_KATS.len()
    );
    let e = Aead::alloc("gcm(aes)", Backend::Afalg).err().unwrap();
    assert!(e.to_string().contains("afalg backend has no AEAD"), "{e}");
    assert!(!Aead::has("gcm(aes)", Backend::Afalg) && Aead::has("gcm(aes)", Backend::Soft));
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
