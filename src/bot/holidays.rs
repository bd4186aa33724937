//! Holidays reps name as days (`中秋 上午10点`, `春节前`, `christmas`): the fixed-date ones by their
//! date, the lunar ones (春节, 元宵, 端午, 中秋, 除夕) from a table of their official dates — a table
//! rather than a lunisolar calendar crate: five dates a year are easier to check than an algorithm,
//! and [`tests::the_table_reaches_next_year`] fails when it needs its next rows.

use chrono::{Datelike, Days, NaiveDate};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holiday {
    NewYear,
    Labour,
    National,
    ChristmasEve,
    Christmas,
    /// 除夕, the eve of the Spring Festival.
    SpringEve,
    Spring,
    Lantern,
    DragonBoat,
    MidAutumn,
}

/// Chinese names, longest first where one starts another.
pub const CHINESE: [(&str, Holiday); 19] = [
    ("元旦节", Holiday::NewYear),
    ("元旦", Holiday::NewYear),
    ("劳动节", Holiday::Labour),
    ("五一", Holiday::Labour),
    ("国庆节", Holiday::National),
    ("国庆", Holiday::National),
    ("平安夜", Holiday::ChristmasEve),
    ("圣诞节", Holiday::Christmas),
    ("圣诞", Holiday::Christmas),
    ("除夕", Holiday::SpringEve),
    ("大年三十", Holiday::SpringEve),
    ("大年初一", Holiday::Spring),
    ("春节", Holiday::Spring),
    ("元宵节", Holiday::Lantern),
    ("元宵", Holiday::Lantern),
    ("端午节", Holiday::DragonBoat),
    ("端午", Holiday::DragonBoat),
    ("中秋节", Holiday::MidAutumn),
    ("中秋", Holiday::MidAutumn),
];

/// English names (case-insensitive).
pub const ENGLISH: [(&str, Holiday); 11] = [
    ("new year's day", Holiday::NewYear),
    ("new years day", Holiday::NewYear),
    ("labour day", Holiday::Labour),
    ("labor day", Holiday::Labour),
    ("national day", Holiday::National),
    ("christmas eve", Holiday::ChristmasEve),
    ("christmas", Holiday::Christmas),
    ("chinese new year", Holiday::Spring),
    ("spring festival", Holiday::Spring),
    ("dragon boat festival", Holiday::DragonBoat),
    ("mid-autumn festival", Holiday::MidAutumn),
];

/// One year's lunar holidays, as (month, day).
struct LunarYear {
    year: i32,
    spring: (u32, u32),
    dragon_boat: (u32, u32),
    mid_autumn: (u32, u32),
}

const fn lunar_year(year: i32, spring: (u32, u32), dragon_boat: (u32, u32), mid_autumn: (u32, u32)) -> LunarYear {
    LunarYear {
        year,
        spring,
        dragon_boat,
        mid_autumn,
    }
}

/// The official dates of the Spring Festival, the Dragon Boat Festival and the Mid-Autumn
/// Festival, by year.
const LUNAR: [LunarYear; 6] = [
    lunar_year(2025, (1, 29), (5, 31), (10, 6)),
    lunar_year(2026, (2, 17), (6, 19), (9, 25)),
    lunar_year(2027, (2, 6), (6, 9), (9, 15)),
    lunar_year(2028, (1, 26), (5, 28), (10, 3)),
    lunar_year(2029, (2, 13), (6, 16), (9, 22)),
    lunar_year(2030, (2, 3), (6, 5), (9, 12)),
];

/// The holiday's date in `year`, if known.
pub fn date_in(holiday: Holiday, year: i32) -> Option<NaiveDate> {
    let fixed = |month, day| NaiveDate::from_ymd_opt(year, month, day);
    let lunar = |pick: fn(&LunarYear) -> (u32, u32)| {
        LUNAR
            .iter()
            .find(|row| row.year == year)
            .and_then(|row| fixed(pick(row).0, pick(row).1))
    };
    match holiday {
        Holiday::NewYear => fixed(1, 1),
        Holiday::Labour => fixed(5, 1),
        Holiday::National => fixed(10, 1),
        Holiday::ChristmasEve => fixed(12, 24),
        Holiday::Christmas => fixed(12, 25),
        // 除夕 falls in the year before the Spring Festival's at the latest on 12-31: look it up
        // by the festival of the next year when this year's is already over.
        Holiday::SpringEve => lunar(|r| r.spring).and_then(|d| d.checked_sub_days(Days::new(1))),
        Holiday::Spring => lunar(|r| r.spring),
        Holiday::Lantern => lunar(|r| r.spring).and_then(|d| d.checked_add_days(Days::new(14))),
        Holiday::DragonBoat => lunar(|r| r.dragon_boat),
        Holiday::MidAutumn => lunar(|r| r.mid_autumn),
    }
}

/// The holiday's next date on or after `today`; an error when the table does not reach it.
pub fn next(holiday: Holiday, today: NaiveDate) -> Result<NaiveDate, String> {
    for year in today.year()..=today.year() + 1 {
        if let Some(date) = date_in(holiday, year)
            && date >= today
        {
            return Ok(date);
        }
    }
    let last = LUNAR[LUNAR.len() - 1].year;
    Err(format!("the lunar holidays are known up to {last}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_and_lunar_dates() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(next(Holiday::NewYear, d(2026, 11, 25)), Ok(d(2027, 1, 1)));
        assert_eq!(next(Holiday::Christmas, d(2026, 12, 25)), Ok(d(2026, 12, 25)));
        assert_eq!(next(Holiday::Spring, d(2026, 11, 25)), Ok(d(2027, 2, 6)));
        assert_eq!(next(Holiday::SpringEve, d(2026, 11, 25)), Ok(d(2027, 2, 5)));
        assert_eq!(next(Holiday::Lantern, d(2026, 11, 25)), Ok(d(2027, 2, 20)));
        assert_eq!(next(Holiday::MidAutumn, d(2026, 9, 1)), Ok(d(2026, 9, 25)));
        assert_eq!(next(Holiday::DragonBoat, d(2026, 11, 25)), Ok(d(2027, 6, 9)));
        assert!(next(Holiday::MidAutumn, d(2031, 1, 1)).is_err());
    }

    /// Fails when the lunar table no longer covers next year: add the official dates.
    #[test]
    fn the_table_reaches_next_year() {
        let year = chrono::Utc::now().year();
        assert!(
            LUNAR.iter().any(|row| row.year == year + 1),
            "add the official 春节 / 端午 / 中秋 dates of {} to LUNAR",
            year + 1
        );
    }
}
