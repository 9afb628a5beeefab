"""Probe: which photo-denoiser net and data, at equal steps, on the held-out photos (issue 14, second target).

``python -m bench.probes.photo_denoiser_pilot NAME STEPS [key=value ...]`` trains one candidate for STEPS
Adam steps in this process (one torch thread) on random crops of the zoo's training photos with the
recipe's noise (Gaussian, sigma drawn from 0-50/255 per image, clipped, ``aestudio.data.noise``), then
prints the mean PSNR over the held-out photos (``aestudio.zoo.photos.held_out_gray``, top-left 512 x 512)
at sigma 15, 25 and 50 of 255 (seed 0), the process CPU seconds and the seconds per step.

Keys: ``photos=v1|v2`` (``TRAIN_PHOTOS`` or ``TRAIN_PHOTOS_V2``), ``width``, ``layers`` (undilated body
convs; 0 = the shipped net's dilations 1,2,3,2,1), ``unshuffle`` (1 or 2), ``sigma_map=0|1`` (1: the true
sigma as an extra input channel at half size, FFDNet's non-blind input; the blind net gets none),
``crop``, ``batch``, ``lr``, ``seed``, ``noise_max`` (the top sigma, default 0.196 = 50/255; the long run's
recipe uses 0.216), ``init=FILE|RUN`` (start from a blind run's weights, e.g. ``RUN/best.safetensors``, or a run folder: its last
weights and Adam state; the warm-start test: with ``sigma_map=1`` the extra input channel starts at zero, so
step 0 is the blind net),
``bf16=1`` (bfloat16 autocast on the CPU). The same loop as the CLI's in spirit (MSE on the clean image,
Adam), not the CLI itself: the pilot compares candidates; the long run goes through ``aestudio train``.
Figures: docs/DESIGN-notes.md ("Shipped photo-denoiser vs BM3D").
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

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
    adam_state = None
    if "init" in opts:
        from aestudio.training.checkpoint import load_training_state, load_weights

        init = Path(opts["init"])
        # A run folder: its last weights with their Adam state (a warm start that keeps the moments, as a
        # resume does; fresh moments at lr 1e-3 knock a trained net back by ~2 dB in the first steps).
        state = load_weights(init / "model.safetensors" if init.is_dir() else init)[0]
        if init.is_dir():
            adam_state = load_training_state(init / "optimizer.safetensors").optimizer
        if sigma_map:  # the blind head's weights (and moments), plus a zero noise-level channel
            w = state["head.0.weight"]
            state["head.0.weight"] = torch.cat([w, torch.zeros_like(w[:, :1])], 1)
            names = [n for n, _ in net.named_parameters()]
            if adam_state is not None:
                moments = adam_state["state"][names.index("head.0.weight")]
                for key in ("exp_avg", "exp_avg_sq"):
                    moments[key] = torch.cat([moments[key], torch.zeros_like(moments[key][:, :1])], 1)
        net.load_state_dict(state)
    if sigma_map:

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
    noise = parse_noise(f"gaussian:0-{float(opts.get('noise_max', 0.196))}")
    bf16 = opts.get("bf16", "0") == "1"
    opt = torch.optim.Adam(net.parameters(), lr=float(opts.get("lr", 1e-3)))
    if adam_state is not None:
        opt.load_state_dict(adam_state)
        for group in opt.param_groups:
            group["lr"] = float(opts.get("lr", 1e-3))
    held = held_out_gray(512)

    def evaluate(step: int) -> dict[str, object]:
        net.eval()
        row: dict[str, object] = {"name": name, "step": step}
        with torch.no_grad():
            for s in SIGMAS:
                scores = []
                for j, clean in enumerate(held.values()):
                    noisy = gaussian(clean, s / 255, np.random.default_rng(j))
                    x = torch.from_numpy(noisy)[None, None]
                    out = (x - predict_noise(x, torch.tensor([s / 255.0]))).clamp(0, 1)[0, 0].numpy()
                    scores.append(10 * np.log10(1.0 / np.mean((out - clean) ** 2)))
                row[f"psnr{s}"] = round(float(np.mean(scores)), 3)
        net.train()
        return row

    # eval_every=N: a JSON line of held-out PSNRs every N steps (and at step 0 when warm-started),
    # a learning curve at the cost of ~15 full-size forward passes each.
    every = int(opts.get("eval_every", 0))
    if every and "init" in opts:
        print(json.dumps(evaluate(0)), flush=True)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    eval_cpu = 0.0
    net.train()
    for step in range(1, steps + 1):
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
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = x - predict_noise(x, sigma)
        loss = F.mse_loss(out.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if every and step % every == 0 and step < steps:
            e0 = time.process_time()
            row = evaluate(step)
            eval_cpu += time.process_time() - e0
            row["train_cpu_s"] = round(time.process_time() - cpu0 - eval_cpu, 1)
            print(json.dumps(row), flush=True)
    cpu, wall = time.process_time() - cpu0 - eval_cpu, time.perf_counter() - wall0
    result: dict[str, object] = {"name": name, "steps": steps, "opts": opts,
                                 "params": sum(p.numel() for p in net.parameters()),
                                 "cpu_s": round(cpu, 1), "s_per_step": round(wall / max(steps, 1), 3)}
    result.update({k: v for k, v in evaluate(steps).items() if k.startswith("psnr")})
    return result


if __name__ == "__main__":
    args = sys.argv[1:]
    out = main(args[0], int(args[1]), dict(a.split("=", 1) for a in args[2:]))
    print(json.dumps(out), flush=True)
