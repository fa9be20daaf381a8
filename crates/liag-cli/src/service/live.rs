//! The live link monitor of `liag tunnel` and `liag proxy`: each connection and its links with
//! state, round trip, rates and share, redrawn four times a second, with keys to block and
//! unblock a link. It owns the terminal while it runs, so the command's messages go into its
//! message pane meanwhile (and to standard error again once it ends).

use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use futures::StreamExt;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table};
use std::collections::VecDeque;
use std::io::{self, IsTerminal};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use liag_transports::liag_tokio::liag_core::{LinkId, LinkState, Tier};
use liag_transports::liag_tokio::{Control, LinkRates};

use super::{Connections, Shutdown};

/// How often the view is redrawn.
const FRAME: Duration = Duration::from_millis(250);
/// Messages kept for the message pane.
const MESSAGES: usize = 200;

/// The command's messages while the monitor owns the terminal; `None` when it does not.
static PANE: Mutex<Option<VecDeque<String>>> = Mutex::new(None);

/// Takes a message for the pane if the monitor runs; gives it back otherwise.
pub(crate) fn divert(message: String) -> Option<String> {
    let mut pane = PANE.lock().unwrap_or_else(PoisonError::into_inner);
    match pane.as_mut() {
        Some(lines) => {
            if lines.len() == MESSAGES {
                lines.pop_front();
            }
            lines.push_back(message);
            None
        }
        None => Some(message),
    }
}

/// A link row's connection, link and state, for the keys that act on it.
type Selectable = (Control, LinkId, LinkState);

/// One link's row.
#[derive(Debug, Clone)]
pub(crate) struct LinkRow {
    /// The link's number in its connection.
    pub(crate) id: u64,
    pub(crate) tag: String,
    pub(crate) state: LinkState,
    pub(crate) tier: Tier,
    pub(crate) rtt: Duration,
    /// Bytes per second over the last second.
    pub(crate) send: f64,
    pub(crate) receive: f64,
    pub(crate) sent: u64,
    pub(crate) received: u64,
    /// Blocked for its interface's allowance (`--cap`).
    pub(crate) over_allowance: bool,
}

/// One connection and its links.
#[derive(Debug, Clone)]
pub(crate) struct ConnRow {
    pub(crate) label: String,
    pub(crate) age: Duration,
    pub(crate) links: Vec<LinkRow>,
}

/// What one frame shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    pub(crate) connections: Vec<ConnRow>,
    pub(crate) messages: Vec<String>,
    /// Each `--cap` allowance, as a line.
    pub(crate) allowances: Vec<String>,
}

impl LinkRow {
    fn of(rates: &LinkRates) -> LinkRow {
        let s = &rates.stats;
        LinkRow {
            id: s.id.number(),
            tag: s.tag.clone(),
            state: s.state,
            tier: s.tier,
            rtt: s.rtt,
            send: rates.send_1s,
            receive: rates.receive_1s,
            sent: s.sent_bytes,
            received: s.received_bytes,
            over_allowance: s.over_allowance,
        }
    }
}

impl Snapshot {
    /// The connections as they are now, and the controls of their links in row order.
    fn take(connections: &Connections) -> (Snapshot, Vec<Selectable>) {
        let mut snapshot = Snapshot::default();
        let mut controls = Vec::new();
        for entry in connections.snapshot() {
            let rates = entry.control.link_rates();
            let links: Vec<LinkRow> = rates.iter().map(LinkRow::of).collect();
            controls.extend(
                rates
                    .iter()
                    .map(|r| (entry.control.clone(), r.stats.id, r.stats.state)),
            );
            snapshot.connections.push(ConnRow {
                label: entry.label,
                age: entry.since.elapsed(),
                links,
            });
        }
        snapshot.allowances = crate::allowance::shown().iter().map(|a| a.line()).collect();
        snapshot.messages = PANE
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default();
        (snapshot, controls)
    }
}

fn state_word(state: LinkState) -> &'static str {
    match state {
        LinkState::Active => "active",
        LinkState::Stalled => "stalled",
        LinkState::Testing => "testing",
        LinkState::Blocked => "blocked",
        LinkState::Disconnecting => "leaving",
        _ => "?",
    }
}

/// A link's state as its row shows it, with its tier unless primary.
fn state_of(link: &LinkRow) -> String {
    match (link.over_allowance, link.tier) {
        (true, _) => "blocked (allowance)".to_string(),
        (false, Tier::Primary) => state_word(link.state).to_string(),
        (false, tier) => format!("{} ({tier})", state_word(link.state)),
    }
}

/// Bytes per second as megabytes per second.
fn mb(bytes_per_s: f64) -> String {
    format!("{:.2}", bytes_per_s / 1e6)
}

