//! The time-expression case table (`tests/data/parse-time.tsv`): one case per line, tab-separated —
//! the clock (`now`, RFC 3339), the message, the expected instant (RFC 3339, or `ERROR`) and the
//! expected rest of the text (`-` for none). Lines starting with `#` are comments. The unit tests
//! require every case to hold; the `time_parse` benchmark reports the pass rate and the speed. The
//! same format holds the colloquial set (`tests/data/colloquial-times.tsv`), judged by
//! [`Case::reading`]: how many read exactly, and that none is read as another instant.

use chrono::DateTime;
use chrono_tz::Tz;

use super::time::{parse, rfc3339};

/// One row of the table, borrowed from its text.
#[derive(Debug, Clone)]
pub struct Case<'a> {
    pub now: DateTime<Tz>,
    pub input: &'a str,
    pub expected: &'a str,
    pub rest: &'a str,
}

/// The cases of `table`, read in `tz`; a malformed line is an error naming it.
pub fn read(table: &str, tz: Tz) -> Result<Vec<Case<'_>>, String> {
    table
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let [now, input, expected, rest] = line.split('\t').collect::<Vec<_>>()[..] else {
                return Err(format!("not four tab-separated columns: {line}"));
            };
            let now = DateTime::parse_from_rfc3339(now)
                .map_err(|e| format!("bad clock {now:?} ({e}): {line}"))?
                .with_timezone(&tz);
            Ok(Case {
                now,
                input,
                expected,
                rest,
            })
        })
        .collect()
}

/// How a case came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// The instant and the rest as expected (or refused, as expected).
    Exact,
    /// The right instant, another rest.
    OtherRest,
    /// Refused, where an instant was expected: the rep is asked again, nothing is stored.
    Refused,
    /// Another instant than expected, or an instant where a refusal was: silently wrong.
    Wrong,
}

impl Case<'_> {
    /// Parses the case's message and says how it came out.
    pub fn reading(&self, default_hour: u32) -> Reading {
        match (parse(self.input, self.now, default_hour), self.expected) {
            (Err(_), "ERROR") => Reading::Exact,
            (Err(_), _) => Reading::Refused,
            (Ok(p), expected) if rfc3339(&p.at) == expected => {
                let rest = if p.rest.is_empty() { "-" } else { p.rest.as_str() };
                if rest == self.rest {
                    Reading::Exact
                } else {
                    Reading::OtherRest
                }
            }
            (Ok(_), _) => Reading::Wrong,
        }
    }

    /// Parses the case's message; `Err` says what came out instead of the expected.
    pub fn check(&self, default_hour: u32) -> Result<(), String> {
        let got = match parse(self.input, self.now, default_hour) {
            Ok(p) => (rfc3339(&p.at), if p.rest.is_empty() { "-".to_owned() } else { p.rest }),
            Err(_) => ("ERROR".to_owned(), "-".to_owned()),
        };
        if (got.0.as_str(), got.1.as_str()) == (self.expected, self.rest) {
            Ok(())
        } else {
            Err(format!(
                "{:?} at {}: expected {} / {}, got {} / {}",
                self.input, self.now, self.expected, self.rest, got.0, got.1
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_expectation_is_reported() {
        let table = "2026-11-25T10:00:00+08:00\t2小时后 回电话\t2026-11-25T13:00:00+08:00\t回电话\n";
        let cases = read(table, chrono_tz::Asia::Shanghai).unwrap();
        let error = cases[0].check(9).unwrap_err();
        assert!(error.contains("got 2026-11-25T12:00:00+08:00 / 回电话"), "{error}");
    }

    #[test]
    fn a_malformed_line_is_an_error() {
        assert!(read("2026-11-25T10:00:00+08:00\tonly two", chrono_tz::Asia::Shanghai).is_err());
    }
}
