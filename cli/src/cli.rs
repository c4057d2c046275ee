//! The command line, declared with clap: every subcommand has `--help`, `ringcast
//! --version` works, and a bad argument is a short message pointing at `--help` (exit 2).

use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

/// Zero-copy shared-memory publish/subscribe: inspect, publish, subscribe, record and
/// replay ringcast topics.
#[derive(Parser, Debug)]
#[command(name = "ringcast", version, propagate_version = true)]
pub struct Cli {
    /// Segment name prefix: segments are /dev/shm/<prefix>.<topic>.
    #[arg(long, global = true, env = "RINGCAST_PREFIX", default_value = ringcast::name::DEFAULT_PREFIX, value_parser = prefix_name)]
    pub prefix: String,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Publish each line of standard input as one message; exit at end of input.
    ///
    /// Default overflow: block, so every attached subscriber gets every line. With
    /// --stall-timeout-ms a subscriber that stalls the publisher that long is evicted
    /// instead of waited for. With --max-publishers N the topic is shared: a `pub` of a
    /// topic that exists with the same N and configuration joins it, and the topic ends
    /// when its last publisher does.
    Pub(PubArgs),
    /// Wait for the topic and print each message (one line each, or --hex/--raw/--json).
    ///
    /// Exits 0 after --count messages or once the publisher (on a shared topic, the last
    /// one) is gone and everything was printed, 1 at the timeout. Losses are reported on
    /// standard error (on a shared topic, with the lane they were lost from).
    #[command(visible_alias = "echo")]
    Sub(SubArgs),
    /// List the topics under the prefix, with their publisher state; a service is one line
    /// (its server's state and clients) instead of its internal topics.
    List,
    /// Show a topic's geometry, liveness, cursors and each subscriber's lag, or a
    /// service's server, clients and queued requests.
    Inspect(InspectArgs),
    /// Remove segments whose publisher is dead (never a live one).
    Gc,
    /// Record topics into an MCAP file, one channel per topic.
    ///
    /// Waits for topics that do not exist yet; stops at --count, --duration, SIGINT or
    /// SIGTERM (the file is finished and valid), or when every publisher is gone.
    Record(RecordArgs),
    /// Re-create the topics of an MCAP recording and republish it with its timing.
    Play(PlayArgs),
    /// Print a topic's message rate, bandwidth and inter-arrival statistics.
    Hz(HzArgs),
    /// A live table of every topic: liveness, rate, bandwidth, subscribers, lag, losses.
    ///
    /// On a terminal it refreshes in place and `q` quits; into a pipe it prints snapshots.
    Top(TopArgs),
    /// Send each line of standard input as a request to a service and print each response
    /// as a line, in the order of the input.
    ///
    /// A response with several parts (a stream) prints a line per part; a request the
    /// server ends with no response prints nothing. Exits 0 at the end of input once every
    /// request is answered, 1 if the server is gone or a response does not come within
    /// --timeout.
    Call(CallArgs),
    /// Serve a service with a program: run CMD once, write each request to its standard
    /// input as a line, and answer with the next line it prints.
    ///
    /// CMD must print exactly one line per line it reads, and flush it (a program that
    /// buffers its output into a pipe needs e.g. `stdbuf -oL`, `sed -u`, `python3 -u`).
    /// A request containing a newline cannot be a line: it is ended with no response. Ends
    /// with exit 1 when CMD exits or closes its output, with exit 0 on SIGINT, SIGTERM or
    /// SIGHUP (CMD is killed).
    Serve(ServeArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Overflow policy on the command line.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverflowArg {
    /// Backpressure: the publisher waits for the slowest subscriber.
    Block,
    /// The publisher never waits; slow subscribers lose the oldest messages.
    Overwrite,
}

impl From<OverflowArg> for ringcast::Overflow {
    fn from(o: OverflowArg) -> Self {
        match o {
            OverflowArg::Block => ringcast::Overflow::Block,
            OverflowArg::Overwrite => ringcast::Overflow::Overwrite,
        }
    }
}

/// `ringcast pub`.
#[derive(Args, Debug)]
pub struct PubArgs {
    /// The topic.
    #[arg(value_parser = topic_name)]
    pub topic: String,
    /// Slots in the ring (a power of two).
    #[arg(long)]
    pub slots: Option<u64>,
    /// Most bytes per message.
    #[arg(long)]
    pub slot_size: Option<u64>,
    /// What happens when a subscriber falls a ring behind.
    #[arg(long, value_enum, default_value = "block")]
    pub overflow: OverflowArg,
    /// Publish only after N subscribers have attached.
    #[arg(long, value_name = "N")]
    pub wait_subscribers: Option<usize>,
    /// Permission bits of the segment, in octal.
    #[arg(long, value_parser = octal_mode, default_value = "600")]
    pub mode: u32,
    /// Evict a subscriber that stalls the (block) publisher this long.
    #[arg(long, value_name = "MS")]
    pub stall_timeout_ms: Option<u64>,
    /// Share the topic among up to N publishers (1..=64): creates it, or joins it when it
    /// exists (every `pub` of a shared topic gives the same N and configuration).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=ringcast::inspect::MAX_PUBLISHERS))]
    pub max_publishers: Option<u64>,
}

/// How `sub` prints a message.
#[derive(Args, Debug, Clone, Copy, Default)]
#[group(multiple = false)]
pub struct Format {
    /// Print each payload as hexadecimal, one message per line.
    #[arg(long)]
    pub hex: bool,
    /// Write the payloads' bytes as they are, with no separator.
    #[arg(long)]
    pub raw: bool,
    /// Print one JSON object per message: {"seq":..,"len":..,"data_hex":".."}, on a
    /// topic that several publishers share with "publisher":"LANE/WRITER" after "seq"
    /// (the sequence is then the publisher's lane's).
    #[arg(long)]
    pub json: bool,
}

/// `ringcast sub` / `echo`.
/// Whose topics to attach to: your own user and root by default (a topic whose segment
/// another user owns is refused, naming that user).
#[derive(Args, Clone, Debug, Default)]
pub struct TrustArgs {
    /// Also attach to topics owned by USER (a name or a uid); repeatable.
    #[arg(long = "trust-user", value_name = "USER", value_parser = user_id)]
    pub users: Vec<u32>,
    /// Also attach to topics whose segment file's group is GROUP (a name or a gid);
    /// repeatable.
    #[arg(long = "trust-group", value_name = "GROUP", value_parser = group_id)]
    pub groups: Vec<u32>,
    /// Attach to topics of any owner (any local user who can create files in /dev/shm can
    /// then stand in for a topic).
    #[arg(long)]
    pub trust_any_owner: bool,
}

impl TrustArgs {
    /// `opts` trusting what these arguments say.
    pub fn apply(&self, mut opts: ringcast::SubscriberOptions) -> ringcast::SubscriberOptions {
        for &uid in &self.users {
            opts = opts.trust_user(uid);
        }
        for &gid in &self.groups {
            opts = opts.trust_group(gid);
        }
        if self.trust_any_owner {
            opts = opts.trust_any_owner();
        }
        opts
    }

    /// A client's `opts` trusting what these arguments say (for a service: its name
    /// plate, request topic and response topic).
    pub fn apply_client(&self, mut opts: ringcast::ClientOptions) -> ringcast::ClientOptions {
        for &uid in &self.users {
            opts = opts.trust_user(uid);
        }
        for &gid in &self.groups {
            opts = opts.trust_group(gid);
        }
        if self.trust_any_owner {
            opts = opts.trust_any_owner();
        }
        opts
    }
}

fn user_id(s: &str) -> Result<u32, String> {
    if let Ok(uid) = s.parse() {
        return Ok(uid);
    }
    match nix::unistd::User::from_name(s) {
        Ok(Some(u)) => Ok(u.uid.as_raw()),
        Ok(None) => Err(format!(
            "no user named {s:?} (give a name or a numeric uid)"
        )),
        Err(e) => Err(format!("looking up user {s:?}: {e}")),
    }
}

fn group_id(s: &str) -> Result<u32, String> {
    if let Ok(gid) = s.parse() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(s) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(format!(
            "no group named {s:?} (give a name or a numeric gid)"
        )),
        Err(e) => Err(format!("looking up group {s:?}: {e}")),
    }
}

#[derive(Args, Debug)]
pub struct SubArgs {
    /// The topic.
    #[arg(value_parser = topic_name)]
    pub topic: String,
    /// Exit after N messages.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Start with the next message (latest) or the oldest still in the ring.
    #[arg(long, value_enum, default_value = "latest")]
    pub from: FromArg,
    /// Give up (exit 1) after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub timeout: Option<Duration>,
    #[command(flatten)]
    pub format: Format,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Attach as a monitor: never hold a `Block` publisher back (messages it laps are
    /// lost and reported) instead of receiving every message.
    #[arg(long)]
    pub monitor: bool,
}

/// Where `sub` starts.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FromArg {
    /// The next message published.
    Latest,
    /// The oldest message still in the ring.
    Oldest,
}

/// `ringcast inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The topic, or the service (a name with no topic of its own but a service's topics
    /// is shown as the service).
    #[arg(value_parser = topic_name)]
    pub topic: String,
    /// Show the service of this name even if a topic has the same name.
    #[arg(long)]
    pub service: bool,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `ringcast call`.
#[derive(Args, Debug)]
pub struct CallArgs {
    /// The service.
    #[arg(value_parser = service_name)]
    pub service: String,
    /// Give up (exit 1) when a request's next response does not come within this many
    /// seconds.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = seconds)]
    pub timeout: Duration,
    /// Wait this many seconds for the server to be up (default: fail at once).
    #[arg(long, value_name = "SECS", default_value = "0", value_parser = seconds)]
    pub wait: Duration,
    /// Whose services to call: your own user's and root's by default (a service whose
    /// topics another user owns is refused, naming that user).
    #[command(flatten)]
    pub trust: TrustArgs,
}

/// `ringcast serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The service.
    #[arg(value_parser = service_name)]
    pub service: String,
    /// Clients connected at once.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..ringcast::inspect::MAX_PUBLISHERS))]
    pub max_clients: u64,
    /// Largest request in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(0..=1 << 24))]
    pub max_request: u64,
    /// Largest response (a line CMD prints, without its newline) in bytes; a longer line
    /// ends its request with no response.
    #[arg(long, value_name = "BYTES", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(0..=1 << 24))]
    pub max_response: u64,
    /// Permission bits of the service's topics, in octal: 600 lets only your user call;
    /// 660 the file's group (your group), 666 every local user (callers of another user
    /// must also trust yours: `ringcast call --trust-user`).
    #[arg(long, value_parser = octal_mode, default_value = "600")]
    pub mode: u32,
    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

/// Chunk compression of a recording.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompressionArg {
    /// Zstandard.
    Zstd,
    /// LZ4.
    Lz4,
    /// Uncompressed chunks.
    None,
}

