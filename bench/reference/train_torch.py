"""Trains the seed GAN (PyTorch-GAN's implementations/gan/gan.py) in PyTorch for N epochs and saves its generator, for
the sample-quality comparison of bench/quality.ts (which scores this generator and ours with the same code).

The model is bench/reference/seed_gan.py's (upstream's networks); the loop is upstream's, step for step:

    dataset     torchvision.datasets.MNIST / FashionMNIST(root, train=True, transform=Compose([Resize(img_size),
                ToTensor(), Normalize([0.5], [0.5])])), DataLoader(batch_size, shuffle=True) (no workers: upstream
                parses --n_cpu but never passes it on)
    per batch   valid = 1, fake = 0; optimizer_G.zero_grad(); z = Tensor(np.random.normal(0, 1, (B, latent_dim)));
                gen_imgs = G(z); g_loss = BCE(D(gen_imgs), valid); g_loss.backward(); optimizer_G.step();
                optimizer_D.zero_grad(); d_loss = (BCE(D(real), valid) + BCE(D(gen_imgs.detach()), fake)) / 2;
                d_loss.backward(); optimizer_D.step(); the log line with d_loss.item(), g_loss.item() (to os.devnull
                unless --log); save_image(gen_imgs.data[:25], images/<batches_done>.png, nrow=5, normalize=True) every
                --sample_interval batches (into --out)

What upstream does not do and this script adds: seeds (torch.manual_seed and np.random.seed: the init, the
DataLoader's shuffles and the noise), a thread count (torch.set_num_threads / set_num_interop_threads, default 2),
the CPU only, no download (the IDX files must be in --data_root, torchvision's layout), and at the end the
generator's state_dict() written with safetensors.torch.save_file to <out>/generator.safetensors. Its names are the
ones our generator.safetensors uses (model.0.weight, ..., model.3.running_mean, model.3.num_batches_tracked (I64)),
so the same loader reads both. A JSON line with the wall time goes to stdout and to <out>/result.json.

    deno run --allow-read --allow-write bench/write_idx.ts      # bench/.data/MNIST/raw (the embedded digits)
    bench/.venv/bin/python bench/reference/train_torch.py --dataset mnist --n_epochs 10 --seed 0 --out /tmp/t0

--model NAME (other than gan) or --loss LOSS (other than bce) trains a model of the family instead, through
bench/reference/family.py: its networks (upstream's; the generator's state_dict names are the seed's), its optimizers
and upstream's defaults (family.options: wgan RMSprop lr 5e-5, n_critic 5, clip 0.01; wgan_gp Adam 2e-4, lambda 10,
n_critic 5; wgan_div k 2, p 6, n_critic 5) and its loop body family.step(...) for batch index i, in the same loop and
data path as above; the draws as upstream makes them: z = Tensor(np.random.normal(0, 1, (B, latent_dim))), then for
wgan_gp alpha = np.random.random((B, 1, 1, 1)) (drawn inside upstream's compute_gradient_penalty, after z). The log line
is printed at the steps that update G (upstream's wgan scripts print inside `if i % n_critic == 0`). The --lr, --b1 and
--b2 flags apply to the seed only; a family model takes upstream's.

--model cgan is upstream's cgan.py loop: img_size 32 by default (its Resize(32) in the DataLoader's transform), each
batch's labels from the DataLoader (`for i, (imgs, labels) in enumerate(dataloader)`), z as above, then gen_labels =
LongTensor(np.random.randint(0, n_classes, B)); D's Dropout(0.4) layers draw their masks as nn.Dropout does (no
injected masks). Its sample_image(n_row=10) every --sample_interval batches (batch 0 included) is upstream's too: z of
100 rows from np.random.normal, labels 0..9 in each row of ten, G in train mode (one more BatchNorm statistics update,
family.upstream_sample_forward), the 10x10 grid saved as images/<batches_done>.png. The generator's state_dict then
holds label_emb.weight beside the seed's names, as ours does.

--model aae is upstream's aae.py loop: latent_dim 10 and img_size 32 by default (its Resize(32)); per batch the draws
in upstream's order, each Tensor(np.random.normal(0, 1, (B, latent_dim))): eps (inside upstream's reparameterization,
the encoder's forward), then the prior z of the D update; family.step_aae (the encoder and the decoder under one Adam,
then D on the code). Its sample_image(n_row=10) every --sample_interval batches (batch 0 included): the decoder in
train mode on 100 fresh z from np.random.normal (one more BatchNorm statistics update), the 10x10 grid saved. The file
written as generator.safetensors is the DECODER's state_dict (model.0, model.2, model.3.* (BN), model.5: our
generator's names for aae), the network that samples (the decoder on prior noise z ~ N(0, 1) of latent 10).

Fashion-MNIST needs bench/.data/FashionMNIST/raw/*-ubyte (bench/quality.ts unpacks Debian's .gz files there).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

T_PROCESS = time.perf_counter()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    p.add_argument("--data_root", default="bench/.data", help="root with MNIST/raw or FashionMNIST/raw (torchvision)")
    p.add_argument("--out", required=True, help="folder for generator.safetensors, result.json and images/")
    p.add_argument("--n_epochs", type=int, default=200, help="epochs of training (upstream's default 200)")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.0002)
    p.add_argument("--b1", type=float, default=0.5)
    p.add_argument("--b2", type=float, default=0.999)
    p.add_argument("--latent_dim", type=int, default=None, help="latent size (default: the model's upstream default, "
                   "100; aae 10)")
    p.add_argument("--img_size", type=int, default=None, help="image side (default: the model's upstream default, "
                   "28; cgan and aae 32)")
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--sample_interval", type=int, default=400, help="batches between image grids (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default="gan", help="a model of bench/reference/family.py (default gan, the seed)")
    p.add_argument("--loss", default="bce", help="the gan model's loss (bce, mse, hinge, relativistic, ...)")
    p.add_argument("--log", action="store_true", help="print upstream's per-batch log line (default: to os.devnull)")
    return p.parse_args(argv)


OPT = parse_args()

import numpy as np  # noqa: E402  (after argument parsing so that --help is quick)
import torch  # noqa: E402
import torchvision.transforms as transforms  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torchvision import datasets  # noqa: E402
from torchvision.utils import save_image  # noqa: E402

from seed_gan import Discriminator, Generator  # noqa: E402  (bench/reference/seed_gan.py)

torch.set_num_threads(OPT.threads)
try:
    torch.set_num_interop_threads(OPT.threads)
except RuntimeError:
    pass


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


def load_dataset(img_size):
    transform = transforms.Compose(
        [transforms.Resize(img_size), transforms.ToTensor(), transforms.Normalize([0.5], [0.5])]
    )
    cls = datasets.MNIST if OPT.dataset == "mnist" else datasets.FashionMNIST
    try:
        return cls(OPT.data_root, train=True, download=False, transform=transform)
    except RuntimeError as e:
        sys.exit(f"train_torch.py: cannot open {cls.__name__} under {OPT.data_root!r} ({e}); see --help")


def family_options():
    """The family model's options: upstream's defaults (family.options), with --latent_dim, --channels and (when
    given) --img_size."""
    import family  # bench/reference/family.py

    sizes = {} if OPT.img_size is None else {"img_size": OPT.img_size}
    if OPT.latent_dim is not None:
        sizes["latent_dim"] = OPT.latent_dim
    return family.options(OPT.model, loss=OPT.loss, channels=OPT.channels, **sizes)


def family_loop(o, dataloader, log):
    """The family model's training loop (see the module doc); returns (generator, steps, d_loss, g_loss)."""
    import family  # bench/reference/family.py

    # family.step returns detached clones of its intermediates (for fixtures): keep them as detached views only
    family._out = lambda **tensors: {k: v.detach() for k, v in tensors.items()}
    models = family.build_models(o)  # the init from torch's global generator, seeded in main
    optimizers = family.make_optimizers(models, o)
    steps, d_loss, g_loss = 0, None, None
    for epoch in range(OPT.n_epochs):
        for i, (imgs, labels) in enumerate(dataloader):
            B = imgs.shape[0]
            if o.model == "aae":
                # aae.py: eps inside reparameterization (the encoder's forward), then the D update's prior z
                eps = torch.tensor(np.random.normal(0, 1, (B, o.latent_dim)), dtype=torch.float32)
                rnd = {"eps": eps, "z": torch.tensor(np.random.normal(0, 1, (B, o.latent_dim)), dtype=torch.float32)}
            else:
                rnd = {"z": torch.tensor(np.random.normal(0, 1, (B, o.latent_dim)), dtype=torch.float32)}
            if o.model == "wgan_gp":
                rnd["alpha"] = torch.tensor(np.random.random((B, 1, 1, 1)), dtype=torch.float32).view(B, 1)
            batch = {"i": i, "real": imgs.type(torch.FloatTensor)}
            if o.model == "cgan":
                # cgan.py: labels.type(LongTensor); gen_labels = LongTensor(np.random.randint(0, n_classes, batch_size))
                batch["labels"] = labels.type(torch.LongTensor)
                rnd["gen_labels"] = torch.LongTensor(np.random.randint(0, o.n_classes, B))
            out = family.step(models, optimizers, batch, rnd, o)
            d_loss = out["d_loss"]
            if "g_loss" in out:
                g_loss = out["g_loss"]
                print(
                    "[Epoch %d/%d] [Batch %d/%d] [D loss: %f] [G loss: %f]"
                    % (epoch, OPT.n_epochs, i, len(dataloader), d_loss.item(), g_loss.item()),
                    file=log,
                )
            batches_done = epoch * len(dataloader) + i
            if OPT.sample_interval and batches_done % OPT.sample_interval == 0:
                path = os.path.join(OPT.out, "images", "%d.png" % batches_done)
                if o.model in ("cgan", "aae"):
                    # cgan.py's / aae.py's sample_image(n_row=10, batches_done): G / the decoder in train mode on 100
                    # fresh z
                    z = torch.tensor(np.random.normal(0, 1, (10**2, o.latent_dim)), dtype=torch.float32)
                    save_image(family.upstream_sample_forward(models, o, z).data, path, nrow=10, normalize=True)
                else:
                    imgs_out = out.get("gen_imgs", out.get("fake_imgs"))
                    save_image(imgs_out.data[:25], path, nrow=5, normalize=True)
            steps += 1
    # aae: the decoder is the generator (the network that samples from prior noise)
    return models["decoder" if o.model == "aae" else "generator"], steps, d_loss, g_loss


