//! Whose fault a failure is, and the exit code that says so — decided here, once.
//!
//! Every error type of the crate says whose fault it is by implementing [`Classify`]
//! where it is defined (its module knows best: a refused client property is the user's,
//! a broker that stopped answering is the world's). A command's error is a [`Failure`]:
//! the error and its [`Fault`], built by `?` from a classified error or explicitly with
//! [`Failure::user`], [`Failure::world`] or [`Failure::bug`] — never guessed afterwards by
//! looking into the error chain. [`Fault::exit_code`] is the only mapping to exit codes.
//!
//! The rule (docs/exit-codes.md): 0 the command did its work; 1 it failed while doing it,
//! or its verdict is negative; 2 it could not do its work — bad usage, a bad
//! configuration, or Kafka unavailable (no broker answered its first request). The
//! verdicts (`topics check`: 1 not compliant; `audit`: 1 findings) are success values;
//! a check that reached no verdict fails with [`Fault::Unavailable`] (2).

use std::fmt;

/// Whose fault a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Bad usage or configuration: the user's to fix, nothing was attempted or it cannot
    /// work as configured (exit 2).
    User,
    /// Kafka could not be used for the command's work at all: no broker answered its
    /// first request, or (`topics check`, `audit`) no verdict could be reached. Nothing
    /// was done; most often the address is wrong (exit 2, as for a bad configuration).
    Unavailable,
    /// The world failed at run time: a broker down or refusing, a fenced producer, a
    /// file that cannot be written (exit 1).
    World,
    /// An invariant of the filter broke: a bug to report (exit 1, and the message says so).
    Bug,
}

impl Fault {
    /// Its name in a JSON log line: `user`, `unavailable`, `world`, `bug`.
    pub const fn name(self) -> &'static str {
        match self {
            Fault::User => "user",
            Fault::Unavailable => "unavailable",
            Fault::World => "world",
            Fault::Bug => "bug",
        }
    }

    /// The process exit code: 2 when the command could not do its work (bad usage or
    /// configuration, Kafka unavailable), 1 for a failure while doing it (0 is success).
    pub const fn exit_code(self) -> u8 {
        match self {
            Fault::User | Fault::Unavailable => 2,
            Fault::World | Fault::Bug => 1,
        }
    }
}

/// An error type that knows whose fault it is.
pub trait Classify: std::error::Error + Send + Sync + 'static {
    fn fault(&self) -> Fault;
}

/// A command's failure: the error, and whose fault it is.
#[derive(Debug)]
pub struct Failure {
    fault: Fault,
    error: anyhow::Error,
}

impl<E: Classify> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure {
            fault: error.fault(),
            error: error.into(),
        }
    }
}

impl Failure {
    /// Bad usage or configuration (exit 2).
    pub fn user(error: impl Into<anyhow::Error>) -> Failure {
        Failure::new(Fault::User, error)
    }

    /// Kafka unavailable for the command's work (exit 2).
    pub fn unavailable(error: impl Into<anyhow::Error>) -> Failure {
        Failure::new(Fault::Unavailable, error)
    }

    /// A failure of the world at run time (exit 1).
    pub fn world(error: impl Into<anyhow::Error>) -> Failure {
        Failure::new(Fault::World, error)
    }

    /// A broken invariant (exit 1).
    pub fn bug(error: impl Into<anyhow::Error>) -> Failure {
        Failure::new(Fault::Bug, error)
    }

    pub fn new(fault: Fault, error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            fault,
            error: error.into(),
        }
    }

    pub fn fault(&self) -> Fault {
        self.fault
    }

    pub fn exit_code(&self) -> u8 {
        self.fault.exit_code()
    }

    /// The error, with its chain of causes.
    pub fn error(&self) -> &anyhow::Error {
        &self.error
    }

    pub fn into_error(self) -> anyhow::Error {
        self.error
    }

    /// Adds what was being done, keeping whose fault it is.
    pub fn context(self, context: impl fmt::Display + Send + Sync + 'static) -> Failure {
        Failure {
            fault: self.fault,
            error: self.error.context(context),
        }
    }
}

impl fmt::Display for Failure {
    /// The error and its causes on one line, each once (an error whose text already holds
    /// its source's, as librdkafka's do, is not followed by that text again); a bug says
    /// it is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.fault == Fault::Bug {
            write!(
                f,
                "internal error (a bug in cdr-purpose-filter, please report it): "
            )?;
        }
        let mut line = String::new();
        for cause in self.error.chain() {
            let text = cause.to_string();
            if text.is_empty() || line.contains(&text) {
                continue;
            }
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        f.write_str(&line)
    }
}

/// I/O on the machine the command runs on (writing the output, reading an input file,
/// building the runtime): the world's.
impl Classify for std::io::Error {
    fn fault(&self) -> Fault {
        Fault::World
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("bad key")]
    struct Bad;
    impl Classify for Bad {
        fn fault(&self) -> Fault {
            Fault::User
        }
    }

    fn fails() -> Result<(), Failure> {
        Err(Bad)?;
        Ok(())
    }

    #[test]
    fn a_classified_error_keeps_its_fault_through_question_mark_and_context() {
        let f = fails().unwrap_err().context("loading");
        assert_eq!(f.fault(), Fault::User);
        assert_eq!(f.exit_code(), 2);
        assert_eq!(f.to_string(), "loading: bad key");
    }

    #[test]
    fn exit_codes_are_decided_by_the_fault_alone() {
        assert_eq!(Fault::User.exit_code(), 2);
        assert_eq!(Fault::Unavailable.exit_code(), 2);
        assert_eq!(Fault::World.exit_code(), 1);
        assert_eq!(Fault::Bug.exit_code(), 1);
        let io = std::io::Error::other("disk full");
        assert_eq!(Failure::from(io).exit_code(), 1);
    }

    #[derive(Debug, thiserror::Error)]
    #[error("metadata fetch failed: {inner}")]
    struct Repeats {
        #[source]
        inner: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_text_is_not_repeated() {
        let f = Failure::world(Repeats {
            inner: std::io::Error::other("broker transport failure"),
        })
        .context("cannot list topics");
        assert_eq!(
            f.to_string(),
            "cannot list topics: metadata fetch failed: broker transport failure"
        );
        // A chain of distinct causes is written whole.
        let f = Failure::world(std::io::Error::other("disk full")).context("writing out");
        assert_eq!(f.to_string(), "writing out: disk full");
    }

    #[test]
    fn a_bug_says_it_is_one() {
        let f = Failure::bug(anyhow::anyhow!("tracker lost an offset"));
        assert!(f.to_string().starts_with("internal error (a bug"));
        assert!(f.to_string().ends_with("tracker lost an offset"));
    }
}
