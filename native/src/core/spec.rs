//! MLP specifications (parsed from the JSON that the TypeScript side sends) and the flat parameter layout.

use super::recipe::{Model, Recipe};
use crate::error::{bad_arg, Result};
use crate::rng;
use serde_json::Value;

/// The largest layer width accepted (a guard against absurd allocations).
pub const MAX_WIDTH: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    None,
    LeakyRelu(f32),
    Tanh,
    Sigmoid,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bn {
    pub eps: f32,
    pub momentum: f32,
}

/// One fused block: Linear(inp -> out) -> optional BatchNorm1d -> activation, with its offsets in the flat buffers.
#[derive(Clone, Debug)]
pub struct Layer {
    pub inp: usize,
    pub out: usize,
    pub bn: Option<Bn>,
    pub act: Act,
    /// Dropout probability after the activation, in train-mode forwards (0: none). See `core/dropout.rs`.
    pub dropout: f64,
    /// Names of consecutive groups of the outputs (`[(name, out)]`, empty for none): a last layer made of several
    /// heads (aae's encoder: `mu`, `logvar`), each named `<name>.weight` / `<name>.bias` rather than `model.{k}`.
    pub heads: Vec<(String, usize)>,
    /// Offsets into the flat parameter buffer: weight [out, inp], bias [out], gamma [out], beta [out].
    pub w: usize,
    pub b: usize,
    pub gamma: usize,
    pub beta: usize,
    /// Offsets into the flat buffer of running statistics: mean [out], var [out].
    pub rmean: usize,
    pub rvar: usize,
}

/// A label embedding (PyTorch's `nn.Embedding(classes, dim)`) concatenated to the input: its table `[classes, dim]`
/// lies at the front of the flat parameter buffer (offset 0) and the first layer's input row is `[table[label], x]`
/// (`first`: upstream cgan's generator) or `[x, table[label]]` (its discriminator). The backends see the
/// concatenated rows; [`crate::core::Mlp`] builds them and scatters the table's gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct Embed {
    pub classes: usize,
    pub dim: usize,
    /// Whether the embedding comes before `x` in the first layer's input (else after it).
    pub first: bool,
    /// The module's state_dict name (`label_emb`): the table is `<name>.weight`.
    pub name: String,
}

impl Embed {
    /// The table's size in floats.
    pub fn size(&self) -> usize {
        self.classes * self.dim
    }

    /// The columns of the first layer's input that hold `x` and the embedding, for `x` of `data` features.
    pub fn columns(&self, data: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        if self.first {
            (self.dim..self.dim + data, 0..self.dim)
        } else {
            (0..data, data..data + self.dim)
        }
    }
}

#[derive(Clone, Debug)]
pub struct Spec {
    /// The first layer's input width (with the embedding's columns, if any).
    pub input: usize,
    /// The label embedding, if any.
    pub embed: Option<Embed>,
    pub layers: Vec<Layer>,
    pub param_count: usize,
    pub buffer_count: usize,
}

