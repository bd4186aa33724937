//! WeCom callback cryptography (WXBizMsgCrypt): SHA-1 signatures over the sorted
//! `[token, timestamp, nonce, encrypt]`, and AES-256-CBC over a framed plaintext
//! `random(16) || u32_be(len) || msg || receive_id`, padded PKCS#7-style to a multiple of **32**.
//!
//! Pure functions, no I/O. Every check happens before any slicing, so hostile input yields an
//! error, never a panic.

use aes::Aes256;
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, InnerIvInit, KeyInit};
use secrecy::{ExposeSecret, SecretString};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// WeCom pads to 32 bytes, not to the AES block size; pad values are therefore 1..=32.
const PAD_BLOCK: usize = 32;
const RANDOM_LEN: usize = 16;
const HEADER_LEN: usize = RANDOM_LEN + 4;

/// Official keys have non-zero trailing bits in their 43rd character, which a strict decoder rejects.
const LENIENT_KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a callback could not be verified or decrypted. The HTTP layer maps
/// [`CryptoError::Signature`] to 401 and everything else to 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("signature does not match")]
    Signature,
    #[error("envelope is malformed or incomplete")]
    Envelope,
    #[error("ciphertext is not valid base64")]
    Base64,
    #[error("ciphertext length {0} is not a non-zero multiple of 16")]
    CipherLength(usize),
    #[error("invalid padding after decryption")]
    Padding,
    #[error("declared message length does not fit the decrypted frame")]
    FrameLength,
    #[error("decrypted message is not valid UTF-8")]
    Utf8,
    #[error("receive id in the message does not match the configured corp id")]
    ReceiveId,
}

/// Why an EncodingAESKey was refused at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("must be 43 characters of base64, got {0} characters")]
    Length(usize),
    #[error("must be 43 characters of base64 ([A-Za-z0-9+/]), found {0:?}")]
    Alphabet(char),
    #[error("does not decode to a 32-byte AES key")]
    Decode,
}

/// Decodes a 43-character EncodingAESKey into the 32-byte AES key.
pub fn decode_aes_key(encoding_aes_key: &str) -> Result<[u8; 32], KeyError> {
    let chars = encoding_aes_key.chars().count();
    if chars != 43 {
        return Err(KeyError::Length(chars));
    }
    if let Some(bad) = encoding_aes_key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '+' || *c == '/'))
    {
        return Err(KeyError::Alphabet(bad));
    }
    let bytes = LENIENT_KEY_ENGINE
        .decode(encoding_aes_key)
        .map_err(|_| KeyError::Decode)?;
    bytes.try_into().map_err(|_| KeyError::Decode)
}

/// The crypto context of one WeCom app: its callback token, its AES key and the receive id
/// (the corp id for a self-built app) that every decrypted frame must carry.
#[derive(Clone)]
pub struct WecomCrypto {
    token: SecretString,
    key: [u8; 32],
    /// The key schedule, expanded once: expanding it for every callback costs as much as
    /// decrypting one.
    cipher: Aes256,
    receive_id: String,
}

impl std::fmt::Debug for WecomCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WecomCrypto")
            .field("token", &"[REDACTED]")
            .field("key", &"[REDACTED]")
            .field("receive_id", &self.receive_id)
            .finish()
    }
}

/// A lowercase hex SHA-1 signature.
pub type Signature = [u8; 40];

impl WecomCrypto {
    /// The crypto of the configured app; a key WeCom could not have issued is a configuration error
    /// naming `wecom.encoding_aes_key`.
    pub fn from_settings(config: &crate::config::WecomConfig) -> Result<Self, crate::config::ConfigError> {
        use secrecy::ExposeSecret as _;
        Self::new(
            config.token.clone(),
            config.encoding_aes_key.expose_secret().trim(),
            config.corp_id.trim(),
        )
        .map_err(|e| crate::config::ConfigError::single("wecom.encoding_aes_key", e.to_string()))
    }

