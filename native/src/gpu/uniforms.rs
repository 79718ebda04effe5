//! The uniform structs of the kernels, field for field as declared in the WGSL files (all 4-byte scalars, sizes a
//! multiple of 16 bytes, each at most `device::SLOT` bytes).

use bytemuck::{Pod, Zeroable};

/// One GEMM of linear.wgsl: `C[m, n] = sum_k A(m, k) B(k, n)` (see the shader header for the fields).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct GemmDesc {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub b_src: u32,
    pub a_off: u32,
    pub a_rs: u32,
    pub a_cs: u32,
    pub b_off: u32,
    pub b_rs: u32,
    pub b_cs: u32,
    pub c_off: u32,
    pub c_rs: u32,
    pub c_dst: u32,
    /// 1: B has a column of ones at `n - 1` whose outputs (the bias gradient) go to `db_off + m`.
    pub ones: u32,
    pub db_off: u32,
    /// Activation (and slope) whose derivative at `a = C-buffer[e_a_off + ...]` multiplies the output (0: none).
    pub e_act: u32,
    pub e_slope: f32,
    pub e_a_off: u32,
    /// Slices along K (at least 1) and the K extent of each (a multiple of 16; at least `k` when not split).
    pub splits: u32,
    pub kc: u32,
    /// A generated instead of read (linear.wgsl `AGEN_*`, 0: read): the outer product below a one-output top block,
    /// whose output gradient is at `a_top` (b0); `a_ld` columns.
    pub a_gen: u32,
    pub a_top: u32,
    pub a_ld: u32,
    /// Where A is read: b0 (0) or b4 (4: a dx this dispatch stored; `LinearU::dw_on`).
    pub a_src: u32,
}

/// linear.wgsl `LinearU`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct LinearU {
    /// Up to three GEMMs (`backward`; the forward uses `g[0]`).
    pub g: [GemmDesc; 3],
    pub act: u32,
    pub slope: f32,
    pub bias: u32,
    pub gamma: u32,
    pub beta: u32,
    pub rmean: u32,
    pub rvar: u32,
    pub xhat: u32,
    pub rstd: u32,
    pub eps: f32,
    pub momentum: f32,
    pub inv_rows: f32,
    pub unbias: f32,
    /// Element offsets in b2 of the split-K partial products of `g[0]`, `g[1]`, `g[2]`.
    pub part: [u32; 3],
    /// The GAN step's feed of a first forward GEMM (linear.wgsl `GEN_*`; 0 for every other GEMM): the noise's key,
    /// the fake rows copied from b4 (count and offset), the real rows gathered into b4 (count, the offset of their
    /// batch indices in b7, the destination offset, pixels per row).
    pub gen: u32,
    pub key: u32,
    pub fake_rows: u32,
    pub fake_off: u32,
    pub real_rows: u32,
    pub real_idx: u32,
    pub real_dst: u32,
    pub real_feat: u32,
    /// The GAN step's losses at the end of D's last forward block (`lo_rows` 0: none): the fake rows, the record's
    /// offset in b7, the G step's and the D step's output gradients in b2, `1 / rows`, `0.5 / rows`, the loss
    /// (`GanLoss::code`).
    pub lo_rows: u32,
    pub lo_rec: u32,
    pub lo_g: u32,
    pub lo_d: u32,
    pub lo_inv: f32,
    pub lo_half: f32,
    pub lo_code: u32,
    pub _l: u32,
    /// `backward`: the column pass folded into the epilogue of dx GEMM `g[col_j]` (`col_on` 0: none): BatchNorm with
    /// batch (`col_mode` 1) or running (2) statistics, its gradients written when `col_grads` is 1. The block's
    /// offsets are `bias`, `gamma`, `beta` (params and grads), `xhat`, `rstd` (the dx destination), with `inv_rows`.
    pub col_on: u32,
    pub col_j: u32,
    pub col_mode: u32,
    pub col_grads: u32,
    /// `backward`: the generated A's top block weights (b1), the saved output of the block below (b0) and its
    /// activation (`Gemm::a_gen`).
    pub o_w: u32,
    pub o_a: u32,
    pub o_act: u32,
    pub o_slope: f32,
    /// `backward`: weight GEMM `g[dw_j]` (splits 0) runs in the epilogue of dx GEMM `g[dw_from]`'s tiles (`dw_on`
    /// 0: none).
    pub dw_on: u32,
    pub dw_from: u32,
    pub dw_j: u32,
    /// `backward`: the GAN step's Adam in the epilogues (linear.wgsl header): the column pass updates its block's
    /// bias, gamma and beta (`ad_col` 1); the weight GEMMs of bit mask `ad_direct` update their tiles' parameters once
    /// stored, those of `ad_hs` by the last arriver of the tile and the dx GEMMs reading them (nibble r of `ad_reads`:
    /// 1 + the weight GEMM whose weights `g[r]` reads); the step's settings as in [`AdamU`].
    pub ad_col: u32,
    pub ad_direct: u32,
    pub ad_hs: u32,
    pub ad_reads: u32,
    pub ad_step: f32,
    pub ad_bc2s: f32,
    pub ad_w1: f32,
    pub ad_w2: f32,
    pub ad_b2: f32,
    pub ad_eps: f32,
    pub _a: [u32; 3],
}

