"""Probe: which photo-denoiser net and data, at equal steps, on the held-out photos (issue 14, second target).

``python -m bench.probes.photo_denoiser_pilot NAME STEPS [key=value ...]`` trains one candidate for STEPS
Adam steps in this process (one torch thread) on random crops of the zoo's training photos with the
recipe's noise (Gaussian, sigma drawn from 0-50/255 per image, clipped, ``aestudio.data.noise``), then
prints the mean PSNR over the held-out photos (``aestudio.zoo.photos.held_out_gray``, top-left 512 x 512)
at sigma 15, 25 and 50 of 255 (seed 0), the process CPU seconds and the seconds per step.

Keys: ``photos=v1|v2`` (``TRAIN_PHOTOS`` or ``TRAIN_PHOTOS_V2``), ``width``, ``layers`` (undilated body
convs; 0 = the shipped net's dilations 1,2,3,2,1), ``unshuffle`` (1 or 2), ``sigma_map=0|1`` (1: the true
sigma as an extra input channel at half size, FFDNet's non-blind input; the blind net gets none),
``crop``, ``batch``, ``lr``, ``seed``. The same loop as the CLI's in spirit (MSE on the clean image,
Adam), not the CLI itself: the pilot compares candidates; the long run goes through ``aestudio train``.
Figures: docs/DESIGN-notes.md ("Shipped photo-denoiser vs BM3D").
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

SIGMAS = (15, 25, 50)


def _gray(image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float32) / 255.0
    return x @ np.array([0.299, 0.587, 0.114], dtype=np.float32) if x.ndim == 3 else x


def _photos(which: str) -> list[np.ndarray]:
    from aestudio.zoo.photos import TRAIN_PHOTOS, TRAIN_PHOTOS_V2, _variants, load_photo

    names = TRAIN_PHOTOS if which == "v1" else TRAIN_PHOTOS_V2
    return [_gray(v) for n in names for v in _variants(load_photo(n))]


def main(name: str, steps: int, opts: dict[str, str]) -> dict[str, object]:
    import torch
    from torch.nn import functional as F

    from aestudio.config import parse_noise
    from aestudio.data.noise import apply_noise, gaussian
    from aestudio.nets import build_net, default_config
    from aestudio.zoo.photos import held_out_gray

    torch.set_num_threads(1)
    seed = int(opts.get("seed", 0))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    layers, unshuffle = int(opts.get("layers", 0)), int(opts.get("unshuffle", 1))
    net_opts: dict[str, object] = {"channels": int(opts.get("width", 32)), "unshuffle": unshuffle}
    if layers:
        net_opts["dilations"] = (1,) * layers
    sigma_map = opts.get("sigma_map", "0") == "1"
    net = build_net("denoising_ae", default_config("denoising_ae", in_channels=1, **net_opts))
    if sigma_map:  # the head takes one more channel: the noise level, constant over the image
        old = net.head[0]
        net.head[0] = torch.nn.Conv2d(old.in_channels + 1, old.out_channels, 3, padding=1)

        def predict_noise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            h, w = x.shape[-2:]
            inner = F.pixel_unshuffle(F.pad(x, (0, w % 2, 0, h % 2), mode="reflect"), 2)
            level = sigma.view(-1, 1, 1, 1).expand(-1, 1, *inner.shape[-2:])
            return F.pixel_shuffle(net.noise(net.body(net.head(torch.cat([inner, level], 1)))), 2)[..., :h, :w]
    else:
        def predict_noise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            return net.predict_noise(x)

    photos = _photos(opts.get("photos", "v2"))
    weights = np.array([p.size for p in photos], dtype=np.float64)
    weights /= weights.sum()
    crop, batch = int(opts.get("crop", 48)), int(opts.get("batch", 32))
    noise = parse_noise("gaussian:0-0.196")
    opt = torch.optim.Adam(net.parameters(), lr=float(opts.get("lr", 1e-3)))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    net.train()
    for _ in range(steps):
        clean = np.empty((batch, 1, crop, crop), dtype=np.float32)
        for i, k in enumerate(rng.choice(len(photos), size=batch, p=weights)):
            p = photos[k]
            top, left = rng.integers(0, p.shape[0] - crop + 1), rng.integers(0, p.shape[1] - crop + 1)
            clean[i, 0] = np.rot90(p[top:top + crop, left:left + crop], int(rng.integers(4)))
        noisy = np.stack([apply_noise(c, noise, rng) for c in clean])
        # The level the noise was drawn at is not returned; estimate it from the difference (exact
        # up to clipping), which is what a sigma-map net would be told.
        sigma = torch.from_numpy((noisy - clean).reshape(batch, -1).std(1).astype(np.float32))
        x, y = torch.from_numpy(noisy), torch.from_numpy(clean)
        out = x - predict_noise(x, sigma)
        loss = F.mse_loss(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    net.eval()
    held = held_out_gray(512)
    result: dict[str, object] = {"name": name, "steps": steps, "opts": opts,
                                 "params": sum(p.numel() for p in net.parameters()),
                                 "cpu_s": round(cpu, 1), "s_per_step": round(wall / max(steps, 1), 3)}
    with torch.no_grad():
        for s in SIGMAS:
            scores = []
            for j, clean in enumerate(held.values()):
                noisy = gaussian(clean, s / 255, np.random.default_rng(j))
                x = torch.from_numpy(noisy)[None, None]
                out = (x - predict_noise(x, torch.tensor([s / 255.0]))).clamp(0, 1)[0, 0].numpy()
                scores.append(10 * np.log10(1.0 / np.mean((out - clean) ** 2)))
            result[f"psnr{s}"] = round(float(np.mean(scores)), 3)
    return result


if __name__ == "__main__":
    args = sys.argv[1:]
    out = main(args[0], int(args[1]), dict(a.split("=", 1) for a in args[2:]))
    print(json.dumps(out), flush=True)
