//! Message status reports (daily, weekly, monthly): the rows, their status words and CSV.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::AppResult;
/// One recipient's line of a status report.
pub use crate::store::reports::StatusRow;
use crate::store::{self, reports::Scope};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Daily,
    /// Monday to Sunday.
    Weekly,
    Monthly,
}

impl Period {
    /// The `[start, end)` UTC range of the period that contains `day`.
    pub fn range(self, day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        let (start, end) = match self {
            Period::Daily => (day, day + Duration::days(1)),
            Period::Weekly => {
                let monday = day - Duration::days(day.weekday().num_days_from_monday().into());
                (monday, monday + Duration::days(7))
            }
            Period::Monthly => {
                let first = day.with_day(1).expect("day 1 exists");
                let next = if first.month() == 12 {
                    NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
                }
                .expect("valid month");
                (first, next)
            }
        };
        let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        (midnight(start), midnight(end))
    }
}

/// The report's status word for a recipient's status.
pub fn status_word(status: &str, failure_origin: Option<&str>) -> &'static str {
    match status {
        "DISPATCHED" | "DISPLAYED" => "Delivered",
        "FAILED" if failure_origin == Some("remote") => "Remotely Failed",
        "FAILED" => "Locally Failed",
        "FAILED-TO" => "NO MDN Received",
        _ => "Waiting",
    }
}

pub const CSV_HEADER: [&str; 10] = [
    "From",
    "To",
    "Message ID",
    "Message Size",
    "Status",
    "Sent Time",
    "XDR Message ID",
    "XDR Source ID",
    "XDR Unique ID",
    "XDR Patient ID",
];

/// The time format of report rows (UTC).
pub fn sent_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn to_csv(rows: &[StatusRow]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER).expect("writing to memory");
    for r in rows {
        w.write_record([
            r.from_address.as_str(),
            &r.recipient,
            &r.smtp_message_id,
            &r.size_bytes.to_string(),
            status_word(&r.status, r.failure_origin.as_deref()),
            &sent_time(r.sent_at),
            r.xdr_message_id.as_deref().unwrap_or(""),
            r.xdr_source_id.as_deref().unwrap_or(""),
            r.xdr_unique_id.as_deref().unwrap_or(""),
            r.xdr_patient_id.as_deref().unwrap_or(""),
        ])
        .expect("writing to memory");
    }
    w.into_inner().expect("flushing to memory")
}

pub async fn status_rows(
    db: &PgPool,
    period: Period,
    day: NaiveDate,
    reseller: Option<Uuid>,
    domain: Option<&str>,
) -> AppResult<Vec<StatusRow>> {
    let (from, until) = period.range(day);
    let scope = Scope {
        reseller,
        domain,
        from,
        until,
    };
    Ok(store::reports::status_rows(db, &scope).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_cover_their_calendar_span() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 17).unwrap(); // a Thursday
        let (a, b) = Period::Weekly.range(d);
        assert_eq!(a.to_rfc3339(), "2026-12-14T00:00:00+00:00");
        assert_eq!(b.to_rfc3339(), "2026-12-21T00:00:00+00:00");
        let (a, b) = Period::Monthly.range(d);
        assert_eq!((a.month(), b.year(), b.month()), (12, 2027, 1));
        let (a, b) = Period::Daily.range(d);
        assert_eq!(b - a, Duration::days(1));
    }

    #[test]
    fn status_words_follow_the_report_columns() {
        assert_eq!(status_word("DISPATCHED", None), "Delivered");
        assert_eq!(status_word("DISPLAYED", None), "Delivered");
        assert_eq!(status_word("PROCESSED", None), "Waiting");
        assert_eq!(status_word("SMTPINIT", None), "Waiting");
        assert_eq!(status_word("FAILED", Some("local")), "Locally Failed");
        assert_eq!(status_word("FAILED", Some("remote")), "Remotely Failed");
        assert_eq!(status_word("FAILED-TO", None), "NO MDN Received");
    }
}
