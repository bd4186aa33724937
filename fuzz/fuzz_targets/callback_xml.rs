//! The envelope and the inner XML: any text is refused or read, never a panic, and reading the
//! same document twice gives the same fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wecom_scrm::wecom::callback::{parse_callback, parse_envelope};
use wecom_scrm::wecom::xml::parse_fields;

fuzz_target!(|data: &[u8]| {
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    assert_eq!(parse_fields(xml), parse_fields(xml));
    let _ = parse_envelope(xml);
    let _ = parse_callback(xml);
});
