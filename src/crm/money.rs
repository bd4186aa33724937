//! Amounts of money in CNY, exact: whole fen (0.01 yuan) in an `i64`, never a float. Reps type
//! amounts the way they say them — `50万`, `5w`, `12.5万`, `300k`, `¥80,000`, `1.2m`, `八十万`,
//! `两万五` — and [`parse`] reads them; what it cannot read exactly is an error, never a guess.

use std::fmt;

/// An amount in fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(pub i64);

/// The largest amount accepted: ¥100 billion (far above any deal, far below `i64`).
const MAX_FEN: i64 = 100_000_000_000 * 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("no amount")]
    Missing,
    #[error("“{0}” is not an amount")]
    Unreadable(String),
    #[error("an amount is more than nothing and at most ¥100 billion")]
    OutOfRange,
    #[error("an amount has at most two decimals (fen)")]
    TooPrecise,
}

impl AmountError {
    pub fn message_zh(&self) -> String {
        match self {
            Self::Missing => "缺少金额，例如：50万、5w、¥80,000".into(),
            Self::Unreadable(what) => format!("没看懂金额「{what}」，例如：50万、12.5万、300k、¥80,000"),
            Self::OutOfRange => "金额需大于 0，且不超过 1000 亿".into(),
            Self::TooPrecise => "金额最多精确到分（两位小数）".into(),
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            Self::Missing => "An amount is missing, e.g. 500k, 50万, ¥80,000.".into(),
            Self::Unreadable(what) => format!("“{what}” is not an amount; try 500k, 1.2m, 50万 or ¥80,000."),
            Self::OutOfRange => "An amount is more than 0 and at most 100 billion.".into(),
            Self::TooPrecise => "An amount has at most two decimals.".into(),
        }
    }
}

impl Amount {
    pub fn from_yuan(yuan: i64) -> Self {
        Self(yuan * 100)
    }

    pub fn fen(self) -> i64 {
        self.0
    }

    /// The amount as a decimal string of yuan, e.g. `80000.00` (for CSV and JSON).
    pub fn yuan_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }

    /// Reads a decimal string of yuan (`80000`, `80000.5`, `80000.50`), as the API takes it.
    pub fn from_yuan_str(text: &str) -> Result<Self, AmountError> {
        let fen = decimal_fen(text.trim(), 1).ok_or_else(|| AmountError::Unreadable(text.into()))??;
        checked(fen)
    }

    /// How a rep reads it: `¥50万`, `¥1.25万`, `¥8,000`, `¥1.2亿`.
    pub fn short(self) -> String {
        let yuan = self.0 as f64 / 100.0;
        if self.0.abs() >= 100_000_000 * 100 {
            format!("¥{}亿", trim_decimals(yuan / 100_000_000.0))
        } else if self.0.abs() >= 10_000 * 100 {
            format!("¥{}万", trim_decimals(yuan / 10_000.0))
        } else {
            format!("¥{}", grouped(self))
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "¥{}", grouped(*self))
    }
}

/// `80,000` or `80,000.50`.
fn grouped(a: Amount) -> String {
    let abs = a.0.unsigned_abs();
    let digits = (abs / 100).to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if !abs.is_multiple_of(100) {
        out.push_str(&format!(".{:02}", abs % 100));
    }
    if a.0 < 0 { format!("-{out}") } else { out }
}

