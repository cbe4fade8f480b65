//! The one TLS stack of every network client: rustls with the ring
//! provider, installed once per process before the first client is built.

/// Installs ring as the process's rustls provider (again is harmless).
pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
