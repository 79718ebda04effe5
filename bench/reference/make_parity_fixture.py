"""Writes tests/fixtures/torch_parity.safetensors: one training step of the seed GAN computed by PyTorch (float32, CPU),
for tests/torch_parity_test.ts, which repeats the step with our native trainer (NativeGan.stepExplicit) and compares.

    deno run --allow-read --allow-write bench/write_idx.ts        # once: bench/.data (the full-size case's real images)
    bench/.venv/bin/python bench/reference/make_parity_fixture.py  # [--idx_dir bench/.data] [--out ...]

The step is the seed's (PyTorch-GAN implementations/gan/gan.py), line for line: optimizer_G.zero_grad();
gen_imgs = G(z); g_loss = BCE(D(gen_imgs), valid); g_loss.backward(); optimizer_G.step(); optimizer_D.zero_grad();
d_loss = (BCE(D(x_real), valid) + BCE(D(gen_imgs.detach()), fake)) / 2; d_loss.backward(); optimizer_D.step().
Adam(lr=2e-4, betas=(0.5, 0.999)); BatchNorm1d(out, 0.8); LeakyReLU(0.2); the nets in train mode.

Contents (names of G and D tensors are PyTorch state_dict names, `model.<k>.<weight|bias|running_mean|...>`):

1. A reduced model, both nets built with the seed's block structure so that the names follow the same pattern:
     G: z(8) -> block(8, 16, normalize=False) -> block(16, 32) -> block(32, 48) -> Linear(48, 49) -> Tanh
        (names model.0, model.2/3 (BN), model.5/6 (BN), model.8)
     D: Linear(49, 32) -> LeakyReLU -> Linear(32, 16) -> LeakyReLU -> Linear(16, 1) -> Sigmoid (model.0, 2, 4)
   initialized by PyTorch (torch.manual_seed(0)), stored once as
     init.generator.<name>, init.discriminator.<name>                  (F32; running stats too; I64 num_batches_tracked)
   and two cases from that same initial state, b16 (batch 16) and b5 (an odd batch of 5):
     <case>.z [B, 8], <case>.x_real [B, 49] in [-1, 1]                  (F32)
     <case>.after.generator.<name>, <case>.after.discriminator.<name>   (after the step, running stats included)
     <case>.adam.<net>.<param>.exp_avg                                  (F32, Adam's first moment after the step)
     <case>.adam.<net>.<param>.exp_avg_sq                               (b16 only, to keep the file under 300 KB:
                                                                         after step 1 it is (1 - b2) g^2, the same
                                                                         information as exp_avg = (1 - b1) g)
     <case>.loss.d_loss, .g_loss, .d_real (mean D(x)), .d_fake (mean D(G(z)) before the updates)   (F32 scalars)

2. The full-size seed model (G 100-128-256-512-1024-784, D 784-512-256-1) at batch 64. Its 2M initial parameters are
   not stored (8 MB) but made by a formula that the test repeats bit for bit (integer hashing, then one float64
   multiply rounded to float32):
     for the Linear layer l (0-based, in order) of network n (0 = G, 1 = D), tensor t (0 = weight, 1 = bias),
     element i (row-major):  s = 64 n + 2 l + t
                              h = lowbias32((i + s * 0x9E3779B9) mod 2^32)
                              value = float32((h / 2^31 + 2^-32 - 1) * (1 / sqrt(fan_in)))   (U(-bound, bound))
     lowbias32(x): x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16   (mod 2^32)
   BatchNorm weight 1, bias 0, running mean 0, var 1 (PyTorch's defaults). Stored:
     full.z [64, 100] F32 (torch.randn, seed 1);  full.x_real_u8 [64, 784] U8: the bench digits 0, 156, 312, ...
       (k * 156, so every class appears), mapped as ToTensor + Normalize(0.5, 0.5): (p / 255 - 0.5) / 0.5 in float32
     full.loss.d_loss, .g_loss, .d_real, .d_fake  (F32 scalars)
     full.sums.<net>.<name>  F64 [4] for every parameter and running statistic after the step:
       [sum(after), sum(after^2), sum(after - init), sum(|after - init|)]   (in float64 over the float32 values)
     full.adam_sums.<net>.<param>  F64 [3]: [sum(exp_avg), sum(|exp_avg|), sum(exp_avg_sq)]
"""

