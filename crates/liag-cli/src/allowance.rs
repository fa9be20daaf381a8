//! Data allowances of metered interfaces (`--cap IFACE=SIZE/PERIOD`): one shared [`Meter`] per
//! interface for the whole process, its count kept in a state file across restarts and
//! started again at each period.
//!
//! The meters are the process's, not a connection's: every connection of a tunnel or proxy
//! client draws on the same allowance, as a provider counts every byte over the interface.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytesize::ByteSize;
use liag_transports::Meter;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime, Time};

use crate::service::say;

/// How often the counts are written to the state file and the periods checked.
const KEEP_EVERY: Duration = Duration::from_secs(10);

/// One `--cap`: an interface's allowance per period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cap {
    pub(crate) interface: String,
    pub(crate) limit: u64,
    pub(crate) period: Period,
}

/// When an allowance begins again: each day, each week (Monday) or each month on a day of
/// the month, at midnight UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Period {
    Day,
    Week,
    Month { day: u8 },
}

impl Period {
    /// The start of the period `now` is in.
    fn start(self, now: OffsetDateTime) -> OffsetDateTime {
        let today = now.date();
        let date = match self {
            Period::Day => today,
            Period::Week => {
                let back = today.weekday().number_days_from_monday();
                today - time::Duration::days(i64::from(back))
            }
            Period::Month { day } => {
                let this_month = today.replace_day(day).unwrap_or(today);
                if today.day() >= day {
                    this_month
                } else {
                    let (year, month) = match today.month() {
                        time::Month::January => (today.year() - 1, time::Month::December),
                        m => (today.year(), m.previous()),
                    };
                    Date::from_calendar_date(year, month, day).unwrap_or(this_month)
                }
            }
        };
        date.with_time(Time::MIDNIGHT).assume_utc()
    }

    /// How the operator wrote it.
    fn name(self) -> String {
        match self {
            Period::Day => "day".into(),
            Period::Week => "week".into(),
            Period::Month { day: 1 } => "month".into(),
            Period::Month { day } => format!("month@{day}"),
        }
    }
}

/// `IFACE=SIZE/PERIOD` for `--cap`: `wwan0=2GB/month`, `wwan0=500MiB/day`,
/// `wwan0=20GB/month@15` (the month begins on the 15th, days 1 to 28).
pub(crate) fn parse_cap(rule: &str) -> Result<Cap, String> {
    let hint = "give IFACE=SIZE/PERIOD, such as wwan0=2GB/month";
    let (interface, rest) = rule
        .split_once('=')
        .filter(|(i, _)| !i.trim().is_empty())
        .ok_or_else(|| format!("`{rule}`: {hint}"))?;
    let (size, period) = rest
        .rsplit_once('/')
        .ok_or_else(|| format!("`{rule}`: the size needs a period: day, week or month"))?;
    let limit = size
        .trim()
        .parse::<ByteSize>()
        .map_err(|e| format!("`{rule}`: {e}; {hint}"))?
        .as_u64();
    if limit == 0 {
        return Err(format!("`{rule}`: the allowance must be more than 0 bytes"));
    }
    let period = match period.trim() {
        "day" => Period::Day,
        "week" => Period::Week,
        "month" => Period::Month { day: 1 },
        other => match other.strip_prefix("month@").map(str::parse::<u8>) {
            Some(Ok(day @ 1..=28)) => Period::Month { day },
            Some(_) => return Err(format!("`{rule}`: a month begins on a day from 1 to 28")),
            None => {
                return Err(format!(
                    "`{rule}`: unknown period `{other}`; use day, week, month or month@DAY"
                ));
            }
        },
    };
    Ok(Cap {
        interface: interface.trim().to_string(),
        limit,
        period,
    })
}

/// Where the counts are kept unless `--cap-state` says: systemd's `$STATE_DIRECTORY`, else
/// `$XDG_STATE_HOME/liag`, else `~/.local/state/liag`.
pub(crate) fn default_state_file() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    let dir = if let Some(dirs) = var("STATE_DIRECTORY") {
        // systemd lists several directories separated by colons; the first is ours.
        let first = dirs.to_string_lossy().split(':').next()?.to_string();
        PathBuf::from(first)
    } else if let Some(state) = var("XDG_STATE_HOME") {
        PathBuf::from(state).join("liag")
    } else {
        PathBuf::from(var("HOME")?).join(".local/state/liag")
    };
    Some(dir.join("allowances.json"))
}