    pub fn new(token: SecretString, encoding_aes_key: &str, receive_id: impl Into<String>) -> Result<Self, KeyError> {
        let key = decode_aes_key(encoding_aes_key)?;
        Ok(Self {
            token,
            cipher: Aes256::new_from_slice(&key).expect("a 32-byte key is a valid AES-256 key"),
            key,
            receive_id: receive_id.into(),
        })
    }

    pub fn receive_id(&self) -> &str {
        &self.receive_id
    }

    /// `sha1(sort([token, timestamp, nonce, encrypt]).concat())` as lowercase hex.
    pub fn signature(&self, timestamp: &str, nonce: &str, encrypt: &str) -> Signature {
        let mut parts = [
            self.token.expose_secret().as_bytes(),
            timestamp.as_bytes(),
            nonce.as_bytes(),
            encrypt.as_bytes(),
        ];
        parts.sort_unstable();
        let mut hasher = Sha1::new();
        for part in parts {
            hasher.update(part);
        }
        hex_lower(&hasher.finalize())
    }

    /// Checks `given` against the expected signature in constant time.
    pub fn verify_signature(
        &self,
        given: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
    ) -> Result<(), CryptoError> {
        let expected = self.signature(timestamp, nonce, encrypt);
        if constant_time_eq(&expected, given.as_bytes()) {
            Ok(())
        } else {
            Err(CryptoError::Signature)
        }
    }

    /// Verifies the signature, then decrypts. The order matters: nothing is decrypted for an
    /// unauthenticated request.
    pub fn verify_and_decrypt(
        &self,
        signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
    ) -> Result<String, CryptoError> {
        self.verify_signature(signature, timestamp, nonce, encrypt)?;
        self.decrypt(encrypt)
    }

    /// Decrypts a base64 `Encrypt` value and returns the framed message after checking padding,
    /// length and receive id.
    pub fn decrypt(&self, encrypt: &str) -> Result<String, CryptoError> {
        let mut buf = base64_simd::STANDARD
            .decode_to_vec(encrypt)
            .map_err(|_| CryptoError::Base64)?;
        if buf.is_empty() || buf.len() % 16 != 0 {
            return Err(CryptoError::CipherLength(buf.len()));
        }
        let plain_len = {
            let decryptor = cbc::Decryptor::<Aes256>::inner_iv_slice_init(self.cipher.clone(), &self.key[..16])
                .expect("a 16-byte iv is a valid length");
            let plain = decryptor
                .decrypt_padded::<NoPadding>(&mut buf)
                .map_err(|_| CryptoError::Padding)?;
            let unpadded = unpad(plain)?;
            if unpadded < HEADER_LEN {
                return Err(CryptoError::FrameLength);
            }
            unpadded
        };
        let msg_len = u32::from_be_bytes(buf[RANDOM_LEN..HEADER_LEN].try_into().expect("4 bytes")) as usize;
        let msg_end = HEADER_LEN.checked_add(msg_len).ok_or(CryptoError::FrameLength)?;
        if msg_end > plain_len {
            return Err(CryptoError::FrameLength);
        }
        let receive_id = &buf[msg_end..plain_len];
        if !bool::from(receive_id.ct_eq(self.receive_id.as_bytes())) {
            return Err(CryptoError::ReceiveId);
        }
        buf.copy_within(HEADER_LEN..msg_end, 0);
        buf.truncate(msg_len);
        String::from_utf8(buf).map_err(|_| CryptoError::Utf8)
    }

