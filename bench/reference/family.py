"""The MLP family of PyTorch-GAN, written again for deno-gan: the networks and one training iteration of each model,
with every random draw injected, so that a fixture can record the draws and our engine can be fed the same values.

Upstream is eriklindernoren/PyTorch-GAN at 36d3c77 (its last commit), implementations/<model>/<model>.py. This is
our own code, not a copy: each network and each step says which upstream lines it follows, and where upstream is
odd or wrong, what it does and which option changes it. bench/reference/FAMILY.md is the contract in prose.

Models (MODELS) and where they come from:

  gan          implementations/gan/gan.py: BCE, G step then D step
  cgan         implementations/cgan/cgan.py: label embeddings, a D with Dropout(0.4), MSE, img_size 32
  wgan         implementations/wgan/wgan.py: RMSprop, weight clipping, n_critic
  wgan_gp      implementations/wgan_gp/wgan_gp.py: gradient penalty (lambda 10), Adam, n_critic
  wgan_div     implementations/wgan_div/wgan_div.py: W-div penalty (k 2, p 6), Adam, n_critic
  bgan         implementations/bgan/bgan.py: boundary-seeking G loss
  softmax_gan  implementations/softmax_gan/softmax_gan.py: partition-function losses from one forward pass
  aae          implementations/aae/aae.py: encoder / decoder / latent discriminator, 0.001 / 0.999 loss weights

Loss options of the gan model (LOSSES; Options.loss): bce (upstream), mse, hinge, relativistic, relativistic_avg.

Every network keeps upstream's module structure, so its state_dict names are upstream's (`model.0.weight`,
`label_emb.weight`, `mu.weight`, ...) and a state_dict trained by upstream loads into ours and back. Options.width
divides every hidden width (128 -> 128 / width, ...), for fixtures small enough to commit; 1 is upstream.

One step, `step(models, optimizers, batch, randomness, opts)`, is upstream's inner loop body for one batch index i:
`batch` holds the batch index `i` (upstream's `i`, which restarts at 0 every epoch: the n_critic schedule of the
Wasserstein models restarts with it), `real` (the images as the DataLoader gives them, [B, C, H, W] or flat
[B, C*H*W], in [-1, 1]) and for cgan `labels`; `randomness` holds what upstream draws inside the body: `z` (aae: the
prior sample of the D update), `gen_labels` (cgan), `alpha` (wgan_gp, [B, 1]), `eps` (aae's reparameterization
noise) and `dropout` (a DropoutMasks, cgan). It returns the losses and intermediates as detached tensors.

    bench/.venv/bin/python bench/reference/family.py --check            # every model, 200 iterations, and the checks
    bench/.venv/bin/python bench/reference/family.py --check --models cgan --iters 50 --width 4
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

UPSTREAM = "eriklindernoren/PyTorch-GAN@36d3c77"
MODELS = ("gan", "cgan", "wgan", "wgan_gp", "wgan_div", "bgan", "softmax_gan", "aae")
LOSSES = ("bce", "mse", "hinge", "relativistic", "relativistic_avg")
WASSERSTEIN = ("wgan", "wgan_gp", "wgan_div")


# --------------------------------------------------------------------------------------------------------------------
# Options: upstream's flags and defaults, plus the switches for upstream's bugs (all off: faithful by default)
# --------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Options:
    model: str = "gan"
    loss: str = "bce"  # gan only (see LOSSES)
    lr: float = 0.0002
    b1: float = 0.5
    b2: float = 0.999
    latent_dim: int = 100
    img_size: int = 28
    channels: int = 1
    n_classes: int = 10  # cgan
    n_critic: int = 5  # wgan, wgan_gp, wgan_div
    clip_value: float = 0.01  # wgan; parsed but never used by wgan_gp.py and wgan_div.py (issue 196)
    lambda_gp: float = 10.0  # wgan_gp (a module constant upstream)
    k: float = 2.0  # wgan_div (module constants upstream)
    p: float = 6.0
    width: int = 1  # hidden widths are divided by this; 1 is upstream
    # wgan_gp's penalty norm: "sample" (upstream since 22ce15e, 2018-08-26: the L2 norm of each sample's whole
    # gradient) or "pixel" (wgan_gp.py before that commit, issue 20: gradients.norm(2, dim=1) on the [B, C, H, W]
    # gradient, a norm over the channels only, i.e. |g| per pixel for MNIST, then the mean over B * H * W)
    gp_norm: str = "sample"
    # wgan_gp, wgan_div: upstream parses --clip_value and never uses it (issue 196). True clips D's parameters to
    # [-clip_value, clip_value] after every critic update, as wgan.py does. Off (upstream) by default.
    gp_clip: bool = False
    # softmax_gan: upstream backpropagates g_loss through the graph of the forward pass made before optimizer_D.step().
    # With the PyTorch of its time (<= 1.4, where optimizers wrote `p.data`) that backward silently multiplied by D's
    # *updated* weights; PyTorch >= 1.5 refuses it ("modified by an inplace operation"). Default: the 2018 behaviour.
    # True: the gradient of g_loss is taken through D's weights before the update (the consistent gradient).
    softmax_fresh_d: bool = False
    # softmax_gan: upstream zeroes G's gradients once, before d_loss.backward(), which (gen_imgs not being detached)
    # leaves d_loss's gradient in G's .grad; g_loss.backward() adds to it, so G follows grad(d_loss + g_loss).
    # True: G's gradient is g_loss's alone.
    softmax_g_loss_only: bool = False

    def img_shape(self):
        return (self.channels, self.img_size, self.img_size)

    def pixels(self):
        return self.channels * self.img_size * self.img_size

    def hidden(self, n):
        if n % self.width:
            raise ValueError(f"width {self.width} does not divide the hidden width {n}")
        return n // self.width

    def as_dict(self):
        return dataclasses.asdict(self)


# Upstream's argparse defaults that differ from Options' (each script's own).
UPSTREAM_DEFAULTS = {
    "gan": {},
    "cgan": {"img_size": 32},  # cgan.py: --img_size 32, --n_classes 10
    "wgan": {"lr": 0.00005},  # wgan.py: RMSprop(lr=5e-5), --n_critic 5, --clip_value 0.01; no b1/b2 flags
    "wgan_gp": {},  # lambda_gp = 10
    "wgan_div": {},  # k = 2, p = 6
    "bgan": {},
    "softmax_gan": {},
    "aae": {"latent_dim": 10, "img_size": 32},  # aae.py: --latent_dim 10, --img_size 32
}


def options(model, **overrides):
    """Upstream's defaults for `model`, then `overrides`."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r} (one of {', '.join(MODELS)})")
    o = Options(model=model, **{**UPSTREAM_DEFAULTS[model], **overrides})
    if o.loss not in LOSSES:
        raise ValueError(f"unknown loss {o.loss!r} (one of {', '.join(LOSSES)})")
    if o.loss != "bce" and o.model != "gan":
        raise ValueError(f"--loss {o.loss} is an option of the gan model only (model {o.model!r})")
    if o.gp_norm not in ("sample", "pixel"):
        raise ValueError(f"gp_norm must be 'sample' or 'pixel', not {o.gp_norm!r}")
    return o


