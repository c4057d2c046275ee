//! `ringcast hz` (one topic's rate and inter-arrival statistics, like `ros2 topic hz`) and
//! `ringcast top` (every topic under the prefix, refreshed).

use std::collections::{HashMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use ringcast::inspect::{self, TopicInfo};
use ringcast::{RecvTimeoutError, Start, Subscriber, SubscriberOptions};

use crate::cli::{HzArgs, TopArgs};
use crate::{signal, tools, Failure};

/// Inter-arrival statistics over a window of messages.
struct Window {
    arrivals: VecDeque<(Instant, usize)>,
    size: usize,
}

impl Window {
    fn push(&mut self, at: Instant, len: usize) {
        if self.arrivals.len() == self.size {
            self.arrivals.pop_front();
        }
        self.arrivals.push_back((at, len));
    }

    /// `rate msg/s, bytes/s, min, max, std dev of the gaps (s)`, once two messages came.
    fn stats(&self) -> Option<(f64, f64, f64, f64, f64)> {
        let (first, last) = (self.arrivals.front()?, self.arrivals.back()?);
        let span = last.0.duration_since(first.0).as_secs_f64();
        if self.arrivals.len() < 2 || span <= 0.0 {
            return None;
        }
        let gaps: Vec<f64> = self
            .arrivals
            .iter()
            .zip(self.arrivals.iter().skip(1))
            .map(|(a, b)| b.0.duration_since(a.0).as_secs_f64())
            .collect();
        let n = gaps.len() as f64;
        let mean = span / n;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
        let bytes: usize = self.arrivals.iter().skip(1).map(|a| a.1).sum();
        let min = gaps.iter().copied().fold(f64::INFINITY, f64::min);
        let max = gaps.iter().copied().fold(0.0, f64::max);
        Some((n / span, bytes as f64 / span, min, max, var.sqrt()))
    }
}

fn human_bytes(b: f64) -> String {
    match b {
        b if b >= 1e9 => format!("{:.2} GB", b / 1e9),
        b if b >= 1e6 => format!("{:.2} MB", b / 1e6),
        b if b >= 1e3 => format!("{:.2} KB", b / 1e3),
        b => format!("{b:.0} B"),
    }
}

fn human_secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{:.1} us", s * 1e6)
    }
}

pub fn hz(prefix: &str, a: HzArgs) -> Result<(), Failure> {
    signal::catch_stop_signals();
    let started = Instant::now();
    let over = |s: Instant| a.duration.is_some_and(|d| s.elapsed() >= d) || signal::stopped();
    let mut opts = a.trust.apply(
        SubscriberOptions::default()
            .prefix(prefix)
            .start(Start::Latest),
    );
    if !a.gating {
        opts = opts.monitor();
    }
    let mut sub = loop {
        match Subscriber::attach_wait(&a.topic, opts.clone(), Duration::from_millis(100)) {
            Ok(s) => break s,
            Err(
                ringcast::AttachError::NotFound { .. } | ringcast::AttachError::NotReady { .. },
            )
            | Err(ringcast::AttachError::Closed { .. }) => {
                if over(started) {
                    return Err(Failure(format!(
                        "topic {:?}: no publisher appeared",
                        a.topic
                    )));
                }
            }
            Err(e) => return Err(e.into()),
        }
    };
    let mut window = Window {
        arrivals: VecDeque::with_capacity(a.window.min(1 << 20) as usize),
        size: a.window as usize,
    };
    let (mut last_print, mut lost) = (Instant::now(), 0u64);
    let mut out = std::io::stdout().lock();
    loop {
        match sub.recv_timeout(Duration::from_millis(50)) {
            Ok(m) => window.push(Instant::now(), m.len()),
            Err(RecvTimeoutError::Lagged(n)) => lost += n,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
            Err(e) => return Err(Failure(format!("topic {:?}: {e}", a.topic))),
        }
        if over(started) {
            break;
        }
        if last_print.elapsed() >= Duration::from_secs(1) {
            last_print = Instant::now();
            if print_hz(&mut out, &window, lost)? {
                // The reader is gone (`hz | head -1`): the end, quietly.
                return Ok(());
            }
        }
    }
    print_hz(&mut out, &window, lost).map(|_| ())
}