impl Spec {
    pub fn output(&self) -> usize {
        self.layers.last().map(|l| l.out).unwrap_or(self.input)
    }
    pub fn max_width(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.out.max(l.inp))
            .max()
            .unwrap_or(self.input)
    }
    pub fn has_bn(&self) -> bool {
        self.layers.iter().any(|l| l.bn.is_some())
    }
    pub fn has_dropout(&self) -> bool {
        self.layers.iter().any(|l| l.dropout > 0.0)
    }

    /// The width of a caller's input row: `input` less the embedding's columns.
    pub fn data_input(&self) -> usize {
        self.input - self.embed.as_ref().map_or(0, |e| e.dim)
    }

    /// The same layers after a label embedding `e` (the first layer's input grows by `e.dim`, every offset moves up
    /// by the table's size).
    pub fn with_embedding(self, e: Embed) -> Spec {
        let blocks: Vec<(usize, Option<Bn>, Act)> =
            self.layers.iter().map(|l| (l.out, l.bn, l.act)).collect();
        let mut s = Spec::new(self.input + e.dim, &blocks);
        let t = e.size();
        for (l, old) in s.layers.iter_mut().zip(self.layers) {
            (l.dropout, l.heads) = (old.dropout, old.heads);
            (l.w, l.b) = (l.w + t, l.b + t);
            if l.bn.is_some() {
                (l.gamma, l.beta) = (l.gamma + t, l.beta + t);
            }
        }
        s.param_count += t;
        s.embed = Some(e);
        s
    }

    /// The same layout with dropout `p` after layer `i`'s activation.
    pub fn with_dropout(mut self, i: usize, p: f64) -> Spec {
        self.layers[i].dropout = p;
        self
    }

    /// The parameters of a new MLP: zero, except BatchNorm gamma 1 (PyTorch's BN defaults; beta 0).
    pub fn default_params(&self) -> Vec<f32> {
        let mut p = vec![0f32; self.param_count];
        for l in self.layers.iter().filter(|l| l.bn.is_some()) {
            p[l.gamma..l.gamma + l.out].fill(1.0);
        }
        p
    }

    /// The running statistics of a new MLP: means 0, variances 1.
    pub fn default_running(&self) -> Vec<f32> {
        let mut s = vec![0f32; self.buffer_count];
        for l in self.layers.iter().filter(|l| l.bn.is_some()) {
            s[l.rvar..l.rvar + l.out].fill(1.0);
        }
        s
    }

    /// PyTorch's default init drawn from stream `(seed, DOMAIN_INIT, stream)`: per layer in flat-buffer order, every
    /// weight then every bias `~ U(-1/sqrt(in), 1/sqrt(in))`, computed in f64 as `-bound + 2 bound u` from one counter
    /// over the whole MLP and rounded to f32; BatchNorm gamma 1, beta 0 (`default_params`). Bitwise equal to the
    /// TypeScript mirror (`initialState` in src/model/init.ts).
    ///
    /// A label embedding's table is `N(0, 1)` (PyTorch's `nn.Embedding` init), `rng::fill_normal` of stream
    /// `(seed, DOMAIN_INIT, stream + 2^31)`.
    pub fn init_params(&self, seed: u64, stream: u32) -> Vec<f32> {
        let k = rng::key(seed, rng::DOMAIN_INIT, stream);
        let mut p = self.default_params();
        if let Some(e) = &self.embed {
            let s = stream.wrapping_add(1 << 31);
            rng::fill_normal(&mut p[..e.size()], seed, rng::DOMAIN_INIT, s);
        }
        let mut counter = 0u32;
        for l in &self.layers {
            let bound = 1.0 / (l.inp as f64).sqrt();
            // weight [out, inp] then bias [out]: contiguous in the flat buffer.
            for v in &mut p[l.w..l.b + l.out] {
                *v = (-bound + 2.0 * bound * rng::uniform24(k, counter)) as f32;
                counter = counter.wrapping_add(1);
            }
        }
        p
    }

    /// The seed's generator and discriminator (PyTorch-GAN's `gan.py` at 28x28, latent 100), for the profiles and
    /// benchmarks of the native crate (the TypeScript side builds its own from src/model/spec.ts).
    pub fn seed_pair() -> (Spec, Spec) {
        let bn = Some(Bn {
            eps: 0.8,
            momentum: 0.1,
        });
        let lr = Act::LeakyRelu(0.2);
        let g = Spec::new(
            100,
            &[
                (128, None, lr),
                (256, bn, lr),
                (512, bn, lr),
                (1024, bn, lr),
                (784, None, Act::Tanh),
            ],
        );
        let d = Spec::new(
            784,
            &[(512, None, lr), (256, None, lr), (1, None, Act::Sigmoid)],
        );
        (g, d)
    }

    /// Builds the layout from sizes (used by the parser and by tests).
    pub fn new(input: usize, blocks: &[(usize, Option<Bn>, Act)]) -> Spec {
        let mut layers = Vec::with_capacity(blocks.len());
        let (mut p, mut q, mut inp) = (0usize, 0usize, input);
        for &(out, bn, act) in blocks {
            let w = p;
            let b = w + out * inp;
            p = b + out;
            let (gamma, beta, rmean, rvar) = if bn.is_some() {
                let g = p;
                p += 2 * out;
                let m = q;
                q += 2 * out;
                (g, g + out, m, m + out)
            } else {
                (0, 0, 0, 0)
            };
            layers.push(Layer {
                inp,
                out,
                bn,
                act,
                dropout: 0.0,
                heads: Vec::new(),
                w,
                b,
                gamma,
                beta,
                rmean,
                rvar,
            });
            inp = out;
        }
        Spec {
            input,
            embed: None,
            layers,
            param_count: p,
            buffer_count: q,
        }
    }

    /// Parses `{"input": 100, "layers": [{"out": 128, "bn": null | {"eps", "momentum"}, "act": {"kind", "slope"?}}]}`.
    /// Every error names the field and the value: `Invalid MLP spec: layers[2].bn.eps must be a positive finite
    /// number, got NaN` (the TypeScript side sends NaN and the infinities as the strings "NaN", "Infinity").
    pub fn parse(json: &str) -> Result<Spec> {
        let v: Value =
            serde_json::from_str(json).map_err(|e| bad_arg!("Invalid MLP spec: not JSON ({e})"))?;
        let spec = object(&v, "the spec", "an object {input, layers}")?;
        let input = size(spec.get("input"), "input")?;
        let embed = embedding(spec.get("embedding"))?;
        let layers = match spec.get("layers") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            Some(Value::Array(_)) => {
                return Err(invalid("layers", "a non-empty array", Some(&v["layers"])))
            }
            other => return Err(invalid("layers", "an array", other)),
        };
        let mut blocks = Vec::with_capacity(layers.len());
        let mut drops = Vec::with_capacity(layers.len());
        let mut heads = Vec::new();
        let mut total: u64 = embed.as_ref().map_or(0, |e| e.size() as u64);
        let mut inp = input + embed.as_ref().map_or(0, |e| e.dim);
        for (i, l) in layers.iter().enumerate() {
            let at = format!("layers[{i}]");
            let (out, bn, act) = layer(l, &at)?;
            drops.push(dropout(l, &at)?);
            heads = layer_heads(l, &at, out, i + 1 == layers.len(), bn.is_some())?;
            total += (out * inp + out + if bn.is_some() { 2 * out } else { 0 }) as u64;
            if total > 1 << 31 {
                return Err(bad_arg!(
                    "Invalid MLP spec: more than 2^31 parameters ({total} after {at})"
                ));
            }
            blocks.push((out, bn, act));
            inp = out;
        }
        let mut spec = Spec::new(input, &blocks);
        for (l, p) in spec.layers.iter_mut().zip(drops) {
            l.dropout = p;
        }
        spec.layers.last_mut().expect("non-empty").heads = heads;
        Ok(match embed {
            Some(e) => spec.with_embedding(e),
            None => spec,
        })
    }

    /// Checks a batch size for a forward of this MLP (the same rules on every backend).
    pub fn check_rows(&self, rows: usize, train: bool) -> Result<()> {
        if rows == 0 {
            return Err(bad_arg!("batch size must be at least 1, got 0"));
        }
        if rows > 1 << 24 {
            return Err(bad_arg!("batch size {rows} is too large (at most 2^24)"));
        }
        let widest_dropout = self
            .layers
            .iter()
            .filter(|l| l.dropout > 0.0)
            .map(|l| l.out)
            .max();
        if let Some(w) = widest_dropout.filter(|&w| train && (rows as u64) * (w as u64) > 1 << 32) {
            return Err(bad_arg!(
                "batch size {rows} is too large for a dropout layer of {w} features (at most 2^32 mask elements)"
            ));
        }
        if train && rows == 1 && self.has_bn() {
            return Err(bad_arg!(
                "batch size 1 in train mode: BatchNorm needs more than 1 value per channel to compute batch statistics \
                 (PyTorch refuses it too); use eval mode or a larger batch"
            ));
        }
        Ok(())
    }

    /// The layout as JSON, with the PyTorch state_dict names (see docs/ARCHITECTURE.md).
    pub fn describe(&self) -> Value {
        let mut params = Vec::new();
        let mut buffers = Vec::new();
        let mut k = 0usize;
        let t = |name: String, shape: Vec<usize>, offset: usize| -> Value {
            let size: usize = shape.iter().product();
            serde_json::json!({ "name": name, "shape": shape, "offset": offset, "size": size })
        };
        if let Some(e) = &self.embed {
            params.push(t(format!("{}.weight", e.name), vec![e.classes, e.dim], 0));
        }
        for l in &self.layers {
            if l.heads.is_empty() {
                params.push(t(format!("model.{k}.weight"), vec![l.out, l.inp], l.w));
                params.push(t(format!("model.{k}.bias"), vec![l.out], l.b));
            } else {
                let mut at = 0;
                for (name, n) in &l.heads {
                    params.push(t(
                        format!("{name}.weight"),
                        vec![*n, l.inp],
                        l.w + at * l.inp,
                    ));
                    at += n;
                }
                at = 0;
                for (name, n) in &l.heads {
                    params.push(t(format!("{name}.bias"), vec![*n], l.b + at));
                    at += n;
                }
            }
            k += 1;
            if l.bn.is_some() {
                params.push(t(format!("model.{k}.weight"), vec![l.out], l.gamma));
                params.push(t(format!("model.{k}.bias"), vec![l.out], l.beta));
                buffers.push(t(format!("model.{k}.running_mean"), vec![l.out], l.rmean));
                buffers.push(t(format!("model.{k}.running_var"), vec![l.out], l.rvar));
                k += 1;
            }
            if l.act != Act::None {
                k += 1;
            }
            if l.dropout > 0.0 {
                k += 1;
            }
        }
        let embedding = self.embed.as_ref().map(|e| {
            serde_json::json!({
                "classes": e.classes, "dim": e.dim, "at": if e.first { "first" } else { "last" }, "name": e.name,
            })
        });
        serde_json::json!({
            "input": self.data_input(),
            "embedding": embedding,
            "output": self.output(),
            "param_count": self.param_count,
            "buffer_count": self.buffer_count,
            "params": params,
            "buffers": buffers,
        })
    }
}