/// What the state file holds for one interface.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Kept {
    period: Period,
    /// The period's start, Unix seconds.
    period_start: i64,
    used: u64,
}

/// The state file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    interfaces: BTreeMap<String, Kept>,
}

/// One interface's allowance in this process.
struct Entry {
    meter: Meter,
    period: Period,
    start: OffsetDateTime,
    /// The operator was told this period's allowance is used up.
    told: bool,
}

/// The process's allowances and where they are kept.
#[derive(Default)]
struct Registry {
    file: Option<PathBuf>,
    /// What the file held when read, for interfaces not (yet) capped in this process.
    kept: BTreeMap<String, Kept>,
    entries: BTreeMap<String, Entry>,
    keeper: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    file: None,
    kept: BTreeMap::new(),
    entries: BTreeMap::new(),
    keeper: false,
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The shared meter for `cap`, its count read from `file` on first use: the same handle for
/// every connection, its allowance and period updated when a reload changes them. A state
/// file that cannot be read or written is an error, not a count started again from zero.
/// Starts the task that keeps the file, within a tokio runtime.
pub(crate) fn meter(cap: &Cap, file: &Path) -> io::Result<Meter> {
    let (meter, first) = register(cap, file)?;
    if first {
        save()?;
    }
    Ok(meter)
}

/// [`meter`] without the first write: the meter, and whether the file was read just now.
fn register(cap: &Cap, file: &Path) -> io::Result<(Meter, bool)> {
    let mut registry = registry();
    let first = registry.file.is_none();
    if first {
        registry.kept = read(file)?.interfaces;
        registry.file = Some(file.to_path_buf());
    } else if registry.file.as_deref() != Some(file) {
        say!("liag: --cap-state changed; it applies at a restart");
    }
    let start = cap.period.start(OffsetDateTime::now_utc());
    let registry = &mut *registry;
    if let Some(entry) = registry.entries.get_mut(&cap.interface) {
        entry.meter.set_limit(cap.limit);
        if entry.period != cap.period {
            entry.period = cap.period;
            if start > entry.start {
                entry.start = start;
                entry.meter.reset();
            }
        }
        return Ok((entry.meter.clone(), first));
    }
    // A count kept for this period goes on; so does one for a later period, which a clock
    // set back (a router without a real-time clock, before NTP) would otherwise lose.
    let kept = (registry.kept.get(&cap.interface))
        .filter(|k| k.period == cap.period && k.period_start >= start.unix_timestamp());
    let (start, used) = match kept.and_then(|k| {
        let at = OffsetDateTime::from_unix_timestamp(k.period_start).ok()?;
        Some((at, k.used))
    }) {
        Some(kept) => kept,
        None => (start, 0),
    };
    let meter = Meter::with_used(cap.limit, used);
    let entry = Entry {
        meter: meter.clone(),
        period: cap.period,
        start,
        told: false,
    };
    registry.entries.insert(cap.interface.clone(), entry);
    let keeper = !registry.keeper && tokio::runtime::Handle::try_current().is_ok();
    if keeper {
        registry.keeper = true;
        tokio::spawn(keep());
    }
    Ok((meter, first))
}

fn read(file: &Path) -> io::Result<StateFile> {
    match std::fs::read(file) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: not an allowance state file ({e}); fix it, or remove it to count \
                     from zero",
                    file.display()
                ),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(StateFile::default()),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("cannot read {}: {e}", file.display()),
        )),
    }
}

/// Starts each allowance again when its period ends, tells the operator when one is used
/// up, and writes the counts, every [`KEEP_EVERY`]; never returns.
async fn keep() {
    let mut tick = tokio::time::interval(KEEP_EVERY);
    let mut failing = false;
    loop {
        tick.tick().await;
        roll(OffsetDateTime::now_utc());
        let saved = tokio::task::spawn_blocking(save)
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)));
        match saved {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                say!("liag: {e}; the allowances' counts are not kept");
            }
            Err(_) => {}
        }
    }
}

