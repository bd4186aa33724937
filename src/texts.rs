//! Shared pieces of user-facing text: dates and times in the org's timezone, written the way people
//! write them in Chinese chat (`11月26日 周四 15:00`).

use chrono::{DateTime, Datelike, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The language a member wrote in; answers come back in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    pub fn en(self) -> bool {
        self == Self::En
    }

    /// Chinese when the text has any CJK character, otherwise English.
    pub fn of_text(text: &str) -> Self {
        if text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)) {
            Self::Zh
        } else {
            Self::En
        }
    }
}

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

/// The instant a local wall-clock time names in `tz`: the earlier of two when the clock went back;
/// a time skipped by the clock going forward moves forward an hour.
pub fn local_instant(at: chrono::NaiveDateTime, tz: Tz) -> Option<DateTime<Tz>> {
    tz.from_local_datetime(&at)
        .earliest()
        .or_else(|| tz.from_local_datetime(&(at + chrono::Duration::hours(1))).earliest())
}

/// Start of a local calendar date, in unix milliseconds.
pub fn date_start(date: chrono::NaiveDate, tz: Tz) -> i64 {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    local_instant(midnight, tz).map_or_else(|| midnight.and_utc().timestamp_millis(), |d| d.timestamp_millis())
}

/// The local calendar date of `ms`.
pub fn local_date(ms: i64, tz: Tz) -> chrono::NaiveDate {
    local(ms, tz).date_naive()
}

/// The value of a Chinese digit as written day to day (`零`/`〇` to `九`, `两` for 2).
pub fn chinese_digit(c: char) -> Option<u32> {
    Some(match c {
        '零' | '〇' => 0,
        '一' => 1,
        '二' | '两' => 2,
        '三' => 3,
        '四' => 4,
        '五' => 5,
        '六' => 6,
        '七' => 7,
        '八' => 8,
        '九' => 9,
        _ => return None,
    })
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

/// Joins lines into parts of at most `limit` bytes, breaking only between lines; a line too long on
/// its own is cut, with `…`. Nothing else is lost or reordered.
pub fn split_lines(lines: &[String], limit: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    for line in lines {
        let line = if line.len() > limit {
            cut_to(line, limit)
        } else {
            line.clone()
        };
        if !current.is_empty() && current.len() + 1 + line.len() > limit {
            parts.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

/// `text` in at most `limit` bytes: as it is when it fits, else cut on a character boundary and
/// ended with `…`.
pub fn cut_to(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_breaks_between_lines_and_cuts_overlong_ones() {
        let lines: Vec<String> = (0..10).map(|i| format!("第{i}行：{}", "字".repeat(20))).collect();
        let parts = split_lines(&lines, 200);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.len() <= 200));
        assert_eq!(parts.join("\n"), lines.join("\n"), "nothing is lost or reordered");
        let long = vec!["很长".repeat(200)];
        let parts = split_lines(&long, 100);
        assert_eq!(parts.len(), 1);
        assert!(parts[0].len() <= 100 && parts[0].ends_with('…'));
        assert_eq!(cut_to("短", 100), "短");
    }

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
