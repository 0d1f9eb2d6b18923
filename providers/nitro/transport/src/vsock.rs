//! vsock connect with a deadline. The `vsock` crate only offers a blocking connect, and an
//! enclave dialling a parent that is not listening yet must not hang past its own timeout.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    connect as sys_connect, getsockopt, socket, sockopt::SocketError, AddressFamily, SockFlag,
    SockType, VsockAddr,
};

/// Connects to `cid:port`, failing with `TimedOut` after `timeout`.
pub(crate) fn connect(cid: u32, port: u32, timeout: Duration) -> io::Result<::vsock::VsockStream> {
    let fd = socket(
        AddressFamily::Vsock,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    match sys_connect(fd.as_raw_fd(), &VsockAddr::new(cid, port)) {
        Ok(()) => {}
        Err(Errno::EINPROGRESS) => {
            let ms = PollTimeout::try_from(timeout)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
            if poll(&mut fds, ms)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("vsock://{cid}:{port}: no answer within {timeout:?}"),
                ));
            }
            let err = getsockopt(&fd, SocketError)?;
            if err != 0 {
                return Err(io::Error::from_raw_os_error(err));
            }
        }
        Err(e) => return Err(e.into()),
    }
    let flags = OFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFL)?);
    fcntl(&fd, FcntlArg::F_SETFL(flags & !OFlag::O_NONBLOCK))?;
    Ok(::vsock::VsockStream::from(fd))
}
