//! The penalties' second-order pass on the GPU (the math: `core/penalty.rs`): `grads += d<v, J(x)^T dy>/dW` in one
//! submission of linear.wgsl `backward` GEMMs over the work buffer's penalty regions (`Work::pen_d`, `pen_u`):
//!
//! 1. the forward at `x` (its saved activations give the masks);
//! 2. the deltas from the top: `delta_{L-1} = dy` (times act' when the top has one, block.wgsl `backward`),
//!    `delta_l = (delta_{l+1} W_{l+1}) * act'(a_l)` (a dx GEMM whose epilogue applies the receiver's act');
//! 3. per layer, `gW_l = delta_l^T u_l` into the zeroed `pen_grads` buffer (biases stay 0) and, in the same dispatch,
//!    `u_{l+1} = (u_l W_l^T) * act'(a_l)` (`u_0 = v`);
//! 4. adam.wgsl `accumulate`: `grads += pen_grads`.
//!
//! No GEMM is split along K here (the pass is a small part of a critic step).

use super::device::{grid1d, Batch, Kernel, Shader};
use super::mlp::GpuMlp;
use super::passes::{act_code, backward_grid, K_BACKWARD, K_COL_BACKWARD};
use super::uniforms::{AdamU, ColU, GemmDesc, LinearU};
use crate::core::spec::Act;
use crate::error::Result;

const K_ACCUMULATE: Kernel = Kernel::new(Shader::Adam, "accumulate");

impl GpuMlp {
    /// `grads += d<v, J(x)^T dy>/dW` for `x`, `v [rows, input]` and `dy [rows, output]` (row-major, checked by
    /// `Mlp::input_grad_backward`); replaces the saved forward with the forward at `x`.
    pub(crate) fn input_grad_backward_gpu(
        &mut self,
        x: &[f32],
        dy: &[f32],
        v: &[f32],
    ) -> Result<()> {
        let rows = x.len() / self.spec.input;
        self.enable_penalty_work(rows)?;
        let lay = self.lay.clone();
        let n = self.spec.layers.len();
        let work = self.work();
        self.dev
            .write(work, lay.x as u64 * 4, bytemuck::cast_slice(x))?;
        self.dev
            .write(work, lay.pen_d[n - 1] as u64 * 4, bytemuck::cast_slice(dy))?;
        self.dev
            .write(work, lay.pen_u[0] as u64 * 4, bytemuck::cast_slice(v))?;
        let mut b = Batch::new();
        self.record_forward(&mut b, rows, true)?;
        let top = &self.spec.layers[n - 1];
        if top.act != Act::None {
            self.record_act_grad(&mut b, rows, n - 1, lay.pen_d[n - 1])?;
        }
        for l in (0..n - 1).rev() {
            let g = self.delta_gemm(rows, l, lay.pen_d[l + 1], lay.pen_d[l], lay.a[l]);
            self.dispatch_gemms(&mut b, &[g])?;
        }
        for l in 0..n {
            let (cur, next) = (lay.pen_u[l % 2], lay.pen_u[(l + 1) % 2]);
            let mut gs = vec![self.weight_gemm(rows, l, lay.pen_d[l], cur)];
            if l + 1 < n {
                gs.push(self.u_gemm(rows, l, cur, next, lay.a[l]));
            }
            self.dispatch_gemms(&mut b, &gs)?;
        }
        self.record_accumulate(&mut b)?;
        self.dev.execute(b, &[])?;
        Ok(())
    }

    /// Lays the work buffer out with the penalty's regions (once; the saved forward is lost when it grows).
    fn enable_penalty_work(&mut self, rows: usize) -> Result<()> {
        let mut want = rows;
        if !self.pen_on {
            self.pen_on = true;
            want = rows.max(self.cap);
            self.cap = 0; // forces a new layout, with the regions, for at least as many rows as before
        }
        self.reserve(want)?;
        if self.pen_grads.is_none() {
            // Zero-initialized by wgpu; only the weight regions are ever written.
            let bytes = (self.spec.param_count * 4) as u64;
            self.pen_grads = Some(self.dev.buffer("penalty grads", bytes)?);
        }
        Ok(())
    }

    /// `delta_l [rows, out_l] = (delta_{l+1} W_{l+1}) * act'(a_l)`, into the work buffer (b4).
    fn delta_gemm(&self, rows: usize, l: usize, up: usize, at: usize, a_l: usize) -> GemmDesc {
        let (lu, ll) = (&self.spec.layers[l + 1], &self.spec.layers[l]);
        let (e_act, e_slope) = act_code(ll.act);
        GemmDesc {
            m: rows as u32,
            n: lu.inp as u32,
            k: lu.out as u32,
            b_src: 1,
            a_off: up as u32,
            a_rs: lu.out as u32,
            a_cs: 1,
            b_off: lu.w as u32,
            b_rs: lu.inp as u32,
            b_cs: 1,
            c_off: at as u32,
            c_rs: lu.inp as u32,
            c_dst: 4,
            e_act,
            e_slope,
            e_a_off: a_l as u32,
            splits: 1,
            kc: lu.out as u32,
            ..Default::default()
        }
    }