# --------------------------------------------------------------------------------------------------------------------
# Dropout whose masks can be recorded or given
# --------------------------------------------------------------------------------------------------------------------


class DropoutMasks:
    """The keep masks of the Dropout forwards of one step, in the order the forwards run.

    DropoutMasks() records: each forward draws its mask as nn.Dropout does on the CPU (at::native's _dropout_impl:
    `torch.empty_like(x).bernoulli_(1 - p)` from the global generator) and keeps it in `.masks` (float 0/1).
    DropoutMasks(masks) replays: the forwards take the given masks in order and draw nothing; `done()` checks that
    every mask was used."""

    def __init__(self, masks=None):
        self.replay = masks is not None
        self.masks = [m for m in masks] if masks is not None else []
        self.used = 0

    def next(self, x, p):
        if self.replay:
            if self.used >= len(self.masks):
                raise ValueError(f"dropout forward {self.used} has no mask (only {len(self.masks)} given)")
            keep = self.masks[self.used]
            if tuple(keep.shape) != tuple(x.shape):
                raise ValueError(f"dropout mask {self.used} has shape {list(keep.shape)}, the input {list(x.shape)}")
        else:
            keep = torch.empty_like(x).bernoulli_(1 - p)
            self.masks.append(keep)
        self.used += 1
        return keep

    def done(self):
        if self.replay and self.used != len(self.masks):
            raise ValueError(f"{len(self.masks)} dropout masks given, {self.used} used")


class InjectableDropout(nn.Dropout):
    """nn.Dropout (no parameters, so the state_dict is unchanged) whose mask comes from `self.source` when set.

    The arithmetic is at::native's CPU dropout: noise = keep / (1 - p) (float32: 0 or 1 / 0.6f = 0x3FD55555 for
    p = 0.4), output = input * noise. With no source it is plain nn.Dropout."""

    source: DropoutMasks | None = None

    def forward(self, x):
        if not self.training or self.source is None or self.p == 0:
            return super().forward(x)
        keep = self.source.next(x, self.p)
        return x * keep.to(x.dtype).div(1 - self.p)


@contextlib.contextmanager
def dropout_from(module, source):
    """Within the block every InjectableDropout of `module` takes its masks from `source` (None: nn.Dropout's draws)."""
    layers = [m for m in module.modules() if isinstance(m, InjectableDropout)]
    for m in layers:
        m.source = source
    try:
        yield
        if source is not None:
            source.done()
    finally:
        for m in layers:
            m.source = None


# --------------------------------------------------------------------------------------------------------------------
# Networks (upstream's module structure and names)
# --------------------------------------------------------------------------------------------------------------------


def linear_block(n_in, n_out, bn_eps=None):
    """Upstream's `block(in_feat, out_feat, normalize)`: Linear, then BatchNorm1d when normalizing, then LeakyReLU(0.2).
    Upstream writes BatchNorm1d(out_feat, 0.8): the second positional argument is eps, so eps = 0.8 (momentum stays
    0.1), a quirk kept for fidelity."""
    layers = [nn.Linear(n_in, n_out)]
    if bn_eps is not None:
        layers.append(nn.BatchNorm1d(n_out, bn_eps))
    return layers + [nn.LeakyReLU(0.2, inplace=True)]


class Generator(nn.Module):
    """gan, wgan, wgan_gp, wgan_div, bgan, softmax_gan and (with labels) cgan:
    z [B, latent] -> 128 -> 256 (BN) -> 512 (BN) -> 1024 (BN) -> C*H*W, Tanh; LeakyReLU(0.2), BN eps 0.8.
    Names model.0, model.2/3, model.5/6, model.8/9, model.11 (and cgan's label_emb, created first as upstream does).
    cgan: the input is cat(label_emb(labels), z), the embedding first (cgan.py Generator.forward)."""

    def __init__(self, o: Options):
        super().__init__()
        self.img_shape = o.img_shape()
        n_in = o.latent_dim
        if o.model == "cgan":
            self.label_emb = nn.Embedding(o.n_classes, o.n_classes)  # N(0, 1) init, PyTorch's default
            n_in += o.n_classes
        h = [o.hidden(n) for n in (128, 256, 512, 1024)]
        layers = linear_block(n_in, h[0])  # the first block has no BatchNorm
        for a, b in zip(h, h[1:]):
            layers += linear_block(a, b, bn_eps=0.8)
        self.model = nn.Sequential(*layers, nn.Linear(h[-1], o.pixels()), nn.Tanh())

    def forward(self, z, labels=None):
        if labels is not None:
            z = torch.cat((self.label_emb(labels), z), -1)
        return self.model(z).view(z.shape[0], *self.img_shape)


class Discriminator(nn.Module):
    """gan, bgan (Sigmoid), wgan, wgan_gp, wgan_div, softmax_gan and the gan loss options (no Sigmoid), aae's latent D
    (Sigmoid, input latent_dim): n_in -> 512 -> 256 -> 1, LeakyReLU(0.2). Names model.0, model.2, model.4.
    softmax_gan.py sizes the input img_size ** 2 (it ignores channels); the caller passes that."""

    def __init__(self, o: Options, n_in, sigmoid):
        super().__init__()
        h1, h2 = o.hidden(512), o.hidden(256)
        layers = [nn.Linear(n_in, h1), nn.LeakyReLU(0.2, inplace=True), nn.Linear(h1, h2)]
        layers += [nn.LeakyReLU(0.2, inplace=True), nn.Linear(h2, 1)]
        self.model = nn.Sequential(*layers, *([nn.Sigmoid()] if sigmoid else []))

    def forward(self, x):
        return self.model(x.view(x.shape[0], -1))


