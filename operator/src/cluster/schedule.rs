//! When automatic backups are due and which ones have expired: pure functions
//! of the policy, what exists and the time, so tests drive them with any clock.
//!
//! A schedule is a cron expression (five fields, or six with seconds first) or
//! a daily window, both in UTC. A backup is due when a scheduled time passed
//! since the last one the operator took (or since it first saw the schedule):
//! however many times were missed while the operator was down, it catches up
//! once, with the latest of them. A scheduled time that comes while the
//! cluster's previous automatic backup is still running is skipped, as a
//! CronJob with `concurrencyPolicy: Forbid` does, so a schedule faster than
//! its backups never piles them up.

use croner::parser::{CronParser, Seconds};
use croner::Cron;
use jiff::{Timestamp, ToSpan, Zoned};

use crate::crd::BackupPolicy;

/// A parsed schedule.
#[derive(Clone, Debug)]
pub enum Schedule {
    Cron {
        cron: Box<Cron>,
        /// Whether the expression has a seconds field (then backups are named to the second).
        seconds: bool,
    },
    /// A daily window opening at this minute of the day (UTC).
    Window { start_minute: i64 },
}

/// Why a backup policy cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidSchedule {
    #[error("backup must set exactly one of schedule and window")]
    OneOf,
    #[error("backup.schedule {schedule:?} is not a cron expression: {reason}")]
    Cron { schedule: String, reason: String },
    #[error("backup.window {0:?} is not HH:MM-HH:MM")]
    Window(String),
}

impl Schedule {
    pub fn parse(policy: &BackupPolicy) -> Result<Schedule, InvalidSchedule> {
        match (&policy.schedule, &policy.window) {
            (Some(schedule), None) => CronParser::builder()
                .seconds(Seconds::Optional)
                .build()
                .parse(schedule)
                .map(|cron| Schedule::Cron { cron: Box::new(cron), seconds: schedule.split_whitespace().count() == 6 })
                .map_err(|error| InvalidSchedule::Cron { schedule: schedule.clone(), reason: error.to_string() }),
            (None, Some(window)) => {
                let start = window.split('-').next().unwrap_or_default();
                let minute = |text: &str| -> Option<i64> {
                    let (hours, minutes) = text.split_once(':')?;
                    let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
                    (hours < 24 && minutes < 60).then_some(hours * 60 + minutes)
                };
                let ends = window.split('-').nth(1).and_then(minute);
                match (minute(start), ends) {
                    (Some(start_minute), Some(_)) => Ok(Schedule::Window { start_minute }),
                    _ => Err(InvalidSchedule::Window(window.clone())),
                }
            }
            _ => Err(InvalidSchedule::OneOf),
        }
    }

    /// The latest scheduled time at or before `now`.
    pub fn latest_at_or_before(&self, now: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Cron { cron, .. } => {
                let zoned = now.to_zoned(jiff::tz::TimeZone::UTC);
                cron.find_previous_occurrence(&zoned, true).ok().map(|time: Zoned| time.timestamp())
            }
            Schedule::Window { start_minute } => {
                let day_start = now.to_zoned(jiff::tz::TimeZone::UTC).start_of_day().ok()?.timestamp();
                let today = day_start.checked_add(start_minute.minutes()).ok()?;
                if today <= now {
                    Some(today)
                } else {
                    today.checked_sub(24.hours()).ok()
                }
            }
        }
    }

    /// The first scheduled time after `now`.
    pub fn next_after(&self, now: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Cron { cron, .. } => {
                let zoned = now.to_zoned(jiff::tz::TimeZone::UTC);
                cron.find_next_occurrence(&zoned, false).ok().map(|time: Zoned| time.timestamp())
            }
            Schedule::Window { .. } => self.latest_at_or_before(now)?.checked_add(24.hours()).ok(),
        }
    }

    /// The scheduled time to back up for now, if one passed since `last` (the previous
    /// scheduled backup, or when the schedule was first seen).
    pub fn due(&self, last: Timestamp, now: Timestamp) -> Option<Timestamp> {
        self.latest_at_or_before(now).filter(|latest| *latest > last)
    }

    /// The name of the automatic Backup of `cluster` scheduled at `time`:
    /// `<cluster>-YYYYMMDD-HHMM`, or `<cluster>-YYYYMMDD-HHMMSS` for a schedule with seconds.
    pub fn backup_name(&self, cluster: &str, time: Timestamp) -> String {
        let format = match self {
            Schedule::Cron { seconds: true, .. } => "%Y%m%d-%H%M%S",
            _ => "%Y%m%d-%H%M",
        };
        format!("{cluster}-{}", time.strftime(format))
    }
}