/// Prints one line of statistics; `Ok(true)` if the reader of our output is gone.
fn print_hz(out: &mut impl Write, w: &Window, lost: u64) -> Result<bool, Failure> {
    let line = match w.stats() {
        Some((rate, bw, min, max, std)) => format!(
            "average rate: {rate:.3} msg/s  bandwidth: {}/s  min: {}  max: {}  std dev: {}  window: {}  lost: {lost}",
            human_bytes(bw),
            human_secs(min),
            human_secs(max),
            human_secs(std),
            w.arrivals.len()
        ),
        None => "no new messages".to_owned(),
    };
    crate::tools::reader_gone(writeln!(out, "{line}").and_then(|()| out.flush()))
}

/// The terminal in non-canonical, no-echo mode while `top` runs (restored on drop), so a
/// single `q` quits.
struct RawStdin(Option<libc::termios>);

impl RawStdin {
    fn enter() -> RawStdin {
        if !std::io::stdin().is_terminal() {
            return RawStdin(None);
        }
        // SAFETY: termios is a plain C struct filled in by tcgetattr on a valid fd.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return RawStdin(None);
            }
            let saved = t;
            t.c_lflag &= !(libc::ICANON | libc::ECHO);
            t.c_cc[libc::VMIN] = 1;
            t.c_cc[libc::VTIME] = 0;
            libc::tcsetattr(0, libc::TCSANOW, &t);
            RawStdin(Some(saved))
        }
    }

    /// Waits up to `d` for a key on standard input; whether it was `q` (or end of input
    /// on a terminal).
    fn quit_within(&self, d: Duration) -> bool {
        if self.0.is_none() {
            // In naps, so that SIGINT/SIGTERM/SIGHUP end a long interval promptly.
            let until = Instant::now().checked_add(d);
            while !signal::stopped() {
                let left = until.map_or(Duration::from_millis(100), |u| {
                    u.saturating_duration_since(Instant::now())
                });
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(Duration::from_millis(100)));
            }
            return false;
        }
        let mut fds = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut fds, 1, d.as_millis().min(i32::MAX as u128) as i32) };
        if ready <= 0 {
            return false;
        }
        let mut key = [0u8; 1];
        // SAFETY: reading one byte into a one-byte buffer from fd 0.
        let n = unsafe { libc::read(0, key.as_mut_ptr().cast(), 1) };
        n == 0 || (n == 1 && (key[0] == b'q' || key[0] == b'Q'))
    }
}

impl Drop for RawStdin {
    fn drop(&mut self) {
        if let Some(saved) = self.0 {
            // SAFETY: restoring the attributes read in `enter`.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &saved) };
        }
    }
}

/// The MSG/S and BANDWIDTH columns: a message rate (`None` before a second snapshot) and
/// the mean length of the newest messages (`None` before the first).
fn rates(rate: Option<f64>, mean_len: Option<f64>) -> (String, String) {
    match rate {
        Some(r) => (
            format!("{r:.1}"),
            format!("{}/s", human_bytes(r * mean_len.unwrap_or(0.0))),
        ),
        None => ("-".into(), "-".into()),
    }
}

/// One topic's row of `top`.
fn row(info: &TopicInfo, rate: Option<f64>) -> String {
    let alive: Vec<_> = info.subscribers.iter().filter(|s| s.alive).collect();
    let lag = alive.iter().map(|s| s.lag).max().unwrap_or(0);
    let lost: u64 = info.subscribers.iter().map(|s| s.lost).sum();
    let (rate_s, bw) = rates(rate, info.recent_mean_len);
    format!(
        "{:<24} {:<6} {:>12} {:>12} {:>5} {:>10} {:>10} {:>12}",
        info.topic,
        tools::state(info),
        rate_s,
        bw,
        alive.len(),
        lag,
        lost,
        info.write_cursor
    )
}

