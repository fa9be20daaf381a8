//! A link's shape: rate, delay, jitter and queue, with presets and a text form.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The frame header a stream transport adds to every packet; counted in serialization time.
const FRAMING: usize = liag_proto::frame::HEADER_LEN;

/// The shape of an emulated link. The simulator's `Sim::add_link` gives both directions of a
/// link the same shape; `Sim::add_asymmetric_link` gives each its own.
///
/// Built from a rate and a delay, then refined:
///
/// ```
/// use liag_core::netem::LinkSpec;
/// use std::time::Duration;
///
/// let cellular = LinkSpec::mbit(30.0, 25).with_jitter(Duration::from_millis(10));
/// let parsed: LinkSpec = "30mbit/25ms/10ms".parse().unwrap();
/// assert_eq!(cellular, parsed);
/// assert_eq!(LinkSpec::wifi().rate, 100_000_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct LinkSpec {
    /// Bits per second.
    pub rate: u64,
    /// One-way propagation delay.
    pub delay: Duration,
    /// Extra one-way delay, uniform in `0..=jitter`; order is kept, as on a stream.
    pub jitter: Duration,
    /// Bytes a sender may queue in the link before it stops taking more (its socket buffer
    /// and the bottleneck's queue).
    pub queue: usize,
}

impl LinkSpec {
    /// A link of `mbit` Mbit/s and `delay_ms` one-way delay, no jitter, with a queue of about
    /// 20 ms at its rate (at least 64 KiB).
    pub fn mbit(mbit: f64, delay_ms: u64) -> Self {
        Self::bits(mbit * 1e6, Duration::from_millis(delay_ms))
    }

    fn bits(bits_per_sec: f64, delay: Duration) -> Self {
        let rate = (bits_per_sec as u64).max(1);
        LinkSpec {
            rate,
            delay,
            jitter: Duration::ZERO,
            queue: ((rate / 8 / 50) as usize).max(64 << 10),
        }
    }

    /// A wired access line: 100 Mbit/s, 5 ms one way.
    pub fn wired() -> Self {
        Self::mbit(100.0, 5)
    }

    /// Wi-Fi: 100 Mbit/s, 3 ms one way, up to 2 ms of jitter.
    pub fn wifi() -> Self {
        Self::mbit(100.0, 3).with_jitter(Duration::from_millis(2))
    }

    /// A cellular link: 30 Mbit/s, 25 ms one way, up to 10 ms of jitter.
    pub fn cellular() -> Self {
        Self::mbit(30.0, 25).with_jitter(Duration::from_millis(10))
    }

    /// A geostationary satellite: 20 Mbit/s, 300 ms one way.
    pub fn satellite() -> Self {
        Self::mbit(20.0, 300)
    }

    /// The same link with another one-way delay (for delays under a millisecond).
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The same link with jitter.
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// The same link with another queue size.
    pub fn with_queue(mut self, queue: usize) -> Self {
        self.queue = queue;
        self
    }

    /// The line rate in bytes per second: every packet's frame header (10 bytes) counts, so
    /// the payload bytes it carries per second are somewhat fewer (the fewer, the smaller the
    /// packets).
    pub fn bytes_per_sec(&self) -> f64 {
        self.rate as f64 / 8.0
    }

    /// How long a packet of `len` bytes takes onto the line at `rate` bits per second.
    pub(super) fn serialization(len: usize, rate: u64) -> Duration {
        let nanos = (len as u128 + FRAMING as u128) * 8 * 1_000_000_000 / u128::from(rate.max(1));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// Why a text is not a [`LinkSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseLinkSpecError {
    /// Not `RATE/DELAY` or `RATE/DELAY/JITTER`.
    Form,
    /// A part is not a number with one of the known units.
    Part(String),
    /// The rate is below 1 kbit/s.
    TooSlow,
    /// The rate is above 1 Tbit/s.
    TooFast,
    /// A delay or jitter is longer than an hour.
    TooLong,
}

impl fmt::Display for ParseLinkSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Form => write!(
                f,
                "expected RATE/DELAY[/JITTER], such as 40mbit/5ms or 30mbit/25ms/10ms"
            ),
            Self::Part(part) => write!(
                f,
                "{part:?} is not a number with a unit (rates: bit, kbit, mbit, gbit; \
                 times: us, ms, s)"
            ),
            Self::TooSlow => write!(f, "the rate must be at least 1kbit"),
            Self::TooFast => write!(f, "the rate must be at most 1000gbit"),
            Self::TooLong => write!(f, "a delay or jitter must be at most an hour (3600s)"),
        }
    }
}

