//! The error a kind method or a module's `create` can return.

use std::fmt;

/// Why a call into a module did not produce a result.
///
/// Module authors return [`CallError::Failed`]; the boundary produces
/// [`CallError::Panicked`] and [`CallError::Malformed`] on the host's side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The module reported a failure.
    Failed {
        /// The module's explanation.
        message: String,
    },
    /// The module panicked; the panic was caught at the boundary.
    Panicked {
        /// The panic's message.
        message: String,
    },
    /// The module answered, but not in the shape the contract requires (bad status, output
    /// that is not the expected message).
    Malformed {
        /// What was wrong with the answer.
        message: String,
    },
}

impl CallError {
    /// A failure reported by a module, with its explanation.
    pub fn failed(message: impl Into<String>) -> Self {
        CallError::Failed { message: message.into() }
    }

    /// The text carried by the error, without the category.
    pub fn message(&self) -> &str {
        match self {
            CallError::Failed { message } | CallError::Panicked { message } | CallError::Malformed { message } => {
                message
            }
        }
    }
}

/// A module's own failure prints as its message alone: whoever reports it says what failed
/// (`hook 'labels': master_launch_task_label_decorator failed, ...: <message>`). A panic and a
/// malformed answer say so first.
impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Failed { message } => f.write_str(message),
            CallError::Panicked { message } => write!(f, "panicked: {message}"),
            CallError::Malformed { message } => write!(f, "malformed answer: {message}"),
        }
    }
}

impl std::error::Error for CallError {}
