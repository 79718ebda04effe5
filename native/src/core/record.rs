//! The per-step record that `gan_gan_step` writes: one row of [`STEP_OUTPUTS`] floats per step, in the order of
//! [`STEP_FIELDS`] (the contract's `step_fields`). The GPU's losses (gpu/shaders/linear.wgsl `gan_loss`) write the
//! same order.

/// The fields of one step record, in buffer order.
pub const STEP_FIELDS: [&str; 4] = ["d_loss", "g_loss", "d_real", "d_fake"];
/// Floats per step in the output buffer.
pub const STEP_OUTPUTS: usize = STEP_FIELDS.len();

/// One step's results.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepRecord {
    /// `(BCE(D(x), 1) + BCE(D(G(z)), 0)) / 2`
    pub d_loss: f32,
    /// `BCE(D(G(z)), 1)`
    pub g_loss: f32,
    /// mean D(x) over the real batch
    pub d_real: f32,
    /// mean D(G(z)) over the fake batch, before either update
    pub d_fake: f32,
}

impl StepRecord {
    /// The record in [`STEP_FIELDS`] order.
    pub fn to_array(self) -> [f32; STEP_OUTPUTS] {
        [self.d_loss, self.g_loss, self.d_real, self.d_fake]
    }

    /// Reads one row `[STEP_OUTPUTS]` of a step output buffer.
    pub fn from_row(row: &[f32]) -> StepRecord {
        StepRecord {
            d_loss: row[0],
            g_loss: row[1],
            d_real: row[2],
            d_fake: row[3],
        }
    }

    /// Whether both losses are finite (a step whose loss is NaN or infinite diverged).
    pub fn losses_finite(&self) -> bool {
        self.d_loss.is_finite() && self.g_loss.is_finite()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_array_follows_the_field_names() {
        let r = StepRecord {
            d_loss: 1.0,
            g_loss: 2.0,
            d_real: 3.0,
            d_fake: 4.0,
        };
        assert_eq!(StepRecord::from_row(&r.to_array()), r);
        let by_name =
            |name: &str| r.to_array()[STEP_FIELDS.iter().position(|f| *f == name).unwrap()];
        assert_eq!(
            (
                by_name("d_loss"),
                by_name("g_loss"),
                by_name("d_real"),
                by_name("d_fake")
            ),
            (1.0, 2.0, 3.0, 4.0)
        );
    }
}