    /// `gW_l [out, inp] = delta_l^T u_l` into `pen_grads` (b3) at the layer's weights.
    fn weight_gemm(&self, rows: usize, l: usize, delta: usize, u: usize) -> GemmDesc {
        let ly = &self.spec.layers[l];
        GemmDesc {
            m: ly.out as u32,
            n: ly.inp as u32,
            k: rows as u32,
            b_src: 2,
            a_off: delta as u32,
            a_rs: 1,
            a_cs: ly.out as u32,
            b_off: u as u32,
            b_rs: ly.inp as u32,
            b_cs: 1,
            c_off: ly.w as u32,
            c_rs: ly.inp as u32,
            c_dst: 3,
            splits: 1,
            kc: rows as u32,
            ..Default::default()
        }
    }

    /// `u_{l+1} [rows, out] = (u_l W_l^T) * act'(a_l)` into the work buffer (b4).
    fn u_gemm(&self, rows: usize, l: usize, u: usize, next: usize, a_l: usize) -> GemmDesc {
        let ly = &self.spec.layers[l];
        let (e_act, e_slope) = act_code(ly.act);
        GemmDesc {
            m: rows as u32,
            n: ly.out as u32,
            k: ly.inp as u32,
            b_src: 1,
            a_off: u as u32,
            a_rs: ly.inp as u32,
            a_cs: 1,
            b_off: ly.w as u32,
            b_rs: 1,
            b_cs: ly.inp as u32,
            c_off: next as u32,
            c_rs: ly.out as u32,
            c_dst: 4,
            e_act,
            e_slope,
            e_a_off: a_l as u32,
            splits: 1,
            kc: ly.inp as u32,
            ..Default::default()
        }
    }

    /// One linear.wgsl `backward` dispatch of up to two GEMMs: b0, b2, b4 the work buffer, b1 params, b3 pen_grads.
    fn dispatch_gemms(&self, b: &mut Batch, gs: &[GemmDesc]) -> Result<()> {
        let mut u = LinearU::default();
        for (slot, g) in gs.iter().enumerate() {
            u.g[slot] = *g;
        }
        let work = self.work();
        let pen = self
            .pen_grads
            .as_ref()
            .expect("enable_penalty_work allocated it");
        let bind = self.dev.bind(&[
            Some(work),
            Some(&self.params),
            Some(work),
            Some(pen),
            Some(work),
            None,
        ])?;
        let grid = backward_grid(&self.dev, gs);
        b.dispatch(&self.dev.pipeline(K_BACKWARD)?, &bind, &u, grid);
        Ok(())
    }

    /// block.wgsl `backward` as act' only (no BatchNorm, no gradients) over `[rows, out]` at `at`, for layer `l`.
    fn record_act_grad(&self, b: &mut Batch, rows: usize, l: usize, at: usize) -> Result<()> {
        let ly = &self.spec.layers[l];
        let (act, slope) = act_code(ly.act);
        let c = ColU {
            rows: rows as u32,
            n: ly.out as u32,
            act,
            slope,
            mode: 0,
            write_grads: 0,
            y_off: at as u32,
            a_off: self.lay.a[l] as u32,
            inv_rows: 1.0 / rows as f32,
            ..Default::default()
        };
        let work = self.work();
        let bind = self.dev.bind(&[
            Some(work),
            Some(&self.params),
            Some(work),
            Some(&self.grads),
            None,
            None,
        ])?;
        let grid = grid1d(
            ly.out.div_ceil(16) as u32,
            self.dev.limits.max_compute_workgroups_per_dimension,
        );
        b.dispatch(&self.dev.pipeline(K_COL_BACKWARD)?, &bind, &c, grid);
        Ok(())
    }

    /// adam.wgsl `accumulate`: `grads += pen_grads` over every parameter.
    fn record_accumulate(&self, b: &mut Batch) -> Result<()> {
        let pen = self
            .pen_grads
            .as_ref()
            .expect("enable_penalty_work allocated it");
        let u = AdamU {
            n: self.spec.param_count as u32,
            ..Default::default()
        };
        let bind = self.dev.bind(&[
            Some(&self.params),
            Some(&self.grads),
            Some(&self.m),
            Some(pen),
            None,
            None,
        ])?;
        let grid = grid1d(
            self.spec.param_count.div_ceil(256) as u32,
            self.dev.limits.max_compute_workgroups_per_dimension,
        );
        b.dispatch(&self.dev.pipeline(K_ACCUMULATE)?, &bind, &u, grid);
        Ok(())
    }
}
