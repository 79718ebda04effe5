"""The seed GAN (PyTorch-GAN's implementations/gan/gan.py) in PyTorch, timed step by step.

The model (bench/reference/seed_gan.py), loss, optimizers and the order of one training step are those of the upstream
script (eriklindernoren/PyTorch-GAN, implementations/gan/gan.py):

    Generator:      block(latent, 128, normalize=False), block(128, 256), block(256, 512), block(512, 1024),
                    Linear(1024, 784), Tanh; block = Linear, [BatchNorm1d(out, 0.8)], LeakyReLU(0.2, inplace=True)
    Discriminator:  Linear(784, 512), LeakyReLU(0.2), Linear(512, 256), LeakyReLU(0.2), Linear(256, 1), Sigmoid
    Loss:           BCELoss;  Adam(lr, betas=(b1, b2)) for each network
    Step:           optimizer_G.zero_grad(); z ~ N(0, 1); gen_imgs = G(z); g_loss = BCE(D(gen_imgs), valid);
                    g_loss.backward(); optimizer_G.step(); optimizer_D.zero_grad();
                    d_loss = (BCE(D(real), valid) + BCE(D(gen_imgs.detach()), fake)) / 2; d_loss.backward();
                    optimizer_D.step()

Two data modes:

  --mode seed       the upstream data path: torchvision.datasets.MNIST(root, train=True, transform=Compose([
                    Resize(img_size), ToTensor(), Normalize([0.5], [0.5])])) through DataLoader(batch_size,
                    shuffle=True) (no workers: upstream parses --n_cpu but never passes it); z drawn with
                    np.random.normal on the host and copied as Tensor(...) does; per step the two .item() calls and the
                    formatted "[Epoch ...] [Batch ...] [D loss ...] [G loss ...]" line (written to os.devnull here, so
                    the terminal does not time). Not reproduced: save_image every 400 batches (once per 2.5 epochs).
  --mode preloaded  the whole dataset as one float tensor in [-1, 1] on the device, a torch.randperm per epoch,
                    index batches, z = torch.randn on the device, losses read back only at the end (the fast way to
                    write the same loop in PyTorch).

--model NAME (preloaded mode, CPU) runs one of the PyTorch-GAN family through bench/reference/family.py instead: its
networks (upstream's), its optimizers and defaults (family.options(NAME): wgan RMSprop lr 5e-5, n_critic 5, clip 0.01;
wgan_gp Adam 2e-4, lambda 10, n_critic 5; wgan_div Adam 2e-4, k 2, p 6, n_critic 5; the others Adam 2e-4) and its loop
body family.step(...) for batch index i (restarting at 0 each epoch, so the Wasserstein models update G at every
n_critic-th batch as upstream), with the step's draws from family.draw_randomness (z = torch.randn, wgan_gp's alpha =
torch.rand) on the same preloaded tensor and torch.randperm batches. --loss picks the gan model's loss (mse, hinge, ...).
cgan (img_size 32, upstream's default) preloads the digits through upstream's transform (family.load_digits: Resize(32)
on each PIL image, ToTensor, Normalize, once) with their labels; each step takes the real batch's labels, z from
torch.randn and gen_labels as upstream draws them (LongTensor(np.random.randint(0, n_classes, B))), and D's Dropout
layers draw their own masks as nn.Dropout does (no injected masks).
aae (latent 10, img_size 32, upstream's defaults) preloads the digits the same way (Resize(32) once); each step draws
as upstream does, both with np.random.normal and rounded to float32 as Tensor(...) does: first eps [B, 10] (drawn
inside upstream's reparameterization, in the encoder's forward), then the prior z [B, 10] (the D update's "real"
code); family.step_aae then trains the encoder and the decoder (one Adam) and the latent discriminator.
family.step returns detached *clones* of its losses and intermediates (for fixtures); here they are detached views
only, so that the loop times upstream's body and not the copies.

Nothing is downloaded: --idx_dir must hold MNIST/raw/train-images-idx3-ubyte (and the label / t10k files that
torchvision checks for), as written by `deno run --allow-read --allow-write bench/write_idx.ts` (bench/.data).

  bench/.venv/bin/python bench/reference/gan_torch.py --mode seed --batch_size 64 --steps 300 --threads 2 --json

With --json the result is one JSON line (see `result` below); without, a short human summary.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["seed", "preloaded"], default="seed")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--steps", type=int, default=300, help="timed steps (after the warm-up)")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps first (allocator, caches, cuDNN/cuBLAS)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads and set_num_interop_threads")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--idx_dir", default="bench/.data", help="root with MNIST/raw/*-ubyte (torchvision's layout)")
    p.add_argument("--width_mult", type=int, default=1, help="generator hidden widths x this (2: 256..2048)")
    p.add_argument("--chunk", type=int, default=0, help="steps per timing sample (0: 1 on cpu or in seed mode, "
                   "10 in preloaded mode on cuda, where each sample ends with a synchronize)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.0002)
    p.add_argument("--b1", type=float, default=0.5)
    p.add_argument("--b2", type=float, default=0.999)
    p.add_argument("--latent_dim", type=int, default=100)
    p.add_argument("--img_size", type=int, default=28)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--model", default=None, help="a family.py model (gan, bgan, softmax_gan, wgan, wgan_gp, "
                   "wgan_div, ...): preloaded mode through family.step; default: the seed GAN written out as below")
    p.add_argument("--loss", default="bce", help="the gan model's loss with --model gan (bce, mse, hinge, ...)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="after the timed steps, run N more under torch.profiler and print where the time goes (stderr)")
    return p.parse_args(argv)


OPT = parse_args()

import torch  # noqa: E402  (after argument parsing so that --help is quick)
from seed_gan import Discriminator, Generator  # noqa: E402  (bench/reference/seed_gan.py)

# Thread counts must be set before the first parallel region.
torch.set_num_threads(OPT.threads)
try:
    torch.set_num_interop_threads(OPT.threads)
except RuntimeError:
    pass

img_shape = (OPT.channels, OPT.img_size, OPT.img_size)


def mnist_dataset(transform):
    from torchvision import datasets

    try:
        return datasets.MNIST(OPT.idx_dir, train=True, download=False, transform=transform)
    except RuntimeError as e:
        sys.exit(
            f"gan_torch.py: cannot open MNIST under {OPT.idx_dir!r} ({e}); write it with "
            "`deno run --allow-read --allow-write bench/write_idx.ts` (it creates bench/.data/MNIST/raw/*-ubyte)"
        )


def percentile(xs, q):
    """The q-th percentile (nearest rank) of xs."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


