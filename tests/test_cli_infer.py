"""The inference CLI end to end on tiny models: export, denoise, segment, reconstruct, sample, interpolate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aestudio.cli import main
from aestudio.export.exporter import export_net
from aestudio.nets import build_net, default_config

io = pytest.importorskip("aestudio.data.io")


def _bundle(root: Path, name: str, **cfg_kw) -> Path:
    torch.manual_seed(0)
    cfg = default_config(name, **cfg_kw)
    export_net(build_net(name, cfg).eval(), name, cfg, root / name, measure_timings=False)
    return root / name


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "denoise": _bundle(root, "denoising_ae", channels=8),
        "segment": _bundle(root, "unet", base_channels=8, depth=2, num_classes=3),
        "vae": _bundle(root, "vae", image_size=16),
    }


@pytest.fixture()
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    io.write_image(folder / "a photo.png", rng.random((30, 40, 3)))
    io.write_image(folder / "sub" / "b.png", rng.random((24, 24)))
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


def test_denoise_with_noise_writes_pairs_and_reports_bad_files(models, inputs: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code = main(["denoise", "--model", str(models["denoise"]), str(inputs), "-o", str(out), "--noise", "gaussian:0.1", "--seed", "3"])
    assert code == 1  # one bad file
    err = capsys.readouterr().err
    assert "skipped" in err and "broken.png" in err
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert names == ["a_photo_denoised.png", "a_photo_noisy.png", "sub/b_denoised.png", "sub/b_noisy.png"]
    noisy, clean = io.read_image(out / "a_photo_noisy.png"), io.read_image(out / "a_photo_denoised.png")
    assert noisy.shape == (30, 40, 3) and clean.shape[:2] == (30, 40) and np.abs(noisy - io.read_image(inputs / "a photo.png")).mean() > 0.02


def test_segment_writes_index_masks_and_overlays(models, inputs: Path, tmp_path: Path) -> None:
    (inputs / "broken.png").unlink()
    out = tmp_path / "seg"
    assert main(["segment", "--model", str(models["segment"]), str(inputs / "a photo.png"), "-o", str(out), "--overlay"]) == 0
    mask = io.read_mask(out / "a_photo_mask.png")
    assert mask.shape == (30, 40) and mask.max() < 3
    assert (out / "a_photo_overlay.png").is_file()


def test_reconstruct_sample_and_interpolate(models, inputs: Path, tmp_path: Path) -> None:
    (inputs / "broken.png").unlink()
    assert main(["reconstruct", "--model", str(models["vae"]), str(inputs), "-o", str(tmp_path / "r")]) == 0
    assert io.read_image(tmp_path / "r" / "a_photo_recon.png").shape[:2] == (30, 40)
    assert main(["sample", "--model", str(models["vae"]), "-n", "9", "-o", str(tmp_path / "grid.png"), "--seed", "1"]) == 0
    assert io.read_image(tmp_path / "grid.png").shape[:2] == (3 * 18 + 2, 3 * 18 + 2)
    a, b = inputs / "a photo.png", inputs / "sub" / "b.png"
    assert main(["interpolate", "--model", str(models["vae"]), str(a), str(b), "-n", "5", "-o", str(tmp_path / "s.png")]) == 0
    assert io.read_image(tmp_path / "s.png").shape[:2] == (18 + 2, 5 * 18 + 2)


def test_user_errors_are_one_line_exit_2(models, inputs: Path, tmp_path: Path, capsys) -> None:
    assert main(["sample", "--model", str(models["denoise"]), "-o", str(tmp_path / "g.png")]) == 2
    assert main(["segment", "--model", str(models["vae"]), str(inputs), "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("aestudio: error:") == 2
    # A --model that is neither a path nor a shipped model's name is refused while parsing (argparse: exit 2).
    with pytest.raises(SystemExit) as exit_info:
        main(["denoise", "--model", str(tmp_path / "missing"), str(inputs), "-o", str(tmp_path / "x")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error: argument --model:" in err and "no such file or folder" in err


def test_export_command_on_a_trained_run(tmp_path: Path, capsys) -> None:
    from aestudio.config import TrainConfig
    from aestudio.training import train

    run = tmp_path / "run"
    for _ in train("dense_ae", None, "digits", TrainConfig(epochs=1, max_steps=2, batch_size=16), run):
        pass
    assert main(["export", str(run), "--which", "last"]) == 0
    from aestudio.inference.bundle import read_bundle

    info = read_bundle(run / "bundle")
    assert info.training["steps"] == 2 and info.training["data_spec"] == "digits"
    assert "bundle written" in capsys.readouterr().out
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "x.txt").write_text("keep")
    assert main(["export", str(run), "-o", str(tmp_path / "mine")]) == 2


def test_segment_keeps_earlier_results_unless_asked_and_names_like_the_panel(models, inputs: Path, tmp_path: Path, capsys) -> None:
    """One folder job for CLI and app (issue 15): existing outputs are skipped unless --overwrite."""
    (inputs / "broken.png").unlink()
    out = tmp_path / "seg"
    args = ["segment", "--model", str(models["segment"]), str(inputs), "-o", str(out)]
    assert main(args) == 0
    mask = out / "a_photo_mask.png"
    assert mask.is_file() and (out / "sub" / "b_mask.png").is_file()
    mask.write_bytes(b"kept")  # a result the user changed by hand
    assert main(args) == 0
    assert mask.read_bytes() == b"kept" and "skipped (outputs already there" in capsys.readouterr().out
    assert main([*args, "--overwrite"]) == 0
    assert io.read_mask(mask).shape == (30, 40)


@pytest.mark.parametrize(("command", "model", "extra", "result"), [
    ("denoise", "denoise", [], "_denoised.png"),
    ("denoise", "denoise", ["--noise", "gaussian:0.1"], "_noisy.png"),
    ("reconstruct", "vae", [], "_recon.png"),
    ("segment", "segment", ["--overlay"], "_overlay.png"),
])
def test_every_folder_command_keeps_existing_results_and_names_broken_files(
        models, inputs: Path, tmp_path: Path, capsys, command: str, model: str, extra: list[str], result: str) -> None:
    """denoise, reconstruct and segment run the one folder job: same names, same overwrite rule, bad files named."""
    out = tmp_path / "out"
    args = [command, "--model", str(models[model]), str(inputs), "-o", str(out), *extra]
    assert main(args) == 1  # broken.png: named, skipped, and the exit code says a file failed
    captured = capsys.readouterr()
    assert "aestudio: skipped broken.png" in captured.err and "2 image(s) written" in captured.out
    assert not any(p.name.startswith("broken") for p in out.rglob("*"))
    mine = out / f"a_photo{result}"
    assert mine.is_file() and (out / "sub" / f"b{result}").is_file()
    mine.write_bytes(b"kept")  # a result the user changed by hand (or another tool wrote)
    assert main(args) == 1
    captured = capsys.readouterr()
    assert mine.read_bytes() == b"kept", f"{command} overwrote an existing output without --overwrite"
    assert "0 image(s) written" in captured.out and "2 skipped (outputs already there" in captured.out
    assert main([*args, "--overwrite"]) == 1
    assert mine.read_bytes() != b"kept" and io.read_image(mine).shape[:2] == (30, 40)
