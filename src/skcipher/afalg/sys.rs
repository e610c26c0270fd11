//! The AF_ALG system calls, for the skcipher and the aead layers alike. The
//! only `unsafe` of either lives here, each block with the reason it is sound.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// `socket(AF_ALG, SOCK_SEQPACKET)`.
pub fn alg_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with constant arguments; the result is checked
    // before it is wrapped, and the new fd is owned by nobody else.
    let fd =
        cvt(unsafe { libc::socket(libc::AF_ALG, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` is a fresh, valid descriptor that we alone own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `bind` to `{salg_type, salg_name}`.
pub fn bind(sock: &OwnedFd, salg_type: &str, salg_name: &str) -> io::Result<()> {
    // SAFETY: sockaddr_alg is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_alg = unsafe { mem::zeroed() };
    sa.salg_family = libc::AF_ALG as libc::sa_family_t;
    // Leave room for the terminating NUL the kernel expects.
    if salg_type.len() >= sa.salg_type.len() || salg_name.len() >= sa.salg_name.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    sa.salg_type[..salg_type.len()].copy_from_slice(salg_type.as_bytes());
    sa.salg_name[..salg_name.len()].copy_from_slice(salg_name.as_bytes());
    // SAFETY: `sa` is a fully initialised sockaddr_alg and the length passed is
    // its size; the fd is valid for the duration of the call.
    cvt(unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&sa as *const libc::sockaddr_alg).cast(),
            mem::size_of::<libc::sockaddr_alg>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `setsockopt(SOL_ALG, ALG_SET_KEY)`. The kernel copies the key; our buffer
/// stays the caller's to wipe.
pub fn set_key(sock: &OwnedFd, key: &[u8]) -> io::Result<()> {
    // SAFETY: `key` is a valid readable buffer of the length passed.
    cvt(unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_ALG,
            libc::ALG_SET_KEY,
            key.as_ptr().cast(),
            key.len() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `accept` an operation socket on a bound (and keyed) transform socket.
pub fn accept_op(sock: &OwnedFd) -> io::Result<OwnedFd> {
    // SAFETY: null address pointers are allowed by accept(2); the result is checked.
    let fd = cvt(unsafe {
        libc::accept4(
            sock.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    })?;
    // SAFETY: `fd` is a fresh, valid descriptor that we alone own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Room for the control messages of a request's first sendmsg: the
/// operation (u32), `struct af_alg_iv` with up to 32 IV bytes, and for AEAD
/// the associated data's length (u32). u64 keeps the cmsg alignment the
/// kernel requires.
const CMSG_WORDS: usize = 16;

/// The control messages that start a request.
pub struct Start<'a> {
    /// ALG_OP_ENCRYPT or ALG_OP_DECRYPT.
    pub op: u32,
    pub iv: &'a [u8],
    /// AEAD only: how many bytes at the start of the data are associated data.
    pub assoclen: Option<u32>,
}

/// `sendmsg` of `data`. With `start` set, the message carries ALG_SET_OP,
/// ALG_SET_IV and (AEAD) ALG_SET_AEAD_ASSOCLEN control messages (the start
/// of a request); `more` sets MSG_MORE (more data of this request follows).
pub fn send(
    sock: &OwnedFd,
    start: Option<Start<'_>>,
    data: &[u8],
    more: bool,
) -> io::Result<usize> {
    let mut cbuf = [0u64; CMSG_WORDS];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain old data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(Start { op, iv, assoclen }) = start {
        let u32_len = mem::size_of::<u32>() as u32;
        let iv_len = (mem::size_of::<libc::af_alg_iv>() + iv.len()) as u32;
        // SAFETY: CMSG_SPACE is a pure size computation.
        let space = unsafe {
            libc::CMSG_SPACE(u32_len)
                + libc::CMSG_SPACE(iv_len)
                + if assoclen.is_some() {
                    libc::CMSG_SPACE(u32_len)
                } else {
                    0
                }
        } as usize;
        if space > mem::size_of_val(&cbuf) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points at `cbuf`, which is zeroed, u64-aligned and
        // at least `space` bytes, so CMSG_FIRSTHDR/NXTHDR return headers inside
        // it with room for the data lengths declared; each is written fully
        // before sendmsg reads them.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_ALG;
            (*c).cmsg_type = libc::ALG_SET_OP;
            (*c).cmsg_len = libc::CMSG_LEN(u32_len) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u32>(), op);
            let c = libc::CMSG_NXTHDR(&msg, c);
            (*c).cmsg_level = libc::SOL_ALG;
            (*c).cmsg_type = libc::ALG_SET_IV;
            (*c).cmsg_len = libc::CMSG_LEN(iv_len) as _;
            let d = libc::CMSG_DATA(c);
            std::ptr::write_unaligned(d.cast::<u32>(), iv.len() as u32);
            std::ptr::copy_nonoverlapping(iv.as_ptr(), d.add(mem::size_of::<u32>()), iv.len());
            if let Some(assoclen) = assoclen {
                let c = libc::CMSG_NXTHDR(&msg, c);
                (*c).cmsg_level = libc::SOL_ALG;
                (*c).cmsg_type = libc::ALG_SET_AEAD_ASSOCLEN;
                (*c).cmsg_len = libc::CMSG_LEN(u32_len) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u32>(), assoclen);
            }
        }
    }
    let flags = if more { libc::MSG_MORE } else { 0 };
    // SAFETY: `msg` points at `iov` (valid for `data`) and at `cbuf`, all alive
    // for the call; the kernel only reads them.
    cvt_size(unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, flags) })
}

/// `setsockopt(SOL_ALG, ALG_SET_AEAD_AUTHSIZE)` on an AEAD transform socket:
/// the tag length travels as the option's length, with no value.
pub fn set_aead_authsize(sock: &OwnedFd, authsize: usize) -> io::Result<()> {
    // SAFETY: a null option value with a length is what this option takes;
    // the kernel reads nothing through the pointer.
    cvt(unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_ALG,
            libc::ALG_SET_AEAD_AUTHSIZE,
            std::ptr::null(),
            authsize as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `recv` of up to `buf.len()` bytes of result.
pub fn recv(sock: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid writable buffer of the length passed.
    cvt_size(unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) })
}
