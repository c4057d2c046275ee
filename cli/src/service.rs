//! `ringcast call` and `ringcast serve`: a service's client and server on lines of text.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use ringcast::{
    CallError, CallId, Client, ClientOptions, ConnectError, RespondError, Responder, Server,
    ServerConfig, ServerRecvError, WaitSet,
};

use crate::cli::{CallArgs, ServeArgs};
use crate::tools::printable;
use crate::{signal, Failure};

/// Seconds, as the user gave them, for a message.
fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

pub fn call(prefix: &str, a: CallArgs) -> Result<(), Failure> {
    let service = a.service.as_str();
    // A live server answers the greeting in its next receive: as long as a request may
    // wait for its response.
    let opts = a.trust.apply_client(
        ClientOptions::default()
            .prefix(prefix)
            .wait(a.wait)
            .handshake_timeout(a.timeout),
    );
    let client = Client::connect(service, opts).map_err(|e| match e {
        ConnectError::NoServer { .. } => Failure(format!(
            "service {service:?} has no live server (waited {}): start one (ringcast serve), \
             or pass --wait SECS",
            secs(a.wait)
        )),
        e => Failure(printable(&e.to_string()).into_owned()),
    })?;
    // Standard input is read on a thread of its own, which rings the wait set for each
    // line: a line goes out as soon as it is read (several in flight, up to the client's
    // bound), also while earlier requests are still waiting for their answers. A line is
    // held to the largest request (a longer one is read past and reported by length), so
    // endless input without a newline cannot grow this process.
    let max_in_flight = client.max_in_flight();
    let max_request = client.max_request();
    let mut set = WaitSet::new();
    let notifier = set.notifier();
    let key = set
        .add(client)
        .map_err(|e| Failure(format!("service {service:?}: {}", e.refusal)))?;
    let (tx, lines) = mpsc::sync_channel::<std::io::Result<Result<Vec<u8>, usize>>>(64);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        loop {
            let read = match crate::tools::read_line(&mut input, max_request) {
                Ok(None) => break,
                Ok(Some(line)) => Ok(line),
                Err(e) => Err(e),
            };
            let failed = read.is_err();
            if tx.send(read).is_err() || failed {
                break;
            }
            notifier.notify();
        }
        // The end of input (the sender drops first, so the woken loop sees it).
        drop(tx);
        notifier.notify();
    });
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // The calls in flight, oldest first, with their line numbers: answered in this order.
    let mut pending: VecDeque<(CallId, u64)> = VecDeque::new();
    let mut number = 0u64;
    let mut input_open = true;
    // A line that cannot be sent ends the input: the answers to the lines before it are
    // still printed, then this is the result.
    let mut failed: Option<Failure> = None;
    // When the oldest call's wait for its next response ends (`None`: not waiting yet).
    let mut deadline: Option<Option<Instant>> = None;
    let call_err = |line: u64, e: CallError| match e {
        CallError::Disconnected => Failure(format!(
            "service {service:?}: the server is gone (line {line} unanswered)"
        )),
        CallError::Timeout => Failure(format!(
            "service {service:?}: line {line}: no response within {}",
            secs(a.timeout)
        )),
        CallError::Failed { .. } => Failure(format!(
            "service {service:?}: the server gave up on line {line} (no answer)"
        )),
        e => Failure(format!("service {service:?}: line {line}: {e}")),
    };
    loop {
        // Send what has been read, as far as the bound lets; wait for input only when
        // nothing is in flight.
        while input_open && pending.len() < max_in_flight {
            let next = if pending.is_empty() {
                if flush(&mut out)? {
                    return Ok(());
                }
                lines.recv().map_err(|_| TryRecvError::Disconnected)
            } else {
                lines.try_recv()
            };
            let refused = match next {
                Ok(Ok(Ok(line))) => {
                    number += 1;
                    let client = set.get_mut(key).expect("the client is in the set");
                    match client.send(&line, a.timeout) {
                        Ok(id) => {
                            pending.push_back((id, number));
                            None
                        }
                        Err(CallError::Timeout) => Some(Failure(format!(
                            "service {service:?}: line {number}: the server took no request \
                             within {}",
                            secs(a.timeout)
                        ))),
                        Err(e) => Some(call_err(number, e)),
                    }
                }
                Ok(Ok(Err(len))) => {
                    number += 1;
                    Some(Failure(format!(
                        "service {service:?}: line {number}: request of {len} bytes is larger \
                         than the server's {max_request}"
                    )))
                }
                Ok(Err(e)) => Some(Failure(format!(
                    "service {service:?}: reading standard input: {e}"
                ))),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    input_open = false;
                    None
                }
            };
            if refused.is_some() {
                failed = refused;
                input_open = false;
            }
        }
        let Some(&(id, line)) = pending.front() else {
            // End of input (or a line that could not be sent), and every request answered.
            flush(&mut out)?;
            return failed.map_or(Ok(()), Err);
        };
        // The oldest call's next response if it is there; what was printed is out before
        // waiting (a write per response at most: an empty buffer flushes with no system
        // call).
        let client = set.get_mut(key).expect("the client is in the set");
        match client.recv(id, Duration::ZERO) {
            Ok(Some(response)) => {
                deadline = None;
                let written = out.write_all(&response).and_then(|()| out.write_all(b"\n"));
                drop(response);
                if crate::tools::reader_gone(written)? {
                    return Ok(());
                }
                continue;
            }
            Ok(None) => {
                deadline = None;
                pending.pop_front();
                continue;
            }
            Err(CallError::Timeout) => {}
            Err(e) => {
                let _ = out.flush();
                return Err(call_err(line, e));
            }
        }
        if flush(&mut out)? {
            return Ok(());
        }
        // Nothing yet: sleep until a response (or the server's end), a new line, or the
        // oldest call's timeout.
        let until = *deadline.get_or_insert_with(|| Instant::now().checked_add(a.timeout));
        if until.is_some_and(|t| Instant::now() >= t) {
            let _ = out.flush();
            return Err(call_err(line, CallError::Timeout));
        }
        set.wait_deadline(until)
            .map_err(|e| Failure(format!("service {service:?}: waiting: {e}")))?;
    }
}