/// The rows under a shared topic's row, each after a newline: one per lane a publisher
/// ever took, with its publisher (`pub LANE/WRITER pid P`, the id `Sample::publisher`
/// gives), its state, its message rate and bandwidth (the write cursor's rate times the
/// mean length of the lane's newest messages, as the topic's row) and what it published
/// (the subscriber columns are the topic's, so blank here).
fn lane_rows(
    info: &TopicInfo,
    now: Instant,
    previous: &mut HashMap<(String, usize), (u64, Instant)>,
) -> String {
    let mut text = String::new();
    for l in info.lanes.iter().filter(|l| tools::taken(l)) {
        let key = (info.topic.clone(), l.lane);
        let rate = previous.get(&key).map(|(c, t)| {
            l.write_cursor.saturating_sub(*c) as f64
                / now.duration_since(*t).as_secs_f64().max(1e-9)
        });
        previous.insert(key, (l.write_cursor, now));
        let who = format!("  pub {}/{} pid {}", l.lane, l.writer_id, l.pid);
        let (rate_s, bw) = rates(rate, l.recent_mean_len);
        text.push_str(&format!(
            "\n{:<24} {:<6} {:>12} {:>12} {:>5} {:>10} {:>10} {:>12}",
            who,
            tools::lane_state(l),
            rate_s,
            bw,
            "",
            "",
            "",
            l.write_cursor
        ));
    }
    text
}

pub fn top(prefix: &str, a: TopArgs) -> Result<(), Failure> {
    signal::catch_stop_signals();
    let terminal = std::io::stdout().is_terminal();
    let keys = RawStdin::enter();
    let mut previous: HashMap<String, (u64, Instant)> = HashMap::new();
    let mut previous_lanes: HashMap<(String, usize), (u64, Instant)> = HashMap::new();
    let mut out = std::io::stdout().lock();
    let mut shown = 0u64;
    loop {
        let topics = ringcast::name::list_topics(prefix)
            .map_err(|e| Failure(format!("listing {}: {e}", ringcast::name::SHM_DIR)))?;
        let mut text = String::new();
        if terminal {
            text.push_str("\x1b[H\x1b[2J");
        }
        text.push_str(&format!(
            "{:<24} {:<6} {:>12} {:>12} {:>5} {:>10} {:>10} {:>12}\n",
            "TOPIC", "PUB", "MSG/S", "BANDWIDTH", "SUBS", "MAX LAG", "LOST", "PUBLISHED"
        ));
        let now = Instant::now();
        for topic in topics {
            match inspect::inspect(prefix, &topic) {
                Ok(info) => {
                    let rate = previous.get(&topic).map(|(c, t)| {
                        info.write_cursor.saturating_sub(*c) as f64
                            / now.duration_since(*t).as_secs_f64().max(1e-9)
                    });
                    previous.insert(topic.clone(), (info.write_cursor, now));
                    text.push_str(&row(&info, rate));
                    if tools::shared(&info) {
                        text.push_str(&lane_rows(&info, now, &mut previous_lanes));
                    }
                }
                Err(e) => text.push_str(&format!(
                    "{topic:<24} unreadable: {}",
                    tools::printable(&e.to_string())
                )),
            }
            text.push('\n');
        }
        if terminal {
            text.push_str("\n(q quits)\n");
        } else {
            text.push('\n');
        }
        if crate::tools::reader_gone(out.write_all(text.as_bytes()).and_then(|()| out.flush()))? {
            return Ok(());
        }
        shown += 1;
        if a.count.is_some_and(|c| shown >= c) || signal::stopped() {
            return Ok(());
        }
        if keys.quit_within(a.interval) || signal::stopped() {
            return Ok(());
        }
    }
}