from __future__ import annotations

import argparse
import math
import os

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file

LR, B1, B2 = 2e-4, 0.5, 0.999


class Generator(nn.Module):
    """The seed's generator with configurable widths: block(latent, h0, normalize=False), block(h_i, h_i+1)...,
    Linear(h_last, out), Tanh."""

    def __init__(self, latent, hidden, out):
        super().__init__()

        def block(in_feat, out_feat, normalize=True):
            layers = [nn.Linear(in_feat, out_feat)]
            if normalize:
                layers.append(nn.BatchNorm1d(out_feat, 0.8))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        layers = block(latent, hidden[0], normalize=False)
        for a, b in zip(hidden, hidden[1:]):
            layers += block(a, b)
        self.model = nn.Sequential(*layers, nn.Linear(hidden[-1], out), nn.Tanh())

    def forward(self, z):
        return self.model(z)


class Discriminator(nn.Module):
    def __init__(self, inp, hidden):
        super().__init__()
        layers = []
        for a, b in zip([inp] + hidden[:-1], hidden):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2, inplace=True)]
        self.model = nn.Sequential(*layers, nn.Linear(hidden[-1], 1), nn.Sigmoid())

    def forward(self, img):
        return self.model(img.view(img.size(0), -1))


def seed_step(generator, discriminator, z, real_imgs):
    """One step of the seed's loop; returns the optimizers and the four step outputs."""
    adversarial_loss = torch.nn.BCELoss()
    optimizer_G = torch.optim.Adam(generator.parameters(), lr=LR, betas=(B1, B2))
    optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=LR, betas=(B1, B2))
    generator.train()
    discriminator.train()
    valid = torch.ones(z.shape[0], 1)
    fake = torch.zeros(z.shape[0], 1)

    optimizer_G.zero_grad()
    gen_imgs = generator(z)
    d_fake = discriminator(gen_imgs)
    g_loss = adversarial_loss(d_fake, valid)
    g_loss.backward()
    optimizer_G.step()

    optimizer_D.zero_grad()
    d_real = discriminator(real_imgs)
    real_loss = adversarial_loss(d_real, valid)
    fake_loss = adversarial_loss(discriminator(gen_imgs.detach()), fake)
    d_loss = (real_loss + fake_loss) / 2
    d_loss.backward()
    optimizer_D.step()
    losses = {
        "d_loss": d_loss.detach(),
        "g_loss": g_loss.detach(),
        "d_real": d_real.detach().mean(),
        "d_fake": d_fake.detach().mean(),
    }
    return optimizer_G, optimizer_D, losses


def state(net):
    return {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}


def adam_state(net, opt):
    return {name: opt.state[p] for name, p in net.named_parameters()}


def lowbias32(x):
    m = np.uint64(0xFFFFFFFF)
    x = x.astype(np.uint64)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & m
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & m
    x ^= x >> np.uint64(16)
    return x