    /// Encrypts `msg` the way WeCom does, with the given 16 random bytes (fixed in tests, fresh from
    /// the OS otherwise). Returns the base64 ciphertext.
    pub fn encrypt_with_random(&self, msg: &str, random: &[u8; RANDOM_LEN]) -> String {
        let frame_len = HEADER_LEN + msg.len() + self.receive_id.len();
        let pad = PAD_BLOCK - frame_len % PAD_BLOCK;
        let mut buf = Vec::with_capacity(frame_len + pad);
        buf.extend_from_slice(random);
        let msg_len = u32::try_from(msg.len()).expect("a WeCom message is far smaller than 4 GiB");
        buf.extend_from_slice(&msg_len.to_be_bytes());
        buf.extend_from_slice(msg.as_bytes());
        buf.extend_from_slice(self.receive_id.as_bytes());
        buf.resize(frame_len + pad, pad as u8);
        let encryptor = cbc::Encryptor::<Aes256>::inner_iv_slice_init(self.cipher.clone(), &self.key[..16])
            .expect("a 16-byte iv is a valid length");
        let total = buf.len();
        let cipher = encryptor
            .encrypt_padded::<NoPadding>(&mut buf, total)
            .expect("the buffer is already a multiple of the block size");
        STANDARD.encode(cipher)
    }

    /// Encrypts with fresh random bytes.
    pub fn encrypt(&self, msg: &str) -> String {
        self.encrypt_with_random(msg, &rand::random())
    }

    /// Builds the signed, encrypted envelope of a passive reply (or of a callback body when we play
    /// WeCom in tests and the fake server): the four fields official SDKs emit, one per line.
    pub fn encrypt_reply_with_random(
        &self,
        msg: &str,
        timestamp: &str,
        nonce: &str,
        random: &[u8; RANDOM_LEN],
    ) -> String {
        let encrypt = self.encrypt_with_random(msg, random);
        let signature = self.signature(timestamp, nonce, &encrypt);
        let signature = std::str::from_utf8(&signature).expect("hex is ASCII");
        format!(
            "<xml>\n<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n<MsgSignature><![CDATA[{signature}]]></MsgSignature>\n<TimeStamp>{timestamp}</TimeStamp>\n<Nonce><![CDATA[{nonce}]]></Nonce>\n</xml>"
        )
    }
}

/// A callback as WeCom delivers it: the envelope body and the `msg_signature` for the query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCallback {
    pub msg_signature: String,
    pub timestamp: String,
    pub nonce: String,
    pub body: String,
}

impl WecomCrypto {
    /// Encrypts and signs an inner message exactly as WeCom does when it calls us (used by the fake
    /// WeCom, `simulate` and tests).
    pub fn seal_callback(&self, inner_xml: &str, agent_id: &str, timestamp: &str, nonce: &str) -> SealedCallback {
        let encrypt = self.encrypt(inner_xml);
        let signature = self.signature(timestamp, nonce, &encrypt);
        SealedCallback {
            msg_signature: String::from_utf8(signature.to_vec()).expect("hex is ASCII"),
            timestamp: timestamp.to_owned(),
            nonce: nonce.to_owned(),
            body: format!(
                "<xml><ToUserName><![CDATA[{}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[{agent_id}]]></AgentID></xml>",
                self.receive_id
            ),
        }
    }

    /// Opens a passive reply envelope (the inverse of [`WecomCrypto::encrypt_reply_with_random`]):
    /// checks its signature and returns the decrypted inner XML.
    pub fn open_reply(&self, reply_xml: &str) -> Result<String, CryptoError> {
        let fields = super::xml::parse_fields(reply_xml).map_err(|_| CryptoError::Envelope)?;
        let (Some(encrypt), Some(signature), Some(timestamp), Some(nonce)) = (
            fields.non_empty("Encrypt"),
            fields.non_empty("MsgSignature"),
            fields.non_empty("TimeStamp"),
            fields.non_empty("Nonce"),
        ) else {
            return Err(CryptoError::Envelope);
        };
        self.verify_and_decrypt(signature, timestamp, nonce, encrypt)
    }
}

/// Returns the length without padding; accepts pad values 1..=32 whose bytes all agree.
fn unpad(plain: &[u8]) -> Result<usize, CryptoError> {
    let pad = *plain.last().ok_or(CryptoError::Padding)? as usize;
    if !(1..=PAD_BLOCK).contains(&pad) || pad > plain.len() {
        return Err(CryptoError::Padding);
    }
    let (body, padding) = plain.split_at(plain.len() - pad);
    if padding.iter().any(|&b| b as usize != pad) {
        return Err(CryptoError::Padding);
    }
    Ok(body.len())
}

