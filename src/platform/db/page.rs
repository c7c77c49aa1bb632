//! Keyset pagination (docs/api.md "Lists"): `?limit=` 1..100 (default 50) and an opaque
//! `?cursor=` naming the last row seen by its `(created_at, id)`. Queries fetch one
//! row more than the limit to know whether there is a next page.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Error;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 100;

#[derive(Debug, Clone)]
pub struct Page {
    pub limit: i64,
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

impl Page {
    pub fn parse(limit: Option<i64>, cursor: Option<&str>) -> Result<Page, Error> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Error::BadRequest(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        let after = match cursor {
            None | Some("") => None,
            Some(cursor) => Some(
                decode(cursor)
                    .ok_or_else(|| Error::BadRequest("the cursor is not valid".into()))?,
            ),
        };
        Ok(Page { limit, after })
    }

    /// Rows to fetch: one more than the page, to learn whether another follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// The keyset bound for ascending lists: `WHERE (created_at, id) > ($1, $2)`. The
    /// first page starts before any row (1970), so there is one statement, with no
    /// `$1 IS NULL OR ...` that a generic plan could not turn into an index range.
    pub fn after(&self) -> (DateTime<Utc>, Uuid) {
        self.after.unwrap_or((DateTime::UNIX_EPOCH, Uuid::nil()))
    }

    /// The keyset bound for descending lists: `WHERE (created_at, id) < ($1, $2)`; the
    /// first page starts after any row (year 9999).
    pub fn before(&self) -> (DateTime<Utc>, Uuid) {
        self.after.unwrap_or_else(|| (end_of_time(), Uuid::max()))
    }

    /// Cuts `rows` to the page and makes the next cursor from the last row kept.
    pub fn finish<T>(
        &self,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> (DateTime<Utc>, Uuid),
    ) -> (Vec<T>, Option<String>) {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        if rows.len() > limit {
            rows.truncate(limit);
            let next = rows.last().map(|row| encode(key(row)));
            (rows, next)
        } else {
            (rows, None)
        }
    }
}

fn encode((time, id): (DateTime<Utc>, Uuid)) -> String {
    let raw = format!("{}|{}", time.timestamp_micros(), id);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// The largest time PostgreSQL and chrono both hold: 9999-12-31T23:59:59Z.
fn end_of_time() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A cursor this server could have made: its time lies between the bounds of the
/// first pages (1970 and 9999). Any other is refused here, in our words, rather than
/// by PostgreSQL (chrono holds years PostgreSQL does not: before 4713 BC).
fn decode(cursor: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (micros, id) = raw.split_once('|')?;
    let time = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    if !(DateTime::UNIX_EPOCH..=end_of_time()).contains(&time) {
        return None;
    }
    Some((time, id.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips() {
        let key = (
            DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            Uuid::new_v4(),
        );
        assert_eq!(decode(&encode(key)), Some(key));
    }

    #[test]
    fn a_cursor_outside_the_years_of_the_first_pages_is_refused() {
        let id = Uuid::new_v4();
        for micros in [
            i64::MIN,
            -300_000_000_000_000_000,
            -1,
            253_402_300_800_000_000,
        ] {
            let cursor =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{micros}|{id}"));
            assert!(decode(&cursor).is_none(), "{micros}");
        }
        for time in [DateTime::UNIX_EPOCH, end_of_time()] {
            assert_eq!(decode(&encode((time, id))), Some((time, id)));
        }
    }

    #[test]
    fn a_bad_limit_or_cursor_is_a_bad_request() {
        assert!(Page::parse(Some(0), None).is_err());
        assert!(Page::parse(Some(101), None).is_err());
        assert!(Page::parse(None, Some("garbage!")).is_err());
        assert_eq!(Page::parse(None, None).unwrap().limit, 50);
    }
}