fn flush(out: &mut impl Write) -> Result<bool, Failure> {
    crate::tools::reader_gone(out.flush())
}

/// What the thread reading CMD's output hands over.
enum FromCmd {
    /// A line, without its newline.
    Line(Vec<u8>),
    /// A line longer than the largest response: its length (its bytes were dropped).
    TooLong(usize),
    /// CMD closed its output (or reading it failed).
    End(Option<std::io::Error>),
}

/// Writes a line to standard error, never panicking (standard error may be gone).
fn warn(msg: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "ringcast: {msg}");
}

pub fn serve(prefix: &str, a: ServeArgs) -> Result<(), Failure> {
    let service = a.service.as_str();
    let program = printable(&a.command[0].to_string_lossy()).into_owned();
    signal::catch_stop_signals();
    let cfg = ServerConfig::default()
        .prefix(prefix)
        .max_clients(a.max_clients)
        .max_request(a.max_request)
        .max_response(a.max_response)
        .mode(a.mode);
    let mut server = Server::create(service, cfg)
        .map_err(|e| Failure(printable(&e.to_string()).into_owned()))?;
    let mut command = std::process::Command::new(&a.command[0]);
    command
        .args(&a.command[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // Its own process group: stopping it reaches whatever it started too.
        .process_group(0);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the child between fork and exec and calls only
    // async-signal-safe functions (prctl, getppid, and errno through `last_os_error` or a
    // raw error code, neither of which allocates); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            // CMD is terminated when `serve` dies (even by SIGKILL, which `stop` cannot
            // answer). A `serve` killed before the prctl (while it waited in `spawn`)
            // left CMD another parent already: then CMD is not run.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        })
    };
    let mut child = command
        .spawn()
        .map_err(|e| Failure(format!("service {service:?}: cannot run {program:?}: {e}")))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        stop(&mut child);
        return Err(Failure(format!(
            "service {service:?}: {program:?} has no standard input or output"
        )));
    };
    let to_cmd = writer(stdin);
    let from_cmd = reader(stdout, a.max_response as usize);
    let mut run = Run {
        service,
        program: &program,
        server: &mut server,
        pending: VecDeque::new(),
        max_response: a.max_response as usize,
    };
    let result = run.serve(&mut child, &to_cmd, &from_cmd);
    // The server first: its clients see it gone at once, not after CMD is stopped.
    drop(server);
    drop(to_cmd);
    stop(&mut child);
    result
}

/// A thread writing each line it is given to CMD's standard input; it ends when CMD
/// closes its input (or is gone) or when the sender is dropped.
fn writer(mut stdin: ChildStdin) -> mpsc::Sender<Vec<u8>> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        for line in rx {
            if stdin.write_all(&line).is_err() {
                return;
            }
        }
    });
    tx
}

/// A thread reading CMD's output line by line (a line held to `max` bytes).
fn reader(stdout: impl Read + Send + 'static, max: usize) -> Receiver<FromCmd> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut input = std::io::BufReader::new(stdout);
        loop {
            let msg = match crate::tools::read_line(&mut input, max) {
                Ok(Some(Ok(line))) => FromCmd::Line(line),
                Ok(Some(Err(len))) => FromCmd::TooLong(len),
                Ok(None) => FromCmd::End(None),
                Err(e) => FromCmd::End(Some(e)),
            };
            let end = matches!(msg, FromCmd::End(_));
            if tx.send(msg).is_err() || end {
                return;
            }
        }
    });
    rx
}

/// Stops CMD and what it started: SIGTERM to its process group, SIGKILL after a second.
fn stop(child: &mut Child) {
    let group = child.id() as libc::pid_t;
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SAFETY: kill(2) on the process group of our child, which has not been reaped (so
    // its id, and the group's, is not reused).
    unsafe { libc::kill(-group, libc::SIGTERM) };
    for _ in 0..100 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    let _ = child.wait();
}

/// A running `serve`: the server, and the requests written to CMD that await its line.
struct Run<'a> {
    service: &'a str,
    program: &'a str,
    server: &'a mut Server,
    /// Who to answer with CMD's next lines, in the order the requests were written.
    pending: VecDeque<Responder>,
    max_response: usize,
}

