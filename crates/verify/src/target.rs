//! What is verified: anything that takes a JSON input and answers.

use serde_json::Value;

/// A service's answer to one input, as the verifier sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A success, with the output (or the text that was not JSON).
    Output(Result<Value, String>),
    /// An error the service returned, declared or not.
    Error {
        /// The code.
        code: String,
        /// The message.
        message: String,
    },
    /// The platform stopped the call: timeout, trap, resource exhaustion...
    Platform {
        /// The platform failure code.
        code: String,
        /// What happened.
        message: String,
    },
    /// The answer did not travel the way the protocol says: over HTTP, an
    /// error status without a problem body carrying `code`, or a declared
    /// error under a status other than its contract's.
    Protocol {
        /// What was wrong with it.
        message: String,
    },
}

/// A service under verification. It may run in-process or behind a URL;
/// the verifier does not know or care.
pub trait Target {
    /// Sends `input` and returns the answer.
    fn call(&self, input: &Value) -> Answer;
}

impl<F: Fn(&Value) -> Answer> Target for F {
    fn call(&self, input: &Value) -> Answer {
        self(input)
    }
}
