//! A tiny argument parser: flags, `--key value` / `--key=value` options, positionals, and
//! an error for anything left over.

use std::str::FromStr;

/// Bad usage: exit code 2.
pub struct UsageError(pub String);

pub struct Args {
    rest: Vec<String>,
}

impl Args {
    pub fn new(argv: Vec<String>) -> Self {
        Args { rest: argv }
    }

    /// Removes `name` if present and says whether it was.
    pub fn flag(&mut self, name: &str) -> bool {
        match self.rest.iter().position(|a| a == name) {
            Some(i) => {
                self.rest.remove(i);
                true
            }
            None => false,
        }
    }

    /// Removes `name VALUE` or `name=VALUE` and returns the value.
    pub fn value(&mut self, name: &str) -> Result<Option<String>, UsageError> {
        let eq = format!("{name}=");
        if let Some(i) = self.rest.iter().position(|a| a.starts_with(&eq)) {
            return Ok(Some(self.rest.remove(i)[eq.len()..].to_owned()));
        }
        let Some(i) = self.rest.iter().position(|a| a == name) else {
            return Ok(None);
        };
        if i + 1 >= self.rest.len() {
            return Err(UsageError(format!("{name} needs a value")));
        }
        let v = self.rest.remove(i + 1);
        self.rest.remove(i);
        Ok(Some(v))
    }

    /// Like [`value`](Self::value), parsed.
    pub fn parsed<T: FromStr>(&mut self, name: &str) -> Result<Option<T>, UsageError> {
        match self.value(name)? {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| UsageError(format!("{name}: cannot parse {v:?}"))),
        }
    }

    /// Removes and returns the first argument that is not an option.
    pub fn positional(&mut self, what: &str) -> Result<String, UsageError> {
        match self.rest.iter().position(|a| !a.starts_with("--")) {
            Some(i) => Ok(self.rest.remove(i)),
            None => Err(UsageError(format!("missing {what}"))),
        }
    }

    /// Fails if anything was not consumed.
    pub fn finish(self) -> Result<(), UsageError> {
        match self.rest.first() {
            None => Ok(()),
            Some(a) => Err(UsageError(format!("unexpected argument {a:?}"))),
        }
    }
}

/// Takes the TOPIC positional and checks the name (a bad name is bad usage).
pub fn topic(args: &mut Args) -> Result<String, UsageError> {
    let topic = args.positional("TOPIC")?;
    ringcast::name::validate_topic(&topic)
        .map_err(|e| UsageError(format!("invalid topic name {topic:?}: {e}")))?;
    Ok(topic)
}
