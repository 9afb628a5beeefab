"""One-click defaults per data spec: which family, and which settings train something good.

Qt-free. Values are plain dicts of config field names; a form sets only the
fields its family has, so a preset may name fields of several families.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    net: str  # the family picked when this data is chosen
    net_params: dict[str, Any] = field(default_factory=dict)
    train_params: dict[str, Any] = field(default_factory=dict)
    why: str = ""  # shown under the picker so the choice is not magic


# Digits are 8x8 (trained at that size: the form takes the data's size): a small conv AE with a 16-value code
# reconstructs them almost perfectly in 30 epochs, about a minute on 2 CPU cores.
PRESETS: dict[str, Preset] = {
    "digits": Preset("conv_ae", {"latent_dim": 16}, {"epochs": 30, "batch_size": 64, "lr": 1e-3},
                     "conv_ae with a 16-value code: near-perfect digits in ~30 epochs"),
    "shapes": Preset("vae", {"latent_dim": 8, "beta": 4.0}, {"epochs": 30, "kl_warmup_epochs": 5},
                     "a β-VAE: its code tends to line up with shape, scale, rotation and position"),
    "shapes-seg": Preset("unet", {"num_classes": 4}, {"epochs": 20, "batch_size": 16},
                         "a U-Net: pixel-wise classes on textured backgrounds"),
    "mnist": Preset("conv_ae", {"latent_dim": 32}, {"epochs": 10, "batch_size": 128}),
    "fashion-mnist": Preset("conv_ae", {"latent_dim": 32}, {"epochs": 15, "batch_size": 128}),
    "folder": Preset("denoising_ae", {}, {"epochs": 20, "batch_size": 32, "noise": "gaussian:0-0.2"},
                     "a denoising AE: learns your images' look from the folder itself"),
    # At the images' own scale (random 128-pixel crops; 255 = unlabelled): issue 13 measured batch 16, lr 2e-3.
    "pairs": Preset("unet", {}, {"epochs": 30, "batch_size": 16, "lr": 2e-3},
                    "a U-Net at your images' own scale (random crops); mask value 255 = unlabelled"),
}
FALLBACK = Preset("conv_ae", {"latent_dim": 16}, {"epochs": 20})


def preset_for(data_spec: str) -> Preset:
    kind = data_spec.partition(":")[0].strip().lower()
    return PRESETS.get(kind, FALLBACK)