class ConditionalDiscriminator(nn.Module):
    """cgan: cat(img_flat, label_embedding(labels)) (the image first, cgan.py Discriminator.forward)
    -> 512 -> 512 -> 512 -> 1, no Sigmoid. Each hidden layer after the first is Linear, Dropout(0.4), LeakyReLU(0.2):
    the dropout comes before the activation. Names label_embedding.weight, model.0, model.2, model.5, model.8
    (model.3 and model.6 are the dropouts)."""

    def __init__(self, o: Options):
        super().__init__()
        self.label_embedding = nn.Embedding(o.n_classes, o.n_classes)
        h = o.hidden(512)
        layers = [nn.Linear(o.n_classes + o.pixels(), h), nn.LeakyReLU(0.2, inplace=True)]
        for _ in range(2):
            layers += [nn.Linear(h, h), InjectableDropout(0.4), nn.LeakyReLU(0.2, inplace=True)]
        self.model = nn.Sequential(*layers, nn.Linear(h, 1))

    def forward(self, img, labels):
        return self.model(torch.cat((img.view(img.shape[0], -1), self.label_embedding(labels)), -1))


class Encoder(nn.Module):
    """aae: C*H*W -> 512 -> 512 (BatchNorm1d(512): eps 1e-5, the default, unlike the generators' 0.8), LeakyReLU(0.2)
    each; then two heads mu = Linear(512, latent), logvar = Linear(512, latent); z = eps * exp(logvar / 2) + mu
    (aae.py's reparameterization, which draws eps ~ N(0, 1) [B, latent] with np.random inside the forward: here
    eps is given). Names model.0, model.2, model.3 (BN), mu, logvar."""

    def __init__(self, o: Options):
        super().__init__()
        h = o.hidden(512)
        layers = [nn.Linear(o.pixels(), h), nn.LeakyReLU(0.2, inplace=True), nn.Linear(h, h), nn.BatchNorm1d(h)]
        self.model = nn.Sequential(*layers, nn.LeakyReLU(0.2, inplace=True))
        self.mu = nn.Linear(h, o.latent_dim)
        self.logvar = nn.Linear(h, o.latent_dim)

    def heads(self, img):
        x = self.model(img.view(img.shape[0], -1))
        return self.mu(x), self.logvar(x)

    def forward(self, img, eps):
        mu, logvar = self.heads(img)
        std = torch.exp(logvar / 2)
        return eps * std + mu, mu, logvar


class Decoder(nn.Module):
    """aae: latent -> 512 -> 512 (BatchNorm1d(512), eps 1e-5) -> C*H*W, LeakyReLU(0.2), Tanh.
    Names model.0, model.2, model.3 (BN), model.5."""

    def __init__(self, o: Options):
        super().__init__()
        self.img_shape = o.img_shape()
        h = o.hidden(512)
        layers = [nn.Linear(o.latent_dim, h), nn.LeakyReLU(0.2, inplace=True), nn.Linear(h, h), nn.BatchNorm1d(h)]
        self.model = nn.Sequential(*layers, nn.LeakyReLU(0.2, inplace=True), nn.Linear(h, o.pixels()), nn.Tanh())

    def forward(self, z):
        return self.model(z).view(z.shape[0], *self.img_shape)


def build_models(o: Options):
    """The model's networks, PyTorch's default init from the global generator, in upstream's creation order."""
    if o.model == "aae":
        return {
            "encoder": Encoder(o),
            "decoder": Decoder(o),
            "discriminator": Discriminator(o, o.latent_dim, sigmoid=True),
        }
    g = Generator(o)
    if o.model == "cgan":
        d = ConditionalDiscriminator(o)
    elif o.model == "softmax_gan":
        d = Discriminator(o, o.img_size**2, sigmoid=False)
    else:
        sigmoid = o.model in ("gan", "bgan") and o.loss == "bce"
        d = Discriminator(o, o.pixels(), sigmoid=sigmoid)
    return {"generator": g, "discriminator": d}


class LegacyDataOptimizer:
    """An optimizer that writes the parameters through `p.data`, as torch.optim did before PyTorch 1.5: the update
    does not bump the parameters' version counters, so a graph built before it can still be backpropagated, and
    its backward then reads the updated values. softmax_gan's step needs this to do what upstream did in 2018."""

    def __init__(self, params, make):
        self.params = list(params)
        self.aliases = [p.data for p in self.params]
        self.inner = make(self.aliases)

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        for a, p in zip(self.aliases, self.params):
            a.grad = p.grad
        self.inner.step()
        for a in self.aliases:
            a.grad = None


def make_optimizers(models, o: Options):
    """Upstream's optimizers: Adam(lr, betas=(b1, b2)) for each net, except wgan's RMSprop(lr) (alpha 0.99, eps 1e-8,
    PyTorch's defaults) and aae's one Adam over chain(encoder, decoder) for "generator"."""

    def adam(params):
        return torch.optim.Adam(params, lr=o.lr, betas=(o.b1, o.b2))

    if o.model == "wgan":
        return {k: torch.optim.RMSprop(m.parameters(), lr=o.lr) for k, m in models.items()}
    if o.model == "aae":
        params = itertools.chain(models["encoder"].parameters(), models["decoder"].parameters())
        return {"generator": adam(params), "discriminator": adam(models["discriminator"].parameters())}
    opts = {"generator": adam(models["generator"].parameters())}
    if o.model == "softmax_gan":
        opts["discriminator"] = LegacyDataOptimizer(models["discriminator"].parameters(), adam)
    else:
        opts["discriminator"] = adam(models["discriminator"].parameters())
    return opts


# --------------------------------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------------------------------


def ones(n):
    return torch.ones(n, 1)


def zeros(n):
    return torch.zeros(n, 1)


def bce_logits(x, target):
    return F.binary_cross_entropy_with_logits(x, target)


def gan_d_loss(loss, r, f):
    """D's loss of the gan model. r, f: D's outputs [B, 1] on the real and the (detached) fake batch: probabilities for
    bce (D ends in Sigmoid, as gan.py), logits (no Sigmoid) for the others."""
    B = r.shape[0]
    if loss == "bce":  # gan.py: (BCE(D(x), 1) + BCE(D(G(z)), 0)) / 2, nn.BCELoss (log terms clamped at -100)
        return (nn.BCELoss()(r, ones(B)) + nn.BCELoss()(f, zeros(B))) / 2
    if loss == "mse":  # LSGAN (Mao et al. 2017), targets 1 / 0, as lsgan.py and cgan.py: (MSE(r, 1) + MSE(f, 0)) / 2
        return (nn.MSELoss()(r, ones(B)) + nn.MSELoss()(f, zeros(B))) / 2
    if loss == "hinge":  # Lim & Ye 2017, Miyato et al. 2018 (SN-GAN): mean(relu(1 - r)) + mean(relu(1 + f))
        return torch.mean(F.relu(1 - r)) + torch.mean(F.relu(1 + f))
    if loss == "relativistic":  # RSGAN (Jolicoeur-Martineau 2018, arXiv:1807.00734; her code's loss_D 5):
        return bce_logits(r - f, ones(B))  # BCE-with-logits(r_i - f_i, 1), pairs by batch index
    if loss == "relativistic_avg":  # RaSGAN (same paper; loss_D 6, with her corrected sign of the fake term)
        return (bce_logits(r - torch.mean(f), ones(B)) + bce_logits(f - torch.mean(r), zeros(B))) / 2
    raise ValueError(loss)