/// Starts again every allowance whose period ended by `now` (a clock set back starts none),
/// and tells the operator of each allowance used up.
fn roll(now: OffsetDateTime) {
    for (interface, entry) in &mut registry().entries {
        let start = entry.period.start(now);
        if start > entry.start {
            say!(
                "liag: {interface}: a new {} began; {} of its allowance were used",
                entry.period.name(),
                ByteSize(entry.meter.used()).display().si()
            );
            entry.start = start;
            entry.told = false;
            entry.meter.reset();
        }
        if entry.meter.exhausted() && !entry.told {
            entry.told = true;
            say!(
                "liag: {interface}: its allowance of {} is used up; its links carry data only \
                 while no other link works, and what they carry then goes past it",
                ByteSize(entry.meter.limit()).display().si()
            );
        }
    }
}

/// Writes the counts to the state file: a file beside it, flushed to the disk, renamed over
/// it.
pub(crate) fn save() -> io::Result<()> {
    let (file, state) = {
        let registry = registry();
        let Some(file) = registry.file.clone() else {
            return Ok(());
        };
        let mut interfaces = registry.kept.clone();
        for (interface, entry) in &registry.entries {
            let kept = Kept {
                period: entry.period,
                period_start: entry.start.unix_timestamp(),
                used: entry.meter.used(),
            };
            interfaces.insert(interface.clone(), kept);
        }
        (file, StateFile { interfaces })
    };
    let write = || -> io::Result<()> {
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let json = serde_json::to_vec_pretty(&state).map_err(io::Error::other)?;
        let partial = file.with_extension(format!("json.{}.partial", std::process::id()));
        let mut out = std::fs::File::create(&partial)?;
        io::Write::write_all(&mut out, &json)?;
        out.sync_all()?;
        std::fs::rename(&partial, &file)
    };
    write().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot write {}: {e} (give --cap-state a file liag may write)",
                file.display()
            ),
        )
    })
}

/// One allowance as the views and metrics show it.
#[derive(Debug, Clone)]
pub(crate) struct Shown {
    pub(crate) interface: String,
    pub(crate) used: u64,
    pub(crate) limit: u64,
    pub(crate) period: String,
    /// When the count starts again.
    pub(crate) until: Date,
}

/// The allowances now, by interface.
pub(crate) fn shown() -> Vec<Shown> {
    let now = OffsetDateTime::now_utc();
    registry()
        .entries
        .iter()
        .map(|(interface, entry)| Shown {
            interface: interface.clone(),
            used: entry.meter.used(),
            limit: entry.meter.limit(),
            period: entry.period.name(),
            until: next_start(entry.period, now).date(),
        })
        .collect()
}

/// When the period after the one `now` is in begins.
fn next_start(period: Period, now: OffsetDateTime) -> OffsetDateTime {
    let start = period.start(now);
    // The first day with a later period start; at most a month and a few days on.
    (1..=32)
        .map(|days| start + time::Duration::days(days))
        .find(|t| period.start(*t) != start)
        .unwrap_or(start)
}