/// Draws `snapshot` with link row `selected` (counted over all connections) highlighted.
pub(crate) fn draw(frame: &mut Frame<'_>, title: &str, snapshot: &Snapshot, selected: usize) {
    let links: usize = snapshot.connections.iter().map(|c| c.links.len()).sum();
    let send: f64 = snapshot
        .connections
        .iter()
        .flat_map(|c| &c.links)
        .map(|l| l.send)
        .fold(0.0, |a, b| a + b);
    let receive: f64 = snapshot
        .connections
        .iter()
        .flat_map(|c| &c.links)
        .map(|l| l.receive)
        .fold(0.0, |a, b| a + b);
    let allowances = u16::try_from(snapshot.allowances.len()).unwrap_or(u16::MAX);
    let [head, body, pane, keys] = Layout::vertical([
        Constraint::Length(allowances.saturating_add(1)),
        Constraint::Min(3),
        Constraint::Length(6),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let summary = Line::styled(
        format!(
            "{title}: {} connection(s), {links} link(s), send {} MB/s, receive {} MB/s",
            snapshot.connections.len(),
            mb(send),
            mb(receive)
        ),
        Style::new().add_modifier(Modifier::BOLD),
    );
    let lines = std::iter::once(summary)
        .chain((snapshot.allowances.iter()).map(|a| Line::raw(format!("allowance {a}"))));
    frame.render_widget(Paragraph::new(lines.collect::<Vec<_>>()), head);
    let mut rows = Vec::new();
    let mut index = 0;
    // As wide as the longest state shown ("blocked (allowance)"), so the tags keep the room.
    let state_width = (snapshot.connections.iter().flat_map(|c| &c.links))
        .map(|l| state_of(l).len())
        .fold(8, usize::max);
    for conn in &snapshot.connections {
        rows.push(
            Row::new(vec![
                String::new(),
                format!("{} (up {} s)", conn.label, conn.age.as_secs()),
            ])
            .style(Style::new().add_modifier(Modifier::UNDERLINED)),
        );
        let total = conn.links.iter().map(|l| l.send).fold(0.0, |a, b| a + b);
        for link in &conn.links {
            let share = if total > 0.0 {
                link.send * 100.0 / total
            } else {
                0.0
            };
            let mut row = Row::new(vec![
                format!("  {}", link.id),
                link.tag.clone(),
                state_of(link),
                format!("{:.1}", link.rtt.as_secs_f64() * 1000.0),
                mb(link.send),
                mb(link.receive),
                format!("{share:.0} %"),
                format!("{:.1}", link.sent as f64 / 1e6),
                format!("{:.1}", link.received as f64 / 1e6),
            ]);
            if index == selected {
                row = row.style(Style::new().add_modifier(Modifier::REVERSED));
            }
            rows.push(row);
            index += 1;
        }
    }
    let widths = [
        Constraint::Length(5),
        Constraint::Min(20),
        Constraint::Length(u16::try_from(state_width).unwrap_or(u16::MAX)),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(9),
        Constraint::Length(9),
    ];
    let header = Row::new([
        "link", "tag", "state", "rtt ms", "send", "receive", "share", "sent MB", "recv MB",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title("links (MB/s over the last second)")),
        body,
    );
    let shown = pane.height.saturating_sub(2) as usize;
    let messages: Vec<Line<'_>> = snapshot
        .messages
        .iter()
        .skip(snapshot.messages.len().saturating_sub(shown))
        .map(|m| Line::raw(m.as_str()))
        .collect();
    frame.render_widget(
        Paragraph::new(messages).block(Block::bordered().title("messages")),
        pane,
    );
    frame.render_widget(
        Paragraph::new("↑/↓ choose a link   b block or unblock it   q quit (gracefully)"),
        keys,
    );
}

/// `snapshot` drawn on a `width` × `height` screen, as text (for docs and tests).
#[cfg(test)]
fn capture(title: &str, snapshot: &Snapshot, width: u16, height: u16) -> String {
    let backend = ratatui::backend::TestBackend::new(width, height);
    let Ok(mut terminal) = ratatui::Terminal::new(backend);
    let Ok(_) = terminal.draw(|f| draw(f, title, snapshot, 0));
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let line: String = (0..buffer.area.width)
            .map(|x| buffer[(x, y)].symbol())
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Gives the terminal back if the monitor has it, and sends the messages it kept to standard
/// error. The monitor does this as it ends; `main` does it again before the process exits, in
/// case the command ended first.
pub(crate) fn release() {
    let kept = PANE.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(kept) = kept {
        ratatui::restore();
        for line in kept {
            eprintln!("{line}");
        }
    }
}

/// Calls [`release`] however the monitor ends.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        release();
    }
}

/// Starts the monitor in a task unless `quiet`; await the handle before the process exits.
pub(crate) fn start(
    quiet: bool,
    title: &str,
    connections: &Connections,
    shutdown: &Shutdown,
) -> Option<tokio::task::JoinHandle<()>> {
    (!quiet).then(|| {
        tokio::spawn(run(
            title.to_string(),
            connections.clone(),
            shutdown.clone(),
        ))
    })
}

/// Waits for a monitor [`start`] returned to give the terminal back.
pub(crate) async fn finish(monitor: Option<tokio::task::JoinHandle<()>>) {
    if let Some(monitor) = monitor {
        let _ = monitor.await;
    }
}

/// Runs the monitor until shutdown, when standard output is a terminal; returns at once
/// otherwise.
async fn run(title: String, connections: Connections, shutdown: Shutdown) {
    if !io::stdout().is_terminal() {
        return;
    }
    *PANE.lock().unwrap_or_else(PoisonError::into_inner) = Some(VecDeque::new());
    let _restore = Restore;
    let mut terminal = ratatui::init();
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(FRAME);
    let mut selected = 0usize;
    let mut rows: Vec<Selectable> = Vec::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let (snapshot, controls) = Snapshot::take(&connections);
                rows = controls;
                selected = selected.min(rows.len().saturating_sub(1));
                if terminal.draw(|f| draw(f, &title, &snapshot, selected)).is_err() {
                    return;
                }
            }
            key = keys.next() => match key {
                Some(Ok(Event::Key(key))) if key.kind == KeyEventKind::Press => {
                    match act(key, &mut selected, &rows) {
                        Act::Nothing => {}
                        Act::Quit if shutdown.is_stopping() => {
                            drop(_restore);
                            std::process::exit(130);
                        }
                        Act::Quit => {
                            say!(
                                "{title}: quit: ending connections gracefully (within 10 s); \
                                 Ctrl-C to exit at once"
                            );
                            super::notify_stopping();
                            shutdown.stop();
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
            () = shutdown.stopping() => return,
        }
    }
}

enum Act {
    Nothing,
    Quit,
}

fn act(key: KeyEvent, selected: &mut usize, rows: &[Selectable]) -> Act {
    match key.code {
        KeyCode::Char('q') => return Act::Quit,
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => return Act::Quit,
        KeyCode::Up | KeyCode::Char('k') => *selected = selected.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => {
            *selected = (*selected + 1).min(rows.len().saturating_sub(1))
        }
        KeyCode::Char('b') => {
            if let Some((control, link, state)) = rows.get(*selected) {
                control.set_blocked(*link, *state != LinkState::Blocked);
            }
        }
        _ => {}
    }
    Act::Nothing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_shows_each_connection_and_link() {
        let link = |id: u64, tag: &str, state, send: f64| LinkRow {
            id,
            tag: tag.into(),
            state,
            tier: Tier::Primary,
            rtt: Duration::from_micros(1_250),
            send,
            receive: send / 2.0,
            sent: 12_000_000,
            received: 6_000_000,
            over_allowance: false,
        };
        let snapshot = Snapshot {
            connections: vec![
                ConnRow {
                    label: "127.0.0.1:40112 to port 22".into(),
                    age: Duration::from_secs(42),
                    links: vec![
                        link(0, "eth0 -> 192.0.2.1:5800", LinkState::Active, 30e6),
                        link(1, "wlan0 -> 192.0.2.1:5800", LinkState::Blocked, 10e6),
                    ],
                },
                ConnRow {
                    label: "127.0.0.1:40114 to port 22".into(),
                    age: Duration::from_secs(3),
                    links: vec![link(0, "eth0 -> 192.0.2.1:5800", LinkState::Stalled, 0.0)],
                },
            ],
            messages: vec!["liag tunnel client: link down: usb0".into()],
            allowances: vec![
                "wwan0: 1.23 of 2.00 GB used this month (61.5 %), a new count from 2027-01-01 UTC"
                    .into(),
            ],
        };
        let text = capture("liag tunnel client", &snapshot, 110, 17);
        println!("{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with(
            "liag tunnel client: 2 connection(s), 3 link(s), send 40.00 MB/s, receive 20.00 MB/s"
        ));
        let row = |tag: &str, n: usize| {
            lines
                .iter()
                .filter(|l| l.contains(tag))
                .nth(n)
                .unwrap_or_else(|| panic!("no row {tag} in\n{text}"))
                .split_whitespace()
                .collect::<Vec<_>>()
        };
        let eth0 = row("eth0", 0);
        assert_eq!(
            eth0[5..],
            [
                "active", "1.2", "30.00", "15.00", "75", "%", "12.0", "6.0", "│"
            ]
        );
        assert_eq!(row("wlan0", 0)[5], "blocked");
        assert_eq!(row("eth0", 1)[5], "stalled");
        assert!(
            text.contains("127.0.0.1:40112 to port 22 (up 42 s)"),
            "{text}"
        );
        assert!(text.contains("link down: usb0"), "{text}");
        assert!(
            lines[1].starts_with("allowance wwan0: 1.23 of 2.00 GB used this month (61.5 %)"),
            "{text}"
        );
        let mut capped = snapshot.clone();
        capped.connections[0].links[1].over_allowance = true;
        let text = capture("liag tunnel client", &capped, 110, 17);
        assert!(text.contains("blocked (allowance)"), "{text}");

        // Nothing to sum is zero, not -0.00 (f64's empty sum).
        let empty = capture("liag proxy server", &Snapshot::default(), 110, 12);
        assert!(
            empty.starts_with(
                "liag proxy server: 0 connection(s), 0 link(s), send 0.00 MB/s, receive 0.00 MB/s"
            ),
            "{empty}"
        );
    }
}
