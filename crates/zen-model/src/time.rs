//! Reading the timestamp forms the sources use.

use jiff::Timestamp;

/// An RFC 3339 timestamp with an offset, e.g. `2023-05-25T13:44:05.478445995Z`.
pub(crate) fn rfc3339(text: &str) -> Result<Timestamp, String> {
    text.parse::<Timestamp>()
        .map_err(|e| format!("expected an RFC 3339 timestamp, found {text:?} ({e})"))
}

/// A protobuf `Timestamp` (`{seconds, nanos}`), as Kubernetes policy reports carry it.
pub(crate) fn unix_parts(seconds: i64, nanos: i32) -> Result<Timestamp, String> {
    Timestamp::new(seconds, nanos).map_err(|e| {
        format!("expected a timestamp of seconds and nanos, found {seconds}s {nanos}ns ({e})")
    })
}

/// Nanoseconds since the Unix epoch, as Falco's `evt.time`.
pub(crate) fn unix_nanos(nanos: i128) -> Result<Timestamp, String> {
    Timestamp::from_nanosecond(nanos)
        .map_err(|e| format!("expected nanoseconds since the epoch, found {nanos} ({e})"))
}

/// A number since the Unix epoch whose unit is told by its size: seconds below 10^11 (year
/// 5138), then milliseconds below 10^14, microseconds below 10^17, else nanoseconds. Integers
/// are converted exactly.
pub(crate) fn unix_any(n: &serde_json::Number) -> Result<Timestamp, String> {
    const SCALES: [(f64, i128); 3] = [(1e11, 1_000_000_000), (1e14, 1_000_000), (1e17, 1_000)];
    let too_big = || format!("expected a time since the epoch, found {n}");
    let x = n.as_f64().ok_or_else(too_big)?;
    let scale = SCALES
        .iter()
        .find(|(limit, _)| x.abs() < *limit)
        .map_or(1, |&(_, s)| s);
    let nanos = match n.as_i64() {
        Some(i) => i128::from(i) * scale,
        None if x.is_finite() && x.abs() * (scale as f64) < 1e20 => (x * scale as f64) as i128,
        None => return Err(too_big()),
    };
    unix_nanos(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_form() {
        assert_eq!(
            rfc3339("2023-05-25T13:44:05.478445995Z")
                .unwrap()
                .as_nanosecond(),
            1_685_022_245_478_445_995
        );
        assert_eq!(
            unix_nanos(1_685_022_245_478_445_995).unwrap().to_string(),
            "2023-05-25T13:44:05.478445995Z"
        );
        assert_eq!(
            unix_parts(1701868762, 5).unwrap().to_string(),
            "2023-12-06T13:19:22.000000005Z"
        );
        for n in [
            "1701868762",
            "1701868762000",
            "1701868762000000",
            "1701868762000000000",
            "1.701868762e18",
        ] {
            let n: serde_json::Number = n.parse().unwrap();
            assert_eq!(
                unix_any(&n).unwrap().to_string(),
                "2023-12-06T13:19:22Z",
                "{n}"
            );
        }
        let exact: serde_json::Number = "1770832800123456789".parse().unwrap();
        assert_eq!(
            unix_any(&exact).unwrap().to_string(),
            "2026-02-11T18:00:00.123456789Z"
        );
        let fractional: serde_json::Number = "1770832800.5".parse().unwrap();
        assert_eq!(
            unix_any(&fractional).unwrap().to_string(),
            "2026-02-11T18:00:00.5Z"
        );
    }

    #[test]
    fn out_of_range_is_an_error_not_a_panic() {
        assert!(rfc3339("2023-13-45T99:00:00Z").is_err());
        assert!(rfc3339("yesterday").is_err());
        assert!(unix_parts(i64::MAX, 0).is_err());
        assert!(unix_nanos(i128::MAX).is_err());
        assert!(unix_any(&"1e300".parse().unwrap()).is_err());
        assert!(unix_any(&"-1e300".parse().unwrap()).is_err());
    }
}
