//! What a running `liag` showed of its links: one scrape of its `--metrics` endpoint, printed
//! as a line per link.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The per-link gauges printed, with their unit's scale and name.
const GAUGES: [(&str, &str, f64, &str); 4] = [
    ("liag_link_rate_bytes_per_second", "rate", 1e-6, "MB/s"),
    ("liag_link_inflight_bytes", "in flight", 1e-3, "kB"),
    ("liag_link_window_bytes", "window", 1e-3, "kB"),
    ("liag_link_rtt_seconds", "rtt", 1e3, "ms"),
];

/// The metrics text `liag` serves at `at` (read within 2 s).
pub fn scrape(at: SocketAddr) -> io::Result<String> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&at, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: liag\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.take(1 << 20).read_to_string(&mut response)?;
    match response.split_once("\r\n\r\n") {
        Some((_, body)) => Ok(body.to_string()),
        None => Err(io::Error::other("no HTTP body in the metrics response")),
    }
}

/// Prints each link's gauges from the metrics `text`, a line per link by its interface.
pub fn print(text: &str) {
    let mut links: BTreeMap<&str, [Option<f64>; GAUGES.len()]> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, rest)) = line.split_once('{') else {
            continue;
        };
        let Some(i) = GAUGES.iter().position(|g| g.0 == name) else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let (Some(interface), Ok(value)) = (label(labels, "interface"), value.trim().parse())
        else {
            continue;
        };
        links.entry(interface).or_default()[i] = Some(value);
    }
    for (interface, values) in links {
        let shown: Vec<String> = GAUGES
            .iter()
            .zip(values)
            .map(|((_, what, scale, unit), v)| match v {
                Some(v) => format!("{what} {:.2} {unit}", v * scale),
                None => format!("{what} -"),
            })
            .collect();
        eprintln!("    link {interface}: {}", shown.join(", "));
    }
}

/// The value of label `key` in a Prometheus label set.
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{key}=\""))? + key.len() + 2;
    let len = labels[start..].find('"')?;
    Some(&labels[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn a_label_is_found_by_its_key() {
        let labels =
            r#"command="proxy-client",link="1",interface="pc1",remote="198.18.255.1:5803""#;
        assert_eq!(label(labels, "interface"), Some("pc1"));
        assert_eq!(label(labels, "link"), Some("1"));
        assert_eq!(label(labels, "tier"), None);
    }
}