/// block.wgsl `ColU`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ColU {
    pub rows: u32,
    pub n: u32,
    pub act: u32,
    pub slope: f32,
    pub mode: u32,
    pub write_grads: u32,
    pub y_off: u32,
    pub a_off: u32,
    pub xhat: u32,
    pub rstd: u32,
    pub gamma: u32,
    pub beta: u32,
    pub rmean: u32,
    pub rvar: u32,
    pub g_b: u32,
    pub g_gamma: u32,
    pub g_beta: u32,
    pub eps: f32,
    pub momentum: f32,
    pub inv_rows: f32,
    pub unbias: f32,
    /// Split-K slices to sum first (0: none) and where their partial products start.
    pub parts: u32,
    pub part_off: u32,
    pub _p: u32,
}

/// softmax.wgsl `SoftmaxU`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct SoftmaxU {
    pub rows: u32,
    pub classes: u32,
    /// Element offset of the per-row losses (after the logits).
    pub loss_off: u32,
    /// 1: write the gradient over the logits.
    pub grad: u32,
    pub scale: f32,
    pub _p: [u32; 3],
}

/// dropout.wgsl `DropU`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct DropU {
    pub rows: u32,
    pub out: u32,
    pub off: u32,
    pub key: u32,
    pub threshold: u32,
    pub scale: f32,
    pub _p: [u32; 2],
}

/// adam.wgsl `AdamU`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct AdamU {
    pub n: u32,
    pub _p: [u32; 3],
    pub step: f32,
    pub bc2s: f32,
    pub w1: f32,
    pub w2: f32,
    pub b2: f32,
    pub eps: f32,
    pub _q: [u32; 2],
}

/// adam.wgsl `AdamPairU`: two networks' settings (`adam_pair`; the other entries read `a` only).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct AdamPairU {
    pub a: AdamU,
    pub b: AdamU,
}

/// data.wgsl `DataU`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct DataU {
    pub n: u32,
    pub seed_lo: u32,
    pub seed_hi: u32,
    pub stream: u32,
    pub domain: u32,
    pub dst_off: u32,
    pub _p: [u32; 2],
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 4-byte words of WGSL struct `name` in `src` (fields `name: type`; a field of another struct of `src`, or
    /// an `array<T, N>` of one, counts its words).
    fn wgsl_words(src: &str, name: &str) -> usize {
        let start = src
            .find(&format!("struct {name} {{"))
            .unwrap_or_else(|| panic!("no struct {name}"));
        let body = &src[start..];
        let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
        let mut depth = 0;
        body.split(|c: char| {
            depth += (c == '<') as i32 - (c == '>') as i32;
            c == ',' && depth == 0
        })
        .filter_map(|f| f.split_once(':'))
        .map(|(_, ty)| {
            let ty = ty.trim();
            match ty.strip_prefix("array<") {
                Some(rest) => {
                    let (inner, n) = rest.trim_end_matches('>').split_once(',').unwrap();
                    wgsl_words(src, inner.trim()) * n.trim().parse::<usize>().unwrap()
                }
                None if ["u32", "f32", "i32"].contains(&ty) => 1,
                None => wgsl_words(src, ty),
            }
        })
        .sum()
    }

    /// Each uniform struct has as many words in its WGSL file as in Rust (the Rust copy is the one the host fills).
    #[test]
    fn the_rust_structs_have_the_wgsl_structs_words() {
        let dir = |f: &str| {
            std::fs::read_to_string(format!(
                "{}/src/gpu/shaders/{f}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
        };
        for (file, name, size) in [
            ("linear.wgsl", "Gemm", std::mem::size_of::<GemmDesc>()),
            ("linear.wgsl", "LinearU", std::mem::size_of::<LinearU>()),
            ("block.wgsl", "ColU", std::mem::size_of::<ColU>()),
            ("softmax.wgsl", "SoftmaxU", std::mem::size_of::<SoftmaxU>()),
            ("dropout.wgsl", "DropU", std::mem::size_of::<DropU>()),
            ("adam.wgsl", "AdamU", std::mem::size_of::<AdamU>()),
            ("adam.wgsl", "AdamPairU", std::mem::size_of::<AdamPairU>()),
            ("data.wgsl", "DataU", std::mem::size_of::<DataU>()),
        ] {
            assert_eq!(wgsl_words(&dir(file), name) * 4, size, "{file} {name}");
        }
    }
    #[test]
    fn sizes_fit_a_slot_and_are_16_byte_multiples() {
        for (name, s) in [
            ("LinearU", std::mem::size_of::<LinearU>()),
            ("ColU", std::mem::size_of::<ColU>()),
            ("SoftmaxU", std::mem::size_of::<SoftmaxU>()),
            ("AdamU", std::mem::size_of::<AdamU>()),
            ("AdamPairU", std::mem::size_of::<AdamPairU>()),
            ("DropU", std::mem::size_of::<DropU>()),
            ("DataU", std::mem::size_of::<DataU>()),
        ] {
            assert!(
                s % 16 == 0 && s as u64 <= crate::gpu::device::SLOT,
                "{name}: {s}"
            );
        }
        assert_eq!(std::mem::size_of::<GemmDesc>(), 96);
        assert_eq!(std::mem::size_of::<LinearU>(), 512);
        assert_eq!(std::mem::size_of::<ColU>(), 96);
        assert_eq!(std::mem::size_of::<SoftmaxU>(), 32);
    }
}
