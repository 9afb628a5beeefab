"""'Learn this noise' staging: copies (never links or moves) a capped spread of the images."""

from __future__ import annotations

import numpy as np
import pytest

from aestudio.data.io import write_image
from aestudio.training.learn_noise import stage_images


def test_stage_copies_a_capped_spread_and_refuses_a_used_folder(tmp_path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    paths = []
    for i in range(5):
        paths.append(src / f"img{i}.png")
        write_image(paths[-1], np.full((16, 16, 1), i / 10, np.float32))
    (src / "notes.txt").write_text("not an image")
    out = stage_images([*paths, src / "notes.txt"], tmp_path / "stage", max_images=3)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["000-img0.png", "001-img2.png", "002-img4.png"]  # evenly spaced, numbered
    assert all(p.is_file() and not p.is_symlink() for p in out.iterdir())
    assert (out / "000-img0.png").read_bytes() == paths[0].read_bytes() and all(p.exists() for p in paths)
    with pytest.raises(ValueError, match="not empty"):
        stage_images(paths, out)
    with pytest.raises(ValueError, match="no noisy images"):
        stage_images([src / "notes.txt"], tmp_path / "other")


def test_self_supervised_fine_tuning_keeps_the_starting_batchnorm_statistics(tmp_path) -> None:
    """Learn this noise fine-tunes a trained denoiser on the noisy images alone. With BatchNorm's running
    statistics updated from the objective's half-size sub-sampled crops, the shipped photo-denoiser lost
    ~3 dB within 160 steps (bench selfsup_denoise); they are kept, while scale, shift and convs learn. A run
    from scratch, or a supervised fine-tune, still updates them."""
    import torch

    from aestudio.config import SelfSupervised, TrainConfig
    from aestudio.training import train
    from aestudio.training.runs import load_net, read_run

    rng = np.random.default_rng(0)
    noisy = tmp_path / "noisy"
    noisy.mkdir()
    for i in range(4):
        write_image(noisy / f"{i}.png", np.clip(0.5 + 0.2 * rng.standard_normal((32, 32, 1)), 0, 1).astype(np.float32))

    def run(name: str, **kw) -> object:
        cfg = TrainConfig(epochs=50, max_steps=4, batch_size=4, lr=1e-3, **kw.pop("cfg", {}))
        for _ in train("denoising_ae", None, f"folder:{noisy}", cfg, tmp_path / name, image_size=16, **kw):
            pass
        return tmp_path / name

    def stats(run_dir) -> list[torch.Tensor]:
        net, _ = load_net(run_dir, which="last")
        return [t.clone() for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)
                for t in (m.running_mean, m.running_var)]

    def weights(run_dir) -> list[torch.Tensor]:
        net, _ = load_net(run_dir, which="last")
        return [p.detach().clone() for p in net.parameters()]

    start = run("start")
    ss = {"self_supervised": SelfSupervised.NE2NE}
    tuned = run("tuned", cfg=ss, init_weights=start)
    assert read_run(tuned).train_cfg.freeze_norm
    assert all(torch.equal(a, b) for a, b in zip(stats(start), stats(tuned), strict=True))  # kept
    assert any(not torch.equal(a, b) for a, b in zip(weights(start), weights(tuned), strict=True))  # it learnt
    # From scratch, and a supervised fine-tune: the statistics follow the data as before.
    scratch = run("scratch", cfg=ss)
    assert not read_run(scratch).train_cfg.freeze_norm
    supervised = run("supervised", init_weights=start)
    assert not read_run(supervised).train_cfg.freeze_norm
    assert any(not torch.equal(a, b) for a, b in zip(stats(start), stats(supervised), strict=True))


def test_anchored_objective_targets_the_start_where_clipped_and_the_neighbours_elsewhere() -> None:
    """Fine-tuning self-supervised: where clipping at 0 or 1 biases the noisy neighbour (its mean is not the clean
    value), the starting net's output is the target; elsewhere the Neighbor2Neighbor terms, unchanged."""
    import torch

    from aestudio.training import selfsup

    g = torch.Generator().manual_seed(0)
    mid = (0.5 + 0.05 * torch.randn(2, 1, 32, 32, generator=g)).clamp(0, 1)  # no pixel near 0 or 1
    first, second = selfsup.neighbour_indices((2, 32, 32), generator=g)
    net = torch.nn.Conv2d(1, 1, 3, padding=1)
    anchor = torch.nn.Conv2d(1, 1, 3, padding=1)
    plain, _ = selfsup.ne2ne_loss(net, mid, first, second)
    anchored, terms = selfsup.anchored_ne2ne_loss(net, anchor, mid, first, second)
    assert torch.allclose(plain, anchored) and float(terms["anchor"].detach()) == 0.0
    # Half the image clipped to black (noise below 0 cut off): there only the anchor counts.
    clipped = mid.clone()
    clipped[..., :16] = (0.05 * torch.randn(2, 1, 32, 16, generator=g)).clamp(min=0)
    keep = selfsup.unclipped(selfsup.subsample(clipped, first), selfsup.noise_model(clipped))
    assert float(keep[..., :5].mean()) < 0.05 and float(keep[..., 11:].mean()) > 0.95  # (the border between: mixed)
    _, terms = selfsup.anchored_ne2ne_loss(net, anchor, clipped, first, second)
    assert float(terms["anchor"].detach()) > 0
    # The starting net itself has nothing to learn from the anchor term: the gradient through it is zero.
    _, same = selfsup.anchored_ne2ne_loss(anchor, anchor, clipped, first, second)
    assert float(same["anchor"].detach()) == 0.0


def test_self_supervised_fine_tuning_keeps_its_anchor_across_a_resume(tmp_path) -> None:
    """The anchor is the weights the fine-tuning started from (start.safetensors), not the resumed checkpoint's:
    3 + 3 steps give the weights 6 straight steps give. Without the file a resume names it."""
    import torch

    from aestudio.config import SelfSupervised, TrainConfig
    from aestudio.training import resume, train
    from aestudio.training.runs import RunError, load_net, read_run

    rng = np.random.default_rng(0)
    noisy = tmp_path / "noisy"
    noisy.mkdir()
    for i in range(4):  # dark images: a good share of the pixels is clipped at 0
        write_image(noisy / f"{i}.png", np.clip(0.15 + 0.2 * rng.standard_normal((32, 32, 1)), 0, 1).astype(np.float32))

    def run(name: str, steps: int, **kw) -> object:
        cfg = TrainConfig(epochs=50, max_steps=steps, batch_size=4, lr=1e-3, **kw.pop("cfg", {}))
        for _ in train("denoising_ae", None, f"folder:{noisy}", cfg, tmp_path / name, image_size=16, **kw):
            pass
        return tmp_path / name

    start = run("start", 2)
    ss = {"self_supervised": SelfSupervised.NE2NE}
    straight = run("straight", 6, cfg=ss, init_weights=start)
    assert read_run(straight).train_cfg.anchor_clipped and (straight / "start.safetensors").is_file()
    assert not read_run(run("scratch", 1, cfg=ss)).train_cfg.anchor_clipped  # from scratch there is no anchor
    split = run("split", 3, cfg=ss, init_weights=start)
    for _ in resume(split, max_steps=6):
        pass
    a, _ = load_net(straight, which="last")
    b, _ = load_net(split, which="last")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    (split / "start.safetensors").unlink()
    with pytest.raises(RunError, match="start.safetensors"):
        list(resume(split, max_steps=9))
