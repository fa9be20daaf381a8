//! The live view: a row per link and the total, redrawn in a terminal, or plain lines once a
//! second otherwise.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// One link's figures for a frame of the view.
pub(crate) struct LinkRow {
    pub(crate) name: String,
    pub(crate) state: String,
    pub(crate) rtt: Duration,
    /// Bytes per second over the last interval.
    pub(crate) rate: f64,
    /// The link's capacity, bytes per second.
    pub(crate) capacity: f64,
    /// Bytes it carried so far.
    pub(crate) total: u64,
}

pub(crate) enum View {
    /// Nothing live (JSON mode).
    Quiet,
    Plain,
    Live {
        _multi: MultiProgress,
        rows: Vec<ProgressBar>,
        total: ProgressBar,
    },
}

fn mb(b: f64) -> f64 {
    b / 1e6
}

impl View {
    pub(crate) fn new(quiet: bool, links: usize, duration: Duration) -> Self {
        if quiet {
            return View::Quiet;
        }
        if !std::io::stdout().is_terminal() {
            return View::Plain;
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout_with_hz(10));
        let line =
            ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar());
        let rows = (0..links)
            .map(|_| {
                let bar = multi.add(ProgressBar::new(1));
                bar.set_style(line.clone());
                bar
            })
            .collect();
        let total = multi.add(ProgressBar::new(duration.as_millis() as u64));
        total.set_style(
            ProgressStyle::with_template("{bar:30.cyan/blue} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("█▉▊▋▌▍▎▏ "),
        );
        View::Live {
            _multi: multi,
            rows,
            total,
        }
    }

    pub(crate) fn interval(&self) -> Duration {
        match self {
            View::Live { .. } => Duration::from_millis(250),
            _ => Duration::from_secs(1),
        }
    }

    pub(crate) fn render(
        &mut self,
        t: Duration,
        links: &[LinkRow],
        rate: f64,
        sum: f64,
        received: u64,
    ) {
        let all: u64 = links.iter().map(|l| l.total).sum::<u64>().max(1);
        // Capacities are known for emulated links only.
        let of = |capacity: f64| {
            if capacity > 0.0 {
                format!(" of {:>5.2}", mb(capacity))
            } else {
                String::new()
            }
        };
        let line = |l: &LinkRow| {
            format!(
                "{:<8} {:<9} rtt {:>6.1} ms  {:>6.2}{} MB/s  share {:>5.1} %",
                l.name,
                l.state,
                l.rtt.as_secs_f64() * 1000.0,
                mb(l.rate),
                of(l.capacity),
                l.total as f64 * 100.0 / all as f64
            )
        };
        let share = if sum > 0.0 {
            format!(" ({:>5.1} %)", rate * 100.0 / sum)
        } else {
            String::new()
        };
        let total = format!(
            "{:>5.1} s  total {:>6.2}{} MB/s{share}  {:.1} MB moved",
            t.as_secs_f64(),
            mb(rate),
            of(sum),
            received as f64 / 1e6
        );
        match self {
            View::Quiet => {}
            View::Plain => {
                println!("{total}");
                for l in links {
                    println!("  {}", line(l));
                }
            }
            View::Live {
                rows, total: bar, ..
            } => {
                for (row, l) in rows.iter().zip(links) {
                    row.set_message(line(l));
                }
                bar.set_position(t.as_millis() as u64);
                bar.set_message(total);
            }
        }
    }

    pub(crate) fn finish(&mut self) {
        if let View::Live { rows, total, .. } = self {
            for row in rows.iter() {
                row.finish();
            }
            total.finish();
        }
    }
}
