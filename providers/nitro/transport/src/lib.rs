//! Endpoints and streams over vsock, Unix and TCP; proxying and process supervision