impl Shown {
    /// `wwan0: 1.23 of 2.00 GB used this month (61.5 %), a new count from 2027-01-01 UTC`.
    pub(crate) fn line(&self) -> String {
        let period = match self.period.split('@').next() {
            Some("day") => "today",
            Some("week") => "this week",
            _ => "this month",
        };
        let (unit, name) = [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")]
            .into_iter()
            .find(|&(unit, _)| self.limit as f64 >= unit)
            .unwrap_or((1.0, "B"));
        format!(
            "{}: {:.2} of {:.2} {name} used {period} ({:.1} %), a new count from {} UTC",
            self.interface,
            self.used as f64 / unit,
            self.limit as f64 / unit,
            self.used as f64 * 100.0 / self.limit.max(1) as f64,
            self.until
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn caps_parse_with_their_periods() {
        let cap = parse_cap("wwan0=2GB/month").unwrap();
        assert_eq!(cap.interface, "wwan0");
        assert_eq!(cap.limit, 2_000_000_000);
        assert_eq!(cap.period, Period::Month { day: 1 });
        assert_eq!(parse_cap("usb0 = 500MiB/day").unwrap().limit, 500 << 20);
        assert_eq!(
            parse_cap("wwan0=20GB/month@15").unwrap().period,
            Period::Month { day: 15 }
        );
        assert_eq!(parse_cap("a=1GB/week").unwrap().period, Period::Week);
        for bad in [
            "wwan0",
            "=1GB/day",
            "wwan0=1GB",
            "wwan0=0B/day",
            "wwan0=xGB/day",
        ] {
            assert!(parse_cap(bad).is_err(), "{bad}");
        }
        let e = parse_cap("wwan0=1GB/month@31").unwrap_err();
        assert!(e.contains("1 to 28"), "{e}");
        let e = parse_cap("wwan0=1GB/year").unwrap_err();
        assert!(e.contains("unknown period"), "{e}");
    }

    #[test]
    fn the_count_survives_a_restart_within_its_period_only() {
        let dir = std::env::temp_dir().join(format!("liag-allowance-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("allowances.json");
        let cap = parse_cap("wwan0=2GB/month").unwrap();
        std::fs::write(&file, b"{ not json").unwrap();
        let e = meter(&cap, &file).unwrap_err();
        assert!(e.to_string().contains("not an allowance state file"), "{e}");

        let start = cap.period.start(OffsetDateTime::now_utc()).unix_timestamp();
        let state = format!(
            r#"{{"interfaces": {{
                "wwan0": {{"period": {{"Month": {{"day": 1}}}}, "period_start": {start}, "used": 1234}},
                "usb0": {{"period": "Day", "period_start": 0, "used": 99}},
                "eth9": {{"period": {{"Month": {{"day": 1}}}}, "period_start": {later}, "used": 55}}
            }}}}"#,
            later = start + 40 * 86_400,
        );
        std::fs::write(&file, state).unwrap();
        let wwan = meter(&cap, &file).unwrap();
        assert_eq!((wwan.used(), wwan.limit()), (1234, 2_000_000_000));
        let usb = meter(&parse_cap("usb0=1GB/day").unwrap(), &file).unwrap();
        assert_eq!(usb.used(), 0, "an old period's count is not carried over");
        let eth9 = meter(&parse_cap("eth9=1GB/month").unwrap(), &file).unwrap();
        assert_eq!(
            eth9.used(),
            55,
            "a later period's count: the clock is behind"
        );
        let reloaded = meter(&parse_cap("wwan0=3GB/month").unwrap(), &file).unwrap();
        assert!(
            reloaded.same(&wwan) && wwan.limit() == 3_000_000_000,
            "one handle"
        );

        save().unwrap();
        let kept = read(&file).unwrap().interfaces;
        assert_eq!(kept["wwan0"].used, 1234);
        assert_eq!(
            kept["usb0"].period_start,
            Period::Day
                .start(OffsetDateTime::now_utc())
                .unix_timestamp()
        );
        let now = OffsetDateTime::now_utc();
        roll(now - time::Duration::days(400));
        assert_eq!(wwan.used(), 1234, "a clock set back starts no period");
        let shown = shown();
        assert_eq!(shown.len(), 3);
        assert!(
            shown[2]
                .line()
                .starts_with("wwan0: 0.00 of 3.00 GB used this month (0.0 %)"),
            "{}",
            shown[2].line()
        );
        roll(now + time::Duration::days(40));
        assert_eq!(wwan.used(), 0, "a new period");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn periods_start_and_end_where_the_calendar_says() {
        let now = datetime!(2027-01-10 13:45 UTC);
        assert_eq!(Period::Day.start(now), datetime!(2027-01-10 0:00 UTC));
        // 2027-01-10 is a Sunday.
        assert_eq!(Period::Week.start(now), datetime!(2027-01-04 0:00 UTC));
        assert_eq!(
            Period::Month { day: 1 }.start(now),
            datetime!(2027-01-01 0:00 UTC)
        );
        assert_eq!(
            Period::Month { day: 15 }.start(now),
            datetime!(2026-12-15 0:00 UTC),
            "last year's December"
        );
        assert_eq!(
            next_start(Period::Month { day: 15 }, now),
            datetime!(2027-01-15 0:00 UTC)
        );
        assert_eq!(
            next_start(Period::Month { day: 1 }, now),
            datetime!(2027-02-01 0:00 UTC)
        );
        assert_eq!(
            next_start(Period::Week, now),
            datetime!(2027-01-11 0:00 UTC)
        );
    }
}