impl Run<'_> {
    fn serve(
        &mut self,
        child: &mut Child,
        to_cmd: &mpsc::Sender<Vec<u8>>,
        from_cmd: &Receiver<FromCmd>,
    ) -> Result<(), Failure> {
        let service = self.service;
        // How long to wait for CMD's answer before looking for requests again; it grows
        // while nothing happens (requests that come meanwhile queue behind the ones CMD
        // has anyway).
        let mut idle = Duration::from_millis(1);
        loop {
            if signal::stopped() {
                return Ok(());
            }
            loop {
                match from_cmd.try_recv() {
                    Ok(msg) => self.on_cmd(msg, child)?,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => self.on_cmd(FromCmd::End(None), child)?,
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                // What it printed before it ended still answers its requests.
                self.answer_the_rest(from_cmd, child);
                return Err(Failure(format!(
                    "service {service:?}: {:?} ended ({status}); stopped serving",
                    self.program
                )));
            }
            let wait = if self.pending.is_empty() {
                // A slice, to see signals and CMD's end.
                Duration::from_millis(100)
            } else {
                Duration::ZERO
            };
            let received = match self.server.recv_timeout(wait) {
                Ok(request) => {
                    if request.contains(&b'\n') {
                        let id = request.id();
                        if let Err(e) = request.end() {
                            dropped(service, id, e);
                        }
                        warn(format_args!(
                            "service {service:?}: request {id} holds a newline, which cannot be \
                             written as a line: ended with no response"
                        ));
                    } else {
                        let mut line = Vec::with_capacity(request.len() + 1);
                        line.extend_from_slice(&request);
                        line.push(b'\n');
                        self.pending.push_back(request.defer());
                        // Gone: CMD closed its input; its end is seen above.
                        let _ = to_cmd.send(line);
                    }
                    Ok(true)
                }
                Err(ServerRecvError::Empty) => Ok(false),
                Err(e) => Err(e),
            };
            match received {
                Ok(true) => idle = Duration::from_millis(1),
                Ok(false) if self.pending.is_empty() => {}
                Ok(false) => match from_cmd.recv_timeout(idle) {
                    Ok(msg) => self.on_cmd(msg, child)?,
                    Err(RecvTimeoutError::Timeout) => {
                        idle = (idle * 2).min(Duration::from_millis(20));
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        self.on_cmd(FromCmd::End(None), child)?
                    }
                },
                Err(e) => return Err(Failure(format!("service {service:?}: {e}"))),
            }
        }
    }

    /// CMD ended: answers with the lines it printed that were not read yet, until its
    /// output ends (at most a second: a process it started may hold the output open).
    fn answer_the_rest(&mut self, from_cmd: &Receiver<FromCmd>, child: &mut Child) {
        let until = Instant::now() + Duration::from_secs(1);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match from_cmd.recv_timeout(left) {
                Ok(msg @ (FromCmd::Line(_) | FromCmd::TooLong(_))) => {
                    // Never an error: only `End` fails.
                    let _ = self.on_cmd(msg, child);
                }
                Ok(FromCmd::End(_)) | Err(_) => return,
            }
        }
    }

    /// Answers the oldest pending request with what CMD printed, or fails if CMD ended.
    fn on_cmd(&mut self, msg: FromCmd, child: &mut Child) -> Result<(), Failure> {
        let service = self.service;
        match msg {
            FromCmd::Line(line) => {
                let Some(to) = self.pending.pop_front() else {
                    warn(format_args!(
                        "service {service:?}: {:?} printed a line with no request waiting: dropped",
                        self.program
                    ));
                    return Ok(());
                };
                let id = to.id();
                if let Err(e) = self.server.respond(to, &line) {
                    dropped(service, id, e);
                }
            }
            FromCmd::TooLong(len) => {
                let Some(to) = self.pending.pop_front() else {
                    return Ok(());
                };
                let id = to.id();
                warn(format_args!(
                    "service {service:?}: the answer to request {id} has {len} bytes, more than \
                     --max-response {}: ended with no response",
                    self.max_response
                ));
                if let Err(e) = self.server.end(to) {
                    dropped(service, id, e);
                }
            }
            FromCmd::End(error) => {
                // It closed its output: give it a moment to exit, for its status.
                let mut status = None;
                for _ in 0..50 {
                    if let Ok(Some(s)) = child.try_wait() {
                        status = Some(s);
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                let how = match (status, error) {
                    (Some(s), _) => format!("ended ({s})"),
                    (None, Some(e)) => format!("could not be read ({e})"),
                    (None, None) => "closed its output".to_owned(),
                };
                return Err(Failure(format!(
                    "service {service:?}: {:?} {how}; stopped serving",
                    self.program
                )));
            }
        }
        Ok(())
    }
}

/// A response that could not be sent: said on standard error, and serving goes on.
fn dropped(service: &str, id: u64, e: RespondError) {
    warn(format_args!(
        "service {service:?}: the answer to request {id} was not sent: {e}"
    ));
}