def gan_g_loss(loss, f, r):
    """G's loss of the gan model. f: D(G(z)) [B, 1] (with the graph into G); r: D(x) on the iteration's real batch,
    used by the relativistic losses only (a constant for G)."""
    B = f.shape[0]
    if loss == "bce":  # gan.py: BCE(D(G(z)), 1), the non-saturating loss
        return nn.BCELoss()(f, ones(B))
    if loss == "mse":  # LSGAN: MSE(f, 1)
        return nn.MSELoss()(f, ones(B))
    if loss == "hinge":  # -mean(f)
        return -torch.mean(f)
    if loss == "relativistic":  # RSGAN: BCE-with-logits(f_i - r_i, 1)
        return bce_logits(f - r, ones(B))
    if loss == "relativistic_avg":  # RaSGAN: (BCEwl(r - mean(f), 0) + BCEwl(f - mean(r), 1)) / 2
        return (bce_logits(r - torch.mean(f), zeros(B)) + bce_logits(f - torch.mean(r), ones(B))) / 2
    raise ValueError(loss)


def boundary_seeking_loss(p):
    """bgan.py's G loss: 0.5 * mean((log D(G(z)) - log(1 - D(G(z))))^2) on D's probabilities, unclamped (a saturated
    D gives inf). Upstream passes the targets too and ignores them. Equal to 0.5 * mean(logit^2) up to rounding."""
    return 0.5 * torch.mean((torch.log(p) - torch.log(1 - p)) ** 2)


def gradient_penalty(D, real, fake, alpha, o: Options):
    """wgan_gp.py's compute_gradient_penalty with alpha given ([B, 1]; upstream draws np.random.random((B, 1, 1, 1)),
    one alpha per sample since d2977bc): x = alpha * real + (1 - alpha) * fake, g = dD(x)/dx with create_graph, then
    "sample": mean_b (|g_b|_2 - 1)^2 (upstream), "pixel": mean_{b,h,w} (|g_{b,:,h,w}|_2 - 1)^2 (issue 20).
    real, fake: [B, C, H, W], not part of any graph (upstream passes real_imgs.data, fake_imgs.data)."""
    B = real.shape[0]
    a = alpha.view(B, 1, 1, 1)
    interpolates = (a * real + ((1 - a) * fake)).requires_grad_(True)
    d_interpolates = D(interpolates)
    grad = torch.autograd.grad(d_interpolates, interpolates, ones(B), create_graph=True, retain_graph=True)[0]
    norms = grad.norm(2, dim=1) if o.gp_norm == "pixel" else grad.view(B, -1).norm(2, dim=1)
    return ((norms - 1) ** 2).mean(), norms


def clip_(module, c):
    """wgan.py: for p in discriminator.parameters(): p.data.clamp_(-c, c)."""
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-c, c)


# --------------------------------------------------------------------------------------------------------------------
# One step per model
# --------------------------------------------------------------------------------------------------------------------


def _images(x, o: Options):
    """The batch as upstream's tensors: [B, C, H, W] (a flat [B, C*H*W] is viewed so; the arithmetic is the same)."""
    return x.reshape(x.shape[0], *o.img_shape())


def _out(**tensors):
    return {k: v.detach().clone() for k, v in tensors.items()}


def step_gan(models, opt, batch, rnd, o: Options):
    """gan.py (and bgan.py with its G loss): G step, then D step, on one batch and one z.
    G: zero_grad; gen = G(z); g_loss = loss(D(gen)); backward; Adam. D: zero_grad; d_loss from D(real) and
    D(gen.detach()); backward; Adam. D has no BatchNorm, so D(gen) in the G step equals D(gen.detach()) of the D
    step."""
    G, D = models["generator"], models["discriminator"]
    real = _images(batch["real"], o)
    z = rnd["z"]
    opt["generator"].zero_grad()
    gen_imgs = G(z)
    d_fake_g = D(gen_imgs)
    extra = {}
    if o.model == "bgan":
        g_loss = boundary_seeking_loss(d_fake_g)
    else:
        d_real_g = None
        if o.loss in ("relativistic", "relativistic_avg"):
            d_real_g = D(real)  # the relativistic G losses read D(x) too (current D, before its update)
            extra["d_real_g"] = d_real_g
        g_loss = gan_g_loss(o.loss, d_fake_g, d_real_g)
    g_loss.backward()
    opt["generator"].step()

    opt["discriminator"].zero_grad()
    d_real = D(real)
    d_fake = D(gen_imgs.detach())
    d_loss = gan_d_loss("bce" if o.model == "bgan" else o.loss, d_real, d_fake)
    d_loss.backward()
    opt["discriminator"].step()
    out = _out(d_loss=d_loss, g_loss=g_loss, gen_imgs=gen_imgs, d_fake_g=d_fake_g, d_real=d_real, d_fake=d_fake)
    return {**out, **_out(**extra)}


def step_cgan(models, opt, batch, rnd, o: Options):
    """cgan.py: G step then D step, MSE against 1 / 0 on D's raw output. D runs three times, in train mode, each
    drawing two dropout masks: D(gen, gen_labels) (masks 0, 1), D(real, labels) (2, 3), D(gen.detach(), gen_labels)
    (4, 5). gen_labels (upstream np.random.randint(0, n_classes, B)) condition G and both fake passes of D; the real
    pass uses the dataset's labels."""
    G, D = models["generator"], models["discriminator"]
    real = _images(batch["real"], o)
    labels, z, gen_labels = batch["labels"], rnd["z"], rnd["gen_labels"]
    B = real.shape[0]
    mse = nn.MSELoss()
    with dropout_from(D, rnd.get("dropout")):
        opt["generator"].zero_grad()
        gen_imgs = G(z, gen_labels)
        validity = D(gen_imgs, gen_labels)
        g_loss = mse(validity, ones(B))
        g_loss.backward()
        opt["generator"].step()

        opt["discriminator"].zero_grad()
        validity_real = D(real, labels)
        d_real_loss = mse(validity_real, ones(B))
        validity_fake = D(gen_imgs.detach(), gen_labels)
        d_fake_loss = mse(validity_fake, zeros(B))
        d_loss = (d_real_loss + d_fake_loss) / 2
        d_loss.backward()
        opt["discriminator"].step()
    return _out(
        d_loss=d_loss,
        g_loss=g_loss,
        gen_imgs=gen_imgs,
        validity=validity,
        validity_real=validity_real,
        validity_fake=validity_fake,
    )


