//! The real Nitro Security Module, reached through `/dev/nsm` inside a Nitro Enclave.

use crate::error::NsmError;
use crate::request::{AttestationRequest, Nsm};

/// Path of the NSM device inside an enclave.
pub const NSM_DEVICE_PATH: &str = "/dev/nsm";

/// The NSM device of the running enclave.
///
/// Requests are serialized through a mutex: the driver takes one request per ioctl and there
/// is no benefit in racing them. [`DeviceNsm::open`] opens the device at once;
/// [`DeviceNsm::lazy`] at the first request (and again after a failed attempt), so that an
/// enclave can check its requests before it needs the device.
#[derive(Debug)]
pub struct DeviceNsm {
    #[cfg(target_os = "linux")]
    fd: std::sync::Mutex<Option<i32>>,
}

#[cfg(target_os = "linux")]
fn open_device() -> Result<i32, NsmError> {
    // Probe first: `nsm_init` only returns -1, the probe tells the operator why.
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(NSM_DEVICE_PATH)
        .map_err(|e| NsmError::DeviceUnavailable {
            path: NSM_DEVICE_PATH,
            reason: e.to_string(),
        })?;
    let fd = aws_nitro_enclaves_nsm_api::driver::nsm_init();
    if fd < 0 {
        return Err(NsmError::DeviceUnavailable {
            path: NSM_DEVICE_PATH,
            reason: "the NSM driver could not open the device".into(),
        });
    }
    Ok(fd)
}

#[cfg(target_os = "linux")]
impl DeviceNsm {
    /// Opens the NSM. Fails with [`NsmError::DeviceUnavailable`] outside a Nitro Enclave.
    pub fn open() -> Result<Self, NsmError> {
        Ok(Self {
            fd: std::sync::Mutex::new(Some(open_device()?)),
        })
    }

    /// The NSM, opened at the first request; outside a Nitro Enclave every request fails
    /// with [`NsmError::DeviceUnavailable`].
    pub fn lazy() -> Self {
        Self {
            fd: std::sync::Mutex::new(None),
        }
    }
}

#[cfg(not(target_os = "linux"))]
impl DeviceNsm {
    /// Opens the NSM. Always fails here: Nitro Enclaves run Linux.
    pub fn open() -> Result<Self, NsmError> {
        Err(NsmError::DeviceUnavailable {
            path: NSM_DEVICE_PATH,
            reason: "Nitro Enclaves run Linux; this build is for another OS".into(),
        })
    }

    /// The NSM, opened at the first request; here every request fails.
    pub fn lazy() -> Self {
        Self {}
    }
}

#[cfg(target_os = "linux")]
impl Nsm for DeviceNsm {
    fn attestation(&self, request: &AttestationRequest) -> Result<Vec<u8>, NsmError> {
        use aws_nitro_enclaves_nsm_api::api::{Request, Response};
        use serde_bytes::ByteBuf;

        request.validate()?;
        let mut handle = self
            .fd
            .lock()
            .map_err(|_| NsmError::Device("the NSM handle was poisoned by a panic".into()))?;
        let fd = match *handle {
            Some(fd) => fd,
            None => *handle.insert(open_device()?),
        };
        let response = aws_nitro_enclaves_nsm_api::driver::nsm_process_request(
            fd,
            Request::Attestation {
                user_data: request.user_data.clone().map(ByteBuf::from),
                nonce: request.nonce.clone().map(ByteBuf::from),
                public_key: request.public_key.clone().map(ByteBuf::from),
            },
        );
        match response {
            Response::Attestation { document } => Ok(document),
            Response::Error(code) => Err(NsmError::Device(format!("{code:?}"))),
            other => Err(NsmError::UnexpectedResponse(format!("{other:?}"))),
        }
    }
}

#[cfg(not(target_os = "linux"))]
impl Nsm for DeviceNsm {
    fn attestation(&self, _request: &AttestationRequest) -> Result<Vec<u8>, NsmError> {
        Err(NsmError::DeviceUnavailable {
            path: NSM_DEVICE_PATH,
            reason: "Nitro Enclaves run Linux; this build is for another OS".into(),
        })
    }
}

#[cfg(target_os = "linux")]
impl Drop for DeviceNsm {
    fn drop(&mut self) {
        if let Ok(Some(fd)) = self.fd.get_mut() {
            aws_nitro_enclaves_nsm_api::driver::nsm_exit(*fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_fails_clearly_without_the_device() {
        if std::path::Path::new(NSM_DEVICE_PATH).exists() {
            return; // running inside an enclave: nothing to test here
        }
        let err = DeviceNsm::open().unwrap_err();
        assert!(matches!(err, NsmError::DeviceUnavailable { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("/dev/nsm") && msg.contains("Nitro Enclave"),
            "{msg}"
        );
    }

    #[test]
    fn lazy_opens_at_the_first_request_and_fails_clearly_without_the_device() {
        if std::path::Path::new(NSM_DEVICE_PATH).exists() {
            return;
        }
        let nsm = DeviceNsm::lazy();
        assert!(!nsm.is_test_stand_in());
        for _ in 0..2 {
            let err = nsm.attestation(&AttestationRequest::new()).unwrap_err();
            assert!(matches!(err, NsmError::DeviceUnavailable { .. }), "{err}");
        }
        // The size limits are checked before the device is needed.
        let err = nsm
            .attestation(&AttestationRequest::new().with_user_data(vec![0; 513]))
            .unwrap_err();
        assert!(matches!(err, NsmError::FieldTooLong { .. }), "{err}");
    }
}
