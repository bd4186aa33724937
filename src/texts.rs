//! Shared pieces of user-facing text: dates and times in the org's timezone, written the way people
//! write them in Chinese chat (`11月26日 周四 15:00`).

use chrono::{DateTime, Datelike, TimeZone, Utc};
use chrono_tz::Tz;

const WEEKDAYS: [&str; 7] = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];

/// An instant (Unix milliseconds) in the org's time zone.
pub fn local(ms: i64, tz: Tz) -> DateTime<Tz> {
    tz.from_utc_datetime(
        &DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap_or_default()
            .naive_utc(),
    )
}

/// `11月26日 周四`
pub fn day(ms: i64, tz: Tz) -> String {
    let t = local(ms, tz);
    format!(
        "{}月{}日 {}",
        t.month(),
        t.day(),
        WEEKDAYS[t.weekday().num_days_from_monday() as usize]
    )
}

/// `11月26日 周四 15:00`
pub fn day_time(ms: i64, tz: Tz) -> String {
    let t = local(ms, tz);
    format!("{} {}", day(ms, tz), t.format("%H:%M"))
}

/// `2026-11-26 15:00`: sortable, for files and listings.
pub fn minute_stamp(ms: i64, tz: Tz) -> String {
    local(ms, tz).format("%Y-%m-%d %H:%M").to_string()
}

/// `11月26日`
pub fn short_day(ms: i64, tz: Tz) -> String {
    let t = local(ms, tz);
    format!("{}月{}日", t.month(), t.day())
}

/// The local calendar date, `2026-11-26`: the period key of daily jobs.
pub fn date_key(ms: i64, tz: Tz) -> String {
    local(ms, tz).format("%Y-%m-%d").to_string()
}

/// Start of the local day containing `ms`, in unix milliseconds.
pub fn start_of_day(ms: i64, tz: Tz) -> i64 {
    let t = local(ms, tz);
    tz.with_ymd_and_hms(t.year(), t.month(), t.day(), 0, 0, 0)
        .earliest()
        .map_or(ms, |d| d.timestamp_millis())
}

/// Start of a local calendar date, in unix milliseconds.
pub fn date_start(date: chrono::NaiveDate, tz: Tz) -> i64 {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    tz.from_local_datetime(&midnight)
        .earliest()
        // A date whose midnight was skipped by a clock change starts an hour later.
        .or_else(|| {
            tz.from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                .earliest()
        })
        .map_or_else(|| midnight.and_utc().timestamp_millis(), |d| d.timestamp_millis())
}

/// The local calendar date of `ms`.
pub fn local_date(ms: i64, tz: Tz) -> chrono::NaiveDate {
    local(ms, tz).date_naive()
}

/// Text cut to `max` characters with an ellipsis, for one-line previews.
pub fn preview(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{}…", cut.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_naturally_in_the_org_timezone() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        // 2026-11-26 07:00 UTC is 15:00 in Shanghai, a Thursday.
        let ms = Utc.with_ymd_and_hms(2026, 11, 26, 7, 0, 0).unwrap().timestamp_millis();
        assert_eq!(day_time(ms, tz), "11月26日 周四 15:00");
        assert_eq!(short_day(ms, tz), "11月26日");
        assert_eq!(date_key(ms, tz), "2026-11-26");
        let late = Utc.with_ymd_and_hms(2026, 11, 26, 17, 0, 0).unwrap().timestamp_millis();
        assert_eq!(date_key(late, tz), "2026-11-27", "01:00 the next day in Shanghai");
        assert_eq!(
            start_of_day(late, tz),
            Utc.with_ymd_and_hms(2026, 11, 26, 16, 0, 0).unwrap().timestamp_millis()
        );
        assert_eq!(preview("已报价，\n等回复  下周", 6), "已报价，…");
        assert_eq!(preview("已报价，\n等回复", 20), "已报价， 等回复");
    }
}
