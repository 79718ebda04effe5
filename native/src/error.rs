//! Status codes and the error type every native entry point returns.

use std::fmt;

/// Defines `Code` and its table (`Code::ALL`, `Code::name`) from one list, so the contract (`gan_contract`) names
/// exactly the codes the library returns.
macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal,)*) => {
        /// Status codes returned across the C ABI. `0` is success; the message of the last failure on the calling
        /// thread is read with `gan_last_error`.
        #[repr(i32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Code {
            $($(#[$doc])* $name = $value,)*
        }

        impl Code {
            /// Every code, in numeric order.
            pub const ALL: &'static [Code] = &[$(Code::$name),*];

            /// The code's name, as the contract spells it (`"InvalidArgument"`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Code::$name => stringify!($name),)*
                }
            }
        }
    };
}

codes! {
    Ok = 0,
    /// An argument is malformed: a null pointer, a wrong length, NaN in a spec, a size of zero.
    InvalidArgument = 1,
    /// A handle is unknown, already freed, or of another kind.
    InvalidHandle = 2,
    /// The call is valid but not in this state (backward before forward, a step without data).
    InvalidState = 3,
    /// The backend failed (a GPU validation error, device lost, out of memory).
    Backend = 4,
    /// The requested backend is not available on this machine.
    Unavailable = 5,
    /// A Rust panic was caught at the boundary: a bug in this library.
    Panic = 6,
    /// Training diverged: a loss or a parameter became NaN or infinite.
    Diverged = 7,
}

/// An error with its status code and a message that names the problem and the value.
#[derive(Debug, Clone)]
pub struct Error {
    pub code: Code,
    pub message: String,
    /// For `Code::Diverged` inside a GAN run: the global step that diverged (reported as `diverged_step`).
    pub step: Option<u64>,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            step: None,
        }
    }

    /// The one way to report divergence (`Code::Diverged`): `step` is the global GAN step that diverged, `None`
    /// outside a GAN run (an Adam call on one MLP or on caller buffers). The message reads `step N: detail`.
    pub fn diverged(step: Option<u64>, detail: impl fmt::Display) -> Self {
        let message = match step {
            Some(s) => format!("step {s}: {detail}"),
            None => detail.to_string(),
        };
        Error {
            code: Code::Diverged,
            message,
            step,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// `InvalidArgument` with a formatted message.
macro_rules! bad_arg {
    ($($t:tt)*) => { $crate::error::Error::new($crate::error::Code::InvalidArgument, format!($($t)*)) };
}
/// `InvalidState` with a formatted message.
macro_rules! bad_state {
    ($($t:tt)*) => { $crate::error::Error::new($crate::error::Code::InvalidState, format!($($t)*)) };
}
pub(crate) use bad_arg;
pub(crate) use bad_state;