/// The automatic backup still being written, if any: a new scheduled one waits for it by being
/// skipped.
pub fn running(backups: &[Kept]) -> Option<&Kept> {
    backups.iter().find(|backup| backup.in_progress)
}

/// An automatic backup as retention sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    pub name: String,
    /// When it was scheduled (its creation time).
    pub created: Timestamp,
    /// Whether it is still being written (never expired then).
    pub in_progress: bool,
}

/// The automatic backups to delete under the policy: older than `retentionDays`, or beyond the
/// newest `retentionCount`.
pub fn expired(policy: &BackupPolicy, backups: &[Kept], now: Timestamp) -> Vec<String> {
    let mut finished: Vec<&Kept> = backups.iter().filter(|backup| !backup.in_progress).collect();
    finished.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.name.cmp(&a.name)));
    let mut doomed = Vec::new();
    for (index, backup) in finished.iter().enumerate() {
        let too_many = policy.retention_count.is_some_and(|count| index as i64 >= i64::from(count));
        let too_old = policy.retention_days.is_some_and(|days| {
            now.since(backup.created).ok().and_then(|age| age.total(jiff::Unit::Second).ok()).unwrap_or(0.0)
                > f64::from(days) * 86_400.0
        });
        if too_many || too_old {
            doomed.push(backup.name.clone());
        }
    }
    doomed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("an RFC 3339 time")
    }

    fn policy(schedule: Option<&str>, window: Option<&str>) -> BackupPolicy {
        BackupPolicy {
            schedule: schedule.map(str::to_owned),
            window: window.map(str::to_owned),
            ..BackupPolicy::default()
        }
    }

    #[test]
    fn a_cron_schedule_is_due_once_its_time_passes() {
        let schedule = Schedule::parse(&policy(Some("0 4 * * *"), None)).unwrap();
        let seen = at("2026-11-25T03:00:00Z");
        assert_eq!(schedule.due(seen, at("2026-11-25T03:59:00Z")), None);
        assert_eq!(schedule.due(seen, at("2026-11-25T04:00:30Z")), Some(at("2026-11-25T04:00:00Z")));
        assert_eq!(schedule.due(at("2026-11-25T04:00:00Z"), at("2026-11-25T05:00:00Z")), None, "not twice");
        assert_eq!(schedule.next_after(at("2026-11-25T04:00:00Z")), Some(at("2026-11-26T04:00:00Z")));
    }

    #[test]
    fn missed_schedules_are_caught_up_once_with_the_latest() {
        let schedule = Schedule::parse(&policy(Some("0 * * * *"), None)).unwrap();
        let last = at("2026-11-25T01:00:00Z");
        // The operator was down for five hours: one backup, for 06:00.
        assert_eq!(schedule.due(last, at("2026-11-25T06:20:00Z")), Some(at("2026-11-25T06:00:00Z")));
    }

    #[test]
    fn a_daily_window_starts_the_backup_when_it_opens() {
        let schedule = Schedule::parse(&policy(None, Some("05:30-06:30"))).unwrap();
        assert_eq!(schedule.latest_at_or_before(at("2026-11-25T05:00:00Z")), Some(at("2026-11-24T05:30:00Z")));
        assert_eq!(
            schedule.due(at("2026-11-25T00:00:00Z"), at("2026-11-25T05:31:00Z")),
            Some(at("2026-11-25T05:30:00Z"))
        );
        assert_eq!(schedule.next_after(at("2026-11-25T05:31:00Z")), Some(at("2026-11-26T05:30:00Z")));
    }

    #[test]
    fn a_policy_needs_exactly_one_valid_schedule() {
        assert_eq!(Schedule::parse(&policy(None, None)).unwrap_err(), InvalidSchedule::OneOf);
        assert_eq!(
            Schedule::parse(&policy(Some("0 4 * * *"), Some("04:00-05:00"))).unwrap_err(),
            InvalidSchedule::OneOf
        );
        assert!(matches!(Schedule::parse(&policy(Some("every day"), None)), Err(InvalidSchedule::Cron { .. })));
        assert!(matches!(Schedule::parse(&policy(None, Some("25:00-26:00"))), Err(InvalidSchedule::Window(_))));
    }

    fn kept(name: &str, created: &str, in_progress: bool) -> Kept {
        Kept { name: name.into(), created: at(created), in_progress }
    }

    #[test]
    fn retention_by_count_keeps_the_newest() {
        let mut rules = policy(Some("0 * * * *"), None);
        rules.retention_count = Some(2);
        let backups = [
            kept("c-1", "2026-11-25T01:00:00Z", false),
            kept("c-2", "2026-11-25T02:00:00Z", false),
            kept("c-3", "2026-11-25T03:00:00Z", false),
            kept("c-4", "2026-11-25T04:00:00Z", true),
        ];
        assert_eq!(expired(&rules, &backups, at("2026-11-25T04:01:00Z")), vec!["c-1".to_owned()]);
    }

    #[test]
    fn retention_by_days_deletes_the_old_ones_but_never_one_in_progress() {
        let mut rules = policy(Some("0 0 * * *"), None);
        rules.retention_days = Some(1);
        let backups = [
            kept("old", "2026-11-20T00:00:00Z", false),
            kept("old-but-running", "2026-11-20T00:00:00Z", true),
            kept("fresh", "2026-11-25T00:00:00Z", false),
        ];
        assert_eq!(expired(&rules, &backups, at("2026-11-25T12:00:00Z")), vec!["old".to_owned()]);
    }

    #[test]
    fn automatic_backups_are_named_after_their_scheduled_time() {
        let hourly = Schedule::parse(&policy(Some("0 * * * *"), None)).unwrap();
        assert_eq!(hourly.backup_name("cache", at("2026-11-25T04:00:00Z")), "cache-20261125-0400");
        let window = Schedule::parse(&policy(None, Some("04:00-05:00"))).unwrap();
        assert_eq!(window.backup_name("cache", at("2026-11-25T04:00:00Z")), "cache-20261125-0400");
    }

    #[test]
    fn a_schedule_with_seconds_is_due_to_the_second_and_names_its_backups_to_the_second() {
        let schedule = Schedule::parse(&policy(Some("*/10 * * * * *"), None)).unwrap();
        let last = at("2026-11-25T04:00:10Z");
        assert_eq!(schedule.due(last, at("2026-11-25T04:00:19Z")), None);
        assert_eq!(schedule.due(last, at("2026-11-25T04:00:21Z")), Some(at("2026-11-25T04:00:20Z")));
        assert_eq!(schedule.next_after(at("2026-11-25T04:00:21Z")), Some(at("2026-11-25T04:00:30Z")));
        assert_eq!(schedule.backup_name("cache", at("2026-11-25T04:00:20Z")), "cache-20261125-040020");
    }

    #[test]
    fn a_five_field_schedule_still_means_minutes() {
        let schedule = Schedule::parse(&policy(Some("*/5 * * * *"), None)).unwrap();
        assert_eq!(schedule.next_after(at("2026-11-25T04:00:01Z")), Some(at("2026-11-25T04:05:00Z")));
    }

    #[test]
    fn a_new_scheduled_backup_waits_for_a_running_one_to_finish() {
        let backups = [kept("c-1", "2026-11-25T01:00:00Z", false), kept("c-2", "2026-11-25T02:00:00Z", true)];
        assert_eq!(running(&backups).map(|backup| backup.name.as_str()), Some("c-2"));
        assert_eq!(running(&backups[..1]), None);
    }
}
