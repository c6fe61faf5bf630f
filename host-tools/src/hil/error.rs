//! Typed failures of the board link, so callers (and tests) can tell a
//! refused request from a dead link.

use std::fmt;
use sturdy_protocol::{ErrorCode, FrameError};

/// What went wrong talking to the board.
#[derive(Debug)]
pub enum BoardError {
    /// The link failed (closed, I/O error).
    Io(std::io::Error),
    /// No complete reply within the deadline.
    Timeout {
        /// Seconds waited.
        seconds: u64,
    },
    /// The board's reply was not a valid frame.
    Frame(FrameError),
    /// The board answered with a protocol error.
    Refused(ErrorCode),
    /// The board answered, but not what the request calls for.
    UnexpectedReply {
        /// What was asked.
        request: &'static str,
        /// What came back (debug form).
        reply: String,
    },
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoardError::Io(e) => write!(f, "board link failed: {e}"),
            BoardError::Timeout { seconds } => {
                write!(f, "no reply from the board within {seconds} s")
            }
            BoardError::Frame(e) => write!(f, "bad frame from the board: {e}"),
            BoardError::Refused(code) => write!(f, "the board refused the request: {code:?}"),
            BoardError::UnexpectedReply { request, reply } => {
                write!(f, "unexpected reply to {request}: {reply}")
            }
        }
    }
}

impl std::error::Error for BoardError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BoardError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for BoardError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                BoardError::Timeout { seconds: 0 }
            }
            _ => BoardError::Io(e),
        }
    }
}