def step_wgan(models, opt, batch, rnd, o: Options):
    """wgan.py: a critic update, then (i % n_critic == 0) a generator update, both from the same z.
    Critic: zero_grad; fake = G(z).detach() (G forward #1, train mode: its BN running stats move); loss_D =
    -mean(D(real)) + mean(D(fake)); backward; RMSprop; clamp every D parameter to [-clip, clip].
    Generator: zero_grad; gen = G(z) (G forward #2: the running stats move again); loss_G = -mean(D(gen)) with the
    clipped D; backward; RMSprop."""
    G, D = models["generator"], models["discriminator"]
    real = _images(batch["real"], o)
    z = rnd["z"]
    opt["discriminator"].zero_grad()
    fake_imgs = G(z).detach()
    d_real = D(real)
    d_fake = D(fake_imgs)
    d_loss = -torch.mean(d_real) + torch.mean(d_fake)
    d_loss.backward()
    opt["discriminator"].step()
    clip_(D, o.clip_value)
    out = _out(d_loss=d_loss, fake_imgs=fake_imgs, d_real=d_real, d_fake=d_fake)
    if batch["i"] % o.n_critic == 0:
        opt["generator"].zero_grad()
        gen_imgs = G(z)
        d_fake_g = D(gen_imgs)
        g_loss = -torch.mean(d_fake_g)
        g_loss.backward()
        opt["generator"].step()
        out.update(_out(g_loss=g_loss, d_fake_g=d_fake_g))
    return out


def _critic_generator_update(models, opt, z, o: Options):
    """wgan_gp.py / wgan_div.py after the critic update: optimizer_G.zero_grad() (always: it drops the G gradients
    that d_loss.backward() left, fake_imgs not being detached there), then every n_critic batches: gen = G(z) (a second
    G forward, train mode), g_loss = -mean(D(gen)), backward, Adam."""
    G, D = models["generator"], models["discriminator"]
    opt["generator"].zero_grad()
    gen_imgs = G(z)
    d_fake_g = D(gen_imgs)
    g_loss = -torch.mean(d_fake_g)
    g_loss.backward()
    opt["generator"].step()
    return _out(g_loss=g_loss, d_fake_g=d_fake_g)


def step_wgan_gp(models, opt, batch, rnd, o: Options):
    """wgan_gp.py: zero_grad D; fake = G(z) (not detached upstream; the G gradients it gets are dropped below);
    d_loss = -mean(D(real)) + mean(D(fake)) + lambda_gp * GP(real, fake.data, alpha); backward (through the GP's
    double backward); Adam on D; [gp_clip: clamp D]; zero_grad G; if i % n_critic == 0: generator update."""
    G, D = models["generator"], models["discriminator"]
    real = _images(batch["real"], o)
    z = rnd["z"]
    opt["discriminator"].zero_grad()
    fake_imgs = G(z)
    d_real = D(real)
    d_fake = D(fake_imgs)
    gp, norms = gradient_penalty(D, real.detach(), fake_imgs.detach(), rnd["alpha"], o)
    d_loss = -torch.mean(d_real) + torch.mean(d_fake) + o.lambda_gp * gp
    d_loss.backward()
    opt["discriminator"].step()
    if o.gp_clip:
        clip_(D, o.clip_value)
    out = _out(d_loss=d_loss, gp=gp, gp_norms=norms, fake_imgs=fake_imgs)
    out.update(_out(d_real=d_real, d_fake=d_fake))
    if batch["i"] % o.n_critic == 0:
        out.update(_critic_generator_update(models, opt, z, o))
    else:
        opt["generator"].zero_grad()
    return out


def step_wgan_div(models, opt, batch, rnd, o: Options):
    """wgan_div.py: real = the batch with requires_grad; zero_grad D; fake = G(z) (not detached); r = D(real),
    f = D(fake); g_r = dr/dreal, g_f = df/dfake (create_graph); div_gp = mean(|g_r|^p + |g_f|^p) * k / 2, each norm
    being (sum g^2) ** (p / 2) over a sample's pixels; d_loss = -mean(r) + mean(f) + div_gp; backward; Adam on D;
    [gp_clip: clamp D]; zero_grad G; if i % n_critic == 0: generator update."""
    G, D = models["generator"], models["discriminator"]
    real = _images(batch["real"], o).detach().clone().requires_grad_(True)
    z = rnd["z"]
    B = real.shape[0]
    opt["discriminator"].zero_grad()
    fake_imgs = G(z)
    d_real = D(real)
    d_fake = D(fake_imgs)
    real_grad = torch.autograd.grad(d_real, real, ones(B), create_graph=True, retain_graph=True)[0]
    real_grad_norm = real_grad.view(B, -1).pow(2).sum(1) ** (o.p / 2)
    fake_grad = torch.autograd.grad(d_fake, fake_imgs, ones(B), create_graph=True, retain_graph=True)[0]
    fake_grad_norm = fake_grad.view(B, -1).pow(2).sum(1) ** (o.p / 2)
    div_gp = torch.mean(real_grad_norm + fake_grad_norm) * o.k / 2
    d_loss = -torch.mean(d_real) + torch.mean(d_fake) + div_gp
    d_loss.backward()
    opt["discriminator"].step()
    if o.gp_clip:
        clip_(D, o.clip_value)
    out = _out(d_loss=d_loss, div_gp=div_gp, real_grad_norm=real_grad_norm, fake_grad_norm=fake_grad_norm)
    out.update(_out(fake_imgs=fake_imgs, d_real=d_real, d_fake=d_fake))
    if batch["i"] % o.n_critic == 0:
        out.update(_critic_generator_update(models, opt, z, o))
    else:
        opt["generator"].zero_grad()
    return out