/// `ringcast record`.
#[derive(Args, Debug)]
pub struct RecordArgs {
    /// The topics to record.
    #[arg(required = true, value_parser = topic_name)]
    pub topics: Vec<String>,
    /// The MCAP file to write.
    #[arg(short, long, value_name = "FILE.mcap")]
    pub output: std::path::PathBuf,
    /// Stop after N messages (all topics together).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub duration: Option<Duration>,
    /// Chunk compression.
    #[arg(long, value_enum, default_value = "zstd")]
    pub compression: CompressionArg,
    /// Start at the oldest message still in each ring instead of the next one.
    #[arg(long)]
    pub from_oldest: bool,
    /// Close the open chunk and flush the file at least this often (seconds), so that a
    /// recorder killed outright loses at most about this much.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = chunk_interval)]
    pub chunk_interval: Duration,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Attach as a monitor: never hold a `Block` publisher back (messages it laps are
    /// lost, and the losses are recorded) instead of recording every message.
    #[arg(long)]
    pub monitor: bool,
}

/// `ringcast play`.
#[derive(Args, Debug)]
pub struct PlayArgs {
    /// The MCAP file recorded by `ringcast record`.
    pub file: std::path::PathBuf,
    /// Speed factor of the recorded timing (2: twice as fast; 0: as fast as possible).
    #[arg(long, default_value_t = 1.0, value_parser = rate_factor)]
    pub rate: f64,
    /// Play only this topic (repeatable).
    #[arg(long = "topic", value_name = "T", value_parser = topic_name)]
    pub topics: Vec<String>,
    /// Play the file again and again until interrupted.
    #[arg(long = "loop")]
    pub repeat: bool,
    /// Start only after N subscribers have attached to every topic.
    #[arg(long, value_name = "N")]
    pub wait_subscribers: Option<usize>,
    /// Play the complete part of a truncated file instead of refusing it.
    #[arg(long)]
    pub allow_truncated: bool,
    /// Refuse a recording whose topics together need more shared memory than this (bytes).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30)]
    pub max_segment_size: u64,
}

/// `ringcast hz`.
#[derive(Args, Debug)]
pub struct HzArgs {
    /// The topic.
    #[arg(value_parser = topic_name)]
    pub topic: String,
    /// Statistics over the last N messages.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(2..))]
    pub window: u64,
    /// Stop after this many seconds (default: until the publisher is gone or SIGINT).
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub duration: Option<Duration>,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Attach as an ordinary subscriber, which a `Block` publisher waits for and which
    /// counts for `--wait-subscribers`, instead of as a monitor (the default: `hz` never
    /// holds a publisher back; messages it is lapped by are counted as lost).
    #[arg(long)]
    pub gating: bool,
}

/// `ringcast top`.
#[derive(Args, Debug)]
pub struct TopArgs {
    /// Seconds between refreshes (at least 0.01).
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = refresh_interval)]
    pub interval: Duration,
    /// Exit after N refreshes (default: until `q`, SIGINT or SIGTERM).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

