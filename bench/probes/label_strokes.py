"""Probe: short label-quality experiments on bench ``label_quality``'s scenes (issue 13).

A small configurable trainer (crop, batch, lr and schedule, turns, jitter, strokes grown to
superpixels, a FixMatch-style term on unpainted crops, full masks) stopped after ``--cpu`` seconds
of this process's CPU time, so other engineers' load does not shrink the budget. Prints one JSON line
with the held-out mIoU and appends it to ``--log``. E.g.::

    python -m bench.probes.label_strokes --cpu 120 --threads 1 --crop 64 --batch 16 --rot 1 --jitter 0.1 --sp 0.5

The findings are in ``bench/benchmarks/label_quality.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from aestudio.data.procedural import render_seg
from aestudio.nets.registry import build_net, default_config
from aestudio.training.losses import segmentation_losses
from bench.benchmarks.label_quality import PAINTED_SHARE, SIZE, _miou, _strokes

CACHE = os.path.join(tempfile.gettempdir(), "aestudio-label-strokes.npz")


def data(n=240, n_test=60):
    if os.path.exists(CACHE):
        d = np.load(CACHE)
        return {k: d[k] for k in d.files}
    rng = np.random.default_rng(0)
    imgs, truths, sparse = [], [], []
    for i in range(n):
        img, t = render_seg(200_000 + i, SIZE)
        imgs.append(img)
        truths.append(t)
        sparse.append(_strokes(t, rng) if i % PAINTED_SHARE == 0 else np.full_like(t, 255))
    test = [render_seg(300_000 + i, SIZE) for i in range(n_test)]
    d = dict(imgs=np.stack(imgs), truths=np.stack(truths), sparse=np.stack(sparse),
             timgs=np.stack([a for a, _ in test]), ttruths=np.stack([b for _, b in test]))
    np.savez(CACHE, **d)
    return d


def aug_geo(x, m, rng, rot):
    # x [C,H,W], m [H,W] (tensor)
    if rng.random() < 0.5:
        x, m = x.flip(-1), m.flip(-1)
    if rng.random() < 0.5:
        x, m = x.flip(-2), m.flip(-2)
    if rot:
        k = int(rng.integers(4))
        x, m = torch.rot90(x, k, (-2, -1)), torch.rot90(m, k, (-2, -1))
    return x, m


def color_jitter(x, rng, s):
    # x [N,C,H,W]
    n = x.shape[0]
    b = torch.from_numpy(rng.uniform(-s, s, (n, 1, 1, 1)).astype(np.float32))
    c = torch.from_numpy(rng.uniform(1 - s, 1 + s, (n, 1, 1, 1)).astype(np.float32))
    mean = x.mean((1, 2, 3), keepdim=True)
    return ((x - mean) * c + mean + b).clamp(0, 1)


def crop_at(img, m, crop, rng, centre_labelled):
    H, W = m.shape
    if centre_labelled:
        lab = np.flatnonzero(m.numpy().reshape(-1) != 255)
        y, x = divmod(int(lab[rng.integers(lab.size)]), W)
        top = int(np.clip(y - rng.integers(crop), 0, H - crop))
        left = int(np.clip(x - rng.integers(crop), 0, W - crop))
    else:
        top, left = int(rng.integers(0, H - crop + 1)), int(rng.integers(0, W - crop + 1))
    return img[:, top:top + crop, left:left + crop], m[top:top + crop, left:left + crop]


def sup_loss(logits, m, w, dice):
    ce = F.cross_entropy(logits, m, ignore_index=255, reduction="none")
    ce = (ce * w).sum() / w.sum().clamp_min(1)
    return ce + dice * segmentation_losses(logits, m)["dice"]


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpu", type=float, default=60, help="process CPU seconds of training")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--sched", default="const")  # const|onecycle|cos
    ap.add_argument("--rot", type=int, default=0)
    ap.add_argument("--jitter", type=float, default=0.0)
    ap.add_argument("--full", type=int, default=0)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--dice", type=float, default=1.0)
    ap.add_argument("--u", type=float, default=0.0, help="weight of the unlabelled consistency term")
    ap.add_argument("--ubatch", type=int, default=8)
    ap.add_argument("--thresh", type=float, default=0.9)
    ap.add_argument("--ucrop", type=int, default=0)
    ap.add_argument("--upainted", type=int, default=1, help="unlabelled term also on painted images")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default="")
    ap.add_argument("--sp", type=float, default=0.0, help="weight of superpixel-propagated labels")
    ap.add_argument("--log", default="", help="append the JSON line to this file")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    d = data()
    imgs = torch.from_numpy(d["imgs"]).permute(0, 3, 1, 2).float() / 255
    masks = torch.from_numpy(d["truths"] if a.full else d["sparse"]).clone()
    if a.full:
        masks[torch.from_numpy(d["sparse"]).eq(255).flatten(1).all(1)] = 255
    painted = [i for i in range(len(imgs)) if (masks[i] != 255).any()]
    weights = (masks != 255).float()
    if a.sp:
        from aestudio.data.regions import grow, segments

        for i in painted:
            pt = torch.from_numpy(grow(masks[i].numpy(), segments(d["imgs"][i].astype(np.float32) / 255)))
            weights[i] = torch.where(masks[i] != 255, torch.ones(()), torch.where(pt != 255, torch.tensor(a.sp), torch.zeros(())))
            masks[i] = pt
    upool = list(range(len(imgs))) if a.upainted else [i for i in range(len(imgs)) if i not in painted]
    cfg = default_config("unet", in_channels=3, num_classes=4, depth=a.depth, base_channels=a.width)
    net = build_net("unet", cfg)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    ucrop = a.ucrop or a.crop
    t_cpu0 = time.process_time()
    t0 = time.perf_counter()
    steps = 0
    losses = []
    while time.process_time() - t_cpu0 < a.cpu:
        frac = (time.process_time() - t_cpu0) / a.cpu
        if a.sched == "onecycle":
            lr = a.lr * (frac / 0.15 if frac < 0.15 else 0.5 * (1 + np.cos(np.pi * (frac - 0.15) / 0.85)))
        elif a.sched == "cos":
            lr = a.lr * 0.5 * (1 + np.cos(np.pi * frac))
        else:
            lr = a.lr
        lr = max(lr, a.lr * 0.01)
        for g in opt.param_groups:
            g["lr"] = lr
        xs, ms = [], []
        for i in rng.choice(painted, size=a.batch):
            H = masks[i].shape[0]
            lab = np.flatnonzero(masks[i].numpy().reshape(-1) != 255)
            y, xx = divmod(int(lab[rng.integers(lab.size)]), H)
            top = int(np.clip(y - rng.integers(a.crop), 0, H - a.crop))
            left = int(np.clip(xx - rng.integers(a.crop), 0, H - a.crop))
            x = imgs[i][:, top:top + a.crop, left:left + a.crop]
            mw = torch.stack([masks[i].float(), weights[i]])[:, top:top + a.crop, left:left + a.crop]
            x, mw = aug_geo(x, mw, rng, a.rot)
            xs.append(x)
            ms.append(mw)
        x = torch.stack(xs)
        mw = torch.stack(ms)
        m, wmap = mw[:, 0].long(), mw[:, 1]
        if a.jitter:
            x = color_jitter(x, rng, a.jitter)
        net.train()
        if a.u > 0:
            uxs = []
            for i in rng.choice(upool, size=a.ubatch):
                ux, _ = crop_at(imgs[i], masks[i], ucrop, rng, False)
                ux, _ = aug_geo(ux, masks[i][:ucrop, :ucrop], rng, a.rot)
                uxs.append(ux)
            ux = torch.stack(uxs)
            with torch.no_grad():
                # weak view = as is; pseudo-labels from the same net in eval? use train-mode BN-free: eval
                net.eval()
                pu = torch.softmax(net(ux), 1)
                net.train()
                conf, pl = pu.max(1)
                pl[conf < a.thresh] = 255
            # strong view: colour jitter + noise (geometry same)
            sx = color_jitter(ux, rng, 0.3)
            sx = (sx + 0.05 * torch.randn_like(sx)).clamp(0, 1)
            if ucrop == a.crop:
                logits = net(torch.cat([x, sx]))
                lo, lu = logits[: len(x)], logits[len(x):]
            else:
                lo, lu = net(x), net(sx)
            loss = sup_loss(lo, m, wmap, a.dice)
            if (pl != 255).any():
                loss = loss + a.u * F.cross_entropy(lu, pl, ignore_index=255)
        else:
            loss = sup_loss(net(x), m, wmap, a.dice)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        steps += 1
    wall = time.perf_counter() - t0
    cpu = time.process_time() - t_cpu0
    net.eval()
    with torch.no_grad():
        timgs = torch.from_numpy(d["timgs"]).permute(0, 3, 1, 2).float() / 255
        preds = torch.cat([net(timgs[i:i + 20]).argmax(1) for i in range(0, len(timgs), 20)]).numpy()
    miou = _miou(list(preds), list(d["ttruths"]))
    out = dict(tag=a.tag, miou=round(miou, 4), steps=steps, wall=round(wall, 1), cpu=round(cpu, 1),
               loss=round(float(np.mean(losses[-20:])), 3), load=os.getloadavg()[0], args=vars(a))
    print(json.dumps(out), flush=True)
    if a.log:
        with open(a.log, "a") as f:
            f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
