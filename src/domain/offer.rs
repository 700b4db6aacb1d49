//! The Organization Registration offers (CDOn, CDONLPn) and money in cents.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;

use super::Invalid;

/// The seat counts the offers come in.
const SEATS: [u32; 22] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 30, 40, 50, 75, 100, 150, 300, 450, 600, 750,
];

/// An offer: `CDO<n>` or, with natural-language processing, `CDONLP<n>`. It caps the
/// organization's Direct addresses at `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    pub nlp: bool,
    pub seats: u32,
}

impl Offer {
    pub fn all() -> impl Iterator<Item = Offer> {
        [false, true]
            .into_iter()
            .flat_map(|nlp| SEATS.into_iter().map(move |seats| Offer { nlp, seats }))
    }
    pub fn address_cap(self) -> u32 {
        self.seats
    }
    pub fn description(self) -> String {
        let kind = if self.nlp {
            "Hosted Direct Secure Messaging with NLP"
        } else {
            "Hosted Direct Secure Messaging"
        };
        let n = self.seats;
        let plural = if n == 1 { "" } else { "es" };
        format!("{kind}: domain certificate and up to {n} Direct address{plural}, one year")
    }
}

impl fmt::Display for Offer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let family = if self.nlp { "CDONLP" } else { "CDO" };
        write!(f, "{family}{}", self.seats)
    }
}

impl FromStr for Offer {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        let s = s.trim().to_ascii_uppercase();
        let (nlp, n) = if let Some(n) = s.strip_prefix("CDONLP") {
            (true, n)
        } else if let Some(n) = s.strip_prefix("CDO") {
            (false, n)
        } else {
            (false, "")
        };
        match n.parse::<u32>() {
            Ok(seats) if SEATS.contains(&seats) && !n.starts_with('0') => Ok(Offer { nlp, seats }),
            _ => Err(Invalid::new(
                "DirectOfferType",
                format!(
                    "{s:?} is not an offer type; expected CDO<n> or CDONLP<n> with n one of 1-10, 15, 20, 30, 40, 50, 75, 100, 150, 300, 450, 600, 750"
                ),
            )),
        }
    }
}

/// An amount of US dollars in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cents(pub i64);

impl Cents {
    pub fn from_dollars(d: f64) -> Result<Self, Invalid> {
        if !d.is_finite() || !(0.0..=1e10).contains(&d) {
            return Err(Invalid::new(
                "amount",
                "must be a non-negative amount of dollars",
            ));
        }
        Ok(Cents((d * 100.0).round() as i64))
    }
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let s = s.trim();
        let ok = !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && s.matches('.').count() <= 1
            && s.split('.').nth(1).is_none_or(|frac| frac.len() <= 2);
        if !ok {
            return Err(Invalid::new("amount", "must be dollars like 250 or 250.00"));
        }
        Self::from_dollars(
            s.parse()
                .map_err(|_| Invalid::new("amount", "not a number"))?,
        )
    }
    pub fn times(self, n: i64) -> Cents {
        Cents(self.0 * n)
    }
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{}.{:02}", self.0.abs() / 100, self.0.abs() % 100)
    }
}

/// Money travels as a decimal string ("96.00"), never as a float.
impl serde::Serialize for Cents {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// The price of an address added during the service year `[start, expires)`: the yearly
/// price times the part of that year still to come (rounded to the cent). The year is the
/// service year's own length, so a leap year costs no more than any other.
pub fn prorate(yearly: Cents, today: NaiveDate, start: NaiveDate, expires: NaiveDate) -> Cents {
    let year = (expires - start).num_days().max(1) as i128;
    let left = (expires - today).num_days().clamp(0, year as i64) as i128;
    Cents(((yearly.0 as i128 * left * 2 + year) / (year * 2)) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_offer_parses_and_prints_back() {
        assert_eq!(Offer::all().count(), 44);
        for o in Offer::all() {
            assert_eq!(o.to_string().parse::<Offer>().unwrap(), o);
        }
        assert_eq!("cdonlp15".parse::<Offer>().unwrap().address_cap(), 15);
        for bad in ["CDO11", "CDO", "CDO05", "CDONLP0", "XYZ5", "CDO-1", ""] {
            let e = bad.parse::<Offer>().unwrap_err();
            assert_eq!(e.field, "DirectOfferType", "{bad}");
        }
    }

    #[test]
    fn proration_is_by_days_left_of_a_year() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let yearly = Cents(12000);
        let (start, end) = (d("2026-01-01"), d("2027-01-01"));
        assert_eq!(prorate(yearly, start, start, end), Cents(12000));
        // 73 of 365 days left = exactly a fifth.
        assert_eq!(prorate(yearly, d("2026-10-20"), start, end), Cents(2400));
        assert_eq!(prorate(yearly, d("2027-02-01"), start, end), Cents(0));
        // A leap service year: 183 of 366 days left is exactly half.
        let (start, end) = (d("2027-06-01"), d("2028-06-01"));
        assert_eq!(prorate(yearly, d("2027-12-01"), start, end), Cents(6000));
        assert_eq!(Cents(123456).to_string(), "1234.56");
        assert_eq!(Cents::parse("250.5").unwrap(), Cents(25050));
        assert!(Cents::parse("1.234").is_err());
        assert!(Cents::parse("-3").is_err());
    }
}