/// Checks that a generator `g` and a discriminator `d` fit together in the fused GAN step at `batch_size` (every
/// backend).
pub fn check_gan(g: &Spec, d: &Spec, batch_size: usize, recipe: &Recipe) -> Result<()> {
    if batch_size == 0 || batch_size > 1 << 20 {
        return Err(bad_arg!(
            "batch_size must be in [1, 2^20], got {batch_size}"
        ));
    }
    if g.has_bn() && batch_size == 1 {
        return Err(bad_arg!(
            "batch_size 1 cannot train a generator with BatchNorm (PyTorch refuses it too)"
        ));
    }
    if recipe.model == Model::Aae {
        // aae's D judges latent codes: the decoder's (the generator's) input
        if d.data_input() != g.input {
            return Err(bad_arg!(
                "aae: the discriminator's input ({}) must equal the decoder's latent size ({})",
                d.data_input(),
                g.input
            ));
        }
    } else if d.data_input() != g.output() {
        return Err(bad_arg!(
            "discriminator input ({}) must equal generator output ({})",
            d.data_input(),
            g.output()
        ));
    }
    recipe.check_embeddings(g, d)?;
    if d.output() != 1 {
        return Err(bad_arg!(
            "discriminator must have 1 output (a probability or a score), got {}",
            d.output()
        ));
    }
    recipe.check_discriminator(d)?;
    if d.has_bn() {
        return Err(bad_arg!(
            "the fused GAN step needs a discriminator without BatchNorm (it runs D once over real and fake rows)"
        ));
    }
    Ok(())
}

