//! Natural time expressions at the start of a chat message, in Chinese or English: `明天下午3点
//! 回电话`, `in 2h call back`, `下周一上午10点半`, `12月1号`, `3pm tomorrow`. [`parse`] returns the
//! instant (in the org's timezone) and the rest of the text.
//!
//! An expression is a duration (`10分钟后`, `in 90 min`: now plus exactly that) or any of a day
//! (`明天`, `周五`, `下周三`, `12月1日`, `2026-12-05`, `dec 1`), a part of the day (`下午`, `tonight`)
//! and a clock time (`3点半`, `三点一刻`, `15:30`, `9:30am`), in either order. Rules:
//! - Weeks start on Monday; `下周X` / `next X` is X in the next calendar week.
//! - A bare weekday or time means its next occurrence still in the future (at 10:00 `下午3点` and
//!   `3点` are today 15:00); an hour from 1 to 6 without a part of the day is read as afternoon.
//! - A date without a year is its next occurrence (it may roll into next year); a day without a
//!   time gets the default hour.
//! - Anything in the past, and anything that is not a real time, is an error — never a silently
//!   wrong reminder.

use chrono::{DateTime, Datelike, Days, Duration, Months, NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;

use super::holidays::{self, Holiday};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("no time found at the start")]
    NotFound,
    #[error("that time has already passed")]
    Past,
    #[error("not a valid time: {0}")]
    Invalid(String),
    /// What follows the time reads as a time too (`3小时后 下午2点`): which one is meant is not
    /// clear, so nothing is stored.
    #[error("two times: {0}")]
    Ambiguous(String),
    /// A day said relative to another without saying how far (`圣诞节前`, `明天之后`).
    #[error("not one day: {0}")]
    Vague(String),
}

impl TimeError {
    /// The message shown to a rep, in Chinese.
    pub fn message_zh(&self) -> String {
        match self {
            Self::NotFound => "没看懂时间。可以这样写：明天下午3点、周五10点、3天后、12月1号、in 2h".into(),
            Self::Past => "这个时间已经过去了，请换一个将来的时间。".into(),
            Self::Invalid(what) => format!("时间不对：{what}"),
            Self::Ambiguous(then) => {
                format!("「{then}」也像是时间，我不确定你指哪个，没有保存。请把时间写在一起，例如：3天后下午2点 回电话")
            }
            Self::Vague(what) => format!("「{what}」是哪一天？没有保存。请写具体的日期和时间，例如：12月24日 上午10点"),
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            Self::NotFound => {
                "I could not find a time. Try: tomorrow 3pm, friday 10:00, in 2h, dec 1, 明天下午3点".into()
            }
            Self::Past => "That time has already passed; please pick one in the future.".into(),
            Self::Invalid(what) => format!("Not a valid time: {what}"),
            Self::Ambiguous(then) => format!(
                "“{then}” reads as a time too, so I am not sure which you mean; nothing was saved. \
                 Write the time in one piece, e.g. `tomorrow 3pm call back`."
            ),
            Self::Vague(what) => {
                format!("Which day is “{what}”? Nothing was saved. Give the date and time, e.g. `dec 24 10am`.")
            }
        }
    }
}

/// The parsed instant and the rest of the text after the expression (trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub at: DateTime<Tz>,
    pub rest: String,
}

/// Parses the time expression at the start of `text`. `default_hour` is used for a day without a
/// time. Full-width characters (as Chinese input methods type them: `３点`) read as their ASCII
/// forms; the rest is cut from the text as written.
pub fn parse(text: &str, now: DateTime<Tz>, default_hour: u32) -> Result<Parsed, TimeError> {
    let normal = Normalized::new(text);
    let mut cur = Cursor::new(&normal.text);
    let spec = read_spec(&mut cur)?;
    let at = resolve(&spec, now, default_hour)?;
    if at <= now {
        return Err(TimeError::Past);
    }
    // Never silently wrong: when what follows still reads as a time, which one is meant is unclear.
    let mut after = cur.clone();
    after.skip_glue();
    let leftover_start = after.pos;
    if read_spec(&mut after).is_ok() && after.pos > leftover_start {
        let then = &text[normal.original(leftover_start)..normal.original(after.pos)];
        return Err(TimeError::Ambiguous(then.trim().to_owned()));
    }
    // "圣诞节前", "明天之后": a day relative to the one read, not that day.
    if spec.span.is_none() {
        let mut relation = cur.clone();
        relation.skip_spaces();
        let vague = relation
            .eat_any(&["之前", "以前", "前", "之后", "以后", "后"])
            .is_some()
            || relation.eat_any_word(&["before", "after"]).is_some();
        if vague {
            let what = &text[..normal.original(relation.pos)];
            return Err(TimeError::Vague(what.trim().to_owned()));
        }
    }
    Ok(Parsed {
        at,
        rest: trim_rest(&text[normal.original(cur.pos)..]),
    })
}

/// A time at the start of `text`, or — when none is there — one that ends it, as reps also write
/// (`给王总回电话 明天下午3点`, `call back tomorrow 3pm`): then the text before it is the rest. A time
/// in the middle of the text is not looked for.
pub fn parse_anywhere(text: &str, now: DateTime<Tz>, default_hour: u32) -> Result<Parsed, TimeError> {
    match parse(text, now, default_hour) {
        Err(TimeError::NotFound) => {}
        other => return other,
    }
    let mut previous: Option<char> = None;
    for (i, c) in text.char_indices() {
        let before = previous.replace(c);
        // Only where a word may start: after a space or punctuation, or between Chinese characters
        // (never inside an English word: "what 4" holds no "at 4").
        let boundary =
            before.is_some_and(|b| b.is_whitespace() || b.is_ascii_punctuation() || !b.is_ascii() || !c.is_ascii());
        if !boundary || c.is_whitespace() {
            continue;
        }
        if let Ok(found) = parse(&text[i..], now, default_hour)
            && found.rest.is_empty()
        {
            let head = text[..i].trim_end_matches(|c: char| c.is_whitespace() || matches!(c, ',' | '，' | '、'));
            return Ok(Parsed {
                at: found.at,
                rest: head.trim().to_owned(),
            });
        }
    }
    Err(TimeError::NotFound)
}

/// A time anywhere in `text` (the first one that reads as a future instant), with the text around
/// it as the task: `客户说明天下午3点再打过来` → tomorrow 15:00, `客户说再打过来`. For offers on free
/// text; commands read the time at the start or the end ([`parse_anywhere`]).
pub fn find(text: &str, now: DateTime<Tz>, default_hour: u32) -> Option<(DateTime<Tz>, String)> {
    let mut previous: Option<char> = None;
    for (i, c) in text.char_indices() {
        let before = previous.replace(c);
        let boundary =
            before.is_none_or(|b| b.is_whitespace() || b.is_ascii_punctuation() || !b.is_ascii() || !c.is_ascii());
        if !boundary || c.is_whitespace() {
            continue;
        }
        if let Ok(found) = parse(&text[i..], now, default_hour) {
            let head = text[..i].trim_end_matches(|c: char| c.is_whitespace() || matches!(c, ',' | '，' | '、'));
            let task = match (head.trim(), found.rest.as_str()) {
                ("", rest) => rest.to_owned(),
                (head, "") => head.to_owned(),
                (head, rest) if head.is_ascii() && rest.is_ascii() => format!("{head} {rest}"),
                (head, rest) => format!("{head}{rest}"),
            };
            return Some((found.at, task));
        }
    }
    None
}

