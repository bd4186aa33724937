//! Values the service hands to browsers and must get back unchanged: sessions and sign-in states,
//! signed with HMAC-SHA256 under the web key. Every seal names its purpose, so a value sealed for
//! one use (a sign-in binding) is never accepted for another (a session).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The web key: signs and checks.
#[derive(Clone)]
pub struct Sealer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn mac(&self, purpose: &str, data: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        mac
    }

    /// `payload` with its signature: `base64url(payload).base64url(mac)`.
    pub fn seal(&self, purpose: &str, payload: &str) -> String {
        let tag = self.mac(purpose, payload.as_bytes()).finalize().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(tag))
    }

    /// The payload of a value [`Sealer::seal`] made for `purpose`; `None` if it was changed,
    /// sealed under another key or for another purpose. Checked in constant time.
    pub fn open(&self, purpose: &str, sealed: &str) -> Option<String> {
        let (payload, tag) = sealed.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(purpose, &payload).verify_slice(&tag).ok()?;
        String::from_utf8(payload).ok()
    }

    /// A short signature in lower-case hex (`bytes` of the MAC), for values that must be letters
    /// and digits only (WeCom's `state`).
    pub fn tag_hex(&self, purpose: &str, data: &str, bytes: usize) -> String {
        let tag = self.mac(purpose, data.as_bytes()).finalize().into_bytes();
        tag.iter().take(bytes).map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `tag` is [`Sealer::tag_hex`] of `data`, compared in constant time.
    pub fn check_hex(&self, purpose: &str, data: &str, tag: &str) -> bool {
        let Some(bytes) = decode_hex(tag) else {
            return false;
        };
        !bytes.is_empty() && self.mac(purpose, data.as_bytes()).verify_truncated_left(&bytes).is_ok()
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_unchanged_under_its_key_and_purpose() {
        let sealer = Sealer::new(b"0123456789abcdef0123456789abcdef");
        let sealed = sealer.seal("session", r#"{"u":"zhangsan"}"#);
        assert_eq!(sealer.open("session", &sealed).as_deref(), Some(r#"{"u":"zhangsan"}"#));
        assert_eq!(sealer.open("signin", &sealed), None);
        assert_eq!(
            Sealer::new(b"another key, also 32 bytes long!").open("session", &sealed),
            None
        );
        let (payload, tag) = sealed.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(r#"{"u":"wangzong"}"#);
        assert_eq!(sealer.open("session", &format!("{forged}.{tag}")), None);
        assert_eq!(sealer.open("session", payload), None);
        assert_eq!(sealer.open("session", "not.sealed"), None);
    }

    #[test]
    fn hex_tags_check_in_both_directions() {
        let sealer = Sealer::new(b"k");
        let tag = sealer.tag_hex("state", "abc", 16);
        assert_eq!(tag.len(), 32);
        assert!(sealer.check_hex("state", "abc", &tag));
        assert!(!sealer.check_hex("state", "abd", &tag));
        assert!(!sealer.check_hex("other", "abc", &tag));
        assert!(!sealer.check_hex("state", "abc", ""));
        assert!(!sealer.check_hex("state", "abc", "zz"));
    }
}
