//! Services as `ringcast list` and `ringcast inspect` show them: read from the service's
//! topics (its name plate, its request topic, its clients' response topics) without
//! attaching to any.

use crate::tools::put_line;
use std::collections::BTreeMap;

use ringcast::inspect::{self, LaneInfo, SubscriberInfo, TopicInfo};
use ringcast::service::{self, ServiceTopic, HEADER};

use crate::tools::{json_str, lane_state, printable, state, taken};
use crate::Failure;

/// The topics of one service that exist, as inspected (`Err`: unreadable, its message).
pub struct ServiceView {
    pub name: String,
    anchor: Option<Result<TopicInfo, String>>,
    requests: Option<Result<TopicInfo, String>>,
    responses: Vec<(String, Result<TopicInfo, String>)>,
}

/// A client as the service's topics show it: its lane of the request topic, and the
/// response topic whose reader is its process (when exactly one is).
struct ClientView<'a> {
    lane: &'a LaneInfo,
    responses: Option<&'a TopicInfo>,
}

fn look(prefix: &str, topic: &str) -> Result<TopicInfo, String> {
    inspect::inspect(prefix, topic).map_err(|e| printable(&e.to_string()).into_owned())
}

/// Splits `topics` into the services they make up (by name) and the other topics.
pub fn group(prefix: &str, topics: Vec<String>) -> (BTreeMap<String, ServiceView>, Vec<String>) {
    let mut services: BTreeMap<String, ServiceView> = BTreeMap::new();
    let mut others = Vec::new();
    for topic in topics {
        let Some(part) = service::parse_topic(&topic) else {
            others.push(topic);
            continue;
        };
        let name = match part {
            ServiceTopic::Anchor(s) | ServiceTopic::Requests(s) | ServiceTopic::Responses(s) => s,
            _ => {
                others.push(topic);
                continue;
            }
        };
        let view = services
            .entry(name.to_owned())
            .or_insert_with(|| ServiceView {
                name: name.to_owned(),
                anchor: None,
                requests: None,
                responses: Vec::new(),
            });
        let info = look(prefix, &topic);
        match part {
            ServiceTopic::Anchor(_) => view.anchor = Some(info),
            ServiceTopic::Requests(_) => view.requests = Some(info),
            _ => view.responses.push((topic.clone(), info)),
        }
    }
    (services, others)
}

/// The service `name`'s topics under `prefix`, or `None` if it has none.
pub fn find(prefix: &str, name: &str) -> Result<Option<ServiceView>, Failure> {
    let topics = ringcast::name::list_topics(prefix)
        .map_err(|e| Failure(format!("listing {}: {e}", ringcast::name::SHM_DIR)))?;
    Ok(group(prefix, topics).0.remove(name))
}

