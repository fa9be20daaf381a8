//! Scrapes a running `liag`'s `--metrics` endpoint once and prints a line per link.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A per-link gauge the line shows.
struct Gauge {
    /// The metric's name.
    metric: &'static str,
    /// What the line calls it.
    label: &'static str,
    /// The factor from the metric's unit to `unit`.
    scale: f64,
    unit: &'static str,
}

const GAUGES: [Gauge; 4] = [
    Gauge {
        metric: "liag_link_rate_bytes_per_second",
        label: "rate",
        scale: 1e-6,
        unit: "MB/s",
    },
    Gauge {
        metric: "liag_link_inflight_bytes",
        label: "in flight",
        scale: 1e-3,
        unit: "kB",
    },
    Gauge {
        metric: "liag_link_window_bytes",
        label: "window",
        scale: 1e-3,
        unit: "kB",
    },
    Gauge {
        metric: "liag_link_rtt_seconds",
        label: "rtt",
        scale: 1e3,
        unit: "ms",
    },
];

/// One link's line: its interface and the gauges' values.
type Line = (String, [Option<f64>; GAUGES.len()]);

/// The most a scrape reads, and the longest it takes.
const MAX_RESPONSE: u64 = 1 << 20;
const DEADLINE: Duration = Duration::from_secs(2);

/// The metrics text `liag` serves at `at`: at most 1 MiB, within 2 s in all.
pub fn scrape(at: SocketAddr) -> io::Result<String> {
    let deadline = Instant::now() + DEADLINE;
    let mut stream = TcpStream::connect_timeout(&at, DEADLINE)?;
    stream.set_write_timeout(Some(DEADLINE))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: liag\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "metrics: too slow"));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf)? {
            0 => break,
            n if response.len() as u64 + n as u64 > MAX_RESPONSE => {
                return Err(io::Error::other("metrics: response over 1 MiB"));
            }
            n => response.extend_from_slice(&buf[..n]),
        }
    }
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other("metrics: no HTTP body"))?;
    let status = head.lines().next().unwrap_or("");
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(io::Error::other(format!("metrics: {status}")));
    }
    Ok(body.to_string())
}

/// Prints to stderr each link's gauges from the metrics `text`: a line per link, by its
/// interface.
pub fn eprint_links(text: &str) {
    // By connection and link; the interface names the line.
    let mut links: BTreeMap<(String, String), Line> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, rest)) = line.split_once('{') else {
            continue;
        };
        let Some(i) = GAUGES.iter().position(|g| g.metric == name) else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let (Some(labels), Ok(value)) = (parse_labels(labels), value.trim().parse::<f64>()) else {
            continue;
        };
        let get = |key: &str| {
            labels
                .iter()
                .find(|(k, _)| k == key)
                .map_or_else(String::new, |(_, v)| v.clone())
        };
        let entry = links
            .entry((get("connection"), get("link")))
            .or_insert_with(|| (get("interface"), [None; GAUGES.len()]));
        entry.1[i] = Some(value);
    }
    if links.is_empty() {
        eprintln!("    no link gauges in the metrics");
    }
    for ((connection, link), (interface, values)) in links {
        let shown: Vec<String> = GAUGES
            .iter()
            .zip(values)
            .map(|(g, v)| match v {
                Some(v) => format!("{} {:.2} {}", g.label, v * g.scale, g.unit),
                None => format!("{} -", g.label),
            })
            .collect();
        eprintln!(
            "    link {interface} (connection {connection}, link {link}): {}",
            shown.join(", ")
        );
    }
}

/// A Prometheus label set (`key="value",...`, values with `\\`, `\"` and `\n` escaped) as
/// pairs; `None` if it is malformed.
fn parse_labels(text: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        pairs.push((key.trim_start_matches(',').to_string(), value));
        rest = &after[end + 1..];
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::parse_labels;

    #[test]
    fn labels_are_parsed_with_their_escapes() {
        let labels =
            r#"command="proxy-client",connection="0",link="1",tag="pc1 -> \"x\"",interface="pc1""#;
        let pairs = parse_labels(labels).unwrap_or_default();
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("interface"), Some("pc1"));
        assert_eq!(get("link"), Some("1"));
        assert_eq!(get("tag"), Some(r#"pc1 -> "x""#));
        assert_eq!(get("tier"), None);
        assert_eq!(parse_labels(r#"link="1"#), None, "an unterminated value");
    }
}
