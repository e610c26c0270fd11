//! Misuse of the API gets a clear error naming the broken constraint, the same
//! on every backend, and never a panic.

use crate::common;

use cipherfs::skcipher::{afalg, Backend, Skcipher, SkcipherError};

#[test]
fn unknown_algorithm_names_are_errors() {
    for backend in [Backend::Soft, Backend::Afalg] {
        for name in ["xts(serpent)", "", "aes", "xts(aes", "cbc(aes) "] {
            let e = Skcipher::alloc(name, backend).err().expect("must fail");
            assert!(
                matches!(e, SkcipherError::UnknownAlgorithm { .. }),
                "{name:?}: {e}"
            );
            assert!(e.to_string().contains("known algorithms: xts(aes)"), "{e}");
            assert!(!Skcipher::has(name, backend));
        }
    }
    assert!(Skcipher::has("xts(aes)", Backend::Soft));
}

#[test]
fn sizes_are_the_kernels() {
    let xts = Skcipher::alloc("xts(aes)", Backend::Soft).unwrap();
    assert_eq!((xts.ivsize(), xts.blocksize()), (16, 16));
    let cbc = Skcipher::alloc("cbc(aes)", Backend::Soft).unwrap();
    assert_eq!((cbc.ivsize(), cbc.blocksize()), (16, 16));
    let ecb = Skcipher::alloc("ecb(aes)", Backend::Soft).unwrap();
    assert_eq!((ecb.ivsize(), ecb.blocksize()), (0, 16));
}

#[test]
fn bad_keys_are_refused_and_leave_the_handle_keyless() {
    for backend in common::backends("bad_keys_are_refused") {
        let tfm = Skcipher::alloc("xts(aes)", backend).unwrap();
        tfm.setkey(&(0..64).collect::<Vec<u8>>()).unwrap();
        for len in [0, 16, 31, 33, 48, 65, 128] {
            let e = tfm.setkey(&vec![1u8; len]).unwrap_err();
            assert!(
                matches!(e, SkcipherError::BadKeyLength { len: l, .. } if l == len),
                "{e}"
            );
            assert!(
                e.to_string().contains("allowed key lengths are [32, 64]"),
                "{e}"
            );
        }
        // Use after a failed setkey: the old key is gone, as in the kernel.
        let mut buf = [0u8; 32];
        let e = tfm.encrypt_in_place(&[0; 16], &mut buf).unwrap_err();
        assert!(matches!(e, SkcipherError::NoKey), "{backend}: {e}");
        for key_len in [32, 64] {
            let e = tfm.setkey(&vec![0xabu8; key_len]).unwrap_err();
            assert!(matches!(e, SkcipherError::XtsEqualHalves), "{e}");
        }
        let cbc = Skcipher::alloc("cbc(aes)", backend).unwrap();
        for len in [16, 24, 32] {
            cbc.setkey(&vec![1u8; len]).unwrap();
        }
        assert!(cbc.setkey(&[1u8; 20]).is_err());
    }
}

#[test]
fn lengths_that_break_the_cipher_are_refused_before_any_backend() {
    for backend in common::backends("lengths_that_break_the_cipher") {
        let xts = Skcipher::alloc("xts(aes)", backend).unwrap();
        xts.setkey(&(0..64).collect::<Vec<u8>>()).unwrap();
        for len in [0, 1, 15] {
            let e = xts
                .encrypt_in_place(&[0; 16], &mut vec![0; len])
                .unwrap_err();
            assert!(
                matches!(e, SkcipherError::LengthTooShort { min: 16, .. }),
                "{e}"
            );
            assert!(
                e.to_string().contains("shorter than the minimum of 16"),
                "{e}"
            );
        }
        let cbc = Skcipher::alloc("cbc(aes)", backend).unwrap();
        cbc.setkey(&[3u8; 16]).unwrap();
        for len in [1, 17, 4095] {
            let e = cbc
                .decrypt_in_place(&[0; 16], &mut vec![0; len])
                .unwrap_err();
            assert!(
                matches!(
                    e,
                    SkcipherError::LengthNotBlockMultiple { blocksize: 16, .. }
                ),
                "{e}"
            );
        }
        cbc.encrypt_in_place(&[0; 16], &mut []).unwrap();
    }
}

#[test]
fn ivs_of_the_wrong_size_and_mismatched_buffers_are_refused() {
    for backend in common::backends("ivs_of_the_wrong_size") {
        let tfm = Skcipher::alloc("xts(aes)", backend).unwrap();
        tfm.setkey(&(0..32).collect::<Vec<u8>>()).unwrap();
        for ivlen in [0, 8, 15, 17, 32] {
            let e = tfm
                .encrypt_in_place(&vec![0; ivlen], &mut [0; 32])
                .unwrap_err();
            assert!(
                matches!(e, SkcipherError::BadIvLength { expected: 16, .. }),
                "{e}"
            );
        }
        let e = tfm.encrypt(&[0; 16], &[0; 32], &mut [0; 48]).unwrap_err();
        assert!(
            matches!(e, SkcipherError::BufferMismatch { src: 32, dst: 48 }),
            "{e}"
        );
        let ecb = Skcipher::alloc("ecb(aes)", backend).unwrap();
        ecb.setkey(&[1; 16]).unwrap();
        assert!(
            ecb.encrypt_in_place(&[0; 16], &mut [0; 16]).is_err(),
            "ecb takes no IV"
        );
        ecb.encrypt_in_place(&[], &mut [0; 16]).unwrap();
    }
}

#[test]
fn kernel_errors_are_translated() {
    // A name the kernel cannot have: ENOENT at bind, or no AF_ALG at all.
    let e = afalg::probe("xts(no-such-cipher)").unwrap_err();
    let msg = e.to_string();
    if common::afalg_available("kernel_errors_are_translated") {
        assert!(
            matches!(e, SkcipherError::KernelLacksAlgorithm { .. }),
            "{e}"
        );
        assert!(
            msg.contains("the kernel has no xts(no-such-cipher)"),
            "{msg}"
        );
    } else {
        assert!(matches!(e, SkcipherError::AfAlgUnsupported), "{e}");
        assert!(
            msg.contains("no AF_ALG skcipher interface (CONFIG_CRYPTO_USER_API_SKCIPHER); use the soft backend"),
            "{msg}"
        );
        assert_eq!(e.errno(), libc::EAFNOSUPPORT);
        let e = Skcipher::alloc("xts(aes)", Backend::Afalg).err().unwrap();
        assert!(matches!(e, SkcipherError::AfAlgUnsupported), "{e}");
    }
}

/// A report read by a program that stops early (`cipherfs backends | head
/// -1`) ends the command quietly, as SIGPIPE ends other tools (141), never
/// with a panic about a broken pipe.
#[test]
fn a_reader_that_stops_early_ends_the_report_quietly() {
    use std::process::{Command, Stdio};
    let bin = common::mount::BIN;
    if !std::path::Path::new(bin).exists() {
        eprintln!("SKIP a_reader_that_stops_early: the cipherfs binary is not at {bin}");
        return;
    }
    // The reader is gone before the command starts, so its first line
    // already meets a closed pipe, however the two are scheduled.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(bin)
        .arg("backends")
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