def main():
    torch.manual_seed(OPT.seed)
    np.random.seed(OPT.seed)
    os.makedirs(os.path.join(OPT.out, "images"), exist_ok=True)
    seed_model = OPT.model == "gan" and OPT.loss == "bce"
    img_size = 28 if OPT.img_size is None else OPT.img_size
    log = sys.stdout if OPT.log else open(os.devnull, "w")
    if not seed_model:
        o = family_options()
        img_size = o.img_size
        dataloader = torch.utils.data.DataLoader(load_dataset(img_size), batch_size=OPT.batch_size, shuffle=True)
        load0 = os.getloadavg()[0]
        busy0, cpu0 = machine_busy_s(), own_cpu_s()
        t0 = time.perf_counter()
        generator, steps, d_loss, g_loss = family_loop(o, dataloader, log)
    else:
        img_shape = (OPT.channels, img_size, img_size)
        adversarial_loss = torch.nn.BCELoss()
        generator_latent = 100 if OPT.latent_dim is None else OPT.latent_dim
        generator = Generator(generator_latent, img_shape)
        discriminator = Discriminator(img_shape)
        dataloader = torch.utils.data.DataLoader(load_dataset(img_size), batch_size=OPT.batch_size, shuffle=True)
        optimizer_G = torch.optim.Adam(generator.parameters(), lr=OPT.lr, betas=(OPT.b1, OPT.b2))
        optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=OPT.lr, betas=(OPT.b1, OPT.b2))
        load0 = os.getloadavg()[0]
        busy0, cpu0 = machine_busy_s(), own_cpu_s()
        t0 = time.perf_counter()
        steps = 0
        d_loss = g_loss = None
    for epoch in range(OPT.n_epochs if seed_model else 0):
        for i, (imgs, _) in enumerate(dataloader):
            valid = torch.ones(imgs.size(0), 1)  # Tensor(imgs.size(0), 1).fill_(1.0)
            fake = torch.zeros(imgs.size(0), 1)  # Tensor(imgs.size(0), 1).fill_(0.0)
            real_imgs = imgs.type(torch.FloatTensor)

            optimizer_G.zero_grad()
            # Tensor(np.random.normal(...)): float64 on the host, then float32
            z = torch.tensor(np.random.normal(0, 1, (imgs.shape[0], generator_latent)), dtype=torch.float32)
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

            print(
                "[Epoch %d/%d] [Batch %d/%d] [D loss: %f] [G loss: %f]"
                % (epoch, OPT.n_epochs, i, len(dataloader), d_loss.item(), g_loss.item()),
                file=log,
            )
            batches_done = epoch * len(dataloader) + i
            if OPT.sample_interval and batches_done % OPT.sample_interval == 0:
                path = os.path.join(OPT.out, "images", "%d.png" % batches_done)
                save_image(gen_imgs.data[:25], path, nrow=5, normalize=True)
            steps += 1
    train_s = time.perf_counter() - t0
    busy1, cpu1 = machine_busy_s(), own_cpu_s()
    load1 = os.getloadavg()[0]

    state = {k: v.contiguous() for k, v in generator.state_dict().items()}
    meta = {"format": "pytorch-state-dict", "script": "bench/reference/train_torch.py", "config": json.dumps(vars(OPT))}
    save_file(state, os.path.join(OPT.out, "generator.safetensors"), metadata=meta)

    result = {
        "impl": "pytorch",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "dataset": OPT.dataset,
        "model": OPT.model,
        "loss": OPT.loss,
        "img_size": img_size,
        "latent_dim": o.latent_dim if not seed_model else generator_latent,
        "dataset_count": len(dataloader.dataset),
        "batches_per_epoch": len(dataloader),
        "n_epochs": OPT.n_epochs,
        "seed": OPT.seed,
        "steps": steps,
        # the training loop alone (data loading, the steps, the log line and the grids)
        "train_s": train_s,
        "steps_per_s": steps / train_s,
        # from the start of this process (imports, dataset, init, training, saving)
        "process_s": time.perf_counter() - T_PROCESS,
        "cpu_s": cpu1 - cpu0,
        # CPU used by other processes during the loop, in cores (the machine may be shared)
        "other_cores": None if busy0 is None or busy1 is None else max(0.0, (busy1 - busy0 - (cpu1 - cpu0)) / train_s),
        "loadavg_start": load0,
        "loadavg_end": load1,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "d_loss": d_loss.item(),
        "g_loss": g_loss.item(),
    }
    line = json.dumps(result)
    with open(os.path.join(OPT.out, "result.json"), "w") as f:
        f.write(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