def formula_init(net, n):
    """The documented hash init of every Linear layer of network n (0 = G, 1 = D)."""
    linears = [m for m in net.model if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for l, lin in enumerate(linears):
            bound = 1.0 / math.sqrt(lin.in_features)
            for t, p in enumerate([lin.weight, lin.bias]):
                s = 64 * n + 2 * l + t
                i = np.arange(p.numel(), dtype=np.uint64)
                h = lowbias32((i + np.uint64(s) * np.uint64(0x9E3779B9)) & np.uint64(0xFFFFFFFF))
                u = h.astype(np.float64) / 2.0**31 + 2.0**-32 - 1.0
                p.copy_(torch.from_numpy((u * bound).astype(np.float32)).view(p.shape))


def small_model():
    torch.manual_seed(0)
    g = Generator(8, [16, 32, 48], 49)
    d = Discriminator(49, [32, 16])
    return g, d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idx_dir", default="bench/.data")
    ap.add_argument("--out", default="tests/fixtures/torch_parity.safetensors")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = {}

    # 1. The reduced model: one initial state, two batches.
    g0, d0 = small_model()
    for k, v in state(g0).items():
        out[f"init.generator.{k}"] = v
    for k, v in state(d0).items():
        out[f"init.discriminator.{k}"] = v
    gen = torch.Generator().manual_seed(1)
    for case, B in [("b16", 16), ("b5", 5)]:
        g, d = small_model()  # the same initial state as g0, d0
        z = torch.randn(B, 8, generator=gen)
        x_real = torch.rand(B, 49, generator=gen) * 2 - 1
        opt_g, opt_d, losses = seed_step(g, d, z, x_real)
        out[f"{case}.z"] = z
        out[f"{case}.x_real"] = x_real.contiguous()
        for net_name, net, opt in [("generator", g, opt_g), ("discriminator", d, opt_d)]:
            for k, v in state(net).items():
                out[f"{case}.after.{net_name}.{k}"] = v
            for k, st in adam_state(net, opt).items():
                out[f"{case}.adam.{net_name}.{k}.exp_avg"] = st["exp_avg"].clone()
                if case == "b16":
                    out[f"{case}.adam.{net_name}.{k}.exp_avg_sq"] = st["exp_avg_sq"].clone()
        for k, v in losses.items():
            out[f"{case}.loss.{k}"] = v.reshape(()).clone()

    # 2. The full-size model from the formula init, on 64 bench digits.
    img_path = os.path.join(args.idx_dir, "MNIST", "raw", "train-images-idx3-ubyte")
    with open(img_path, "rb") as f:
        raw = f.read()
    if raw[:4] != b"\x00\x00\x08\x03":
        raise SystemExit(f"{img_path}: not an unsigned-byte IDX file of 3 dimensions")
    n_img = int.from_bytes(raw[4:8], "big")
    pixels = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n_img, 784)
    x_u8 = np.ascontiguousarray(pixels[[156 * k for k in range(64)]])
    x_real = (torch.from_numpy(x_u8.copy()).to(torch.float32).div(255) - 0.5) / 0.5  # ToTensor, Normalize
    g = Generator(100, [128, 256, 512, 1024], 784)
    d = Discriminator(784, [512, 256])
    formula_init(g, 0)
    formula_init(d, 1)
    init = {"generator": state(g), "discriminator": state(d)}
    z = torch.randn(64, 100, generator=torch.Generator().manual_seed(1))
    opt_g, opt_d, losses = seed_step(g, d, z, x_real)
    out["full.z"] = z
    out["full.x_real_u8"] = torch.from_numpy(x_u8.copy())
    for k, v in losses.items():
        out[f"full.loss.{k}"] = v.reshape(()).clone()
    for net_name, net, opt in [("generator", g, opt_g), ("discriminator", d, opt_d)]:
        for k, v in state(net).items():
            if v.dtype != torch.float32:
                continue  # num_batches_tracked
            a = v.double()
            delta = a - init[net_name][k].double()
            out[f"full.sums.{net_name}.{k}"] = torch.tensor(
                [a.sum().item(), (a * a).sum().item(), delta.sum().item(), delta.abs().sum().item()], dtype=torch.float64
            )
        for k, st in adam_state(net, opt).items():
            m, v2 = st["exp_avg"].double(), st["exp_avg_sq"].double()
            out[f"full.adam_sums.{net_name}.{k}"] = torch.tensor(
                [m.sum().item(), m.abs().sum().item(), v2.sum().item()], dtype=torch.float64
            )

    meta = {
        "generator": "bench/reference/make_parity_fixture.py",
        "torch": torch.__version__,
        "lr": str(LR),
        "b1": str(B1),
        "b2": str(B2),
    }
    save_file({k: v.contiguous() for k, v in out.items()}, args.out, metadata=meta)
    os.chmod(args.out, 0o644)
    print(f"wrote {args.out}: {len(out)} tensors, {os.path.getsize(args.out)} bytes")
    for case in ["b16", "b5", "full"]:
        print(case, {k: round(float(out[f"{case}.loss.{k}"]), 6) for k in ["d_loss", "g_loss", "d_real", "d_fake"]})


if __name__ == "__main__":
    main()
