"""Probe: does a self-supervised validation score rank denoisers like their PSNR against the clean images?

``python -m bench.probes.selfsup_criterion [CASE] [STEPS]`` (CASE 0 = Gaussian 25/255, 1 = Poisson-Gaussian,
the cases of bench ``selfsup_denoise``) collects a dozen nets: the identity start, the shipped photo-denoiser,
snapshots of Neighbor2Neighbor training from scratch (lr 1e-3, STEPS steps) and of fine-tuning the
photo-denoiser at lr 1e-4 and 1e-3; then prints, per net, the PSNR against the clean photos and the two
scores of ``aestudio.training.selfsup.validation_loss`` on the run's validation crops: ``ss_loss`` (the
neighbour loss) and ``sure_mse`` (the best-checkpoint metric). The decision that matters is among the best
nets (fine-tuned vs the start), so it prints which net each score would pick among those within 1 dB of
the best, and the Spearman correlation over all. Figures: docs/DESIGN-notes.md (issue 14).
"""

from __future__ import annotations

import copy
import sys
import tempfile
from pathlib import Path

import numpy as np


def main(case: int = 0, steps: int = 40) -> None:
    import torch
    from scipy.stats import spearmanr
    from torch.utils.data import DataLoader

    from aestudio.config import SelfSupervised
    from aestudio.data.io import write_image
    from aestudio.data.specs import open_data
    from aestudio.nets import build_net, default_config
    from aestudio.training import selfsup
    from aestudio.training.runner import _init_weights
    from aestudio.zoo.catalog import find_model
    from aestudio.zoo.photos import held_out_gray
    from bench.benchmarks.selfsup_denoise import CROP, PHOTOS, SIDE, _cases, _psnr

    photos = dict(list(held_out_gray(SIDE).items())[:PHOTOS])
    name, (noisy, _) = list(_cases(photos).items())[case]
    folder = Path(tempfile.mkdtemp(prefix="selfsup-criterion-"))
    for key, x in noisy.items():
        write_image(folder / f"{key}.png", x[..., None], bit_depth=16)
    data = open_data(f"folder:{folder}", image_size=CROP, noisy=True)

    def fresh() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_net("denoising_ae", default_config("denoising_ae", in_channels=1))

    def shipped() -> torch.nn.Module:
        net = fresh()
        _init_weights(net, find_model("photo-denoiser").path)
        return net

    nets = {"identity": fresh(), "photo-denoiser": shipped()}

    def snapshots(net: torch.nn.Module, lr: float, n: int, tag: str, every: int) -> None:
        torch.manual_seed(0)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        loader = DataLoader(data.train, batch_size=16, shuffle=True)
        it = iter(loader)
        for step in range(1, n + 1):
            try:
                x, _ = next(it)
            except StopIteration:
                it = iter(loader)
                x, _ = next(it)
            net.train()
            opt.zero_grad()
            loss, _ = selfsup.batch_objective(net, x, SelfSupervised.NE2NE)
            loss.backward()
            opt.step()
            if step % every == 0:
                nets[f"{tag} @{step}"] = copy.deepcopy(net)

    snapshots(fresh(), 1e-3, steps, "scratch", max(1, steps // 4))
    snapshots(shipped(), 1e-4, steps // 2, "fine-tune 1e-4", max(1, steps // 6))
    snapshots(shipped(), 1e-3, 6, "fine-tune 1e-3", 2)
    rows = []
    for key, net in nets.items():
        net.eval()
        with torch.no_grad():
            psnr = float(np.mean([_psnr(np.clip(net(torch.from_numpy(noisy[k])[None, None])[0, 0].numpy(), 0, 1),
                                        photos[k]) for k in photos]))
        scores = selfsup.validation_loss(net, data.val, SelfSupervised.NE2NE)
        rows.append((key, psnr, scores["ss_loss"], scores[selfsup.SELECTION_METRIC]))
    print(f"{name}\n| net | PSNR dB | ss_loss | sure_mse |\n|---|---|---|---|")
    for key, psnr, ss, sure in rows:
        print(f"| {key} | {psnr:.2f} | {ss:.6f} | {sure:.6f} |")
    top = max(r[1] for r in rows)
    close = [r for r in rows if r[1] >= top - 1.0]
    for label, col in (("ss_loss", 2), ("sure_mse", 3)):
        pick = min(close, key=lambda r: r[col])
        rho = spearmanr([r[1] for r in rows], [-r[col] for r in rows])[0]
        print(f"{label}: picks {pick[0]} ({pick[1]:.2f} dB; best {top:.2f}) among the {len(close)} nets within 1 dB; "
              f"Spearman vs PSNR over all {rho:.2f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
