//! What is verified: anything that takes a JSON input and answers.

use mote_contract::MemoryStores;
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
    /// A stateful service's answer, with the stores as the call found them
    /// and as it left them.
    Stateful {
        /// The answer itself (never another `Stateful`).
        answer: Box<Answer>,
        /// The stores before the call.
        before: MemoryStores,
        /// The stores after it.
        after: MemoryStores,
    },
}

impl Answer {
    /// The answer without the stores around it.
    pub fn plain(&self) -> &Answer {
        match self {
            Answer::Stateful { answer, .. } => answer.plain(),
            other => other,
        }
    }
}

/// A service under verification. It may run in-process or behind a URL;
/// the verifier does not know or care.
pub trait Target {
    /// Sends `input` and returns the answer.
    fn call(&self, input: &Value) -> Answer;

    /// Sends an input written exactly as `text` (another way of writing a
    /// JSON value than `call` would) and returns the answer. Targets that
    /// take text (a runtime, an HTTP endpoint) send it as it is. By
    /// default, for targets that take values, the text is read into its
    /// one canonical value (`40.0` is the integer 40) and sent as `call`
    /// would send it.
    fn call_text(&self, text: &str) -> Answer {
        match serde_json::from_str(text) {
            Ok(mut value) => {
                mote_contract::canonicalize_numbers(&mut value);
                self.call(&value)
            }
            Err(e) => Answer::Protocol {
                message: format!("the verifier wrote text that is not JSON: {e}"),
            },
        }
    }

    /// Sends every input of `inputs` and returns their answers in the same
    /// order. A target that can answer several calls at once (a server
    /// behind a URL) sends them concurrently; by default they go one after
    /// another through `call`. The verifier judges the answers in order, so
    /// its report does not depend on which answer came back first.
    fn call_many(&self, inputs: &[Value]) -> Vec<Answer> {
        inputs.iter().map(|input| self.call(input)).collect()
    }

    /// Sends `input` to a stateful service whose stores start as `before`
    /// (an example's), answering [`Answer::Stateful`]. By default the
    /// stores cannot be set, and `input` is sent as [`Target::call`] would.
    fn call_from(&self, input: &Value, before: &MemoryStores) -> Answer {
        let _ = before;
        self.call(input)
    }

    /// Sends `inputs` to a stateful service, all against one set of stores
    /// that starts as `before`: at once when `together`, otherwise one
    /// after another in order. Their answers (without the stores) and the
    /// stores after them all; `None` (the default) when the target cannot
    /// set a service's stores.
    fn call_sharing(
        &self,
        inputs: &[Value],
        before: &MemoryStores,
        together: bool,
    ) -> Option<(Vec<Answer>, MemoryStores)> {
        let _ = (inputs, before, together);
        None
    }
}

impl<F: Fn(&Value) -> Answer> Target for F {
    fn call(&self, input: &Value) -> Answer {
        self(input)
    }
}
