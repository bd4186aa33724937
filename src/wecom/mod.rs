//! The WeCom protocol: callback crypto, the XML of callbacks, and their typed values. No I/O here.

pub mod api;
pub mod callback;
pub mod compose;
pub mod crypto;
pub mod fake;
pub mod jssdk;
pub mod xml;

#[cfg(test)]
mod crypto_vectors;
