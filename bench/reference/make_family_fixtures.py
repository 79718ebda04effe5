"""Writes tests/fixtures/family/<model>.safetensors: one training step (two for the Wasserstein models) of each
model of PyTorch-GAN's MLP family, computed by bench/reference/family.py (PyTorch, float32, CPU), for our engine's
parity tests, which need no PyTorch. bench/reference/FAMILY.md describes the steps and the layout.

    deno run --allow-read --allow-write bench/write_idx.ts             # once: bench/.data (the real images)
    bench/.venv/bin/python bench/reference/make_family_fixtures.py      # [--only gan cgan] [--width 16] [--out DIR]

Every file is built the same way:

  - the networks of family.build_models at upstream's architecture with every hidden width divided by --width
    (default 16: 128 -> 8, 256 -> 16, 512 -> 32, 1024 -> 64; latent, classes and image sizes stay upstream's), so
    that the files stay small (at width 1 every case would take about 25 MB); PyTorch's default init after
    torch.manual_seed(0);
  - a batch of 8 real digits of the embedded set (bench/.data; indices 1250 k, k = 0..7; the second step 1250 k + 625)
    through upstream's transforms (Resize for img_size 32, ToTensor, Normalize(0.5, 0.5));
  - the randomness from torch.Generator().manual_seed(1) (family.draw_randomness), except cgan's dropout masks: those
    are OUR counter-based masks (native/src/rng.rs through rng_mirror.py, seed 0, stream = the step; cgan_masks),
    replayed through family.DropoutMasks / InjectableDropout, so that the native library, which draws its own
    masks, can be compared with this step;
  - family.step for batch index i = 0 (and i = 1 for wgan, wgan_gp, wgan_div: a critic-only iteration, n_critic 5);
  - cases (FILES): the model's defaults first, then the same initial state and inputs with one option changed
    (the gan loss options, the bug switches), each case's tensors prefixed by "<case>.".

Tensors (names of the networks' tensors are upstream's state_dict names, prefixed by the net):

  <net>.<name>              every state_dict entry before the step (F32; num_batches_tracked I64)
  input.<name>              the step's inputs: real [B, C*H*W] F32 in [-1, 1], z, labels / gen_labels I64,
                            alpha [B, 1], eps [B, latent], dropout.<k> U8 [B, hidden] (cgan: our keep masks, in
                            upstream's draw order);
                            input2.<name>: step 2's
  out.<name>                the step's losses (F32 scalars) and intermediates (see each file's metadata)
  grad.<net>.<name>         the gradient each parameter was updated with (its .grad at its optimizer's step())
  after.<net>.<name>        every state_dict entry after the step
  out2.*, grad2.*, after2.* the same for step 2;  <case>.out.*, <case>.grad.*, ...: a case's

Fallbacks: a tensor absent from the file is its fallback's: <case>.<group><step>.X falls back to the default case's
<group><step>.X, the default case's after2.X to after.X. The writer leaves out exactly the tensors bitwise equal to
their fallback (G's parameters after a critic-only step, the G side of a case that only changes D, ...).

The metadata key "fixture" holds a JSON object: the model, the options (lr, betas, n_critic, clip_value, lambda_gp,
k, p, width, the bug switches), the optimizers and their hyperparameters (their state is zero before step 1, so it
is not stored), the cases, the networks' layers, what one step is, and the meaning and shape of every tensor.

After writing, each file is read back and every case replayed from its tensors alone (fresh networks loaded from the
stored state, the stored inputs, the stored dropout masks, no draw from any generator); every out, grad and after
tensor must come out bitwise equal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import family as fam  # noqa: E402
import rng_mirror  # noqa: E402

B = 8
SEED_INIT, SEED_DRAWS = 0, 1
# cgan's dropout masks: our stream (rng::dropout_key) under this seed, the GanConfig.seed of the parity test
SEED_DROPOUT = 0
# torch's global generator is seeded with this + step before each step. No step draws from it (cgan's masks were
# nn.Dropout's draws after this seed before they came from our stream); the other files record it as
# seeds.dropout, kept so that they are still written byte for byte as committed.
SEED_GLOBAL = 1000

# cgan: upstream's six Dropout forwards in draw order -> (our dropout pass, our layer, first row in our forward).
# Our cgan step runs D's forwards as pass 1 = D(gen) in the G step (rows 0..B) and pass 2 = D over [fake; real]
# (fakes rows 0..B, reals rows B..2B); our layer 1 is upstream's Linear model.2 (Dropout model.3), layer 2 model.5
# (Dropout model.6).
CGAN_MASKS = [
    (1, 1, 0), (1, 2, 0),  # D(gen, gen_labels), G step
    (2, 1, B), (2, 2, B),  # D(real, labels): the real rows of pass 2
    (2, 1, 0), (2, 2, 0),  # D(gen.detach(), gen_labels): the fake rows of pass 2
]


def cgan_masks(o: fam.Options, s: int):
    """The six keep masks [B, w] (float 0/1, upstream's draw order) of step s (0-based) from our counter-based
    stream: mask k = CGAN_MASKS[k] = (pass, layer, r0), element (b, j) kept iff rng::dropout_mask(
    dropout_key(SEED_DROPOUT, s, pass, layer), (r0 + b) * w + j, dropout_threshold(0.4), dropout_scale(0.4)) != 0,
    w = D's hidden width. InjectableDropout then applies keep * (1 / 0.6f) in float32, the same value as our mask's."""
    w = o.hidden(512)
    return [
        torch.from_numpy(rng_mirror.keep_mask(SEED_DROPOUT, s, pass_, layer, range(r0, r0 + B), w, 0.4)).float()
        for pass_, layer, r0 in CGAN_MASKS
    ]

# file -> (model, cases). The first case is the model's defaults (upstream), stored unprefixed; every other case
# starts from the same initial state and inputs with the options changed, its tensors prefixed by "<case>.".
FILES = {
    "gan": ("gan", {
        "bce": {},
        "mse": {"loss": "mse"},
        "hinge": {"loss": "hinge"},
        "relativistic": {"loss": "relativistic"},
        "relativistic_avg": {"loss": "relativistic_avg"},
    }),
    "cgan": ("cgan", {"default": {}}),
    "wgan": ("wgan", {"default": {}}),
    "wgan_gp": ("wgan_gp", {"default": {}, "pixel_norm": {"gp_norm": "pixel"}, "clip": {"gp_clip": True}}),
    # upstream's k = 2 with p = 6 makes the W-div penalty about 1e-6 of the loss at initialization (|dD/dx| is
    # about 0.1), too small for an error in its gradient to show; large_k runs the same arithmetic at k = 1e5
    "wgan_div": ("wgan_div", {"default": {}, "large_k": {"k": 1e5}}),
    "bgan": ("bgan", {"default": {}}),
    "softmax_gan": ("softmax_gan", {
        "default": {},
        "fresh_d": {"softmax_fresh_d": True},
        "g_loss_only": {"softmax_g_loss_only": True},
    }),
    "aae": ("aae", {"default": {}}),
}
# Cases that run one step only (the file's default case covers the critic-only second step), to keep the files small.
ONE_STEP = {("wgan_gp", "pixel_norm"), ("wgan_gp", "clip"), ("wgan_div", "large_k")}

STEP = {
    "gan": "G update then D update on one batch and one z (gan.py): zero_grad G; gen = G(z); g_loss = "
    "loss_G(D(gen)) [relativistic losses: and D(real)]; backward; Adam G. zero_grad D; d_loss = loss_D(D(real), "
    "D(gen.detach())); backward; Adam D. D has no BatchNorm: D(gen) in the G step equals D(gen.detach()).",
    "bgan": "as gan (bgan.py) with g_loss = 0.5 mean((log D(gen) - log(1 - D(gen)))^2) on D's Sigmoid output; "
    "d_loss = (BCE(D(real), 1) + BCE(D(gen.detach()), 0)) / 2.",
    "cgan": "G update then D update (cgan.py): gen = G(z, gen_labels) (input cat(label_emb(gen_labels), z)); "
    "g_loss = MSE(D(gen, gen_labels), 1); Adam G; d_loss = (MSE(D(real, labels), 1) + MSE(D(gen.detach(), "
    "gen_labels), 0)) / 2; Adam D. D's input is cat(img, label_embedding(labels)); D runs 3 times in train mode, "
    "dropout masks 0,1 / 2,3 / 4,5 in that order.",
    "wgan": "batch index i (wgan.py): critic update: fake = G(z).detach() (G forward, train mode); d_loss = "
    "-mean(D(real)) + mean(D(fake)); RMSprop D; clamp every D parameter to [-clip_value, clip_value]. If "
    "i % n_critic == 0, generator update from the same z: gen = G(z) (a second G forward: BN running stats move "
    "again); g_loss = -mean(D(gen)); RMSprop G. Step 1 is i = 0 (both), step 2 is i = 1 (critic only).",
    "wgan_gp": "batch index i (wgan_gp.py): zero_grad D; fake = G(z); d_loss = -mean(D(real)) + mean(D(fake)) + "
    "lambda_gp GP, GP = mean((|dD(x)/dx|_2 - 1)^2) at x = alpha real + (1 - alpha) fake (alpha [B, 1], one per "
    "sample; the norm per sample over all pixels, or with gp_norm 'pixel' per pixel over the channels), "
    "differentiated through the double backward; Adam D; [gp_clip: clamp D]; zero_grad G; if i % n_critic == 0: "
    "gen = G(z) (second G forward), g_loss = -mean(D(gen)), Adam G. Step 1 i = 0, step 2 i = 1 (critic only).",
    "wgan_div": "batch index i (wgan_div.py): zero_grad D; fake = G(z); r = D(real), f = D(fake); div_gp = "
    "mean(|dr/dreal|^p + |df/dfake|^p) k / 2 (|g|^p = (sum g^2)^(p/2) per sample; the gradient w.r.t. fake taken "
    "at the fake images, not through G); d_loss = -mean(r) + mean(f) + div_gp; Adam D; [gp_clip: clamp D]; "
    "zero_grad G; if i % n_critic == 0: gen = G(z), g_loss = -mean(D(gen)), Adam G. Step 1 i = 0, step 2 i = 1.",
    "softmax_gan": "one forward pass for both losses (softmax_gan.py): gen = G(z); r = D(real), f = D(gen); "
    "Z = sum(exp(-r)) + sum(exp(-f)); d_loss = sum(r) / B + log(Z + 1e-8); d_loss.backward() (gradients of D and, "
    "through f, of G); Adam D; g_loss = (sum(r) + sum(f)) / (2B) + log(Z + 1e-8); g_loss.backward() through the "
    "same forward; Adam G. Defaults (upstream as run with PyTorch <= 1.4): the g_loss backward through D multiplies "
    "by D's updated weights (LeakyReLU masks from the forward), and G's gradient is grad_G d_loss + grad_G g_loss. "
    "softmax_fresh_d: the g_loss gradient through D's pre-update weights; softmax_g_loss_only: G's gradient is "
    "grad_G g_loss alone.",
    "aae": "autoencoder update then latent-discriminator update (aae.py): encoded = eps exp(logvar / 2) + mu from "
    "the encoder (train-mode BN); decoded = decoder(encoded); g_loss = 0.001 BCE(D(encoded), 1) + 0.999 "
    "L1(decoded, real); one Adam over encoder and decoder. d_loss = 0.5 (BCE(D(z), 1) + BCE(D(encoded.detach()), "
    "0)), z the prior sample; Adam D. Left out: upstream's sample_image at batch 0 runs the decoder in train mode "
    "on 100 more z (a BN running-stat update), see family.upstream_sample_forward.",
}
STEP["cgan"] += (" Left out: upstream's sample_image at batch 0 runs G in train mode on 100 more z (a BN "
                 "running-stat update), see family.upstream_sample_forward.")

OUT = {  # meaning of each out.* tensor
    "d_loss": "D's loss (the critic's for the Wasserstein models), before D's update",
    "g_loss": "G's loss (aae: the autoencoder's), before its update",
    "gen_imgs": "G(z) [B, C*H*W] of the G step, train mode",
    "d_fake_g": "D's output [B, 1] on G(z) in the generator update (after the critic update and clipping for wgan)",
    "d_real_g": "D(real) [B, 1] in the G step (relativistic losses)",
    "d_real": "D's output [B, 1] on the real batch in the D / critic update",
    "d_fake": "D's output [B, 1] on the fakes in the D / critic update",
    "validity": "cgan: D(gen, gen_labels) [B, 1] in the G step (dropout masks 0, 1)",
    "validity_real": "cgan: D(real, labels) [B, 1] (masks 2, 3)",
    "validity_fake": "cgan: D(gen.detach(), gen_labels) [B, 1] (masks 4, 5)",
    "fake_imgs": "G(z) [B, C*H*W] of the critic update",
    "gp": "wgan_gp: the gradient penalty (before lambda_gp)",
    "gp_norms": "wgan_gp: the norms of the penalty, [B] (gp_norm 'sample') or [B, H, W] ('pixel')",
    "div_gp": "wgan_div: the W-div penalty k / 2 mean(real_grad_norm + fake_grad_norm)",
    "real_grad_norm": "wgan_div: (sum of dD/dx^2 over a real sample's pixels)^(p / 2), [B]",
    "fake_grad_norm": "wgan_div: the same at the fake images, [B]",
    "Z": "softmax_gan: the partition function sum(exp(-D(real))) + sum(exp(-D(gen)))",
    "adv_loss": "aae: BCE(D(encoded), 1) (weight 0.001 in g_loss)",
    "pixel_loss": "aae: L1(decoded, real) (weight 0.999 in g_loss)",
    "mu": "aae: the encoder's mu head [B, latent]",
    "logvar": "aae: the encoder's logvar head [B, latent]",
    "encoded": "aae: eps * exp(logvar / 2) + mu [B, latent]",
    "decoded": "aae: decoder(encoded) [B, C*H*W]",
    "d_encoded_g": "aae: D(encoded) [B, 1] in the autoencoder update",
    "d_prior": "aae: D(z) [B, 1], z the prior sample",
    "d_encoded": "aae: D(encoded.detach()) [B, 1] in the D update",
    "real_loss": "aae: BCE(D(z), 1)",
    "fake_loss": "aae: BCE(D(encoded.detach()), 0)",
}

INPUT = {
    "real": "the real batch [B, C*H*W] F32 in [-1, 1] (the digits through upstream's transforms)",
    "labels": "cgan: the real batch's labels [B] I64",
    "z": "the noise [B, latent] F32 (upstream np.random.normal(0, 1)); aae: the prior sample of the D update",
    "gen_labels": "cgan: the labels of the fakes [B] I64 (upstream np.random.randint(0, n_classes, B))",
    "alpha": "wgan_gp: the interpolation weights [B, 1] F32 in [0, 1) (upstream np.random.random((B, 1, 1, 1)))",
    "eps": "aae: the reparameterization noise [B, latent] F32 (upstream np.random.normal inside the encoder)",
}


def optimizer_meta(o: fam.Options):
    adam = {"type": "Adam", "lr": o.lr, "betas": [o.b1, o.b2], "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False}
    if o.model == "wgan":
        rms = {"type": "RMSprop", "lr": o.lr, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0,
               "centered": False}
        return {"generator": rms, "discriminator": rms}
    if o.model == "aae":
        return {"generator": {**adam, "params": "encoder then decoder (one optimizer)"}, "discriminator": adam}
    d = dict(adam)
    if o.model == "softmax_gan":
        d["note"] = "updates through p.data (PyTorch <= 1.4), see the step"
    return {"generator": adam, "discriminator": d}


def state(models):
    return {f"{n}.{k}": v.detach().clone().contiguous() for n, m in models.items() for k, v in m.state_dict().items()}


class GradRecorder:
    """Wraps an optimizer: step() first keeps a copy of the gradient each parameter is updated with (Adam's and
    RMSprop's first update depends on little more than its sign, so the after.* tensors alone would not show a
    gradient's size)."""

    def __init__(self, inner, named, into):
        self.inner, self.named, self.into = inner, named, into

    def zero_grad(self):
        self.inner.zero_grad()

    def step(self):
        for k, p in self.named:
            self.into[k] = p.grad.detach().clone().contiguous()
        self.inner.step()


def recording_optimizers(models, optimizers, into):
    g_nets = ["encoder", "decoder"] if "encoder" in models else ["generator"]
    nets = {"generator": g_nets, "discriminator": ["discriminator"]}
    return {
        key: GradRecorder(opt, [(f"{n}.{k}", p) for n in nets[key] for k, p in models[n].named_parameters()], into)
        for key, opt in optimizers.items()
    }


def inputs_of(batch, rnd, o: fam.Options):
    t = {"real": batch["real"].reshape(B, -1)}
    if o.model == "cgan":
        t["labels"] = batch["labels"]
        t["gen_labels"] = rnd["gen_labels"]
        for k, m in enumerate(rnd["dropout"].masks):
            t[f"dropout.{k}"] = m.to(torch.uint8)
    for k in ("z", "alpha", "eps"):
        if k in rnd:
            t[k] = rnd[k]
    return {k: v.contiguous() for k, v in t.items()}


def randomness_from(tensors, prefix, o: fam.Options):
    """The step's randomness from a fixture's tensors (no generator is touched)."""
    rnd = {k: tensors[f"{prefix}.{k}"] for k in ("z", "alpha", "eps", "gen_labels") if f"{prefix}.{k}" in tensors}
    if o.model == "cgan":
        masks, k = [], 0
        while f"{prefix}.dropout.{k}" in tensors:
            masks.append(tensors[f"{prefix}.dropout.{k}"].to(torch.float32))
            k += 1
        rnd["dropout"] = fam.DropoutMasks(masks)
    return rnd


def flat(out):
    """Images as [B, C*H*W], as the engine holds them."""
    return {k: (v.reshape(v.shape[0], -1).contiguous() if v.dim() == 4 else v) for k, v in out.items()}


def steps_of(model):
    return 2 if model in fam.WASSERSTEIN else 1


def batch_indices(s):
    return [1250 * k + 625 * s for k in range(B)]


def run_case(o: fam.Options, data, labels, steps):
    """Builds the networks, runs the steps; returns (models, before, inputs per step, results per step)."""
    torch.manual_seed(SEED_INIT)
    models = fam.build_models(o)
    before = state(models)
    grads = {}
    optimizers = recording_optimizers(models, fam.make_optimizers(models, o), grads)
    gen = torch.Generator().manual_seed(SEED_DRAWS)
    inputs, results = [], []
    for s in range(steps):
        idx = batch_indices(s)
        batch = {"i": s, "real": data[idx].clone(), "labels": labels[idx].clone()}
        rnd = fam.draw_randomness(o, B, gen)
        torch.manual_seed(SEED_GLOBAL + s)
        if o.model == "cgan":  # our masks, replayed (no draw from torch's generator)
            rnd["dropout"] = fam.DropoutMasks(cgan_masks(o, s))
        grads.clear()
        out = flat(fam.step(models, optimizers, batch, rnd, o))
        inputs.append(inputs_of(batch, rnd, o))
        results.append({"out": out, "after": state(models), "grad": dict(grads)})
    if len(results) == 2:  # a critic-only iteration leaves G's parameters (not its running statistics) unchanged
        for k, _ in models["generator"].named_parameters():
            assert torch.equal(results[0]["after"][f"generator.{k}"], results[1]["after"][f"generator.{k}"]), k
    return models, before, inputs, results


def describe(tensors, models, o: fam.Options, cases):
    meaning = {}
    for n, m in models.items():
        for k, v in m.state_dict().items():
            kind = "BatchNorm running statistic" if "running" in k else (
                "count of train-mode forwards of this BatchNorm" if k.endswith("num_batches_tracked") else "parameter")
            meaning[f"{n}.{k}"] = f"{n} {kind}, shape {list(v.shape)}, before step 1 (every case)"
    passes = ["D(gen, gen_labels), G step", "D(real, labels)", "D(gen.detach(), gen_labels)"]
    for key in sorted(tensors):
        parts = key.split(".")
        case = parts[0] if parts[0] in cases else None
        if case:
            parts = parts[1:]
        head, rest = parts[0], ".".join(parts[1:])
        where = f" ({case})" if case else ""
        step = "2" if head.endswith("2") else "1"
        if head in ("input", "input2"):
            if parts[1] == "dropout":
                k = int(parts[2])
                pass_, layer, r0 = CGAN_MASKS[k]
                w = o.hidden(512)
                meaning[key] = (f"keep mask {k} [B, {w}] U8 of step {step}: {passes[k // 2]}, the dropout after "
                                f"Linear model.{2 if k % 2 == 0 else 5}: our counter-based mask (native/src/rng.rs), "
                                f"element (b, j) kept iff dropout_mask(dropout_key(seed {SEED_DROPOUT}, stream "
                                f"{int(step) - 1}, pass {pass_}, layer {layer}), ({r0} + b) * {w} + j, "
                                f"dropout_threshold(0.4), dropout_scale(0.4)) != 0 (rows {r0} to {r0 + B - 1} of "
                                f"our pass {pass_}); out = pre * (mask / 0.6f) (float32 1 / 0.6f = 0x3FD55555), "
                                f"then LeakyReLU")
            else:
                meaning[key] = INPUT[parts[1]] + f", step {step}"
        elif head in ("out", "out2"):
            meaning[key] = OUT[rest] + f", step {step}{where}, shape {list(tensors[key].shape)}"
        elif head in ("after", "after2"):
            meaning[key] = f"{rest} after step {step}{where}"
        elif head in ("grad", "grad2"):
            meaning[key] = (f"the gradient {rest} was updated with in step {step}{where} (its .grad at the "
                            f"optimizer's step(); softmax_gan's G: the accumulated one)")
    return meaning


def pre_bn_biases(models):
    out = []
    for n, m in models.items():
        for seq_name, seq in m.named_modules():
            if isinstance(seq, torch.nn.Sequential):
                kids = list(seq.named_children())
                for (k, a), (_, b) in zip(kids, kids[1:]):
                    if isinstance(a, torch.nn.Linear) and isinstance(b, torch.nn.BatchNorm1d):
                        out.append(f"{n}.{seq_name}.{k}.bias")
    return out


def make(name, data_cache, width, idx_dir):
    model, cases = FILES[name]
    tensors, case_meta, shared = {}, {}, None
    for c, (case, overrides) in enumerate(cases.items()):
        o = fam.options(model, width=width, **overrides)
        if o.img_size not in data_cache:
            data_cache[o.img_size] = fam.load_digits(idx_dir, o.img_size)
        steps = 1 if (name, case) in ONE_STEP else steps_of(model)
        models, before, inputs, results = run_case(o, *data_cache[o.img_size], steps)
        prefix = "" if c == 0 else f"{case}."
        if c == 0:
            shared = (before, inputs)
            tensors.update(before)
            for s, inp in enumerate(inputs):
                tensors.update({f"input{'2' if s else ''}.{k}": v for k, v in inp.items()})
            o0, models0 = o, models
        else:  # the same initial state and inputs as the first case
            for a, b in zip([shared[0]] + shared[1][: len(inputs)], [before] + inputs):
                assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f"{name}/{case} inputs"
        for s, res in enumerate(results):
            sfx = "2" if s else ""
            for group in ("out", "after", "grad"):
                for k, v in res[group].items():
                    fallback = resolve(tensors, prefix, group, s, k)
                    if fallback is None or not torch.equal(fallback, v):  # else its fallback says the same
                        tensors[f"{prefix}{group}{sfx}.{k}"] = v
        case_meta[case] = {"prefix": prefix, "options_changed": overrides, "steps": len(results)}
    n_steps = steps_of(model)
    meta = {
        "fixture": name,
        "model": model,
        "upstream": f"{fam.UPSTREAM} implementations/{model}/{model}.py",
        "written_by": "bench/reference/make_family_fixtures.py (bench/reference/family.py)",
        "torch": torch.__version__,
        "dtype": "float32, CPU",
        "batch": B,
        "steps": steps_of(model),
        "batch_indices": [batch_indices(s) for s in range(steps_of(model))],
        "seeds": {"init": SEED_INIT, "draws": SEED_DRAWS, "dropout": (
            f"our stream: seed {SEED_DROPOUT}, stream = the step (see dropout_masks)" if model == "cgan"
            else [SEED_GLOBAL + s for s in range(n_steps)])},
        "width": width,
        "hidden_widths": "upstream's hidden widths divided by width",
        "options": o0.as_dict(),
        "optimizers": optimizer_meta(o0),
        "optimizer_state": "zero before step 1 (fresh optimizers); carried from step 1 to step 2",
        "cases": case_meta,
        "fallbacks": "a tensor absent from the file is its fallback's: <case>.<group><step>.X falls back to the "
        "default case's <group><step>.X, the default case's after2.X to after.X (G's parameters after a critic-only "
        "step); the writer leaves out exactly the tensors bitwise equal to their fallback",
        "pre_bn_biases": pre_bn_biases(models0),
        "pre_bn_biases_note": "Linear biases followed by a train-mode BatchNorm: their gradient is 0 in exact "
        "arithmetic and PyTorch's is rounding noise (about 1e-10), which Adam's first step turns into a move of "
        "about +-lr: compare them with a tolerance of a few lr, not bitwise",
        "nets": {n: str(m) for n, m in models0.items()},
        "step": STEP[model],
        **({"dropout_masks": {
            "source": "our counter-based stream (native/src/rng.rs, mirrored by bench/reference/rng_mirror.py), not "
            "torch's generator",
            "seed": SEED_DROPOUT,
            "stream": "the step, 0-based",
            "p": 0.4,
            "order": [{"mask": k, "pass": pass_, "layer": layer, "first_row": r0}
                      for k, (pass_, layer, r0) in enumerate(CGAN_MASKS)],
            "kept": "element (b, j) of mask k kept iff dropout_mask(dropout_key(seed, stream, pass, layer), "
            "(first_row + b) * width + j, dropout_threshold(p), dropout_scale(p)) != 0, width = D's hidden width; "
            "pass 1 is D(gen) in the G step, pass 2 D over [fake; real] (2B rows), layer 1 the Linear model.2, "
            "layer 2 model.5",
        }} if model == "cgan" else {}),
        "tensors": describe(tensors, models0, o0, [c for c in cases if c != next(iter(cases))]),
    }
    return tensors, meta


def replay(path, name):
    """Rebuilds every case's steps from the file alone (fresh networks loaded from the stored state, the stored
    inputs and dropout masks, no draw from any generator); returns the max |diff| over every out/after/grad tensor."""
    t = load_file(path)
    model, cases = FILES[name]
    meta = json.loads(safe_open_meta(path))
    worst = 0.0
    for c, (case, overrides) in enumerate(cases.items()):
        o = fam.options(model, width=meta["width"], **overrides)
        prefix = "" if c == 0 else f"{case}."
        torch.manual_seed(12345)  # an unrelated init, overwritten by the stored state
        models = fam.build_models(o)
        for n, m in models.items():
            m.load_state_dict({k[len(n) + 1 :]: v for k, v in t.items() if k.startswith(f"{n}.")})
        grads = {}
        optimizers = recording_optimizers(models, fam.make_optimizers(models, o), grads)
        for s in range(meta["cases"][case]["steps"]):
            sfx = "2" if s else ""
            batch = {"i": s, "real": t[f"input{sfx}.real"], "labels": t.get(f"input{sfx}.labels")}
            torch.manual_seed(999)  # replay must not depend on the generator
            grads.clear()
            got = {"out": flat(fam.step(models, optimizers, batch, randomness_from(t, f"input{sfx}", o), o)),
                   "after": state(models), "grad": grads}
            for group, values in got.items():
                for k, v in values.items():
                    want = resolve(t, prefix, group, s, k)
                    worst = max(worst, (v.double() - want.double()).abs().max().item())
                stored = {k[len(f"{prefix}{group}{sfx}.") :] for k in t if k.startswith(f"{prefix}{group}{sfx}.")}
                assert stored <= set(values), f"{path}: unexpected {prefix}{group}{sfx}.* tensors"
    return worst


def resolve(t, prefix, group, s, name):
    """A fixture tensor, by the fallback rules: a tensor absent from the file is its fallback's. A case's
    `<case>.<group><step>.X` falls back to the default case's `<group><step>.X`; the default case's `after2.X` to
    `after.X` (G's parameters after a critic-only step). The writer leaves out exactly the tensors equal (bitwise) to
    their fallback. None when there is neither."""
    key = f"{prefix}{group}{'2' if s else ''}.{name}"
    if key in t:
        return t[key]
    if prefix:
        return resolve(t, "", group, s, name)
    if group == "after" and s == 1:
        return resolve(t, "", "after", 0, name)
    return None


def safe_open_meta(path):
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        return f.metadata()["fixture"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=sorted(FILES), help="fixtures to write (default: all)")
    ap.add_argument("--width", type=int, default=16, help="hidden widths divided by this (default 16)")
    ap.add_argument("--idx_dir", default="bench/.data")
    ap.add_argument("--out", default="tests/fixtures/family")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    cache = {}
    total = 0
    for name in args.only or FILES:
        tensors, meta = make(name, cache, args.width, args.idx_dir)
        path = os.path.join(args.out, f"{name}.safetensors")
        save_file(tensors, path, metadata={"fixture": json.dumps(meta, indent=1)})
        os.chmod(path, 0o644)
        size = os.path.getsize(path)
        total += size
        worst = replay(path, name)
        if worst != 0.0:
            raise SystemExit(f"{path}: replaying the steps from the file differs by {worst}")
        print(f"wrote {path}: {len(tensors)} tensors, {size / 1e6:.2f} MB, every case replays exactly")
        for case, cm in meta["cases"].items():
            losses = []
            for s in range(cm["steps"]):
                for k in ("d_loss", "g_loss"):
                    v = resolve(tensors, cm["prefix"], "out", s, k)
                    if v is not None:
                        losses.append(f"{'out2' if s else 'out'}.{k} {float(v):.6f}")
            print(f"  {case}: {', '.join(losses)}")
    print(f"total {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