def step_softmax_gan(models, opt, batch, rnd, o: Options):
    """softmax_gan.py: one forward pass feeds both losses.
    zero_grad G and D; gen = G(z); r = D(real), f = D(gen) (gen not detached); Z = sum(exp(-r)) + sum(exp(-f));
    d_loss = sum(r) / B + log(Z + 1e-8); d_loss.backward(retain_graph) (D's gradient, and G's through f);
    Adam on D; g_loss = (sum(r) + sum(f)) / (2B) + log(Z + 1e-8); g_loss.backward() into the same graph; Adam on G.
    Upstream's two quirks (see Options): that backward meets D's updated weights (softmax_fresh_d: the pre-update
    ones), and G's gradient is grad(d_loss) + grad(g_loss) (softmax_g_loss_only: grad(g_loss))."""
    G, D = models["generator"], models["discriminator"]
    real = _images(batch["real"], o)
    z = rnd["z"]
    opt["generator"].zero_grad()
    opt["discriminator"].zero_grad()
    B = real.shape[0]
    g_target = 1 / (B * 2)
    d_target = 1 / B
    gen_imgs = G(z)
    d_real = D(real)
    d_fake = D(gen_imgs)
    Z = torch.sum(torch.exp(-d_real)) + torch.sum(torch.exp(-d_fake))
    d_loss = d_target * torch.sum(d_real) + torch.log(Z + 1e-8)
    d_loss.backward(retain_graph=True)
    if o.softmax_fresh_d:
        g_loss = g_target * (torch.sum(d_real) + torch.sum(d_fake)) + torch.log(Z + 1e-8)
        g_params = list(G.parameters())
        g_grads = torch.autograd.grad(g_loss, g_params, retain_graph=True)
        opt["discriminator"].step()
        for p, g in zip(g_params, g_grads):
            p.grad = g.clone() if (o.softmax_g_loss_only or p.grad is None) else p.grad + g
    else:
        opt["discriminator"].step()  # through p.data: the graph above now reads D's updated weights (PyTorch <= 1.4)
        if o.softmax_g_loss_only:
            opt["generator"].zero_grad()
        g_loss = g_target * (torch.sum(d_real) + torch.sum(d_fake)) + torch.log(Z + 1e-8)
        g_loss.backward()
    opt["generator"].step()
    return _out(d_loss=d_loss, g_loss=g_loss, gen_imgs=gen_imgs, d_real=d_real, d_fake=d_fake, Z=Z)


def step_aae(models, opt, batch, rnd, o: Options):
    """aae.py: the autoencoder ("generator": encoder + decoder, one Adam) then the latent discriminator.
    zero_grad G; encoded = E(real, eps) (train-mode BN); decoded = Dec(encoded); g_loss = 0.001 * BCE(D(encoded), 1)
    + 0.999 * L1(decoded, real); backward; Adam on E and Dec. zero_grad D; z ~ N(0, 1) [B, latent] (the prior sample,
    given as randomness["z"]); d_loss = 0.5 * (BCE(D(z), 1) + BCE(D(encoded.detach()), 0)); backward; Adam on D."""
    E, Dec, D = models["encoder"], models["decoder"], models["discriminator"]
    real = _images(batch["real"], o)
    B = real.shape[0]
    bce, l1 = nn.BCELoss(), nn.L1Loss()
    opt["generator"].zero_grad()
    encoded, mu, logvar = E(real, rnd["eps"])
    decoded = Dec(encoded)
    d_encoded_g = D(encoded)
    adv_loss = bce(d_encoded_g, ones(B))
    pixel_loss = l1(decoded, real)
    g_loss = 0.001 * adv_loss + 0.999 * pixel_loss
    g_loss.backward()
    opt["generator"].step()

    opt["discriminator"].zero_grad()
    d_prior = D(rnd["z"])
    real_loss = bce(d_prior, ones(B))
    d_encoded = D(encoded.detach())
    fake_loss = bce(d_encoded, zeros(B))
    d_loss = 0.5 * (real_loss + fake_loss)
    d_loss.backward()
    opt["discriminator"].step()
    return _out(
        d_loss=d_loss,
        g_loss=g_loss,
        adv_loss=adv_loss,
        pixel_loss=pixel_loss,
        mu=mu,
        logvar=logvar,
        encoded=encoded,
        decoded=decoded,
        d_encoded_g=d_encoded_g,
        d_prior=d_prior,
        d_encoded=d_encoded,
        real_loss=real_loss,
        fake_loss=fake_loss,
    )


STEPS = {
    "gan": step_gan,
    "bgan": step_gan,
    "cgan": step_cgan,
    "wgan": step_wgan,
    "wgan_gp": step_wgan_gp,
    "wgan_div": step_wgan_div,
    "softmax_gan": step_softmax_gan,
    "aae": step_aae,
}


def step(models, optimizers, batch, randomness, opts: Options):
    """One iteration of upstream's inner loop for batch index batch["i"] (see the module doc and FAMILY.md)."""
    for m in models.values():
        m.train()  # upstream never calls eval() in its loops
    return STEPS[opts.model](models, optimizers, batch, randomness, opts)


def upstream_sample_forward(models, o: Options, z):
    """What cgan.py's and aae.py's sample_image(n_row=10) does to the training state, which `step` leaves out: at
    every batch where batches_done % sample_interval == 0 (batch 0 included) upstream runs the generator (cgan: on
    z [100, latent] and labels 0..9 in each row of ten) or the decoder (aae: on z [100, latent]) in train mode, to
    save a grid. Nothing is backpropagated, but the train-mode forward moves the BatchNorm running statistics once
    more (and num_batches_tracked). gan.py and the others save gen_imgs of the step instead: no side effect."""
    with torch.no_grad():
        if o.model == "cgan":
            n_row = 10
            labels = torch.tensor([num for _ in range(n_row) for num in range(n_row)], dtype=torch.int64)
            return models["generator"](z, labels)
        if o.model == "aae":
            return models["decoder"](z)
    raise ValueError(f"{o.model}: upstream's sampling has no side effect")


def draw_randomness(o: Options, B, gen, dropout=None):
    """Fresh values for every random input of one step, from the torch.Generator `gen` (upstream draws them with
    np.random, then Tensor(...) rounds to float32; the values differ, the roles do not). Dropout masks are not drawn
    here: pass DropoutMasks() to record them from the global generator as nn.Dropout would."""
    r = {"z": torch.randn(B, o.latent_dim, generator=gen)}
    if o.model == "cgan":
        r["gen_labels"] = torch.randint(0, o.n_classes, (B,), generator=gen)
        r["dropout"] = dropout if dropout is not None else DropoutMasks()
    if o.model == "wgan_gp":
        r["alpha"] = torch.rand(B, 1, generator=gen)
    if o.model == "aae":
        r["eps"] = torch.randn(B, o.latent_dim, generator=gen)
    return r


# --------------------------------------------------------------------------------------------------------------------
# Data: the embedded digits as IDX files (bench/write_idx.ts), through upstream's transforms
# --------------------------------------------------------------------------------------------------------------------


