//! Reading the timestamp forms the sources use.

use jiff::Timestamp;

/// An RFC 3339 timestamp with an offset, e.g. `2023-05-25T13:44:05.478445995Z`.
pub(crate) fn rfc3339(text: &str) -> Result<Timestamp, String> {
    text.parse::<Timestamp>()
        .map_err(|e| format!("expected an RFC 3339 timestamp, found {text:?} ({e})"))
}

/// A protobuf `Timestamp` (`{seconds, nanos}`), as Kubernetes policy reports carry it.
pub(crate) fn unix_parts(seconds: i64, nanos: i32) -> Result<Timestamp, String> {
    Timestamp::new(seconds, nanos)
        .map_err(|e| format!("expected a timestamp of seconds and nanos, found {seconds}s {nanos}ns ({e})"))
}

/// Nanoseconds since the Unix epoch, as Falco's `evt.time`.
pub(crate) fn unix_nanos(nanos: i128) -> Result<Timestamp, String> {
    Timestamp::from_nanosecond(nanos)
        .map_err(|e| format!("expected nanoseconds since the epoch, found {nanos} ({e})"))
}

/// A number since the Unix epoch whose unit is told by its size: seconds up to 10^11 (year 5138),
/// then milliseconds up to 10^14, microseconds up to 10^17, else nanoseconds.
pub(crate) fn unix_any(n: f64) -> Result<Timestamp, String> {
    let abs = n.abs();
    let nanos = if abs < 1e11 {
        n * 1e9
    } else if abs < 1e14 {
        n * 1e6
    } else if abs < 1e17 {
        n * 1e3
    } else {
        n
    };
    if !nanos.is_finite() || nanos.abs() > 1e20 {
        return Err(format!("expected a time since the epoch, found {n}"));
    }
    unix_nanos(nanos as i128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_form() {
        assert_eq!(
            rfc3339("2023-05-25T13:44:05.478445995Z").unwrap().as_nanosecond(),
            1_685_022_245_478_445_995
        );
        assert_eq!(
            unix_nanos(1_685_022_245_478_445_995).unwrap().to_string(),
            "2023-05-25T13:44:05.478445995Z"
        );
        assert_eq!(unix_parts(1701868762, 5).unwrap().to_string(), "2023-12-06T13:19:22.000000005Z");
        for n in [1_701_868_762.0, 1_701_868_762_000.0, 1_701_868_762_000_000.0, 1.701_868_762e18] {
            assert_eq!(unix_any(n).unwrap().to_string(), "2023-12-06T13:19:22Z", "{n}");
        }
    }

    #[test]
    fn out_of_range_is_an_error_not_a_panic() {
        assert!(rfc3339("2023-13-45T99:00:00Z").is_err());
        assert!(rfc3339("yesterday").is_err());
        assert!(unix_parts(i64::MAX, 0).is_err());
        assert!(unix_nanos(i128::MAX).is_err());
        assert!(unix_any(f64::INFINITY).is_err());
        assert!(unix_any(1e300).is_err());
    }
}
