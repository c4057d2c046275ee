//! `ringcast list`, `inspect` and `gc`.

use std::borrow::Cow;
use std::io::Write as _;

use ringcast::inspect::{self, GcOutcome, LaneInfo, TopicInfo};
use ringcast::name;
use ringcast::AttachError;

use crate::cli::InspectArgs;
use crate::Failure;

/// Text that came from a segment (an import origin, a type name, an error quoting them),
/// made safe to print: control characters (C0, DEL, C1) are shown escaped as `\u{..}`, so
/// whoever wrote the segment cannot move the cursor, retitle the terminal or forge lines.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Appends one formatted line to a `String` (which cannot fail).
macro_rules! put_line {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}
pub(crate) use put_line;

/// What a write to standard output came to: `Ok(true)` if its reader went away (a
/// closed pipe: `ringcast list | head -1`), which ends every tool quietly (exit 0);
/// another error names itself.
pub(crate) fn reader_gone(written: std::io::Result<()>) -> Result<bool, Failure> {
    match written {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(Failure(format!("writing standard output: {e}"))),
    }
}

/// Writes a tool's whole output to standard output (see [`reader_gone`]).
pub(crate) fn emit(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    reader_gone(out.write_all(text.as_bytes()).and_then(|()| out.flush())).map(|_| ())
}

pub fn list(prefix: &str) -> Result<(), Failure> {
    (|| {
        let topics = name::list_topics(prefix)
            .map_err(|e| Failure(format!("listing {}: {e}", name::SHM_DIR)))?;
        // A service is one line (its server and clients), not its internal topics.
        let (services, topics) = crate::svcview::group(prefix, topics);
        let mut lines: Vec<(String, String)> = services
            .values()
            .map(|s| (s.name.clone(), s.list_line()))
            .collect();
        lines.extend(topics.into_iter().map(|t| {
            let line = topic_line(prefix, &t);
            (t, line)
        }));
        lines.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::new();
        for (_, line) in lines {
            put_line!(out, "{line}");
        }
        emit(&out)
    })()
}

/// A topic's line in `ringcast list`.
fn topic_line(prefix: &str, topic: &str) -> String {
    match inspect::inspect(prefix, topic) {
        Ok(info) => format!(
            "{topic}\t{}\t{} subscribers\t{} published{}{}",
            state(&info),
            info.subscribers.len(),
            info.write_cursor,
            match shared(&info) {
                true => format!(
                    "\t{} of {} publishers live",
                    live_publishers(&info),
                    info.geometry.max_publishers
                ),
                false => String::new(),
            },
            match &info.origin {
                Some(o) => format!(
                    "\timported from {} ({} lost upstream)",
                    printable(o),
                    info.upstream_lost
                ),
                None => String::new(),
            }
        ),
        Err(e) => format!("{topic}\tunreadable\t{}", printable(&e.to_string())),
    }
}

/// Whether several publishers may share the topic (it has lanes worth showing).
pub fn shared(info: &TopicInfo) -> bool {
    info.geometry.max_publishers > 1
}

/// Publishers of the topic alive now.
pub fn live_publishers(info: &TopicInfo) -> usize {
    info.lanes.iter().filter(|l| l.alive).count()
}

/// Whether a publisher ever took the lane (the lanes `inspect` and `top` show).
pub fn taken(lane: &LaneInfo) -> bool {
    lane.pid != 0 || lane.writer_id != 0 || lane.write_cursor != 0
}

/// A lane's state: `live` (its publisher holds it), `left` (it left cleanly), `dead` (it
/// died holding it) or `free` (never taken).
pub fn lane_state(lane: &LaneInfo) -> &'static str {
    match (lane.alive, lane.left, taken(lane)) {
        (true, ..) => "live",
        (false, true, _) => "left",
        (false, false, true) => "dead",
        (false, false, false) => "free",
    }
}