def read_idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x00\x00" or raw[2] != 8:
        raise SystemExit(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_digits(idx_dir, img_size, indices=None):
    """(images [N, img_size * img_size] float32 in [-1, 1], labels [N] int64) from idx_dir/MNIST/raw, through
    upstream's transforms: Resize(img_size) (torchvision, on the PIL image, only when img_size != 28), ToTensor,
    Normalize([0.5], [0.5])."""
    raw = os.path.join(idx_dir, "MNIST", "raw")
    pixels = read_idx(os.path.join(raw, "train-images-idx3-ubyte"))
    labels = read_idx(os.path.join(raw, "train-labels-idx1-ubyte")).astype(np.int64)
    if indices is not None:
        pixels, labels = pixels[indices], labels[indices]
    x = torch.from_numpy(pixels.copy()).to(torch.float32).div(255)  # ToTensor: p / 255 in float32
    if img_size != 28:
        from PIL import Image
        import torchvision.transforms as T

        resize = T.Compose([T.Resize(img_size), T.ToTensor()])
        x = torch.stack([resize(Image.fromarray(p, mode="L")) for p in pixels])
    x = (x.reshape(len(pixels), -1) - 0.5) / 0.5  # Normalize([0.5], [0.5])
    return x.contiguous(), torch.from_numpy(labels.copy())


# --------------------------------------------------------------------------------------------------------------------
# --check: training runs and the equivalence checks
# --------------------------------------------------------------------------------------------------------------------


def train_check(o: Options, data, labels, iters, B, seed):
    """`iters` iterations of upstream's loop (shuffled epochs, the last short batch kept, i restarting each epoch);
    asserts that every loss stays finite. Returns (first losses, mean of the last 20)."""
    torch.manual_seed(seed)
    models = build_models(o)
    optimizers = make_optimizers(models, o)
    gen = torch.Generator().manual_seed(seed + 1)
    history = []
    n = len(data)
    done = 0
    while done < iters:
        order = torch.randperm(n, generator=gen)
        for i, start in enumerate(range(0, n, B)):
            if done == iters:
                break
            idx = order[start : start + B]
            batch = {"i": i, "real": data[idx], "labels": labels[idx]}
            out = step(models, optimizers, batch, draw_randomness(o, len(idx), gen), o)
            losses = {k: float(out[k]) for k in ("d_loss", "g_loss") if k in out}
            for k, v in losses.items():
                if not math.isfinite(v):
                    raise AssertionError(f"{o.model}/{o.loss}: {k} = {v} at iteration {done} (batch {i})")
            history.append(losses)
            done += 1
    tail = history[-20:]
    mean = {k: sum(h[k] for h in tail if k in h) / sum(1 for h in tail if k in h) for k in history[0]}
    return history[0], mean


def check_losses():
    """The gan loss options against the formulas written out in float64 (softplus(x) = log(1 + e^x):
    BCE-with-logits(x, 1) = softplus(-x), (x, 0) = softplus(x)). Returns the max |diff|."""
    gen = torch.Generator().manual_seed(0)
    r, f = torch.randn(8, 1, generator=gen) * 3, torch.randn(8, 1, generator=gen) * 3
    pr, pf = torch.sigmoid(r), torch.sigmoid(f)
    R, Fk = r.double(), f.double()
    sp = lambda x: torch.log1p(torch.exp(x))  # noqa: E731
    want = {
        "bce": (
            (-torch.log(pr.double()).mean() - torch.log(1 - pf.double()).mean()) / 2,
            -torch.log(pf.double()).mean(),
        ),
        "mse": ((((R - 1) ** 2).mean() + (Fk**2).mean()) / 2, ((Fk - 1) ** 2).mean()),
        "hinge": (torch.clamp(1 - R, min=0).mean() + torch.clamp(1 + Fk, min=0).mean(), -Fk.mean()),
        "relativistic": (sp(-(R - Fk)).mean(), sp(-(Fk - R)).mean()),
        "relativistic_avg": (
            (sp(-(R - Fk.mean())).mean() + sp(Fk - R.mean()).mean()) / 2,
            (sp(R - Fk.mean()).mean() + sp(-(Fk - R.mean())).mean()) / 2,
        ),
    }
    worst = 0.0
    for loss, (wd, wg) in want.items():
        a, b = (pr, pf) if loss == "bce" else (r, f)
        got_d, got_g = gan_d_loss(loss, a, b), gan_g_loss(loss, b, a)
        worst = max(worst, abs(float(got_d) - float(wd)), abs(float(got_g) - float(wg)))
    assert worst < 1e-5, f"a gan loss differs from its formula by {worst}"
    return worst


def check_dropout():
    """InjectableDropout against an unmodified nn.Dropout: the same torch seed gives the same outputs and gradients,
    recording gives the masks that replay reproduces without touching the generator. Returns the max |diff| (0)."""
    o = options("cgan", width=8)
    torch.manual_seed(0)
    d_ours = ConditionalDiscriminator(o)
    d_plain = ConditionalDiscriminator(o)
    d_plain.load_state_dict(d_ours.state_dict())
    for k, m in list(d_plain.model.named_children()):
        if isinstance(m, InjectableDropout):
            d_plain.model[int(k)] = nn.Dropout(m.p)  # a genuine nn.Dropout
    assert not any(isinstance(m, InjectableDropout) for m in d_plain.modules())
    gen = torch.Generator().manual_seed(1)
    img = torch.rand(8, o.pixels(), generator=gen) * 2 - 1
    lab = torch.randint(0, 10, (8,), generator=gen)
    results = []
    for mode in ("plain", "record", "replay"):
        torch.manual_seed(123 if mode != "replay" else 999)  # replay must not depend on the generator
        x = img.clone().requires_grad_(True)
        d = d_plain if mode == "plain" else d_ours
        d.zero_grad()
        if mode == "plain":
            src = None
        elif mode == "record":
            src = rec = DropoutMasks()
        else:
            src = DropoutMasks(rec.masks)
        with dropout_from(d, src):
            outs = [d(x, lab) for _ in range(3)]
        sum(o_.pow(2).sum() for o_ in outs).backward()
        results.append((torch.cat(outs), x.grad.clone(), [p.grad.clone() for p in d.parameters()]))
    worst = 0.0
    for other in results[1:]:
        worst = max(worst, (results[0][0] - other[0]).abs().max().item(), (results[0][1] - other[1]).abs().max().item())
        worst = max(worst, max((a - b).abs().max().item() for a, b in zip(results[0][2], other[2])))
    assert worst == 0.0, f"InjectableDropout differs from nn.Dropout by {worst}"
    assert len(rec.masks) == 6 and all(tuple(m.shape) == (8, o.hidden(512)) for m in rec.masks)
    return worst


def check_dropout_step(idx_dir):
    """A whole cgan step with nn.Dropout's own draws (no source) against one replaying the recorded masks."""
    o = options("cgan", width=8)
    data, labels = load_digits(idx_dir, o.img_size, indices=list(range(8)))
    afters = []
    for mode in ("plain", "record", "replay"):
        torch.manual_seed(0)
        models = build_models(o)
        opt = make_optimizers(models, o)
        rnd = draw_randomness(o, 8, torch.Generator().manual_seed(1))
        if mode == "plain":
            rnd["dropout"] = None
        elif mode == "replay":
            rnd["dropout"] = DropoutMasks(rec.masks)
        torch.manual_seed(42 if mode != "replay" else 7)
        step(models, opt, {"i": 0, "real": data, "labels": labels}, rnd, o)
        if mode == "record":
            rec = rnd["dropout"]
        afters.append({f"{n}.{k}": v for n, m in models.items() for k, v in m.state_dict().items()})
    worst = max((afters[0][k].double() - a[k].double()).abs().max().item() for a in afters[1:] for k in a)
    assert worst == 0.0, f"cgan step with injected masks differs from nn.Dropout's by {worst}"
    return worst


def check_softmax_late_weights():
    """softmax_gan's default G gradient against an explicit computation, in float64: G's .grad before its Adam step
    must be grad_G(d_loss) through D's old weights plus grad_G(g_loss) backpropagated through D's *updated* weights
    and the old forward's LeakyReLU masks. Returns max |diff| of G's gradient."""
    o = options("softmax_gan", width=8)
    torch.manual_seed(0)
    models = {k: m.double() for k, m in build_models(o).items()}
    opt = make_optimizers(models, o)
    G, D = models["generator"], models["discriminator"]
    gen = torch.Generator().manual_seed(3)
    B = 8
    real = (torch.rand(B, 784, generator=gen) * 2 - 1).double()
    z = torch.randn(B, 100, generator=gen).double()
    lin = [m for m in D.model if isinstance(m, nn.Linear)]
    W0 = [l.weight.detach().clone() for l in lin]
    captured = {}
    g_step = opt["generator"].step

    def capture():
        captured["grads"] = [p.grad.detach().clone() for p in G.parameters()]
        g_step()

    opt["generator"].step = capture
    torch.set_default_dtype(torch.float64)
    try:
        step(models, opt, {"i": 0, "real": real}, {"z": z}, o)
    finally:
        torch.set_default_dtype(torch.float32)
    W1 = [l.weight.detach().clone() for l in lin]
    assert all((a - b).abs().max() > 0 for a, b in zip(W0, W1)), "D did not move"

    # The same G, D before the step, by hand: forward with W0, the two output gradients, backward with W0 / W1.
    torch.manual_seed(0)
    ref = {k: m.double() for k, m in build_models(o).items()}
    Gr, Dr = ref["generator"], ref["discriminator"]
    lin_r = [m for m in Dr.model if isinstance(m, nn.Linear)]
    gen_imgs = Gr(z)
    x = gen_imgs.detach().view(B, -1)
    h0 = x @ W0[0].T + lin_r[0].bias.detach()
    a0 = F.leaky_relu(h0, 0.2)
    h1 = a0 @ W0[1].T + lin_r[1].bias.detach()
    a1 = F.leaky_relu(h1, 0.2)
    f = a1 @ W0[2].T + lin_r[2].bias.detach()
    with torch.no_grad():
        r = Dr(real)
    Zv = torch.exp(-r).sum() + torch.exp(-f).sum()
    df_d = -torch.exp(-f) / (Zv + 1e-8)  # d d_loss / d f
    df_g = 1 / (2 * B) - torch.exp(-f) / (Zv + 1e-8)  # d g_loss / d f

    def slope(h):  # LeakyReLU(0.2)' in float64 (torch.where(h > 0, 1.0, 0.2) would round 0.2 to float32)
        return torch.where(h > 0, torch.ones_like(h), torch.full_like(h, 0.2))

    def back(df, W):
        d1 = (df @ W[2]) * slope(h1)
        d0 = (d1 @ W[1]) * slope(h0)
        return d0 @ W[0]

    def diff(dx):
        want = torch.autograd.grad(gen_imgs.view(B, -1), list(Gr.parameters()), dx, retain_graph=True)
        return max((a - b).abs().max().item() for a, b in zip(captured["grads"], want))

    late, fresh = diff(back(df_d, W0) + back(df_g, W1)), diff(back(df_d, W0) + back(df_g, W0))
    assert late < 1e-14 < fresh, f"late-weight gradient off by {late} (pre-update weights: {fresh})"
    return late, fresh


def check_main(args):
    torch.set_num_threads(args.threads)
    print(f"dropout: InjectableDropout vs nn.Dropout (3 forwards, outputs and grads) max |diff| {check_dropout():.1e}")
    worst = check_dropout_step(args.idx_dir)
    print(f"dropout: cgan step, injected masks vs nn.Dropout's draws, max |diff| {worst:.1e}")
    print(f"losses: the gan loss options vs their formulas in float64, max |diff| {check_losses():.1e}")
    late, fresh = check_softmax_late_weights()
    print(f"softmax_gan: G grad vs an explicit backward through D's updated weights (float64) max |diff| {late:.1e} "
          f"(through the pre-update weights it would differ by {fresh:.1e})")
    runs = [(m, "bce") for m in args.models] + [("gan", l) for l in LOSSES[1:] if "gan" in args.models]
    cache = {}
    for model, loss in runs:
        o = options(model, loss=loss, width=args.width)
        if o.img_size not in cache:
            cache[o.img_size] = load_digits(args.idx_dir, o.img_size)
        data, labels = cache[o.img_size]
        t = time.time()
        first, last = train_check(o, data, labels, args.iters, args.batch_size, args.seed)
        name = model if loss == "bce" else f"gan --loss {loss}"
        fmt = lambda d: ", ".join(f"{k} {v:.4f}" for k, v in d.items())  # noqa: E731
        print(f"{name:26s} {args.iters} iterations finite ({time.time() - t:.1f} s): first {fmt(first)}; "
              f"mean of last 20 {fmt(last)}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="run the training runs and the equivalence checks")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--width", type=int, default=1, help="hidden widths divided by this (1: upstream)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--idx_dir", default="bench/.data")
    args = ap.parse_args(argv)
    if not args.check:
        ap.print_help()
        return 0
    check_main(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
