//! `[history]`: how long each stream's messages are kept for clients that come back, and how
//! many a resume replays at most (see the handler's `history` module).

use std::time::Duration;

use serde::Serialize;
use toml::Spanned;

use super::checker::Checker;
use super::raw::RawHistory;
use super::ConfigError;

/// The shortest and longest retention.
pub const RETENTION: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(60)..=Duration::from_secs(7 * 86_400);

/// `[history]`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryConfig {
    #[serde(with = "seconds")]
    pub retention: Duration,
    pub max_per_stream: u32,
}

mod seconds {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}

pub(super) fn check_history(
    c: &Checker<'_>,
    raw: Option<&Spanned<RawHistory>>,
) -> Result<Option<HistoryConfig>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let h = raw.get_ref();
    let retention = match &h.retention {
        None => Duration::from_secs(600),
        Some(r) => {
            let parsed = humantime::parse_duration(r.get_ref().trim()).map_err(|e| {
                c.invalid(
                    "history.retention",
                    r.span(),
                    format!(
                        "{:?} is not a duration ({e}): e.g. \"10m\", \"1h\"",
                        r.get_ref()
                    ),
                )
            })?;
            if !RETENTION.contains(&parsed) {
                return Err(c.invalid(
                    "history.retention",
                    r.span(),
                    format!("{:?} is out of range: 1 minute to 7 days", r.get_ref()),
                ));
            }
            parsed
        }
    };
    let max_per_stream = c.int_in(
        "history.max_per_stream",
        &h.max_per_stream,
        1000,
        1..=10_000,
        "messages (what one resume replays at most per stream)",
    )? as u32;
    Ok(Some(HistoryConfig {
        retention,
        max_per_stream,
    }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::Config;

    fn load(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("wsctl.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn history_is_off_without_the_section_and_checked_with_it() {
        assert_eq!(load("project = \"demo\"\n").unwrap().history, None);
        let on = load("project = \"demo\"\n[history]\n")
            .unwrap()
            .history
            .unwrap();
        assert_eq!(
            (on.retention, on.max_per_stream),
            (Duration::from_secs(600), 1000)
        );
        let set =
            load("project = \"demo\"\n[history]\nretention = \"1h30m\"\nmax_per_stream = 50\n")
                .unwrap()
                .history
                .unwrap();
        assert_eq!(
            (set.retention, set.max_per_stream),
            (Duration::from_secs(5400), 50)
        );
        for (text, want) in [
            (
                "retention = \"soon\"",
                "wsctl.toml:3: history.retention: \"soon\" is not a duration",
            ),
            ("retention = \"10s\"", "out of range: 1 minute to 7 days"),
            (
                "max_per_stream = 0",
                "history.max_per_stream: 0 is out of range",
            ),
            ("keep = 1", "unknown field `keep`"),
        ] {
            let e = load(&format!("project = \"demo\"\n[history]\n{text}\n")).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
