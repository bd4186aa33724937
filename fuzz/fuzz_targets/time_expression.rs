//! Natural time expressions: any text is read as a future instant or refused, never a panic; an
//! accepted instant is never in the past.
#![no_main]

use chrono::TimeZone;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(2026, 11, 25, 10, 0, 0)
        .single()
        .expect("a valid instant");
    if let Ok(parsed) = wecom_scrm::bot::time::parse(text, now, 9) {
        assert!(parsed.at > now, "{text:?} was read as {} (not after now)", parsed.at);
    }
});
