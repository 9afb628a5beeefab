"""Mask value 255 = unlabelled counts neither in the loss nor in any metric (train, eval, Segment panel)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from aestudio.cli import main
from aestudio.data.base import UNLABELLED
from aestudio.data.io import read_image, read_mask
from aestudio.training.losses import segmentation_losses
from aestudio.training.metrics import _SegCounts
from aestudio.training.runs import load_net, read_run
from tests.data.test_native_scale import make_pairs


def test_loss_ignores_unlabelled_pixels() -> None:
    torch.manual_seed(0)
    logits = torch.randn(1, 3, 4, 6)
    target = torch.randint(0, 3, (1, 4, 6))
    sparse = target.clone()
    sparse[:, :, 3:] = UNLABELLED  # the right half unlabelled
    got = segmentation_losses(logits, sparse)
    want = segmentation_losses(logits[..., :3].contiguous(), target[..., :3].contiguous())
    assert float(got["ce"]) == pytest.approx(float(want["ce"]), rel=1e-6)
    assert float(got["dice"]) == pytest.approx(float(want["dice"]), rel=1e-6)
    # Changing what lies under the unlabelled pixels' logits changes nothing.
    logits2 = logits.clone()
    logits2[..., 3:] = 50.0
    assert float(segmentation_losses(logits2, sparse)["ce"]) == pytest.approx(float(got["ce"]), rel=1e-6)
    # A batch without any labelled pixel: zero loss with a gradient path, not NaN.
    empty = torch.full_like(target, UNLABELLED)
    logits.requires_grad_(True)
    total = sum(segmentation_losses(logits, empty).values())
    total.backward()
    assert total.item() == 0.0 and logits.grad is not None  # item(): float() of a tensor that requires grad warns


def test_metrics_ignore_unlabelled_pixels() -> None:
    counts = _SegCounts(2)
    pred = torch.tensor([[0, 1, 1, 0]])
    truth = torch.tensor([[0, 1, UNLABELLED, UNLABELLED]])
    counts.add(pred, truth)
    res = counts.result(["bg", "fg"])
    assert res["pixel_acc"] == 1.0 and res["miou"] == 1.0  # the two wrong-looking pixels are unlabelled


def test_segment_panel_iou_ignores_unlabelled() -> None:
    from aestudio.explore.segmentation import iou_dice
    pred = np.array([[0, 1, 1, 0]])
    truth = np.array([[0, 1, UNLABELLED, UNLABELLED]])
    iou, _ = iou_dice(pred, truth, 2)
    assert iou.tolist() == [1.0, 1.0]


def test_cli_trains_and_evaluates_on_labelled_pixels_only(tmp_path, capsys) -> None:
    spec = make_pairs(tmp_path / "set", [(24, 40), (40, 24), (32, 32), (24, 24)], unlabelled_rows=8)
    out = tmp_path / "run"
    assert main(["train", "--model", "unet", "--data", spec, "--max-steps", "3", "--base-channels", "4",
                 "--depth", "2", "--crop-size", "16", "--no-progress", "--out", str(out)]) == 0
    info = read_run(out)
    assert info.net_cfg.num_classes == 2  # 255 is not a class
    assert info.train_cfg.batch_size == 16 and info.train_cfg.lr == pytest.approx(2e-3)  # own-scale defaults
    assert info.data_options["native"]["crop"] == 16 and info.data_info["image_size"] is None
    capsys.readouterr()
    assert main(["eval", str(out), "--split", "all", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)["metrics"]
    # The same figure by hand: whole images, argmax, only pixels whose mask is not 255.
    net, _ = load_net(out, which="best")
    net.eval()
    right = total = 0
    images = sorted((tmp_path / "set" / "images").iterdir())
    for path in images:
        x = torch.from_numpy(read_image(path, channels=3)).permute(2, 0, 1)[None]
        h, w = x.shape[-2:]
        padded = torch.nn.functional.pad(x, (0, -w % 4, 0, -h % 4), mode="replicate")
        with torch.no_grad():
            pred = net(padded)[0].argmax(0)[:h, :w].numpy()
        truth = read_mask(tmp_path / "set" / "masks" / path.name)
        keep = truth != UNLABELLED
        right += int((pred[keep] == truth[keep]).sum())
        total += int(keep.sum())
    assert total < sum(read_mask(tmp_path / "set" / "masks" / p.name).size for p in images)
    assert res["pixel_acc"] == pytest.approx(right / total, abs=1e-9)


def test_live_encoder_pretraining_copies_a_trained_encoder() -> None:
    from aestudio.training.live import LiveConfig, LiveTrainer

    rng = np.random.default_rng(0)
    images = [rng.random((40, 48, 3)).astype(np.float32) for _ in range(3)]
    trainer = LiveTrainer(3, 2, LiveConfig(batch_size=2, base_channels=4, depth=2))
    before = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    copied = trainer.pretrain_encoder(images, seconds=1.0, crop=16)
    after = trainer.net.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert copied > 0 and changed and all(k.startswith("encoder") for k in changed)
    key = "encoder_blocks.stages.0.conv.0.0.weight"
    assert trainer.snapshot()[1][key].equal(after[key])  # published: the on-screen prediction uses it