/// Checks the encoder `e` of a GAN whose generator is `g`: aae takes one, mapping images (`g`'s output) to `[mu,
/// logvar]` (twice `g`'s latent input), without a label embedding; every other model takes none.
pub fn check_encoder(recipe: &Recipe, g: &Spec, e: Option<&Spec>) -> Result<()> {
    match (recipe.model == Model::Aae, e) {
        (false, None) => Ok(()),
        (false, Some(_)) => Err(bad_arg!("model {} takes no encoder", recipe.model.name())),
        (true, None) => Err(bad_arg!(
            "model aae needs an encoder (gan_gan_new_with_encoder)"
        )),
        (true, Some(e)) => {
            if e.embed.is_some() || e.data_input() != g.output() {
                return Err(bad_arg!(
                    "aae: the encoder's input ({}) must be the decoder's output ({}), without labels",
                    e.data_input(),
                    g.output()
                ));
            }
            if e.output() != 2 * g.input {
                return Err(bad_arg!(
                    "aae: the encoder's output ({}) must be [mu, logvar], twice the latent size ({})",
                    e.output(),
                    2 * g.input
                ));
            }
            Ok(())
        }
    }
}

/// Checks a GAN's dataset, `pixels [count, features]` u8, for batches of `batch` (every backend); `g_has_bn`: whether
/// the generator has BatchNorm (it cannot train on a batch of 1).
pub fn check_gan_data(
    pixels: usize,
    count: usize,
    features: usize,
    batch: usize,
    g_has_bn: bool,
) -> Result<()> {
    if count == 0 {
        return Err(bad_arg!("dataset must hold at least 1 image, got 0"));
    }
    if pixels != count * features {
        return Err(bad_arg!(
            "dataset has {pixels} bytes, expected {count} images x {features} pixels = {}",
            count * features
        ));
    }
    if count > u32::MAX as usize {
        return Err(bad_arg!(
            "dataset of {count} images is too large (at most 2^32 - 1)"
        ));
    }
    if g_has_bn && count % batch == 1 {
        return Err(bad_arg!(
            "the last batch of every epoch would hold 1 image ({count} images, batch size {batch}), which BatchNorm \
             cannot train on; choose another batch size"
        ));
    }
    Ok(())
}

