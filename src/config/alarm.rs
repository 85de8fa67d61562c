//! `[alarm]`: the SNS topic the alarm on the function's errors notifies, its threshold and
//! periods.

use super::checker::{nonempty, span_of, valid_arn, Checker};
use super::raw::RawAlarm;
use super::{AlarmConfig, ConfigError};

/// CloudWatch's alarm periods: 10, 30 or a multiple of 60 seconds.
fn valid_period(p: i64) -> bool {
    p == 10 || p == 30 || (p >= 60 && p % 60 == 0 && p <= 86_400)
}

pub(super) fn check_alarm(
    c: &Checker<'_>,
    a: &RawAlarm,
) -> Result<Option<AlarmConfig>, ConfigError> {
    let Some(topic) = nonempty(&a.sns_topic_arn) else {
        c.no_stray(
            [
                ("alarm.errors_threshold", span_of(&a.errors_threshold)),
                ("alarm.period_seconds", span_of(&a.period_seconds)),
                ("alarm.evaluation_periods", span_of(&a.evaluation_periods)),
            ],
            "has no effect without alarm.sns_topic_arn (the alarm is off)",
        )?;
        return Ok(None);
    };
    let arn = topic.get_ref().trim();
    if !valid_arn(arn, "sns") {
        return Err(c.invalid(
            "alarm.sns_topic_arn",
            topic.span(),
            format!("{arn:?} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)"),
        ));
    }
    let period_seconds = c.int_in(
        "alarm.period_seconds",
        &a.period_seconds,
        300,
        10..=86_400,
        "seconds",
    )?;
    if !valid_period(period_seconds) {
        let span = a.period_seconds.as_ref().map_or(0..0, |v| v.span());
        return Err(c.invalid(
            "alarm.period_seconds",
            span,
            format!("{period_seconds} is not a CloudWatch period: use 10, 30 or a multiple of 60"),
        ));
    }
    Ok(Some(AlarmConfig {
        sns_topic_arn: arn.to_owned(),
        errors_threshold: c.int_in(
            "alarm.errors_threshold",
            &a.errors_threshold,
            1,
            1..=1_000_000,
            "errors",
        )?,
        period_seconds,
        evaluation_periods: c.int_in(
            "alarm.evaluation_periods",
            &a.evaluation_periods,
            1,
            1..=100,
            "periods",
        )?,
    }))
}