impl std::error::Error for ParseLinkSpecError {}

/// `part` as a non-negative number times its unit's scale.
fn number(part: &str, units: &[(&str, f64)]) -> Result<f64, ParseLinkSpecError> {
    let text = part.trim().to_ascii_lowercase();
    units
        .iter()
        .find_map(|(unit, scale)| {
            let n = text.strip_suffix(unit)?.trim().parse::<f64>().ok()?;
            (n.is_finite() && n >= 0.0).then_some(n * scale)
        })
        .ok_or_else(|| ParseLinkSpecError::Part(part.trim().to_string()))
}

impl FromStr for LinkSpec {
    type Err = ParseLinkSpecError;

    /// Parses `40mbit/5ms`, or `30mbit/25ms/10ms` with jitter (rates in `bit`, `kbit`,
    /// `mbit`, `gbit`; times in `us`, `ms`, `s`).
    fn from_str(text: &str) -> Result<Self, ParseLinkSpecError> {
        const RATES: &[(&str, f64)] = &[("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)];
        const TIMES: &[(&str, f64)] = &[("us", 1e-6), ("ms", 1e-3), ("s", 1.0)];
        let parts: Vec<&str> = text.split('/').collect();
        let (rate, delay, jitter) = match parts[..] {
            [rate, delay] => (rate, delay, None),
            [rate, delay, jitter] => (rate, delay, Some(jitter)),
            _ => return Err(ParseLinkSpecError::Form),
        };
        let bits = number(rate, RATES)?;
        if bits < 1e3 {
            return Err(ParseLinkSpecError::TooSlow);
        }
        if bits > 1e12 {
            return Err(ParseLinkSpecError::TooFast);
        }
        let time = |part: &str| {
            let secs = number(part, TIMES)?;
            if secs > 3600.0 {
                return Err(ParseLinkSpecError::TooLong);
            }
            Ok(Duration::from_secs_f64(secs))
        };
        let mut spec = LinkSpec::bits(bits, time(delay)?);
        if let Some(jitter) = jitter {
            spec.jitter = time(jitter)?;
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates_delays_and_jitter() {
        let spec: LinkSpec = "40mbit/5ms".parse().unwrap();
        assert_eq!(spec, LinkSpec::mbit(40.0, 5));
        let spec: LinkSpec = "1.5gbit/150us".parse().unwrap();
        assert_eq!(spec.rate, 1_500_000_000);
        assert_eq!(spec.delay, Duration::from_micros(150));
        let spec: LinkSpec = "30mbit/25ms/10ms".parse().unwrap();
        assert_eq!(spec, LinkSpec::cellular());
    }

    #[test]
    fn refuses_what_is_not_a_spec() {
        let err = |text: &str| text.parse::<LinkSpec>().unwrap_err();
        assert_eq!(err("40mbit"), ParseLinkSpecError::Form);
        assert_eq!(err("40mbit/5ms/1ms/1ms"), ParseLinkSpecError::Form);
        assert_eq!(err("fast/5ms"), ParseLinkSpecError::Part("fast".into()));
        assert_eq!(
            err("40parsec/5ms"),
            ParseLinkSpecError::Part("40parsec".into())
        );
        assert_eq!(err("-4mbit/5ms"), ParseLinkSpecError::Part("-4mbit".into()));
        assert_eq!(err("40mbit/soon"), ParseLinkSpecError::Part("soon".into()));
        assert_eq!(err("999bit/5ms"), ParseLinkSpecError::TooSlow);
        assert_eq!(err("1e308gbit/5ms"), ParseLinkSpecError::TooFast);
        assert_eq!(err("10mbit/2e19s"), ParseLinkSpecError::TooLong);
        assert_eq!(err("10mbit/1e300ms"), ParseLinkSpecError::TooLong);
        assert_eq!(err("10mbit/5ms/3601s"), ParseLinkSpecError::TooLong);
        assert!(err("fast/5ms").to_string().contains("\"fast\""));
    }

    #[test]
    fn the_default_queue_is_twenty_milliseconds_at_the_rate() {
        assert_eq!(LinkSpec::mbit(400.0, 1).queue, 1_000_000);
        assert_eq!(LinkSpec::mbit(1.0, 1).queue, 64 << 10);
    }

    #[test]
    fn serialization_counts_the_frame_header() {
        // 990 bytes + a 10-byte header at 8 Mbit/s: 1 ms.
        assert_eq!(
            LinkSpec::serialization(990, 8_000_000),
            Duration::from_millis(1)
        );
    }
}