/// One layer `{out, bn, act}` of a spec.
fn layer(l: &Value, at: &str) -> Result<(usize, Option<Bn>, Act)> {
    let l = object(l, at, "an object {out, bn, act}")?;
    let out = size(l.get("out"), &format!("{at}.out"))?;
    let bn = match l.get("bn") {
        Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(Bn {
            eps: finite(
                m.get("eps"),
                &format!("{at}.bn.eps"),
                |x| x > 0.0,
                "a positive finite number",
            )?,
            momentum: finite(
                m.get("momentum"),
                &format!("{at}.bn.momentum"),
                |x| (0.0..=1.0).contains(&x),
                "a finite number in [0, 1]",
            )?,
        }),
        other => {
            return Err(invalid(
                &format!("{at}.bn"),
                "null or an object {eps, momentum}",
                other,
            ))
        }
    };
    let a = object(
        l.get("act").unwrap_or(&Value::Null),
        &format!("{at}.act"),
        "an object {kind}",
    )?;
    let act = match a.get("kind").and_then(Value::as_str) {
        Some("none") => Act::None,
        Some("tanh") => Act::Tanh,
        Some("sigmoid") => Act::Sigmoid,
        Some("leaky_relu") => Act::LeakyRelu(finite(
            a.get("slope"),
            &format!("{at}.act.slope"),
            |x| x >= 0.0,
            "a finite number >= 0",
        )?),
        _ => {
            return Err(invalid(
                &format!("{at}.act.kind"),
                "one of none, leaky_relu, tanh, sigmoid",
                a.get("kind"),
            ))
        }
    };
    Ok((out, bn, act))
}

/// The spec's optional `embedding`: `null` or `{classes, dim, at: "first" | "last", name}`.
fn embedding(v: Option<&Value>) -> Result<Option<Embed>> {
    let m = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => object(v, "embedding", "null or an object {classes, dim, at, name}")?,
    };
    let classes = size(m.get("classes"), "embedding.classes")?;
    let dim = size(m.get("dim"), "embedding.dim")?;
    if (classes as u64) * (dim as u64) > 1 << 31 {
        return Err(bad_arg!(
            "Invalid MLP spec: embedding of {classes} x {dim} is more than 2^31 parameters"
        ));
    }
    let first = match m.get("at").and_then(Value::as_str) {
        Some("first") => true,
        Some("last") => false,
        _ => {
            return Err(invalid(
                "embedding.at",
                "\"first\" or \"last\"",
                m.get("at"),
            ))
        }
    };
    let name = match m.get("name").and_then(Value::as_str) {
        Some(n) if is_identifier(n) => n.to_string(),
        _ => {
            return Err(invalid(
                "embedding.name",
                "an identifier (letters, digits, _; not starting with a digit; at most 64)",
                m.get("name"),
            ))
        }
    };
    Ok(Some(Embed {
        classes,
        dim,
        first,
        name,
    }))
}

