//! The decrypt path on hostile input: any `Encrypt` value is refused or decrypted, never a panic,
//! and whatever is encrypted decrypts back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;
use wecom_scrm::wecom::crypto::WecomCrypto;

fuzz_target!(|data: &[u8]| {
    let crypto = WecomCrypto::new(
        SecretString::from("QDG6eK"),
        "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        "wx5823bf96d3bd56c7",
    )
    .expect("the sample key is valid");
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crypto.decrypt(text);
        let _ = crypto.verify_and_decrypt(text, "1700000000", "1372623149", text);
        let sealed = crypto.encrypt(text);
        assert_eq!(crypto.decrypt(&sealed).expect("a round trip"), text);
    }
});
