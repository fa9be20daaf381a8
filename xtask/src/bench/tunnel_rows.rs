//! The report's rows for the operator's tunnel: one per way of crossing, liag's judged against
//! the plain relay pair of the same run, aggligator's against liag's.

use serde_json::Value;

use super::report::Row;

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

/// The rows of one `tunnel` scenario, in the order it ran.
pub(super) fn rows(s: &Value) -> Vec<Row> {
    let scenario = s["scenario"].as_str().unwrap_or("?");
    let all = s["rows"].as_array().cloned().unwrap_or_default();
    let named = |prefix: &str| {
        all.iter()
            .find(|r| r["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
    };
    let relay = named("plain relay");
    let liag = named("liag");
    all.iter()
        .map(|r| {
            let name = r["name"].as_str().unwrap_or("?");
            let mut figures = format!(
                "{:.0} MB/s; p50 {:.0} µs, p99 {:.0} µs",
                f(r, "bulk_mb_s"),
                f(r, "p50_us"),
                f(r, "p99_us")
            );
            let (mut target, mut holds) = ("", None);
            if name.starts_with("liag") {
                if let Some(relay) = relay {
                    let share = f(r, "bulk_mb_s") / f(relay, "bulk_mb_s");
                    let slower = f(r, "p50_us") / f(relay, "p50_us");
                    figures += &format!(
                        "; {:.0} % of the relay's bulk, {slower:.2}× its p50",
                        share * 100.0
                    );
                    target = "≥ 60 % of the relay's bulk, p50 ≤ 2× the relay's, p99 ≤ 1 ms";
                    holds = Some(share >= 0.6 && slower <= 2.0 && f(r, "p99_us") <= 1000.0);
                }
            } else if name.starts_with("aggligator") {
                if let Some(liag) = liag {
                    let times = f(liag, "bulk_mb_s") / f(r, "bulk_mb_s");
                    figures += &format!("; liag's bulk is {times:.1}× this");
                    target = "liag's bulk ≥ 4× aggligator's";
                    holds = Some(times >= 4.0);
                }
            }
            Row {
                what: format!("{scenario}: {name}"),
                figures,
                target,
                holds,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn verdicts(liag: (f64, f64, f64), agg_mb_s: f64) -> Vec<Option<bool>> {
        let s = json!({"kind": "tunnel", "scenario": "t", "rows": [
            {"name": "direct TCP, one path", "bulk_mb_s": 2000.0, "p50_us": 10.0, "p99_us": 100.0},
            {"name": "plain relay pair, one path", "bulk_mb_s": 1000.0, "p50_us": 100.0,
             "p99_us": 300.0},
            {"name": "liag tunnel, 3 links", "bulk_mb_s": liag.0, "p50_us": liag.1,
             "p99_us": liag.2},
            {"name": "aggligator 0.9 tunnel, 3 links", "bulk_mb_s": agg_mb_s, "p50_us": 1e4,
             "p99_us": 2e4},
        ]});
        super::rows(&s).iter().map(|r| r.holds).collect()
    }

    #[test]
    fn liag_is_judged_against_the_relay_and_aggligator_against_liag() {
        assert_eq!(
            verdicts((700.0, 180.0, 800.0), 150.0),
            [None, None, Some(true), Some(true)]
        );
        // Too little bulk, too slow a median, too long a tail; aggligator within 4×.
        assert_eq!(verdicts((500.0, 180.0, 800.0), 150.0)[2], Some(false));
        assert_eq!(verdicts((700.0, 210.0, 800.0), 150.0)[2], Some(false));
        assert_eq!(verdicts((700.0, 180.0, 1100.0), 150.0)[2], Some(false));
        assert_eq!(verdicts((700.0, 180.0, 800.0), 200.0)[3], Some(false));
    }
}