/// `[A-Za-z_][A-Za-z0-9_]*`, at most 64 characters.
fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    s.len() <= 64
        && c.next()
            .is_some_and(|h| h.is_ascii_alphabetic() || h == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// A layer's optional `heads`: `[{name, out}]` whose outs sum to the layer's, on the last layer only, without
/// BatchNorm; their names distinct identifiers.
fn layer_heads(
    l: &Value,
    at: &str,
    out: usize,
    last: bool,
    bn: bool,
) -> Result<Vec<(String, usize)>> {
    let a = match l.get("heads") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) if !a.is_empty() => a,
        other => {
            return Err(invalid(
                &format!("{at}.heads"),
                "null or a non-empty array of {name, out}",
                other,
            ))
        }
    };
    if !last || bn {
        return Err(bad_arg!(
            "Invalid MLP spec: {at}.heads: only the last layer, without BatchNorm, may have heads"
        ));
    }
    let mut heads: Vec<(String, usize)> = Vec::with_capacity(a.len());
    for (j, h) in a.iter().enumerate() {
        let hat = format!("{at}.heads[{j}]");
        let h = object(h, &hat, "an object {name, out}")?;
        let name = match h.get("name").and_then(Value::as_str) {
            Some(n) if is_identifier(n) && !heads.iter().any(|(m, _)| m == n) => n.to_string(),
            _ => {
                return Err(invalid(
                    &format!("{hat}.name"),
                    "an identifier not used by another head",
                    h.get("name"),
                ))
            }
        };
        heads.push((name, size(h.get("out"), &format!("{hat}.out"))?));
    }
    let sum: usize = heads.iter().map(|h| h.1).sum();
    if sum != out {
        return Err(bad_arg!(
            "Invalid MLP spec: {at}.heads have {sum} outputs in all, the layer {out}"
        ));
    }
    Ok(heads)
}

/// A layer's optional `dropout` (default 0): a probability in [0, 1).
fn dropout(l: &Value, at: &str) -> Result<f64> {
    match l.get("dropout") {
        None | Some(Value::Null) => Ok(0.0),
        Some(v) => match v.as_f64() {
            Some(p) if p.is_finite() && (0.0..1.0).contains(&p) => Ok(p),
            _ => Err(invalid(
                &format!("{at}.dropout"),
                "a probability in [0, 1)",
                Some(v),
            )),
        },
    }
}

/// `Invalid MLP spec: {what} must be {expect}, got {value}`.
fn invalid(what: &str, expect: &str, v: Option<&Value>) -> crate::error::Error {
    bad_arg!(
        "Invalid MLP spec: {what} must be {expect}, got {}",
        shown(v)
    )
}

fn object<'a>(
    v: &'a Value,
    what: &str,
    expect: &str,
) -> Result<&'a serde_json::Map<String, Value>> {
    v.as_object().ok_or_else(|| invalid(what, expect, Some(v)))
}

fn size(v: Option<&Value>, what: &str) -> Result<usize> {
    match v.and_then(Value::as_u64) {
        Some(n) if n >= 1 && n as usize <= MAX_WIDTH => Ok(n as usize),
        _ => Err(invalid(what, &format!("an integer in [1, {MAX_WIDTH}]"), v)),
    }
}

fn finite(v: Option<&Value>, what: &str, ok: impl Fn(f64) -> bool, expect: &str) -> Result<f32> {
    match v.and_then(Value::as_f64) {
        Some(x) if x.is_finite() && ok(x) => Ok(x as f32),
        _ => Err(invalid(what, expect, v)),
    }
}

