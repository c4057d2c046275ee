//! Services from the command line: a child process that is killed when dropped, and a
//! prefix's `serve` and `call` helpers.

use std::io::Write;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use super::*;

/// A child process SIGKILLed (and reaped) when dropped, unless it already ended.
pub struct Proc(pub Option<Child>);

impl Proc {
    pub fn id(&self) -> u32 {
        self.0.as_ref().expect("running").id()
    }
    pub fn finish(mut self, limit: Duration) -> std::process::Output {
        finish(self.0.take().expect("running"), limit)
    }
    pub fn kill(&mut self, sig: libc::c_int) {
        kill(self.id(), sig);
    }
    pub fn running(&mut self) -> bool {
        matches!(self.0.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Prefix {
    pub fn service_live(&self, service: &str) -> bool {
        ringcast::inspect::inspect(&self.0, &format!("{service}..service"))
            .is_ok_and(|i| i.publisher_alive && !i.closed)
    }
    /// `ringcast serve SERVICE [extra] -- sh -c SCRIPT`, once its server is up.
    pub fn serve(&self, service: &str, extra: &[&str], script: &str) -> Proc {
        let args = [
            &["serve", service][..],
            extra,
            &["--", "sh", "-c", script][..],
        ]
        .concat();
        let child = self
            .cmd(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        wait_until("the server", || self.service_live(service));
        Proc(Some(child))
    }
    /// `ringcast call SERVICE [extra]` with its three standard streams piped.
    pub fn spawn_call(&self, service: &str, extra: &[&str]) -> Child {
        self.cmd(&[&["call", service][..], extra].concat())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn call")
    }
    /// `ringcast call SERVICE [extra]` with its standard input ours and each line it
    /// prints sent to the receiver.
    pub fn call(&self, service: &str, extra: &[&str]) -> (Proc, ChildStdin, Receiver<String>) {
        let mut child = self.spawn_call(service, extra);
        let stdin = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let rx = lines_of(out);
        (Proc(Some(child)), stdin, rx)
    }
    /// `ringcast call` of `input`; its exit, standard output and error.
    pub fn call_all(&self, service: &str, extra: &[&str], input: &str) -> std::process::Output {
        let mut child = self.spawn_call(service, extra);
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_owned();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let out = finish(child, LONG);
        writer.join().unwrap();
        out
    }
    pub fn service_topics(&self, service: &str) -> Vec<String> {
        ringcast::name::list_topics(&self.0)
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t.starts_with(&format!("{service}..")))
            .collect()
    }
}

impl Prefix {
    /// `ringcast serve SERVICE -- sh -c 'echo $$ > PIDFILE; exec cat'` (an echo server
    /// whose program's pid is known), and that pid.
    pub fn serve_cat(&self, service: &str) -> (Proc, u32) {
        let pidfile = std::env::temp_dir().join(format!("ringcast-{}-{service}", self.0));
        let script = format!("echo $$ > {}; exec cat", pidfile.display());
        let serve = self.serve(service, &[], &script);
        wait_until("the program's pid", || {
            std::fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n'))
        });
        let pid = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let _ = std::fs::remove_file(&pidfile);
        (serve, pid)
    }
}