impl ServiceView {
    /// The server's state: `live`, `dead`, `closed`, `none` (no name plate), or
    /// `unreadable`.
    fn server_state(&self) -> &'static str {
        match &self.anchor {
            None => "none",
            Some(Ok(info)) => state(info),
            Some(Err(_)) => "unreadable",
        }
    }

    /// The pid of the server's process (the name plate's publisher), if known.
    fn server_pid(&self) -> Option<u64> {
        let info = self.anchor.as_ref()?.as_ref().ok()?;
        Some(match info.lanes.first() {
            Some(l) if l.pid != 0 => u64::from(l.pid),
            _ => info.creator_pid,
        })
    }

    /// Where the service runs, if its server is a proxy of a remote one (a bridge's
    /// import): its name plate's origin.
    fn origin(&self) -> Option<&str> {
        self.anchor.as_ref()?.as_ref().ok()?.origin.as_deref()
    }

    fn requests(&self) -> Option<&TopicInfo> {
        self.requests.as_ref()?.as_ref().ok()
    }

    /// The lane the server holds to keep its request topic (it never sends on it): a
    /// live lane of the server's process, the one that sent least.
    fn keeper(&self) -> Option<usize> {
        let pid = self.server_pid()?;
        if self.server_state() != "live" {
            return None;
        }
        self.requests()?
            .lanes
            .iter()
            .filter(|l| l.alive && u64::from(l.pid) == pid)
            .min_by_key(|l| l.write_cursor)
            .map(|l| l.lane)
    }

    /// Every lane a client took (live, left or dead), with its response topic.
    fn clients(&self) -> Vec<ClientView<'_>> {
        let Some(requests) = self.requests() else {
            return Vec::new();
        };
        let keeper = self.keeper();
        requests
            .lanes
            .iter()
            .filter(|l| taken(l) && Some(l.lane) != keeper)
            .map(|lane| {
                let mut mine = self.responses.iter().filter_map(|(_, info)| {
                    let info = info.as_ref().ok()?;
                    info.subscribers
                        .iter()
                        .any(|s| s.alive && s.pid == lane.pid)
                        .then_some(info)
                });
                let responses = match (lane.alive, mine.next(), mine.next()) {
                    (true, Some(one), None) => Some(one),
                    _ => None,
                };
                ClientView { lane, responses }
            })
            .collect()
    }

    fn live_clients(&self) -> usize {
        self.clients().iter().filter(|c| c.lane.alive).count()
    }

    /// The server's reader of the request topic.
    fn server_reader(&self) -> Option<&SubscriberInfo> {
        let info = self.requests()?;
        let pid = self.server_pid()?;
        info.subscribers
            .iter()
            .find(|s| s.alive && !s.monitor && u64::from(s.pid) == pid)
    }

    /// Requests (and greetings) the server has not read yet: its lag on the request topic.
    fn queued(&self) -> Option<u64> {
        self.server_reader().map(|s| s.lag)
    }

    /// Requests of the client on `lane` that the server has not read yet: the lane's
    /// write cursor less the server's cursor in that lane.
    fn queued_in(&self, lane: &LaneInfo) -> Option<u64> {
        let at = *self.server_reader()?.lane_cursors.get(lane.lane)?;
        Some(lane.write_cursor.saturating_sub(at))
    }

    /// One line for `ringcast list`.
    pub fn list_line(&self) -> String {
        let queued = self
            .queued()
            .map_or(String::new(), |q| format!("\t{q} queued"));
        let imported = self.origin().map_or(String::new(), |o| {
            format!("\timported from {}", printable(o))
        });
        format!(
            "{}\tservice\tserver {}\t{} clients{queued}{imported}",
            self.name,
            self.server_state(),
            self.live_clients()
        )
    }

    /// `ringcast inspect SERVICE`, as text.
    pub fn print_text(&self, out: &mut String) {
        put_line!(out, "service        {}", self.name);
        match (self.server_pid(), &self.anchor) {
            (_, Some(Err(e))) => put_line!(out, "server         unreadable: {e}"),
            (Some(pid), _) => put_line!(out, "server         {} (pid {pid})", self.server_state()),
            (None, _) => put_line!(out, "server         none"),
        }
        if let Some(o) = self.origin() {
            put_line!(out, "imported from  {}", printable(o));
        }
        match &self.requests {
            Some(Ok(r)) => {
                let g = &r.geometry;
                put_line!(
                    out,
                    "limits         {} clients, {} requests queued each, requests up to {} bytes{}",
                    g.max_publishers.saturating_sub(1),
                    g.slot_count,
                    g.slot_capacity.saturating_sub(HEADER as u64),
                    self.max_response()
                        .map_or(String::new(), |m| format!(", responses up to {m} bytes"))
                );
                match self.queued() {
                    Some(q) => put_line!(
                        out,
                        "queued         {q} (requests and greetings the server has not read)"
                    ),
                    None => put_line!(out, "queued         - (no live server reads the requests)"),
                }
            }
            Some(Err(e)) => put_line!(out, "requests       unreadable: {e}"),
            None => put_line!(out, "requests       no request topic"),
        }
        let clients = self.clients();
        put_line!(
            out,
            "clients        {} live (lanes taken: {})",
            clients.iter().filter(|c| c.lane.alive).count(),
            clients.len()
        );
        for c in &clients {
            let (sent, unread) = match c.responses {
                Some(r) => (
                    r.write_cursor.to_string(),
                    r.subscribers
                        .iter()
                        .find(|s| s.alive)
                        .map_or("-".to_owned(), |s| s.lag.to_string()),
                ),
                None => ("-".to_owned(), "-".to_owned()),
            };
            let queued = self
                .queued_in(c.lane)
                .map_or("-".to_owned(), |q| q.to_string());
            put_line!(out,
                "  lane {:>4}  pid {:>7}  {:<5}  queued {queued}  responses {sent}  unread {unread}",
                c.lane.lane,
                c.lane.pid,
                lane_state(c.lane)
            );
        }
        put_line!(out, "response topics {}", self.responses.len());
        for (topic, info) in &self.responses {
            match info {
                Ok(i) => put_line!(
                    out,
                    "  {topic}  {}  {} sent  reader {}",
                    state(i),
                    i.write_cursor,
                    reader(i).map_or("none".to_owned(), |(pid, alive, lag)| format!(
                        "pid {pid} {} (unread {lag})",
                        if alive { "alive" } else { "dead" }
                    ))
                ),
                Err(e) => put_line!(out, "  {topic}  unreadable: {e}"),
            }
        }
    }

    /// The largest response, from any response topic.
    fn max_response(&self) -> Option<u64> {
        self.responses.iter().find_map(|(_, i)| {
            let g = &i.as_ref().ok()?.geometry;
            Some(g.slot_capacity.saturating_sub(HEADER as u64))
        })
    }

    /// `ringcast inspect SERVICE --json`.
    pub fn to_json(&self) -> String {
        let opt = |v: Option<u64>| v.map_or("null".to_owned(), |v| v.to_string());
        let requests = self.requests();
        let clients: Vec<String> = self
            .clients()
            .iter()
            .map(|c| {
                format!(
                    r#"{{"lane":{},"pid":{},"state":"{}","queued":{},"responses":{},"unread":{}}}"#,
                    c.lane.lane,
                    c.lane.pid,
                    lane_state(c.lane),
                    opt(self.queued_in(c.lane)),
                    opt(c.responses.map(|r| r.write_cursor)),
                    opt(c.responses.and_then(|r| reader(r).map(|(_, _, lag)| lag)))
                )
            })
            .collect();
        let responses: Vec<String> = self
            .responses
            .iter()
            .map(|(topic, info)| match info {
                Ok(i) => {
                    let r = reader(i);
                    format!(
                        r#"{{"topic":{},"state":"{}","sent":{},"reader_pid":{},"reader_alive":{},"unread":{}}}"#,
                        json_str(topic),
                        state(i),
                        i.write_cursor,
                        opt(r.map(|(pid, _, _)| u64::from(pid))),
                        r.is_some_and(|(_, alive, _)| alive),
                        opt(r.map(|(_, _, lag)| lag))
                    )
                }
                Err(e) => format!(r#"{{"topic":{},"error":{}}}"#, json_str(topic), json_str(e)),
            })
            .collect();
        format!(
            concat!(
                r#"{{"service":{},"server":"{}","server_pid":{},"origin":{},"max_clients":{},"queue":{},"#,
                r#""max_request":{},"max_response":{},"queued":{},"live_clients":{},"#,
                r#""clients":[{}],"response_topics":[{}]}}"#
            ),
            json_str(&self.name),
            self.server_state(),
            opt(self.server_pid()),
            self.origin().map_or("null".to_owned(), json_str),
            opt(requests.map(|r| r.geometry.max_publishers.saturating_sub(1))),
            opt(requests.map(|r| r.geometry.slot_count)),
            opt(requests.map(|r| r.geometry.slot_capacity.saturating_sub(HEADER as u64))),
            opt(self.max_response()),
            opt(self.queued()),
            self.live_clients(),
            clients.join(","),
            responses.join(",")
        )
    }
}

/// A response topic's reader (the client): pid, alive, unread responses.
fn reader(info: &TopicInfo) -> Option<(u32, bool, u64)> {
    let s = info
        .subscribers
        .iter()
        .find(|s| s.alive)
        .or(info.subscribers.first())?;
    Some((s.pid, s.alive, s.lag))
}