/// The text as the parser reads it: each character in its NFKC form where that is one character
/// (full-width digits, letters, colons and spaces become ASCII), with the original byte offset of
/// every byte, so positions map back to what the rep wrote.
struct Normalized {
    text: String,
    origin: Vec<usize>,
}

impl Normalized {
    fn new(text: &str) -> Self {
        use unicode_normalization::UnicodeNormalization;
        let mut normal = String::with_capacity(text.len());
        let mut origin = Vec::with_capacity(text.len() + 1);
        for (offset, c) in text.char_indices() {
            // ASCII and the common CJK ideographs are their own NFKC forms: skip the lookup.
            let read = if c.is_ascii() || ('\u{4E00}'..='\u{9FFF}').contains(&c) {
                c
            } else {
                let mut forms = std::iter::once(c).nfkc();
                match (forms.next(), forms.next()) {
                    (Some(one), None) => one,
                    _ => c,
                }
            };
            normal.push(read);
            origin.extend(std::iter::repeat_n(offset, read.len_utf8()));
        }
        origin.push(text.len());
        Self { text: normal, origin }
    }

    /// The offset in the original text of the character at `pos` in the normalised one.
    fn original(&self, pos: usize) -> usize {
        self.origin[pos]
    }
}

/// The rest of a message after its time, without the separators that joined them.
fn trim_rest(rest: &str) -> String {
    rest.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ',' | '，' | '、' | ':' | '：' | '-' | '—'))
        .trim_end()
        .to_owned()
}

/// What the text said, before it is turned into an instant.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Spec {
    span: Option<Span>,
    day: Option<Day>,
    period: Option<Period>,
    clock: Option<Clock>,
}

/// A clock time as said: `exact` when it can only mean one hour (`09:30`, `15点`, `3pm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Clock {
    hour: u32,
    minute: u32,
    exact: bool,
}

/// A time from now: exactly this long, or whole days or calendar months on (`两个月后` is the same
/// day two months on, clamped to the month's end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Span {
    Exact(Duration),
    Days(i64),
    Months(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Day {
    /// Days from today (negative: in the past).
    Offset(i64),
    /// A weekday: `None` the next occurrence, `Some(0)` this week, `Some(1)` next week, …
    Weekday(Weekday, Option<i64>),
    /// A date; without a year it is the next occurrence.
    Date { year: Option<i32>, month: u32, day: u32 },
    /// A date in the year `years` from this one (`明年1月5号`).
    DateInYear { years: i32, month: u32, day: u32 },
    /// A day of the month `months` from now (`下个月1号`).
    InMonth { months: u32, day: u32 },
    /// Today's date this many calendar months on (`两个月后下午3点`), clamped to the month's end.
    MonthsOn(u32),
    /// A part of a month (`月底`, `下个月初`, `end of next month`): `months` ahead when said, else
    /// this month's, or next month's when this month's is over.
    MonthPart { months: Option<u32>, part: MonthPart },
    /// A holiday's next date (`中秋`, `元旦`, `christmas`).
    Holiday(Holiday),
}

/// Which day of a month a part of it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MonthPart {
    /// 月初, start of the month: the 1st.
    Start,
    /// 中旬, mid-month: the 15th.
    Middle,
    /// 下旬: the 21st.
    LateThird,
    /// 月底, 月末, end of the month: the last day.
    End,
}