/// Up to two decimals, without trailing zeros (shown, not stored: display only).
fn trim_decimals(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn checked(fen: i64) -> Result<Amount, AmountError> {
    if fen <= 0 || fen > MAX_FEN {
        Err(AmountError::OutOfRange)
    } else {
        Ok(Amount(fen))
    }
}

/// Reads the amount at the start of `text`; returns it and the rest of the text (trimmed).
pub fn parse(text: &str) -> Result<(Amount, &str), AmountError> {
    let text = text.trim_start();
    let token_end = text
        .char_indices()
        .find(|(_, c)| c.is_whitespace())
        .map_or(text.len(), |(i, _)| i);
    let token = &text[..token_end];
    if token.is_empty() {
        return Err(AmountError::Missing);
    }
    let fen = read(token)?;
    Ok((checked(fen)?, text[token_end..].trim_start()))
}

/// One token: `[¥|￥|RMB]` number `[万|w|千|k|百万|m|亿]` `[元|块]`, or Chinese numerals.
fn read(token: &str) -> Result<i64, AmountError> {
    let unreadable = || AmountError::Unreadable(token.to_owned());
    let mut t = token;
    for prefix in ["¥", "￥", "RMB", "rmb", "CNY", "cny"] {
        if let Some(rest) = t.strip_prefix(prefix) {
            t = rest;
            break;
        }
    }
    for suffix in ["元", "块钱", "块", "rmb", "RMB", "cny", "CNY"] {
        if let Some(rest) = t.strip_suffix(suffix) {
            t = rest;
            break;
        }
    }
    if t.is_empty() {
        return Err(unreadable());
    }
    if t.starts_with(|c: char| c.is_ascii_digit()) {
        let number_end = t
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_digit() || *c == '.' || *c == ','))
            .map_or(t.len(), |(i, _)| i);
        let (number, unit) = t.split_at(number_end);
        let multiplier: i64 = match unit {
            "" => 1,
            "万" | "w" | "W" => 10_000,
            "千" | "k" | "K" => 1_000,
            "百万" | "m" | "M" => 1_000_000,
            "亿" => 100_000_000,
            _ => return Err(unreadable()),
        };
        if number.contains(',') && !valid_grouping(number) {
            return Err(unreadable());
        }
        let plain = number.replace(',', "");
        return decimal_fen(&plain, multiplier).ok_or_else(unreadable)?;
    }
    chinese(t).ok_or_else(unreadable)
}

/// `80,000` / `1,234,567.50`: commas every three digits.
fn valid_grouping(number: &str) -> bool {
    let whole = number.split('.').next().unwrap_or_default();
    let groups: Vec<&str> = whole.split(',').collect();
    (1..=3).contains(&groups[0].len()) && groups[1..].iter().all(|g| g.len() == 3)
}

/// A decimal number times `multiplier`, in fen, exactly: `None` when it is not a number,
/// `Some(Err)` when it has more precision than a fen.
fn decimal_fen(number: &str, multiplier: i64) -> Option<Result<i64, AmountError>> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if number.ends_with('.') {
        return None;
    }
    // fen = (whole + fraction / 10^len) * multiplier * 100, computed in integers.
    let scale = 10_i128.checked_pow(fraction.len() as u32)?;
    let whole: i128 = whole.parse().ok()?;
    let fraction: i128 = if fraction.is_empty() { 0 } else { fraction.parse().ok()? };
    let numerator = (whole * scale + fraction) * i128::from(multiplier) * 100;
    if numerator % scale != 0 {
        return Some(Err(AmountError::TooPrecise));
    }
    let fen = numerator / scale;
    Some(if fen > i128::from(MAX_FEN) {
        Err(AmountError::OutOfRange)
    } else {
        Ok(fen as i64)
    })
}