/// Equal in time independent of where the first difference is: every byte is looked at, and
/// only the folded difference is compared.
fn constant_time_eq(expected: &Signature, given: &[u8]) -> bool {
    let Ok(given) = <&Signature>::try_from(given) else {
        return false;
    };
    let difference = expected.iter().zip(given).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    bool::from(difference.ct_eq(&0))
}

/// The SHA-1 of `data` in lowercase hex, as WeCom's signatures are written.
pub fn sha1_hex(data: impl AsRef<[u8]>) -> String {
    let digest = hex_lower(&Sha1::digest(data.as_ref()));
    String::from_utf8_lossy(&digest).into_owned()
}

fn hex_lower(bytes: &[u8]) -> Signature {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 40];
    for (i, b) in bytes.iter().take(20).enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 0x0f) as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cbc::cipher::KeyIvInit;

    fn crypto() -> WecomCrypto {
        WecomCrypto::new(
            SecretString::from("QDG6eK"),
            "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
            "wx5823bf96d3bd56c7",
        )
        .unwrap()
    }

    #[test]
    fn key_errors_name_what_is_wrong() {
        assert_eq!(decode_aes_key("short"), Err(KeyError::Length(5)));
        let with_dash = format!("{}-", &"a".repeat(42));
        assert_eq!(decode_aes_key(&with_dash), Err(KeyError::Alphabet('-')));
        assert!(decode_aes_key("jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C").is_ok());
    }

    #[test]
    fn unpad_rejects_out_of_range_and_inconsistent_padding() {
        assert_eq!(unpad(&[1, 2, 3, 0]), Err(CryptoError::Padding));
        assert_eq!(unpad(&[7; 4]), Err(CryptoError::Padding));
        assert_eq!(unpad(&[9, 2, 3, 2]), Err(CryptoError::Padding));
        assert_eq!(unpad(&[9, 9, 2, 2]), Ok(2));
        assert_eq!(unpad(&[33; 64]), Err(CryptoError::Padding));
        assert_eq!(unpad(&[32; 64]), Ok(32));
    }

    #[test]
    fn forged_length_is_an_error_not_a_panic() {
        let c = crypto();
        // A frame whose declared length exceeds the plaintext.
        let mut frame = vec![b'r'; 16];
        frame.extend_from_slice(&u32::MAX.to_be_bytes());
        frame.extend_from_slice(b"x");
        let pad = 32 - frame.len() % 32;
        frame.resize(frame.len() + pad, pad as u8);
        let total = frame.len();
        let enc = cbc::Encryptor::<Aes256>::new_from_slices(&c.key, &c.key[..16]).unwrap();
        let cipher = enc.encrypt_padded::<NoPadding>(&mut frame, total).unwrap().to_vec();
        assert_eq!(c.decrypt(&STANDARD.encode(cipher)), Err(CryptoError::FrameLength));
    }

    #[test]
    fn round_trip_with_chinese_text() {
        let c = crypto();
        let msg = "<xml><Content><![CDATA[明天下午3点 回电话]]></Content></xml>";
        let enc = c.encrypt(msg);
        assert_eq!(c.decrypt(&enc).unwrap(), msg);
    }

    #[test]
    fn wrong_receive_id_is_refused() {
        let ours = crypto();
        let theirs = WecomCrypto::new(
            SecretString::from("QDG6eK"),
            "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
            "ww1436e0e65a779aee",
        )
        .unwrap();
        assert_eq!(ours.decrypt(&theirs.encrypt("<xml/>")), Err(CryptoError::ReceiveId));
    }

    #[test]
    fn bad_base64_and_lengths() {
        let c = crypto();
        assert_eq!(c.decrypt("***"), Err(CryptoError::Base64));
        assert_eq!(c.decrypt(""), Err(CryptoError::CipherLength(0)));
        assert_eq!(
            c.decrypt(&STANDARD.encode([0u8; 15])),
            Err(CryptoError::CipherLength(15))
        );
    }
}
