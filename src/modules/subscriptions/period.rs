//! Billing periods, in UTC, keeping their anchor's day: a subscription anchored on
//! Jan 31 has periods ending Feb 28 (29 in a leap year), Mar 31, Apr 30, ...
//!
//! The n-th period end is always computed from the anchor (anchor + n intervals,
//! clamped to the month's last day), never from the previous end: stepping from
//! Feb 28 would drift every later period to the 28th.

use chrono::{DateTime, Months, Utc};

/// How often a plan is billed (`plans.billing_interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Month,
    Year,
}

impl Interval {
    /// `month` or `year`, as the plans table stores it.
    pub fn parse(text: &str) -> Option<Interval> {
        match text {
            "month" => Some(Interval::Month),
            "year" => Some(Interval::Year),
            _ => None,
        }
    }

    fn months(self) -> u32 {
        match self {
            Interval::Month => 1,
            Interval::Year => 12,
        }
    }

    /// Periods per year: to compare a monthly and a yearly price.
    pub fn per_year(self) -> i64 {
        match self {
            Interval::Month => 12,
            Interval::Year => 1,
        }
    }
}

/// The end of the `n`-th period from `anchor` (the first ends at `n = 1`): the
/// anchor plus `n` intervals, on the anchor's day or the month's last day if it has
/// fewer, at the anchor's time of day. `None` past what a timestamp holds.
pub fn period_end(anchor: DateTime<Utc>, interval: Interval, n: u32) -> Option<DateTime<Utc>> {
    // chrono clamps to the last day of the resulting month, which is the rule.
    anchor.checked_add_months(Months::new(interval.months().checked_mul(n)?))
}

/// The first period end of the anchor's grid strictly after `after`: where the period
/// that starts at `after` (a period end of the same grid) ends. `None` past what a
/// timestamp holds.
pub fn next_period_end(
    anchor: DateTime<Utc>,
    interval: Interval,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    // Start from an estimate a little before the answer (months elapsed, less one
    // for the clamping), then step: a few iterations at most, whatever the gap.
    let elapsed = months_between(anchor, after).max(0);
    let mut n = u32::try_from(elapsed / i64::from(interval.months()))
        .unwrap_or(u32::MAX)
        .saturating_sub(1)
        .max(1);
    loop {
        let end = period_end(anchor, interval, n)?;
        if end > after {
            return Some(end);
        }
        n = n.checked_add(1)?;
    }
}

/// Whole calendar months from `from` to `to` by their year and month alone.
fn months_between(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    use chrono::Datelike;
    (i64::from(to.year()) - i64::from(from.year())) * 12 + i64::from(to.month())
        - i64::from(from.month())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn monthly_periods_from_jan_31_keep_the_31st_where_the_month_has_it() {
        let anchor = at("2027-01-31T09:30:00Z");
        let ends: Vec<String> = (1..=12)
            .map(|n| {
                period_end(anchor, Interval::Month, n)
                    .unwrap()
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .collect();
        assert_eq!(
            ends,
            [
                "2027-02-28 09:30",
                "2027-03-31 09:30",
                "2027-04-30 09:30",
                "2027-05-31 09:30",
                "2027-06-30 09:30",
                "2027-07-31 09:30",
                "2027-08-31 09:30",
                "2027-09-30 09:30",
                "2027-10-31 09:30",
                "2027-11-30 09:30",
                "2027-12-31 09:30",
                "2028-01-31 09:30",
            ]
        );
    }

    #[test]
    fn february_of_a_leap_year_ends_on_the_29th() {
        let anchor = at("2028-01-31T00:00:00Z");
        assert_eq!(
            period_end(anchor, Interval::Month, 1).unwrap(),
            at("2028-02-29T00:00:00Z")
        );
        assert_eq!(
            period_end(anchor, Interval::Month, 2).unwrap(),
            at("2028-03-31T00:00:00Z")
        );
    }

    #[test]
    fn the_next_period_after_a_clamped_end_goes_back_to_the_anchor_day() {
        let anchor = at("2027-01-31T00:00:00Z");
        let feb = next_period_end(anchor, Interval::Month, anchor).unwrap();
        assert_eq!(feb, at("2027-02-28T00:00:00Z"));
        let mar = next_period_end(anchor, Interval::Month, feb).unwrap();
        assert_eq!(mar, at("2027-03-31T00:00:00Z"), "not the 28th");
        let apr = next_period_end(anchor, Interval::Month, mar).unwrap();
        assert_eq!(apr, at("2027-04-30T00:00:00Z"));
        // Any instant inside a period gives that period's end.
        assert_eq!(
            next_period_end(anchor, Interval::Month, at("2027-03-15T12:00:00Z")).unwrap(),
            mar
        );
        // Years later, still on the grid.
        assert_eq!(
            next_period_end(anchor, Interval::Month, at("2031-08-31T00:00:00Z")).unwrap(),
            at("2031-09-30T00:00:00Z")
        );
    }

    #[test]
    fn yearly_periods_keep_the_anchor_day_and_feb_29_falls_back_to_the_28th() {
        let anchor = at("2028-02-29T08:00:00Z");
        assert_eq!(
            period_end(anchor, Interval::Year, 1).unwrap(),
            at("2029-02-28T08:00:00Z")
        );
        assert_eq!(
            period_end(anchor, Interval::Year, 4).unwrap(),
            at("2032-02-29T08:00:00Z"),
            "the anchor's day again, in the next leap year"
        );
        let first = next_period_end(anchor, Interval::Year, anchor).unwrap();
        assert_eq!(first, at("2029-02-28T08:00:00Z"));
        assert_eq!(
            next_period_end(anchor, Interval::Year, first).unwrap(),
            at("2030-02-28T08:00:00Z")
        );
    }

    #[test]
    fn an_end_beyond_what_a_timestamp_holds_is_none() {
        let anchor = at("2027-01-31T00:00:00Z");
        assert!(period_end(anchor, Interval::Year, u32::MAX).is_none());
    }
}