/// Chinese numerals: `八十万`, `一百二十万`, `三千五百`, `一亿二千万`, and the spoken shorthand
/// `两万五` (25,000) / `十二万五` (125,000), where a last digit counts in the next unit down.
fn chinese(text: &str) -> Option<i64> {
    // Day-to-day digits, and the financial forms written on contracts and invoices.
    let digit = |c: char| -> Option<i64> {
        let financial = "壹贰叁肆伍陆柒捌玖".chars().position(|f| f == c).map(|i| i as u32 + 1);
        crate::texts::chinese_digit(c).or(financial).map(i64::from)
    };
    let unit = |c: char| -> Option<i64> {
        Some(match c {
            '十' | '拾' => 10,
            '百' | '佰' => 100,
            '千' | '仟' => 1_000,
            _ => return None,
        })
    };
    let (mut total, mut section, mut pending): (i64, i64, Option<i64>) = (0, 0, None);
    // The unit of the last thing read, for the spoken shorthand (a trailing digit).
    let mut last_unit = 1_i64;
    let mut seen = false;
    for c in text.chars() {
        seen = true;
        if let Some(d) = digit(c) {
            if pending.is_some() {
                return None;
            }
            pending = Some(d);
        } else if let Some(u) = unit(c) {
            // "十" alone means 10.
            section += pending.take().unwrap_or(1) * u;
            last_unit = u;
        } else if c == '万' || c == '亿' {
            let big = if c == '万' { 10_000 } else { 100_000_000 };
            let value = section + pending.take().unwrap_or(0);
            if value == 0 && total == 0 {
                return None;
            }
            total = if c == '亿' {
                (total + value) * big
            } else {
                total + value * big
            };
            section = 0;
            last_unit = big;
        } else {
            return None;
        }
    }
    if !seen {
        return None;
    }
    if let Some(d) = pending {
        // "两万五": the digit after a unit counts in the next unit down; "三千五" likewise.
        section += if last_unit >= 10 { d * (last_unit / 10) } else { d };
    }
    let yuan = total + section;
    (yuan > 0).then_some(yuan * 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yuan(text: &str) -> Result<i64, AmountError> {
        parse(text).map(|(a, _)| a.fen() / 100)
    }

    #[test]
    fn amounts_as_reps_type_them() {
        for (text, expected) in [
            ("50万", 500_000),
            ("5w", 50_000),
            ("5W", 50_000),
            ("12.5万", 125_000),
            ("300k", 300_000),
            ("¥80,000", 80_000),
            ("￥80000", 80_000),
            ("80000元", 80_000),
            ("1.2m", 1_200_000),
            ("2M", 2_000_000),
            ("八十万", 800_000),
            ("一百二十万", 1_200_000),
            ("两万五", 25_000),
            ("十二万五", 125_000),
            ("三千五", 3_500),
            ("三千五百", 3_500),
            ("十万", 100_000),
            ("一亿二千万", 120_000_000),
            ("1.5亿", 150_000_000),
            ("RMB5000", 5_000),
            ("1,234,567", 1_234_567),
        ] {
            assert_eq!(yuan(text), Ok(expected), "{text}");
        }
        assert_eq!(parse("80000.5").unwrap().0, Amount(8_000_050));
        assert_eq!(parse("0.01").unwrap().0, Amount(1));
    }

    #[test]
    fn the_rest_follows_the_amount() {
        let (a, rest) = parse("50万 华为二期").unwrap();
        assert_eq!((a.fen(), rest), (50_000_000, "华为二期"));
    }

    #[test]
    fn what_is_not_an_amount_is_said_not_guessed() {
        assert_eq!(parse(""), Err(AmountError::Missing));
        for text in [
            "五十来万",
            "50万多",
            "5x",
            "abc",
            "1,00",
            "1.2.3",
            "¥",
            "万",
            "12.",
            "十万八千里",
        ] {
            assert!(
                matches!(parse(text), Err(AmountError::Unreadable(_))),
                "{text}: {:?}",
                parse(text)
            );
        }
        assert_eq!(parse("0"), Err(AmountError::OutOfRange));
        assert_eq!(parse("2000亿"), Err(AmountError::OutOfRange));
        assert_eq!(parse("0.001"), Err(AmountError::TooPrecise));
        assert_eq!(parse("1.234k").map(|(a, _)| a.fen()), Ok(123_400));
        assert_eq!(parse("1.23456k").map(|(a, _)| a.fen()), Ok(123_456));
        assert_eq!(parse("1.234567k"), Err(AmountError::TooPrecise));
    }

    #[test]
    fn amounts_read_back_the_way_reps_write_them() {
        assert_eq!(Amount::from_yuan(500_000).short(), "¥50万");
        assert_eq!(Amount::from_yuan(125_000).short(), "¥12.5万");
        assert_eq!(Amount::from_yuan(8_000).short(), "¥8,000");
        assert_eq!(Amount::from_yuan(150_000_000).short(), "¥1.5亿");
        assert_eq!(Amount(8_000_050).to_string(), "¥80,000.50");
        assert_eq!(Amount(8_000_050).yuan_string(), "80000.50");
        assert_eq!(Amount::from_yuan_str("80000.5"), Ok(Amount(8_000_050)));
        assert!(Amount::from_yuan_str("8e4").is_err());
    }
}
