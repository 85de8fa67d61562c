//! Timestamps as the connections table stores them.

/// Now as ISO-8601 UTC with milliseconds, e.g. `2026-11-27T13:21:17.123Z`.
pub fn now_iso8601() -> String {
    iso8601(time::OffsetDateTime::now_utc())
}

pub(crate) fn iso8601(t: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&format)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_is_utc_with_millis() {
        let t = time::macros::datetime!(2026-01-09 12:34:56.789 UTC);
        assert_eq!(iso8601(t), "2026-01-09T12:34:56.789Z");
    }
}
