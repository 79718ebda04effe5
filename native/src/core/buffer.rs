//! The flat buffers of an MLP, as `gan_mlp_get` / `gan_mlp_set` select them (the contract's `buffers`).

use super::spec::Spec;
use crate::error::{bad_arg, Result};

/// A flat buffer of an MLP; the discriminant is its selector in the C ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buffer {
    /// `[param_count]` the parameters.
    Params = 0,
    /// `[param_count]` their gradients.
    Grads = 1,
    /// `[param_count]` Adam's first moments.
    AdamM = 2,
    /// `[param_count]` Adam's second moments.
    AdamV = 3,
    /// `[buffer_count]` BatchNorm running means and variances.
    Running = 4,
}

impl Buffer {
    /// Every buffer, in selector order.
    pub const ALL: [Buffer; 5] = [
        Buffer::Params,
        Buffer::Grads,
        Buffer::AdamM,
        Buffer::AdamV,
        Buffer::Running,
    ];

    /// The name in the contract (`buffers[selector]`).
    pub fn name(self) -> &'static str {
        ["params", "grads", "adam_m", "adam_v", "running"][self as usize]
    }

    /// The name in messages (`"running stats has 4 values, got 3"`).
    pub fn label(self) -> &'static str {
        ["params", "grads", "adam m", "adam v", "running stats"][self as usize]
    }

    /// The buffer of selector `which`.
    pub fn from_index(which: u32) -> Result<Buffer> {
        if let Some(&b) = Buffer::ALL.get(which as usize) {
            return Ok(b);
        }
        let names: Vec<String> = Buffer::ALL
            .iter()
            .map(|&b| format!("{} ({})", b as u32, b.label()))
            .collect();
        let (last, rest) = names.split_last().expect("buffers");
        Err(bad_arg!(
            "buffer selector must be {} or {last}, got {which}",
            rest.join(", ")
        ))
    }

    /// Its size in floats for an MLP of layout `spec`.
    pub fn len(self, spec: &Spec) -> usize {
        match self {
            Buffer::Running => spec.buffer_count,
            _ => spec.param_count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_round_trip_and_bad_ones_are_named() {
        for (i, b) in Buffer::ALL.iter().enumerate() {
            assert_eq!(Buffer::from_index(i as u32).unwrap(), *b);
        }
        assert_eq!(
            Buffer::from_index(5).unwrap_err().message,
            "buffer selector must be 0 (params), 1 (grads), 2 (adam m), 3 (adam v) or 4 (running stats), got 5"
        );
    }
}
