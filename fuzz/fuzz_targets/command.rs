//! The chat command parser: any text a rep might send is understood or not, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = wecom_scrm::bot::command::parse(text);
    }
});
