"""The seed GAN's two networks (PyTorch-GAN's implementations/gan/gan.py), shared by bench/reference/gan_torch.py (the
step timing) and bench/reference/train_torch.py (whole training runs for the sample-quality comparison).

    Generator:      block(latent, 128, normalize=False), block(128, 256), block(256, 512), block(512, 1024),
                    Linear(1024, prod(img_shape)), Tanh; block = Linear, [BatchNorm1d(out, 0.8)], LeakyReLU(0.2)
    Discriminator:  Linear(prod(img_shape), 512), LeakyReLU(0.2), Linear(512, 256), LeakyReLU(0.2), Linear(256, 1),
                    Sigmoid

Written as the upstream script writes them (one nn.Sequential named `model`), so that the state_dict names are
upstream's: the generator's are model.0, model.2 / model.3 (BatchNorm), model.5 / model.6, model.8 / model.9 and
model.11, the discriminator's model.0, model.2 and model.4. `BatchNorm1d(out, 0.8)` sets eps = 0.8 (upstream's quirk,
kept). `width_mult` multiplies the generator's hidden widths (for the scaling benchmark; 1 is upstream's model).
"""

from __future__ import annotations

import math

import torch.nn as nn


class Generator(nn.Module):
    def __init__(self, latent_dim=100, img_shape=(1, 28, 28), width_mult=1):
        super().__init__()
        self.img_shape = tuple(img_shape)

        def block(in_feat, out_feat, normalize=True):
            layers = [nn.Linear(in_feat, out_feat)]
            if normalize:
                layers.append(nn.BatchNorm1d(out_feat, 0.8))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        w = width_mult
        self.model = nn.Sequential(
            *block(latent_dim, 128 * w, normalize=False),
            *block(128 * w, 256 * w),
            *block(256 * w, 512 * w),
            *block(512 * w, 1024 * w),
            nn.Linear(1024 * w, math.prod(self.img_shape)),
            nn.Tanh(),
        )

    def forward(self, z):
        img = self.model(z)
        return img.view(img.size(0), *self.img_shape)


class Discriminator(nn.Module):
    def __init__(self, img_shape=(1, 28, 28)):
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(math.prod(img_shape), 512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 256),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(256, 1),
            nn.Sigmoid(),
        )

    def forward(self, img):
        return self.model(img.view(img.size(0), -1))