impl MonthPart {
    fn date(self, first_of_month: NaiveDate) -> NaiveDate {
        match self {
            Self::Start => first_of_month,
            Self::Middle => first_of_month + Days::new(14),
            Self::LateThird => first_of_month + Days::new(20),
            Self::End => first_of_month + Months::new(1) - Days::new(1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Period {
    /// 凌晨: the small hours.
    SmallHours,
    /// 早上, 上午, am.
    Morning,
    /// 中午, noon.
    Noon,
    /// 下午, pm.
    Afternoon,
    /// 傍晚.
    Dusk,
    /// 晚上, tonight.
    Evening,
}

impl Period {
    fn default_time(self, default_hour: u32) -> (u32, u32) {
        match self {
            Self::SmallHours => (6, 0),
            Self::Morning => (if default_hour < 12 { default_hour } else { 9 }, 0),
            Self::Noon => (12, 0),
            Self::Afternoon => (14, 0),
            Self::Dusk => (18, 0),
            Self::Evening => (20, 0),
        }
    }

    /// The 24-hour clock hour for `hour` said in this part of the day, if it fits.
    fn hour24(self, hour: u32) -> Option<u32> {
        match self {
            Self::SmallHours => match hour {
                12 => Some(0),
                0..=6 => Some(hour),
                _ => None,
            },
            Self::Morning => match hour {
                0..=12 => Some(hour),
                _ => None,
            },
            Self::Noon => match hour {
                11 | 12 => Some(hour),
                1..=2 => Some(hour + 12),
                13..=14 => Some(hour),
                _ => None,
            },
            Self::Afternoon | Self::Dusk => match hour {
                1..=11 => Some(hour + 12),
                12..=23 => Some(hour),
                _ => None,
            },
            Self::Evening => match hour {
                1..=11 => Some(hour + 12),
                // 晚上12点 is midnight, the end of that day.
                12 | 24 => Some(24),
                13..=23 => Some(hour),
                0 => Some(24),
                _ => None,
            },
        }
    }
}

fn read_spec(cur: &mut Cursor<'_>) -> Result<Spec, TimeError> {
    cur.skip_spaces();
    let mut spec = Spec::default();
    if let Some(span) = duration(cur)? {
        // Days or months on, then a time of day: that day at that time (`3天后下午2点`).
        let day = match span {
            Span::Days(days) => Some(Day::Offset(days)),
            Span::Months(months) => Some(Day::MonthsOn(months)),
            Span::Exact(_) => None,
        };
        let mark = cur.pos;
        let mut probe = cur.clone();
        probe.skip_spaces();
        let mut probe_period = None;
        let time_follows =
            day.is_some() && (period(&mut probe.clone()).is_some() || clock(&mut probe, &mut probe_period)?.is_some());
        if !time_follows {
            cur.pos = mark;
            spec.span = Some(span);
            return Ok(spec);
        }
        spec.day = day;
    }
    loop {
        cur.skip_spaces();
        let mark = cur.pos;
        // English glue between (or before) parts: "at 3pm", "tomorrow at 3pm", "monday, 9am".
        let at = cur.eat_word("at");
        if at || cur.eat_word("on") || (spec != Spec::default() && cur.eat(",")) {
            cur.skip_spaces();
        }
        // "friday at 4": after `at` a bare hour is a clock time, read like `4点`.
        if at
            && spec.clock.is_none()
            && let Some(clock) = bare_hour(cur)
        {
            spec.clock = Some(clock);
            continue;
        }
        if spec.day.is_none()
            && let Some((day, period)) = day(cur)?
        {
            spec.day = Some(day);
            if spec.period.is_none() {
                spec.period = period;
            }
            continue;
        }
        if spec.period.is_none()
            && let Some(period) = period(cur)
        {
            spec.period = Some(period);
            continue;
        }
        if spec.clock.is_none()
            && let Some(clock) = clock(cur, &mut spec.period)?
        {
            spec.clock = Some(clock);
            continue;
        }
        cur.pos = mark;
        break;
    }
    if spec == Spec::default() {
        return Err(TimeError::NotFound);
    }
    // Trailing 钟/整 after a clock time ("3点钟", "3点整") belong to the expression.
    if spec.clock.is_some() {
        let _ = cur.eat("钟") || cur.eat("整") || (!cur.rest().starts_with("正在") && cur.eat("正"));
    }
    Ok(spec)
}

fn resolve(spec: &Spec, now: DateTime<Tz>, default_hour: u32) -> Result<DateTime<Tz>, TimeError> {
    let tz = now.timezone();
    match spec.span {
        Some(Span::Exact(duration)) => return Ok(now + duration),
        Some(Span::Days(days)) => return Ok(now + Duration::days(days)),
        Some(Span::Months(months)) => {
            return now
                .checked_add_months(Months::new(months))
                .ok_or_else(|| TimeError::Invalid("too far away".into()));
        }
        None => {}
    }
    let today = now.date_naive();
    // The candidate times of day, earliest first.
    let times: Vec<(u32, u32)> = match (spec.clock.map(|c| (c.hour, c.minute, c.exact)), spec.period) {
        (Some((hour, minute, _)), Some(period)) => {
            let hour = period
                .hour24(hour)
                .ok_or_else(|| TimeError::Invalid(format!("{hour}点 does not fit that part of the day")))?;
            vec![(hour, minute)]
        }
        (Some((hour, minute, true)), None) => vec![(hour, minute)],
        (Some((hour, minute, false)), None) => match hour {
            0 | 12..=24 => vec![(hour, minute)],
            7..=11 => vec![(hour, minute), (hour + 12, minute)],
            _ => vec![(hour + 12, minute)],
        },
        (None, Some(period)) => vec![period.default_time(default_hour)],
        (None, None) => vec![(default_hour.min(23), 0)],
    };
    let at = |date: NaiveDate, (hour, minute): (u32, u32)| -> Result<DateTime<Tz>, TimeError> {
        let (date, hour) = if hour == 24 {
            (date + Days::new(1), 0)
        } else {
            (date, hour)
        };
        let time = NaiveTime::from_hms_opt(hour, minute, 0)
            .ok_or_else(|| TimeError::Invalid(format!("{hour}:{minute:02}")))?;
        // A time skipped by a daylight-saving change moves forward an hour.
        crate::texts::local_instant(date.and_time(time), tz)
            .ok_or_else(|| TimeError::Invalid("that time does not exist in this time zone".into()))
    };
    // The first candidate on `date` that is later than now.
    let first_future = |date: NaiveDate| -> Result<Option<DateTime<Tz>>, TimeError> {
        for &t in &times {
            let candidate = at(date, t)?;
            if candidate > now {
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    };
    let fixed = |date: NaiveDate| -> Result<DateTime<Tz>, TimeError> { at(date, times[0]) };

    match spec.day {
        None => Ok(match first_future(today)? {
            Some(t) => t,
            None => at(today + Days::new(1), times[0])?,
        }),
        Some(Day::Offset(days)) => {
            let date = today
                .checked_add_signed(Duration::days(days))
                .ok_or_else(|| TimeError::Invalid("too far away".into()))?;
            // An explicit day never rolls: "今天9点" at 10:00 is in the past. With several readings
            // of the hour (8点: 08:00 or 20:00), today prefers the one still ahead.
            if days == 0 && spec.period.is_none() {
                Ok(first_future(date)?.unwrap_or(fixed(date)?))
            } else {
                fixed(date)
            }
        }
        Some(Day::Weekday(weekday, week)) => {
            let monday = today - Days::new(u64::from(today.weekday().num_days_from_monday()));
            match week {
                Some(offset) => {
                    let date = monday + Duration::days(7 * offset + i64::from(weekday.num_days_from_monday()));
                    fixed(date)
                }
                None => {
                    for ahead in 0..=7 {
                        let date = today + Days::new(ahead);
                        if date.weekday() == weekday
                            && let Some(t) = first_future(date)?
                        {
                            return Ok(t);
                        }
                    }
                    Err(TimeError::Invalid("no such weekday".into()))
                }
            }
        }
        Some(Day::Date {
            year: Some(year),
            month,
            day,
        }) => {
            let date = NaiveDate::from_ymd_opt(year, month, day)
                .ok_or_else(|| TimeError::Invalid(format!("{year}-{month:02}-{day:02} is not a date")))?;
            fixed(date)
        }
        Some(Day::DateInYear { years, month, day }) => {
            let year = today.year() + years;
            let date = NaiveDate::from_ymd_opt(year, month, day)
                .ok_or_else(|| TimeError::Invalid(format!("{year}-{month:02}-{day:02} is not a date")))?;
            fixed(date)
        }
        Some(Day::Date { year: None, month, day }) => {
            if NaiveDate::from_ymd_opt(2024, month, day).is_none() {
                return Err(TimeError::Invalid(format!("{month}月{day}日 is not a date")));
            }
            // This year's, unless that day is over: then next year's (skipping a missing 2月29日).
            for year in today.year()..=today.year() + 8 {
                if let Some(date) = NaiveDate::from_ymd_opt(year, month, day)
                    && date >= today
                {
                    return fixed(date);
                }
            }
            Err(TimeError::Invalid(format!("{month}月{day}日 is not a date")))
        }
        Some(Day::MonthPart { months, part }) => {
            let first = today.with_day(1).expect("day 1 exists");
            let date = match months {
                Some(m) => part.date(first + Months::new(m)),
                None => {
                    let this = part.date(first);
                    if this >= today {
                        this
                    } else {
                        part.date(first + Months::new(1))
                    }
                }
            };
            fixed(date)
        }
        Some(Day::Holiday(holiday)) => fixed(holidays::next(holiday, today).map_err(TimeError::Invalid)?),
        Some(Day::MonthsOn(months)) => {
            let date = today
                .checked_add_months(Months::new(months))
                .ok_or_else(|| TimeError::Invalid("too far away".into()))?;
            fixed(date)
        }
        Some(Day::InMonth { months, day }) => {
            let first = today.with_day(1).expect("day 1 exists") + Months::new(months);
            let date = first
                .with_day(day)
                .ok_or_else(|| TimeError::Invalid(format!("{}月 has no day {day}", first.month())))?;
            fixed(date)
        }
    }
}

/// Reads through the text; `pos` is a byte offset on a character boundary.
#[derive(Debug, Clone)]
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    /// Skips what joins a time to what follows it (spaces, commas, colons, dashes).
    fn skip_glue(&mut self) {
        let rest = self.rest();
        let kept = rest
            .trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ',' | '，' | '、' | ':' | '：' | '-' | '—'));
        self.pos += rest.len() - kept.len();
    }

    /// A decimal number in digits (`1.5`), or a whole number in digits or Chinese numerals.
    fn decimal(&mut self) -> Option<f64> {
        let start = self.pos;
        let whole = self.number()?;
        let mark = self.pos;
        if self.eat(".") {
            let fraction_start = self.pos;
            if let Some(fraction) = self.digits() {
                let places = i32::try_from(self.pos - fraction_start).unwrap_or(4);
                if self.text[start..mark].bytes().all(|b| b.is_ascii_digit()) {
                    return Some(f64::from(whole) + f64::from(fraction) / 10f64.powi(places));
                }
            }
            self.pos = mark;
        }
        Some(f64::from(whole))
    }

    /// Words in a row, spaces between; nothing eaten unless all are there.
    fn eat_words(&mut self, words: &[&str]) -> bool {
        let start = self.pos;
        for (i, word) in words.iter().enumerate() {
            if i > 0 {
                self.skip_spaces();
            }
            if !self.eat_word(word) {
                self.pos = start;
                return false;
            }
        }
        true
    }

    fn skip_spaces(&mut self) {
        let skipped = self.rest().len() - self.rest().trim_start().len();
        self.pos += skipped;
    }

    fn eat(&mut self, literal: &str) -> bool {
        if self.rest().starts_with(literal) {
            self.pos += literal.len();
            true
        } else {
            false
        }
    }

    /// Eats the longest of `options` the text starts with.
    fn eat_any(&mut self, options: &[&'static str]) -> Option<&'static str> {
        let found = options
            .iter()
            .filter(|o| self.rest().starts_with(**o))
            .max_by_key(|o| o.len())
            .copied();
        if let Some(o) = found {
            self.pos += o.len();
        }
        found
    }

    /// An ASCII word, case-insensitive, followed by a non-letter.
    fn eat_word(&mut self, word: &str) -> bool {
        let rest = self.rest();
        if rest.len() >= word.len()
            && rest.is_char_boundary(word.len())
            && rest[..word.len()].eq_ignore_ascii_case(word)
        {
            let next = rest[word.len()..].chars().next();
            if next.is_none_or(|c| !c.is_ascii_alphabetic()) {
                self.pos += word.len();
                return true;
            }
        }
        false
    }

    /// The longest of `words` (ASCII, case-insensitive) at a word boundary.
    fn eat_any_word(&mut self, words: &[&'static str]) -> Option<&'static str> {
        let mut sorted: Vec<&'static str> = words.to_vec();
        sorted.sort_by_key(|w| std::cmp::Reverse(w.len()));
        sorted.into_iter().find(|w| self.eat_word(w))
    }

    fn digits(&mut self) -> Option<u32> {
        let rest = self.rest();
        let len = rest.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 || len > 4 {
            return None;
        }
        let value = rest[..len].parse().ok()?;
        self.pos += len;
        Some(value)
    }

    /// A number in digits or Chinese numerals (0–99, 两).
    fn number(&mut self) -> Option<u32> {
        if let Some(n) = self.digits() {
            return Some(n);
        }
        let start = self.pos;
        let digit = crate::texts::chinese_digit;
        let chars: Vec<char> = self.rest().chars().take(3).collect();
        let (value, used) = match chars.as_slice() {
            [a, '十', b, ..] if digit(*a).is_some() && digit(*b).is_some() => (digit(*a)? * 10 + digit(*b)?, 3),
            [a, '十', ..] if digit(*a).is_some() => (digit(*a)? * 10, 2),
            ['十', b, ..] if digit(*b).is_some() => (10 + digit(*b)?, 2),
            ['十', ..] => (10, 1),
            [a, ..] if digit(*a).is_some() => (digit(*a)?, 1),
            _ => return None,
        };
        self.pos = start + chars[..used].iter().map(|c| c.len_utf8()).sum::<usize>();
        Some(value)
    }
}

/// How much of a unit a span has; months are kept apart (they are calendar months, not 30 days).
#[derive(Default)]
struct SpanParts {
    seconds: f64,
    whole_days: Option<i64>,
    months: Option<u32>,
    units: usize,
}

impl SpanParts {
    fn add(&mut self, amount: f64, unit_seconds: f64, days_per_unit: Option<i64>, months: bool) {
        self.units += 1;
        let whole = amount.fract() == 0.0;
        if months && whole {
            self.months = Some(amount as u32);
        } else if months {
            self.seconds += amount * 30.0 * 86_400.0;
        } else {
            self.seconds += amount * unit_seconds;
            if let (Some(per), true) = (days_per_unit, whole) {
                self.whole_days = Some(amount as i64 * per);
            }
        }
    }

    fn span(self) -> Result<Span, TimeError> {
        match (self.units, self.months, self.whole_days) {
            (1, Some(0), _) | (1, _, Some(0)) => {
                Err(TimeError::Invalid("a duration must be longer than nothing".into()))
            }
            (1, Some(months), _) => Ok(Span::Months(months)),
            (_, Some(_), _) => Err(TimeError::Invalid("months and other units together".into())),
            (1, None, Some(days)) => Ok(Span::Days(days)),
            _ if self.seconds <= 0.0 => Err(TimeError::Invalid("a duration must be longer than nothing".into())),
            _ => Ok(Span::Exact(Duration::milliseconds(
                (self.seconds * 1000.0).round() as i64
            ))),
        }
    }
}

/// `10分钟后`, `一个半小时后`, `1.5小时后`, `两小时十五分钟后`, `一刻钟后`, `3天后`, `两个月后`,
/// `in 2h`, `in 90 min`, `in two hours`, `in half an hour`, `in 2 months`.
fn duration(cur: &mut Cursor<'_>) -> Result<Option<Span>, TimeError> {
    let start = cur.pos;
    if let Some(span) = english_duration(cur)? {
        return Ok(Some(span));
    }
    cur.pos = start;
    // Chinese: [过] ([N][个][半] unit)+ (后|以后|之后|内…); "过十分钟" needs no suffix.
    let over = cur.eat("过");
    let mut parts = SpanParts::default();
    loop {
        let mark = cur.pos;
        let amount = cur.decimal();
        let _ = cur.eat("个");
        let half = cur.eat("半");
        // "半个月" = half a month.
        let _ = half && cur.eat("个");
        if amount.is_none() && !half {
            cur.pos = mark;
            break;
        }
        let Some(unit) = cur.eat_any(&[
            "小时", "钟头", "分钟", "分", "秒钟", "秒", "天", "日", "周", "星期", "礼拜", "月", "刻钟", "刻",
        ]) else {
            cur.pos = mark;
            break;
        };
        // "一个半小时" = 1.5 h; "半小时" = 0.5 h.
        let n = amount.unwrap_or(0.0) + if half { 0.5 } else { 0.0 };
        match unit {
            "秒" | "秒钟" => parts.add(n, 1.0, None, false),
            "分钟" | "分" => parts.add(n, 60.0, None, false),
            "刻钟" | "刻" => parts.add(n, 900.0, None, false),
            "小时" | "钟头" => parts.add(n, 3600.0, None, false),
            "天" | "日" => parts.add(n, 86_400.0, Some(1), false),
            "周" | "星期" | "礼拜" => parts.add(n, 7.0 * 86_400.0, Some(7), false),
            _ => parts.add(n, 0.0, None, true),
        }
    }
    // "3天内" (within three days): due when the span ends, as "3天后".
    let suffix = cur.eat_any(&["以后", "之后", "以内", "之内", "后", "内"]);
    if parts.units == 0 || (suffix.is_none() && !over) {
        cur.pos = start;
        return Ok(None);
    }
    parts.span().map(Some)
}

/// English numbers as words, for durations (`in two hours`).
const EN_NUMBERS: [(&str, u32); 24] = [
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("ten", 10),
    ("eleven", 11),
    ("twelve", 12),
    ("thirteen", 13),
    ("fourteen", 14),
    ("fifteen", 15),
    ("sixteen", 16),
    ("seventeen", 17),
    ("eighteen", 18),
    ("nineteen", 19),
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fifty", 50),
    ("ninety", 90),
];

fn english_duration(cur: &mut Cursor<'_>) -> Result<Option<Span>, TimeError> {
    // "in 5 minutes", "within 5 minutes", or "5 minutes from now" / "5 minutes later".
    let prefixed = cur.eat_word("in") || cur.eat_word("within");
    let mut parts = SpanParts::default();
    loop {
        cur.skip_spaces();
        let mark = cur.pos;
        let amount = if cur.eat_word("half") {
            cur.skip_spaces();
            let _ = cur.eat_word("an") || cur.eat_word("a");
            0.5
        } else if cur.eat_word("an") || cur.eat_word("a") {
            1.0
        } else if let Some((_, n)) = EN_NUMBERS.iter().find(|(word, _)| cur.eat_word(word)) {
            f64::from(*n)
        } else {
            match cur
                .decimal()
                .filter(|_| cur.text[mark..cur.pos].bytes().all(|b| b.is_ascii_digit() || b == b'.'))
            {
                Some(n) => n,
                None => {
                    cur.pos = mark;
                    break;
                }
            }
        };
        cur.skip_spaces();
        let unit = cur.eat_any_word(&[
            "seconds", "second", "secs", "sec", "s", "minutes", "minute", "mins", "min", "m", "hours", "hour", "hrs",
            "hr", "h", "days", "day", "d", "weeks", "week", "wks", "wk", "w", "months", "month", "mos", "mo",
        ]);
        let Some(unit) = unit else {
            cur.pos = mark;
            break;
        };
        match unit {
            u if u.starts_with("mo") => parts.add(amount, 0.0, None, true),
            u if u.starts_with('s') => parts.add(amount, 1.0, None, false),
            u if u.starts_with('m') => parts.add(amount, 60.0, None, false),
            u if u.starts_with('h') => parts.add(amount, 3600.0, None, false),
            u if u.starts_with('d') => parts.add(amount, 86_400.0, Some(1), false),
            _ => parts.add(amount, 7.0 * 86_400.0, Some(7), false),
        }
        let joined = cur.pos;
        cur.skip_spaces();
        if !cur.eat_word("and") && !cur.eat(",") {
            cur.pos = joined;
        }
    }
    if parts.units == 0 {
        return Ok(None);
    }
    if !prefixed {
        cur.skip_spaces();
        let from_now = cur.eat_word("from") && {
            cur.skip_spaces();
            cur.eat_word("now")
        };
        if !from_now && !cur.eat_word("later") {
            return Ok(None);
        }
    }
    parts.span().map(Some)
}

const CN_WEEKDAYS: [(&str, Weekday); 9] = [
    ("一", Weekday::Mon),
    ("二", Weekday::Tue),
    ("三", Weekday::Wed),
    ("四", Weekday::Thu),
    ("五", Weekday::Fri),
    ("六", Weekday::Sat),
    ("日", Weekday::Sun),
    ("天", Weekday::Sun),
    ("末", Weekday::Sat),
];

const EN_WEEKDAYS: [(&str, Weekday); 17] = [
    ("monday", Weekday::Mon),
    ("mon", Weekday::Mon),
    ("tuesday", Weekday::Tue),
    ("tues", Weekday::Tue),
    ("tue", Weekday::Tue),
    ("wednesday", Weekday::Wed),
    ("wed", Weekday::Wed),
    ("thursday", Weekday::Thu),
    ("thurs", Weekday::Thu),
    ("thu", Weekday::Thu),
    ("friday", Weekday::Fri),
    ("fri", Weekday::Fri),
    ("saturday", Weekday::Sat),
    ("sat", Weekday::Sat),
    ("sunday", Weekday::Sun),
    ("sun", Weekday::Sun),
    ("weekend", Weekday::Sat),
];

const EN_MONTHS: [(&str, u32); 24] = [
    ("january", 1),
    ("jan", 1),
    ("february", 2),
    ("feb", 2),
    ("march", 3),
    ("mar", 3),
    ("april", 4),
    ("apr", 4),
    ("may", 5),
    ("june", 6),
    ("jun", 6),
    ("july", 7),
    ("jul", 7),
    ("august", 8),
    ("aug", 8),
    ("september", 9),
    ("sept", 9),
    ("sep", 9),
    ("october", 10),
    ("oct", 10),
    ("november", 11),
    ("nov", 11),
    ("december", 12),
    ("dec", 12),
];

/// A day, possibly with the part of the day it implies (`明早`, `tonight`).
fn day(cur: &mut Cursor<'_>) -> Result<Option<(Day, Option<Period>)>, TimeError> {
    let start = cur.pos;
    // Chinese day words.
    if let Some(word) = cur.eat_any(&[
        "今天",
        "今日",
        "今早",
        "今晚",
        "明天",
        "明日",
        "明早",
        "明晚",
        "后天",
        "大后天",
        "昨天",
        "昨日",
        "前天",
        "今儿",
        "明儿",
    ]) {
        let (offset, period) = match word {
            "今天" | "今日" | "今儿" => (0, None),
            "今早" => (0, Some(Period::Morning)),
            "今晚" => (0, Some(Period::Evening)),
            "明天" | "明日" | "明儿" => (1, None),
            "明早" => (1, Some(Period::Morning)),
            "明晚" => (1, Some(Period::Evening)),
            "后天" => (2, None),
            "大后天" => (3, None),
            "昨天" | "昨日" => (-1, None),
            _ => (-2, None),
        };
        return Ok(Some((Day::Offset(offset), period)));
    }
    // Chinese weekdays: [本周|这周|下周|下下周|上周 …](周|星期|礼拜)X
    let week = cur.eat_any(&[
        "本周",
        "这周",
        "这个周",
        "这星期",
        "这个星期",
        "本星期",
        "这礼拜",
        "这个礼拜",
        "下周",
        "下个周",
        "下星期",
        "下个星期",
        "下礼拜",
        "下个礼拜",
        "下下周",
        "下下个周",
        "下下星期",
        "下下个星期",
        "下下礼拜",
        "上周",
        "上个周",
        "上星期",
        "上个星期",
        "上礼拜",
    ]);
    let week_offset = week.map(|w| {
        if w.starts_with("下下") {
            2
        } else if w.starts_with('下') {
            1
        } else if w.starts_with('上') {
            -1
        } else {
            0
        }
    });
    // "下周三" (the prefix then the day) or "下周星期三".
    let has_marker = cur.eat_any(&["周", "星期", "礼拜"]).is_some();
    if has_marker || week.is_some() {
        if let Some(found) = CN_WEEKDAYS.iter().find(|(name, _)| cur.rest().starts_with(name)) {
            cur.pos += found.0.len();
            return Ok(Some((Day::Weekday(found.1, week_offset), None)));
        }
        cur.pos = start;
    }
    // 下个月N号 / 下月N号 / 本月N号 / 这个月N号, and the parts of a month: [下个月]月初 / 中旬 / 下旬 / 月底.
    let prefix = cur.eat_any(&["下个月", "下月", "本月", "这个月", "下下个月"]);
    let months = prefix.map(|p| match p {
        "下下个月" => 2,
        "下个月" | "下月" => 1,
        _ => 0,
    });
    let part_words = ["月初", "初", "月中", "中旬", "下旬", "月底", "底", "月末", "末"];
    if let Some(word) = cur.eat_any(&part_words) {
        let bare = !word.starts_with('月') && !word.ends_with('旬');
        if prefix.is_some() || !bare {
            let part = match word {
                "月初" | "初" => MonthPart::Start,
                "月中" | "中旬" => MonthPart::Middle,
                "下旬" => MonthPart::LateThird,
                _ => MonthPart::End,
            };
            return Ok(Some((Day::MonthPart { months, part }, None)));
        }
    }
    if let Some(months) = months
        && let Some(d) = cur.number()
        && cur.eat_any(&["号", "日"]).is_some()
    {
        return Ok(Some((Day::InMonth { months, day: d }, None)));
    }
    cur.pos = start;
    // Holidays: 元旦, 国庆, 春节, 中秋, …
    if let Some(found) = holidays::CHINESE.iter().find(|(name, _)| cur.rest().starts_with(name)) {
        cur.pos += found.0.len();
        return Ok(Some((Day::Holiday(found.1), None)));
    }
    // Dates: [YYYY年]M月D(日|号), YYYY-MM-DD, YYYY/MM/DD, M/D.
    // 今年/明年/后年 M月D日: the year said.
    let mark = cur.pos;
    if let Some(word) = cur.eat_any(&["今年", "明年", "后年"]) {
        if let Some(Day::Date { year: None, month, day }) = numeric_date(cur)? {
            let years = match word {
                "今年" => 0,
                "明年" => 1,
                _ => 2,
            };
            return Ok(Some((Day::DateInYear { years, month, day }, None)));
        }
        cur.pos = mark;
    }
    if let Some(date) = numeric_date(cur)? {
        return Ok(Some((date, None)));
    }
    cur.pos = start;
    // English.
    if let Some(found) = holidays::ENGLISH.iter().find(|(name, _)| cur.eat_word(name)) {
        return Ok(Some((Day::Holiday(found.1), None)));
    }
    if let Some(day) = english_month_part(cur) {
        return Ok(Some((day, None)));
    }
    if cur.eat_words(&["the", "day", "after", "tomorrow"]) || cur.eat_words(&["day", "after", "tomorrow"]) {
        return Ok(Some((Day::Offset(2), None)));
    }
    if let Some(word) = cur.eat_any_word(&["today", "tonight", "tomorrow", "tmr", "tmrw", "yesterday"]) {
        return Ok(Some(match word {
            "today" => (Day::Offset(0), None),
            "tonight" => (Day::Offset(0), Some(Period::Evening)),
            "yesterday" => (Day::Offset(-1), None),
            _ => (Day::Offset(1), None),
        }));
    }
    let next = if cur.eat_word("next") {
        cur.skip_spaces();
        Some(1)
    } else if cur.eat_word("this") {
        cur.skip_spaces();
        // "this afternoon": today, the part of day read next.
        let part = cur.pos;
        if cur.eat_any_word(&["morning", "noon", "afternoon", "evening"]).is_some() {
            cur.pos = part;
            return Ok(Some((Day::Offset(0), None)));
        }
        Some(0)
    } else {
        None
    };
    for (name, weekday) in EN_WEEKDAYS {
        if cur.eat_word(name) {
            return Ok(Some((Day::Weekday(weekday, next), None)));
        }
    }
    if next.is_some() {
        if cur.eat_word("week") {
            return Ok(Some((Day::Weekday(Weekday::Mon, next.map(|n| n.max(1))), None)));
        }
        cur.pos = start;
        return Ok(None);
    }
    // "dec 1", "december 1st", "1 dec".
    for (name, month) in EN_MONTHS {
        if cur.eat_word(name) {
            cur.skip_spaces();
            let _ = cur.eat(".");
            cur.skip_spaces();
            if let Some(d) = cur.digits() {
                let _ = cur.eat_any_word(&["st", "nd", "rd", "th"]);
                let year = year_suffix(cur);
                return Ok(Some((Day::Date { year, month, day: d }, None)));
            }
            cur.pos = start;
            return Ok(None);
        }
    }
    let mark = cur.pos;
    if let Some(d) = cur.digits() {
        let _ = cur.eat_any_word(&["st", "nd", "rd", "th"]);
        cur.skip_spaces();
        for (name, month) in EN_MONTHS {
            if cur.eat_word(name) {
                let year = year_suffix(cur);
                return Ok(Some((Day::Date { year, month, day: d }, None)));
            }
        }
    }
    cur.pos = mark;
    Ok(None)
}

/// `end of (the) month`, `end of next month`, `start / beginning of (the / next) month`,
/// `mid-month`, `middle of (the / next) month`.
fn english_month_part(cur: &mut Cursor<'_>) -> Option<Day> {
    let start = cur.pos;
    let part = if cur.eat_word("end") {
        MonthPart::End
    } else if cur.eat_word("start") || cur.eat_word("beginning") {
        MonthPart::Start
    } else if cur.eat_word("mid-month") || cur.eat_word("midmonth") {
        return Some(Day::MonthPart {
            months: None,
            part: MonthPart::Middle,
        });
    } else if cur.eat_word("middle") || cur.eat_word("mid") {
        MonthPart::Middle
    } else {
        return None;
    };
    cur.skip_spaces();
    let _ = cur.eat_word("of");
    cur.skip_spaces();
    let months = if cur.eat_word("next") {
        Some(1)
    } else if cur.eat_word("this") {
        Some(0)
    } else {
        let _ = cur.eat_word("the");
        None
    };
    cur.skip_spaces();
    if cur.eat_word("month") {
        Some(Day::MonthPart { months, part })
    } else {
        cur.pos = start;
        None
    }
}

/// ", 2027" after an English date.
fn year_suffix(cur: &mut Cursor<'_>) -> Option<i32> {
    let mark = cur.pos;
    let _ = cur.eat(",");
    cur.skip_spaces();
    match cur.digits() {
        Some(y) if (2000..=2100).contains(&y) => Some(y as i32),
        _ => {
            cur.pos = mark;
            None
        }
    }
}

fn numeric_date(cur: &mut Cursor<'_>) -> Result<Option<Day>, TimeError> {
    let start = cur.pos;
    // YYYY-MM-DD or YYYY/MM/DD
    if let Some(first) = cur.digits() {
        if first >= 1000 {
            let sep = if cur.eat("-") {
                '-'
            } else if cur.eat("/") {
                '/'
            } else if cur.eat("年") {
                '年'
            } else {
                cur.pos = start;
                return Ok(None);
            };
            let month = cur.number();
            let sep_ok = match sep {
                '年' => cur.eat("月"),
                '-' => cur.eat("-"),
                _ => cur.eat("/"),
            };
            let day = if sep_ok { cur.number() } else { None };
            if let (Some(month), Some(day)) = (month, day) {
                if sep == '年' {
                    let _ = cur.eat_any(&["日", "号"]);
                }
                // ISO 8601: `2026-12-08T15:00` — the clock follows the `T`.
                if sep == '-'
                    && cur.rest().starts_with('T')
                    && cur.rest()[1..].starts_with(|c: char| c.is_ascii_digit())
                {
                    cur.pos += 1;
                }
                return check_date(Some(first as i32), month, day).map(Some);
            }
            cur.pos = start;
            return Ok(None);
        }
        // M/D (a time like 9:30 is not a date), and M.D as reps type it (`12.8 下午2点`).
        let dotted = cur.rest().starts_with('.');
        if (cur.eat("/") || cur.eat("."))
            && let Some(day) = cur.digits()
            && !(dotted && cur.rest().starts_with(|c: char| c.is_ascii_digit() || c == '.'))
        {
            return check_date(None, first, day).map(Some);
        }
        cur.pos = start;
    }
    // M月D(日|号) with digits or Chinese numerals.
    if let Some(month) = cur.number()
        && cur.eat("月")
        && let Some(day) = cur.number()
        && cur.eat_any(&["日", "号"]).is_some()
    {
        return check_date(None, month, day).map(Some);
    }
    cur.pos = start;
    Ok(None)
}

fn check_date(year: Option<i32>, month: u32, day: u32) -> Result<Day, TimeError> {
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || NaiveDate::from_ymd_opt(year.unwrap_or(2024), month, day).is_none()
    {
        return Err(TimeError::Invalid(match year {
            Some(y) => format!("{y}-{month:02}-{day:02} is not a date"),
            None => format!("{month}月{day}日 is not a date"),
        }));
    }
    Ok(Day::Date { year, month, day })
}

fn period(cur: &mut Cursor<'_>) -> Option<Period> {
    if let Some(word) = cur.eat_any(&[
        "凌晨", "清晨", "早晨", "早上", "上午", "早", "中午", "午间", "下午", "午后", "傍晚", "晚上", "晚间", "夜里",
        "夜晚", "晚",
    ]) {
        return Some(match word {
            "凌晨" => Period::SmallHours,
            "清晨" | "早晨" | "早上" | "上午" | "早" => Period::Morning,
            "中午" | "午间" => Period::Noon,
            "下午" | "午后" => Period::Afternoon,
            "傍晚" => Period::Dusk,
            _ => Period::Evening,
        });
    }
    if let Some(word) = cur.eat_any_word(&["morning", "noon", "afternoon", "evening", "night"]) {
        let _ = cur.eat_word("in");
        return Some(match word {
            "morning" => Period::Morning,
            "noon" => Period::Noon,
            "afternoon" => Period::Afternoon,
            _ => Period::Evening,
        });
    }
    None
}

/// A clock time; an am/pm suffix sets `period`.
fn clock(cur: &mut Cursor<'_>, period: &mut Option<Period>) -> Result<Option<Clock>, TimeError> {
    let start = cur.pos;
    let zero_padded = cur.rest().len() > 1 && cur.rest().starts_with('0') && cur.rest().as_bytes()[1].is_ascii_digit();
    let Some(hour) = cur.number() else { return Ok(None) };
    // HH:MM[am|pm]
    let colon = cur.pos;
    if cur.eat(":") || cur.eat("：") {
        let minute_start = cur.pos;
        if let Some(minute) = cur.digits().filter(|_| cur.pos - minute_start == 2) {
            check_clock(hour, minute)?;
            // Seconds (`15:00:00`) are allowed and not kept: reminders are to the minute.
            let seconds = cur.pos;
            if !(cur.eat(":") && cur.digits().is_some() && cur.pos - seconds == 3) {
                cur.pos = seconds;
            }
            let (hour, marked) = am_pm(cur, period, hour)?;
            return Ok(Some(Clock {
                hour,
                minute,
                exact: marked || zero_padded || hour >= 13,
            }));
        }
        cur.pos = colon;
    }
    // N点[半|一刻|三刻|N分|N]
    if cur.eat("点") || cur.eat("时") {
        let minute = if cur.eat("半") {
            30
        } else if cur.eat("一刻") {
            15
        } else if cur.eat("三刻") {
            45
        } else {
            let mark = cur.pos;
            match cur.number() {
                Some(m) => {
                    let _ = cur.eat("分");
                    m
                }
                None => {
                    cur.pos = mark;
                    0
                }
            }
        };
        check_clock(hour, minute)?;
        return Ok(Some(Clock {
            hour,
            minute,
            exact: zero_padded || hour >= 13,
        }));
    }
    // 3pm, 3 pm, 9am
    let (hour24, marked) = am_pm(cur, period, hour)?;
    if marked {
        return Ok(Some(Clock {
            hour: hour24,
            minute: 0,
            exact: true,
        }));
    }
    cur.pos = start;
    Ok(None)
}

/// A bare hour after `at` (`friday at 4`): read like `4点` (1–6 in the afternoon, 7–11 the next one
/// still ahead), a whole number from 0 to 23 not followed by more digits or letters.
fn bare_hour(cur: &mut Cursor<'_>) -> Option<Clock> {
    let mark = cur.pos;
    let hour = cur.digits().filter(|h| *h <= 23);
    let boundary = cur
        .rest()
        .chars()
        .next()
        .is_none_or(|c| !c.is_alphanumeric() && c != ':' && c != '.');
    match hour {
        Some(hour) if boundary => Some(Clock {
            hour,
            minute: 0,
            exact: hour >= 13 || hour == 0,
        }),
        _ => {
            cur.pos = mark;
            None
        }
    }
}

/// An `am`/`pm` after a clock time: the hour as the part of the day will read it (12am is 0), and
/// whether one was there.
fn am_pm(cur: &mut Cursor<'_>, period: &mut Option<Period>, hour: u32) -> Result<(u32, bool), TimeError> {
    let mark = cur.pos;
    cur.skip_spaces();
    match cur.eat_any_word(&["am", "a.m.", "pm", "p.m."]) {
        Some(word) => {
            if hour > 12 || hour == 0 {
                return Err(TimeError::Invalid(format!("{hour}{word}")));
            }
            let morning = word.starts_with('a');
            *period = Some(if morning { Period::Morning } else { Period::Afternoon });
            Ok((if morning && hour == 12 { 0 } else { hour }, true))
        }
        None => {
            cur.pos = mark;
            Ok((hour, false))
        }
    }
}

fn check_clock(hour: u32, minute: u32) -> Result<(), TimeError> {
    if hour > 24 || minute > 59 || (hour == 24 && minute > 0) {
        return Err(TimeError::Invalid(format!("{hour}:{minute:02}")));
    }
    Ok(())
}

/// Formats an instant for `parse-time`: RFC 3339 with the zone's offset.
pub fn rfc3339(at: &DateTime<Tz>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Tz> {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        tz.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
    }

    #[test]
    fn examples_from_the_spec() {
        let p = parse("明天下午3点 回电话", now(), 9).unwrap();
        assert_eq!(rfc3339(&p.at), "2026-11-26T15:00:00+08:00");
        assert_eq!(p.rest, "回电话");
        let p = parse("in 2h call back", now(), 9).unwrap();
        assert_eq!(rfc3339(&p.at), "2026-11-25T12:00:00+08:00");
        assert_eq!(p.rest, "call back");
    }

    /// The table in `tests/data/parse-time.tsv`: every row must hold.
    #[test]
    fn the_case_table() {
        let table = include_str!("../../tests/data/parse-time.tsv");
        let cases = super::super::time_cases::read(table, chrono_tz::Asia::Shanghai).unwrap();
        let failures: Vec<String> = cases.iter().filter_map(|case| case.check(9).err()).collect();
        assert!(cases.len() >= 150, "the table has {} cases", cases.len());
        assert!(
            failures.is_empty(),
            "{} of {} cases fail:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
    }

    /// Colloquial expressions gathered from public parsers' test suites: at least 97 % read
    /// exactly, none as another instant (refusing is allowed; guessing wrong is not).
    #[test]
    fn the_colloquial_set() {
        use super::super::time_cases::{Reading, read};
        let table = include_str!("../../tests/data/colloquial-times.tsv");
        let cases = read(table, chrono_tz::Asia::Shanghai).unwrap();
        assert!(cases.len() >= 100, "the set has {} expressions", cases.len());
        let readings: Vec<Reading> = cases.iter().map(|c| c.reading(9)).collect();
        let wrong: Vec<&str> = cases
            .iter()
            .zip(&readings)
            .filter(|(_, r)| **r == Reading::Wrong)
            .map(|(c, _)| c.input)
            .collect();
        assert!(wrong.is_empty(), "read as another instant: {wrong:?}");
        let exact = readings.iter().filter(|r| **r == Reading::Exact).count();
        assert!(
            exact * 100 >= cases.len() * 97,
            "{exact} of {} read exactly: {:?}",
            cases.len(),
            cases
                .iter()
                .zip(&readings)
                .filter(|(_, r)| **r != Reading::Exact)
                .map(|(c, r)| format!("{} {r:?}", c.input))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_time_may_end_the_text_instead() {
        let p = parse_anywhere("给王总回电话 明天下午3点", now(), 9).unwrap();
        assert_eq!(
            (rfc3339(&p.at).as_str(), p.rest.as_str()),
            ("2026-11-26T15:00:00+08:00", "给王总回电话")
        );
        let p = parse_anywhere("给王总回电话明天下午3点", now(), 9).unwrap();
        assert_eq!(p.rest, "给王总回电话");
        let p = parse_anywhere("call back tomorrow 3pm", now(), 9).unwrap();
        assert_eq!(
            (rfc3339(&p.at).as_str(), p.rest.as_str()),
            ("2026-11-26T15:00:00+08:00", "call back")
        );
        // Not inside a word, not in the middle, and a time at the start still comes first.
        assert_eq!(
            parse_anywhere("call what 4", now(), 9).unwrap_err(),
            TimeError::NotFound
        );
        assert_eq!(
            parse_anywhere("给王总 明天 回电话", now(), 9).unwrap_err(),
            TimeError::NotFound
        );
        assert_eq!(parse_anywhere("明天 回电话", now(), 9).unwrap().rest, "回电话");
    }

    #[test]
    fn a_time_is_found_anywhere_in_free_text() {
        let (at, task) = find("客户说明天下午3点再打过来", now(), 9).unwrap();
        assert_eq!(
            (rfc3339(&at).as_str(), task.as_str()),
            ("2026-11-26T15:00:00+08:00", "客户说再打过来")
        );
        let (at, task) = find("he said call him tomorrow 3pm about the quote", now(), 9).unwrap();
        assert_eq!(rfc3339(&at), "2026-11-26T15:00:00+08:00");
        assert_eq!(task, "he said call him about the quote");
        assert_eq!(find("客户说预算批了", now(), 9), None);
    }

    #[test]
    fn past_and_nonsense_are_errors() {
        assert_eq!(parse("昨天下午3点", now(), 9).unwrap_err(), TimeError::Past);
        assert_eq!(parse("回电话", now(), 9).unwrap_err(), TimeError::NotFound);
        assert!(matches!(parse("25点", now(), 9).unwrap_err(), TimeError::Invalid(_)));
    }

    proptest::proptest! {
        #[test]
        fn durations_add_exactly(n in 1u32..5000) {
            let chinese = parse(&format!("{n}分钟后 x"), now(), 9).unwrap();
            let english = parse(&format!("in {n} min x"), now(), 9).unwrap();
            proptest::prop_assert_eq!(chinese.at, now() + Duration::minutes(i64::from(n)));
            proptest::prop_assert_eq!(english.at, chinese.at);
            proptest::prop_assert_eq!(chinese.rest, "x");
        }

        /// A day, a part of the day and a clock time, in every order, in both languages: read
        /// exactly as meant, or refused — never as another instant.
        #[test]
        fn day_part_and_clock_in_any_order_are_exact_or_refused(
            day in 0usize..3,
            part in 0usize..4,
            hour in 1u32..=12,
            half in proptest::bool::ANY,
            order in 0usize..6,
            english in proptest::bool::ANY,
            spaced in proptest::bool::ANY,
        ) {
            // Now is Wednesday 2026-11-25 10:00.
            const DAYS: [(&str, &str, u64); 3] = [("明天", "tomorrow", 1), ("周五", "friday", 2), ("下周一", "next monday", 5)];
            // (Chinese, English, the part of the day)
            const PARTS: [(&str, &str, Option<Period>); 4] = [
                ("", "", None),
                ("上午", "morning", Some(Period::Morning)),
                ("下午", "afternoon", Some(Period::Afternoon)),
                ("晚上", "evening", Some(Period::Evening)),
            ];
            let (zh_day, en_day, offset) = DAYS[day];
            let (zh_part, en_part, period) = PARTS[part];
            let minute = if half { 30 } else { 0 };
            let clock = match (english, half) {
                (false, false) => format!("{hour}点"),
                (false, true) => format!("{hour}点半"),
                (true, _) => format!("at {hour}:{minute:02}"),
            };
            let pieces: Vec<String> = if english {
                vec![en_day.into(), en_part.into(), clock]
            } else {
                vec![zh_day.into(), zh_part.into(), clock]
            };
            const ORDERS: [[usize; 3]; 6] = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
            let joiner = if spaced || english { " " } else { "" };
            let text = ORDERS[order]
                .iter()
                .map(|&i| pieces[i].clone())
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join(joiner);
            let hour24 = match period {
                Some(p) => p.hour24(hour),
                None if hour <= 6 => Some(hour + 12),
                None => Some(hour),
            };
            if let Ok(parsed) = parse(&text, now(), 9) {
                let hour24 = hour24.expect("a part of the day that does not fit the hour is refused");
                let date = now().date_naive() + Days::new(offset);
                let expected = now()
                    .timezone()
                    .from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap())
                    .unwrap()
                    + Duration::hours(i64::from(hour24))
                    + Duration::minutes(i64::from(minute));
                proptest::prop_assert_eq!(parsed.at, expected, "{:?}", text);
                proptest::prop_assert_eq!(parsed.rest, "", "{:?}", text);
            }
        }

        #[test]
        fn anything_is_a_future_instant_or_an_error(text in "\\PC{0,24}") {
            if let Ok(parsed) = parse(&text, now(), 9) {
                proptest::prop_assert!(parsed.at > now());
                proptest::prop_assert!(text.contains(parsed.rest.as_str()));
            }
        }
    }
}