fn topic_name(s: &str) -> Result<String, String> {
    ringcast::name::validate_topic(s)
        .map(|()| s.to_owned())
        .map_err(|e| e.to_string())
}

fn service_name(s: &str) -> Result<String, String> {
    ringcast::service::validate_service(s)
        .map(|()| s.to_owned())
        .map_err(|e| e.to_string())
}

fn prefix_name(s: &str) -> Result<String, String> {
    ringcast::name::validate_prefix(s)
        .map(|()| s.to_owned())
        .map_err(|e| e.to_string())
}

fn octal_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8).map_err(|_| format!("{s:?} is not an octal mode like 600"))
}

/// Non-negative seconds; a value too large to represent means "for ever".
fn seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    // NaN is refused too.
    if v.is_nan() || v < 0.0 {
        return Err(format!("{s:?}: seconds must be zero or more"));
    }
    Ok(Duration::try_from_secs_f64(v).unwrap_or(Duration::MAX))
}

/// `record --chunk-interval`: more than zero (a chunk per message at most), so that a
/// chunk is closed on time without closing one per loop turn.
fn chunk_interval(s: &str) -> Result<Duration, String> {
    let d = seconds(s)?;
    if d < Duration::from_millis(1) {
        return Err(format!(
            "{s:?}: the chunk interval must be at least 0.001 seconds"
        ));
    }
    Ok(d)
}

/// Shortest `top --interval`: anything shorter would redraw in a busy loop.
pub const MIN_REFRESH: Duration = Duration::from_millis(10);

fn refresh_interval(s: &str) -> Result<Duration, String> {
    let d = seconds(s)?;
    if d < MIN_REFRESH {
        return Err(format!(
            "{s:?}: the refresh interval must be at least {} seconds",
            MIN_REFRESH.as_secs_f64()
        ));
    }
    Ok(d)
}

fn rate_factor(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(v >= 0.0 && v.is_finite()) {
        return Err(format!(
            "{s:?}: the rate must be a finite number, zero or more"
        ));
    }
    Ok(v)
}

/// Writes the completion script for `shell` to standard output.
pub fn completions(shell: clap_complete::Shell) {
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "ringcast",
        &mut std::io::stdout(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