pub fn state(info: &TopicInfo) -> &'static str {
    match (info.publisher_alive, info.closed) {
        (true, false) => "live",
        (_, true) => "closed",
        (false, false) => "dead",
    }
}

pub fn inspect(prefix: &str, a: InspectArgs) -> Result<(), Failure> {
    let (json, topic) = (a.json, a.topic);
    if a.service {
        return inspect_service(prefix, &topic, json);
    }
    match inspect::inspect(prefix, &topic) {
        Ok(info) => {
            let mut out = String::new();
            if json {
                put_line!(out, "{}", to_json(&info));
            } else {
                print_text(&info, &mut out);
            }
            emit(&out)
        }
        // No topic of that name: a service of that name, if there is one.
        Err(e @ AttachError::NotFound { .. }) => match crate::svcview::find(prefix, &topic)? {
            Some(view) => show_service(&view, json),
            None => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

fn inspect_service(prefix: &str, service: &str, json: bool) -> Result<(), Failure> {
    match crate::svcview::find(prefix, service)? {
        Some(view) => show_service(&view, json),
        None => Err(Failure(format!(
            "service {service:?}: not found (no topic {service}..service, {service}..requests \
             or {service}..responses.* under prefix {prefix:?})"
        ))),
    }
}

fn show_service(view: &crate::svcview::ServiceView, json: bool) -> Result<(), Failure> {
    let mut out = String::new();
    if json {
        put_line!(out, "{}", view.to_json());
    } else {
        view.print_text(&mut out);
    }
    emit(&out)
}

fn print_text(i: &TopicInfo, out: &mut String) {
    let g = &i.geometry;
    put_line!(out, "topic          {}", i.topic);
    put_line!(
        out,
        "publisher      {} (creator pid {})",
        state(i),
        i.creator_pid
    );
    put_line!(out, "overflow       {:?}", g.overflow);
    if g.evicts_stalled() {
        put_line!(
            out,
            "stall timeout  {:?} (stalled subscribers are evicted)",
            std::time::Duration::from_nanos(g.stall_timeout_ns)
        );
    }
    put_line!(
        out,
        "slots          {} x {} bytes (stride {}, align {})",
        g.slot_count,
        g.slot_capacity,
        g.slot_stride,
        g.alignment
    );
    put_line!(
        out,
        "segment        {} bytes (header {})",
        g.total_size,
        g.header_size
    );
    put_line!(
        out,
        "message type   {}",
        printable(&g.type_info.to_string())
    );
    if let Some(o) = &i.origin {
        put_line!(out, "imported from  {}", printable(o));
        put_line!(out, "lost upstream  {}", i.upstream_lost);
    }
    put_line!(out, "write cursor   {}", i.write_cursor);
    if shared(i) {
        // Lanes nobody ever took are left out: a topic for 64 publishers that 2 use shows 2.
        put_line!(
            out,
            "publishers     {} live of {} (lanes taken: {})",
            live_publishers(i),
            g.max_publishers,
            i.lanes.iter().filter(|l| taken(l)).count()
        );
        for l in i.lanes.iter().filter(|l| taken(l)) {
            put_line!(
                out,
                "  lane {:>4}  pid {:>7}  {:<5}  publisher {}/{}  published {}",
                l.lane,
                l.pid,
                lane_state(l),
                l.lane,
                l.writer_id,
                l.write_cursor
            );
        }
    }
    put_line!(
        out,
        "subscribers    {} of {}",
        i.subscribers.len(),
        g.max_subscribers
    );
    for s in &i.subscribers {
        put_line!(
            out,
            "  entry {:>4}  pid {:>7}  {}  cursor {}  lag {}  lost {}",
            s.entry,
            s.pid,
            match (s.alive, s.evicted, s.monitor) {
                (true, _, true) => "monitor",
                (true, false, _) => "alive  ",
                (true, true, _) => "evicted",
                (false, _, _) => "dead   ",
            },
            s.cursor,
            s.lag,
            s.lost
        );
    }
}

pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            // Every control character, C1 and DEL too: the JSON may end up on a terminal.
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn to_json(i: &TopicInfo) -> String {
    let g = &i.geometry;
    let subs: Vec<String> = i
        .subscribers
        .iter()
        .map(|s| {
            format!(
                r#"{{"entry":{},"pid":{},"alive":{},"evicted":{},"monitor":{},"cursor":{},"lag":{},"lost":{}}}"#,
                s.entry, s.pid, s.alive, s.evicted, s.monitor, s.cursor, s.lag, s.lost
            )
        })
        .collect();
    let lanes: Vec<String> = i
        .lanes
        .iter()
        .map(|l| {
            format!(
                r#"{{"lane":{},"state":"{}","alive":{},"left":{},"pid":{},"writer":{},"write_cursor":{}}}"#,
                l.lane,
                lane_state(l),
                l.alive,
                l.left,
                l.pid,
                l.writer_id,
                l.write_cursor
            )
        })
        .collect();
    format!(
        concat!(
            r#"{{"topic":{},"publisher_alive":{},"closed":{},"creator_pid":{},"#,
            r#""overflow":{},"slot_count":{},"slot_size":{},"slot_stride":{},"alignment":{},"#,
            r#""total_size":{},"header_size":{},"max_subscribers":{},"max_publishers":{},"#,
            r#""message_type":{},"stall_timeout_ns":{},"origin":{},"upstream_lost":{},"#,
            r#""write_cursor":{},"lanes":[{}],"subscribers":[{}]}}"#
        ),
        json_str(&i.topic),
        i.publisher_alive,
        i.closed,
        i.creator_pid,
        json_str(match g.overflow {
            ringcast::Overflow::Overwrite => "overwrite",
            ringcast::Overflow::Block => "block",
        }),
        g.slot_count,
        g.slot_capacity,
        g.slot_stride,
        g.alignment,
        g.total_size,
        g.header_size,
        g.max_subscribers,
        g.max_publishers,
        json_str(&g.type_info.to_string()),
        g.stall_timeout_ns,
        i.origin.as_deref().map_or("null".to_owned(), json_str),
        i.upstream_lost,
        i.write_cursor,
        lanes.join(","),
        subs.join(",")
    )
}

pub fn gc(prefix: &str) -> Result<(), Failure> {
    (|| {
        for (topic, outcome) in inspect::gc(prefix)? {
            match outcome {
                // Never a panic for a closed output: the collection goes on.
                GcOutcome::Removed => {
                    let _ = writeln!(std::io::stdout(), "removed {topic}");
                }
                GcOutcome::Skipped(e) => {
                    let _ = writeln!(std::io::stderr(), "ringcast: skipped {topic}: {e}");
                }
                // Alive, or re-created while gc looked: nothing to do.
                _ => {}
            }
        }
        Ok(())
    })()
}

/// The next line of `input` without its newline (`None` at the end): `Err(len)` for one
/// longer than `max` bytes, whose bytes past `max` are read and dropped, so a program that
/// prints without newlines (or an input without any) cannot make this hold more than
/// `max` bytes (`pub`, `call`, `serve`).
pub(crate) fn read_line(
    input: &mut impl std::io::BufRead,
    max: usize,
) -> std::io::Result<Option<Result<Vec<u8>, usize>>> {
    let mut line = Vec::new();
    let mut len = 0usize;
    let mut any = false;
    loop {
        let buf = match input.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            if !any {
                return Ok(None);
            }
            break;
        }
        any = true;
        let (chunk, used, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        len = len.saturating_add(chunk.len());
        let room = (max + 1).saturating_sub(line.len()).min(chunk.len());
        line.extend_from_slice(&chunk[..room]);
        input.consume(used);
        if done {
            break;
        }
    }
    Ok(Some(if len > max { Err(len) } else { Ok(line) }))
}