def machine_busy_s():
    """Busy CPU seconds of the whole machine so far (/proc/stat: all but idle and iowait; USER_HZ = 100), or None."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / 100
    except (OSError, ValueError, IndexError):
        return None


def own_cpu_s():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    device = torch.device(OPT.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gan_torch.py: --device cuda but torch.cuda.is_available() is False")
    torch.manual_seed(OPT.seed)
    np.random.seed(OPT.seed)

    if OPT.model is not None:
        return family_main(device)
    adversarial_loss = torch.nn.BCELoss()
    generator = Generator(OPT.latent_dim, img_shape, OPT.width_mult).to(device)
    discriminator = Discriminator(img_shape).to(device)
    adversarial_loss.to(device)
    optimizer_G = torch.optim.Adam(generator.parameters(), lr=OPT.lr, betas=(OPT.b1, OPT.b2))
    optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=OPT.lr, betas=(OPT.b1, OPT.b2))

    B = OPT.batch_size
    sink = open(os.devnull, "w")
    chunk = OPT.chunk or (10 if (device.type == "cuda" and OPT.mode == "preloaded") else 1)

    if OPT.mode == "seed":
        import torchvision.transforms as transforms

        dataset = mnist_dataset(
            transforms.Compose([transforms.Resize(OPT.img_size), transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])
        )
        dataloader = torch.utils.data.DataLoader(dataset, batch_size=B, shuffle=True)
        count, n_batches = len(dataset), len(dataloader)

        def batches():
            epoch = 0
            while True:
                for i, (imgs, _) in enumerate(dataloader):
                    yield epoch, i, imgs
                epoch += 1

        def run(it, n):
            out, full = None, True
            for _ in range(n):
                epoch, i, imgs = next(it)
                full = full and imgs.size(0) == B
                # Adversarial ground truths
                valid = torch.ones(imgs.size(0), 1, device=device)  # Tensor(imgs.size(0), 1).fill_(1.0)
                fake = torch.zeros(imgs.size(0), 1, device=device)  # Tensor(imgs.size(0), 1).fill_(0.0)
                real_imgs = imgs.to(device=device, dtype=torch.float32)  # imgs.type(Tensor)

                optimizer_G.zero_grad()
                # Tensor(np.random.normal(0, 1, (imgs.shape[0], latent_dim))): float64 on the host, then float32
                z = torch.tensor(np.random.normal(0, 1, (imgs.shape[0], OPT.latent_dim)), dtype=torch.float32,
                                 device=device)
                gen_imgs = generator(z)
                g_loss = adversarial_loss(discriminator(gen_imgs), valid)
                g_loss.backward()
                optimizer_G.step()

                optimizer_D.zero_grad()
                real_loss = adversarial_loss(discriminator(real_imgs), valid)
                fake_loss = adversarial_loss(discriminator(gen_imgs.detach()), fake)
                d_loss = (real_loss + fake_loss) / 2
                d_loss.backward()
                optimizer_D.step()

                out = (d_loss.item(), g_loss.item())
                print("[Epoch %d/%d] [Batch %d/%d] [D loss: %f] [G loss: %f]"
                      % (epoch, 200, i, n_batches, out[0], out[1]), file=sink)
            return out, full

    else:
        raw = mnist_dataset(None).data  # u8 [N, 28, 28], the same bytes the seed path reads
        if raw.shape[1] != OPT.img_size or raw.shape[2] != OPT.img_size:
            sys.exit(f"gan_torch.py: preloaded mode needs {OPT.img_size}x{OPT.img_size} images, got {list(raw.shape)}")
        # ToTensor then Normalize([0.5], [0.5]), once for the whole set.
        data = ((raw.reshape(raw.shape[0], -1).to(torch.float32) / 255.0 - 0.5) / 0.5).to(device)
        count = data.shape[0]
        n_batches = math.ceil(count / B)
        gen = torch.Generator(device=device)
        gen.manual_seed(OPT.seed)
        ones, zeros = torch.ones(B, 1, device=device), torch.zeros(B, 1, device=device)

        def batches():
            while True:
                perm = torch.randperm(count, device=device, generator=gen)
                for i in range(n_batches):
                    yield perm[i * B:(i + 1) * B]

        def run(it, n):
            d_loss = g_loss = None
            full = True
            for _ in range(n):
                idx = next(it)
                rows = idx.shape[0]
                full = full and rows == B
                real_imgs = data.index_select(0, idx)
                valid, fake = ones[:rows], zeros[:rows]

                optimizer_G.zero_grad()
                z = torch.randn(rows, OPT.latent_dim, device=device, generator=gen)
                gen_imgs = generator(z)
                g_loss = adversarial_loss(discriminator(gen_imgs), valid)
                g_loss.backward()
                optimizer_G.step()

                optimizer_D.zero_grad()
                real_loss = adversarial_loss(discriminator(real_imgs), valid)
                fake_loss = adversarial_loss(discriminator(gen_imgs.detach()), fake)
                d_loss = (real_loss + fake_loss) / 2
                d_loss.backward()
                optimizer_D.step()
            return (d_loss, g_loss), full

    return time_and_report(device, batches, run, count, n_batches, chunk, B)


def time_and_report(device, batches, run, count, n_batches, chunk, B, extra=None):
    it = batches()
    run(it, OPT.warmup)
    sync(device)
    samples = []
    last = None
    busy0, cpu0 = machine_busy_s(), own_cpu_s()
    t_start = time.perf_counter()
    done = 0
    while done < OPT.steps:
        n = min(chunk, OPT.steps - done)
        t0 = time.perf_counter()
        last, full = run(it, n)
        sync(device)
        samples.append(((time.perf_counter() - t0) * 1e3 / n, full))
        done += n
    elapsed = time.perf_counter() - t_start
    busy1, cpu1 = machine_busy_s(), own_cpu_s()
    # CPU that other processes used during the timed steps, in cores (a shared machine's noise)
    other_cores = None if busy0 is None or busy1 is None else max(0.0, (busy1 - busy0 - (cpu1 - cpu0)) / elapsed)
    if OPT.profile:
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=acts) as prof:
            run(it, OPT.profile)
            sync(device)
        sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=sort, row_limit=25), file=sys.stderr)

    # preloaded: the only read-back of the run
    d_loss, g_loss = (float(v.detach()) if torch.is_tensor(v) else float(v) for v in last)

    steps_per_s = OPT.steps / elapsed
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # Per-step statistics over full batches only: the short last batch of each epoch (10000 % 64 = 16 rows) is
    # timed in steps/s but would otherwise be the "fastest step".
    full_ms = [t for t, f in samples if f] or [t for t, _ in samples]
    result = {
        "impl": "pytorch",
        **(extra or {}),
        "mode": OPT.mode,
        "device": OPT.device,
        "device_name": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "batch_size": B,
        "width_mult": OPT.width_mult,
        "dataset_count": count,
        "batches_per_epoch": n_batches,
        "warmup": OPT.warmup,
        "steps": OPT.steps,
        "chunk": chunk,
        "steps_per_s": steps_per_s,
        "ms_per_step_median": statistics.median(full_ms),
        "ms_per_step_p10": percentile(full_ms, 10),
        "ms_per_step_min": min(full_ms),
        "ms_per_step_mean": elapsed * 1e3 / OPT.steps,
        "epoch_s": n_batches / steps_per_s,
        # ru_maxrss is in KiB on Linux
        "peak_rss_mb": usage.ru_maxrss / 1024,
        # CPU time of the whole process (bench/compare.ts subtracts it from the machine's to see other load)
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "other_cores": other_cores,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None,
        "d_loss": d_loss,
        "g_loss": g_loss,
    }
    if OPT.json:
        print(json.dumps(result))
    else:
        print(
            f"pytorch {OPT.mode} on {result['device_name']} ({result['threads']} threads), batch {B}, "
            f"width x{OPT.width_mult}: {steps_per_s:.1f} steps/s, median {result['ms_per_step_median']:.3f} ms/step, "
            f"epoch of {count} images {result['epoch_s']:.2f} s, peak RSS {result['peak_rss_mb']:.0f} MB, "
            f"last losses D {d_loss:.4f} G {g_loss:.4f}"
        )


def family_main(device):
    """--model: family.py's networks, optimizers and step on the preloaded digits (see the module doc)."""
    import family  # bench/reference/family.py

    if device.type != "cpu" or OPT.mode != "preloaded":
        sys.exit("gan_torch.py: --model runs in --mode preloaded on --device cpu only")
    # family.step returns detached clones (for fixtures): time the loop body without the copies
    family._out = lambda **tensors: {k: v.detach() for k, v in tensors.items()}
    o = family.options(OPT.model, loss=OPT.loss)
    torch.manual_seed(OPT.seed)
    models = family.build_models(o)
    optimizers = family.make_optimizers(models, o)
    if o.model in ("cgan", "aae"):
        # upstream's transform for cgan and aae (Resize(32), ToTensor, Normalize) applied once to the whole set, and the labels
        data, labels = family.load_digits(OPT.idx_dir, o.img_size)
    else:
        raw = mnist_dataset(None).data
        data = ((raw.reshape(raw.shape[0], -1).to(torch.float32) / 255.0 - 0.5) / 0.5).contiguous()
        labels = None
    count = data.shape[0]
    B = OPT.batch_size
    n_batches = math.ceil(count / B)
    gen = torch.Generator()
    gen.manual_seed(OPT.seed)

    def batches():
        while True:
            perm = torch.randperm(count, generator=gen)
            for i in range(n_batches):
                yield i, perm[i * B:(i + 1) * B]

    def randomness(rows):
        if o.model == "aae":
            # aae.py's draws in upstream's order: eps inside reparameterization(mu, logvar) (the encoder's forward),
            # then the prior z of the D update, each Tensor(np.random.normal(0, 1, (B, latent_dim)))
            eps = torch.tensor(np.random.normal(0, 1, (rows, o.latent_dim)), dtype=torch.float32)
            z = torch.tensor(np.random.normal(0, 1, (rows, o.latent_dim)), dtype=torch.float32)
            return {"eps": eps, "z": z}
        if o.model != "cgan":
            return family.draw_randomness(o, rows, gen)
        # cgan as upstream draws it: z, then gen_labels = LongTensor(np.random.randint(0, n_classes, batch_size));
        # z from the generator as for the other models; no "dropout" source: D's nn.Dropout draws its own masks
        z = torch.randn(rows, o.latent_dim, generator=gen)
        return {"z": z, "gen_labels": torch.LongTensor(np.random.randint(0, o.n_classes, rows))}

    last_g = [float("nan")]

    def run(it, n):
        out, full = None, True
        for _ in range(n):
            i, idx = next(it)
            full = full and idx.shape[0] == B
            batch = {"i": i, "real": data.index_select(0, idx)}
            if labels is not None:
                batch["labels"] = labels.index_select(0, idx)  # the real batch's own labels
            out = family.step(models, optimizers, batch, randomness(idx.shape[0]), o)
            if "g_loss" in out:  # a critic-only step of a Wasserstein model has none: keep the last G update's
                last_g[0] = out["g_loss"]
        return (out["d_loss"], last_g[0]), full

    extra = {"model": OPT.model, "loss": OPT.loss if OPT.model == "gan" else "mse" if OPT.model == "cgan" else None,
             "img_size": o.img_size, "latent_dim": o.latent_dim}
    return time_and_report(device, batches, run, count, n_batches, 1, B, extra)

if __name__ == "__main__":
    main()