/// A value as an error message shows it: JSON, except the strings the TypeScript side sends for the numbers JSON
/// cannot hold ("NaN", "Infinity", "-Infinity"), shown as numbers, and a missing field, shown as "no value".
fn shown(v: Option<&Value>) -> String {
    match v {
        None => "no value".into(),
        Some(Value::String(s)) if ["NaN", "Infinity", "-Infinity"].contains(&s.as_str()) => {
            s.clone()
        }
        Some(v) => {
            let s = v.to_string();
            if s.len() > 80 {
                format!(
                    "{}...",
                    &s[..s.char_indices().nth(77).map_or(s.len(), |(i, _)| i)]
                )
            } else {
                s
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_generator_names() {
        let s = Spec::parse(
            r#"{"input":100,"layers":[
            {"out":128,"bn":null,"act":{"kind":"leaky_relu","slope":0.2}},
            {"out":256,"bn":{"eps":0.8,"momentum":0.1},"act":{"kind":"leaky_relu","slope":0.2}},
            {"out":784,"bn":null,"act":{"kind":"tanh"}}]}"#,
        )
        .unwrap();
        let d = s.describe();
        let names: Vec<&str> = d["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "model.0.weight",
                "model.0.bias",
                "model.2.weight",
                "model.2.bias",
                "model.3.weight",
                "model.3.bias",
                "model.5.weight",
                "model.5.bias"
            ]
        );
        assert_eq!(
            s.param_count,
            100 * 128 + 128 + 128 * 256 + 256 * 3 + 256 * 784 + 784
        );
        assert_eq!(s.buffer_count, 512);
    }

    #[test]
    fn rejects_bad_specs() {
        let e = Spec::parse(
            r#"{"input":3,"layers":[{"out":2,"bn":{"eps":null,"momentum":0.1},"act":{"kind":"none"}}]}"#,
        );
        assert!(e
            .unwrap_err()
            .message
            .contains("layers[0].bn.eps must be a positive finite number, got null"));
        let e = Spec::parse(r#"{"input":0,"layers":[]}"#);
        assert!(e.unwrap_err().message.contains("input must be an integer"));
        let e = Spec::parse(r#"{"input":3,"layers":[{"out":2,"bn":null,"act":{"kind":"relu6"}}]}"#);
        assert!(e.unwrap_err().message.contains("act.kind must be one of"));
    }

    /// A last layer's heads rename its tensors to upstream's (aae's encoder: `mu`, `logvar`), at the offsets of the
    /// rows they cover; bad heads are refused by name.
    #[test]
    fn heads_name_parts_of_the_last_layer() {
        let s = Spec::parse(
            r#"{"input":6,"layers":[{"out":5,"bn":null,"act":{"kind":"leaky_relu","slope":0.2}},
               {"out":4,"bn":null,"act":{"kind":"none"},"heads":[{"name":"mu","out":1},{"name":"logvar","out":3}]}]}"#,
        )
        .unwrap();
        let d = s.describe();
        let got: Vec<(String, usize)> = d["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap().into(),
                    t["offset"].as_u64().unwrap() as usize,
                )
            })
            .collect();
        let l = &s.layers[1];
        let want = [
            ("model.0.weight", 0),
            ("model.0.bias", 30),
            ("mu.weight", l.w),
            ("logvar.weight", l.w + 5),
        ];
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.0.as_str(), g.1), w);
        }
        assert_eq!(got[4], ("mu.bias".into(), l.b));
        assert_eq!(got[5], ("logvar.bias".into(), l.b + 1));
        for (heads, msg) in [
            (
                r#"[{"name":"mu","out":1},{"name":"mu","out":3}]"#,
                "heads[1].name must be",
            ),
            (
                r#"[{"name":"mu","out":1},{"name":"lv","out":2}]"#,
                "3 outputs in all, the layer 4",
            ),
            (r#"[]"#, "heads must be null or a non-empty array"),
        ] {
            let json = format!(
                r#"{{"input":6,"layers":[{{"out":4,"bn":null,"act":{{"kind":"none"}},"heads":{heads}}}]}}"#
            );
            let e = Spec::parse(&json).unwrap_err();
            assert!(e.message.contains(msg), "{}", e.message);
        }
        let e = Spec::parse(
            r#"{"input":6,"layers":[{"out":4,"bn":null,"act":{"kind":"none"},"heads":[{"name":"a","out":4}]},
               {"out":1,"bn":null,"act":{"kind":"none"}}]}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("only the last layer"), "{}", e.message);
    }
}
