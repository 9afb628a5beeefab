"""`aestudio train / eval / info` end to end on tiny data, in-process and through the entry point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from aestudio.cli import main
from aestudio.nets import build_net, default_config
from aestudio.nets.blocks import count_params
from aestudio.training.runs import read_run

TINY = ["--data", "digits", "--image-size", "8", "--batch-size", "64", "--latent-dim", "8", "--no-progress"]


def test_train_info_eval_resume(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "--model", "dense_ae", *TINY, "--epochs", "2", "--max-steps", "3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"aestudio export {out}" in text and "best      mse" in text and "final     mse" in text
    info = read_run(out)
    assert info.step == 3 and info.net_cfg.latent_dim == 8 and info.net_cfg.image_size == 8

    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"parameters  {info.num_params:,}" in text and "compression 8.0x" in text and "best        mse" in text

    assert main(["eval", str(out), "--data", "digits", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["split"] == "val" and res["images"] == 360
    assert res["metrics"]["mse"] == pytest.approx(info.best["value"], rel=1e-5)  # same weights, same split
    assert {"mse", "psnr", "ssim"} == set(res["metrics"])

    assert main(["train", "--resume", "--out", str(out), "--epochs", "2", "--max-steps", "4", "--no-progress"]) == 0
    assert read_run(out).step == 4
    capsys.readouterr()

    # The first command again plus --resume (from the shell history) is accepted (issue 16) ...
    assert main(["train", "--model", "dense_ae", *TINY, "--epochs", "2", "--max-steps", "5", "--out", str(out),
                 "--resume", "--noise", "none", "--channels", "1"]) == 0
    assert read_run(out).step == 5
    capsys.readouterr()
    # ... and only values that differ are refused, each named with the run's own value.
    assert main(["train", "--model", "dense_ae", *TINY, "--lr", "0.1", "--max-steps", "6", "--out", str(out),
                 "--resume", "--latent-dim", "9"]) == 2
    err = capsys.readouterr().err
    assert "--latent-dim 9 differs from the run's 8" in err and "--lr" not in err.split(":")[1]
    assert "--model" not in err and "--data" not in err and "--batch-size" not in err
    assert read_run(out).step == 5
    # A new learning rate is allowed on resume (the usual fix after a divergence, issue 18).
    assert main(["train", "--resume", "--out", str(out), "--lr", "0.0005", "--max-steps", "6", "--no-progress"]) == 0
    info = read_run(out)
    assert info.step == 6 and info.train_cfg.lr == 0.0005


def test_unet_from_a_pretrained_encoder(tmp_path, capsys) -> None:
    # --base-channels / --depth narrow both nets alike, so the encoder still transfers.
    base = ["--data", "shapes-seg", "--image-size", "16", "--batch-size", "16", "--max-steps", "2", "--no-progress",
            "--base-channels", "8", "--depth", "2"]
    assert main(["train", "--model", "conv_ae", *base, "--out", str(tmp_path / "ae")]) == 0
    assert main(["train", "--model", "unet", *base, "--init-encoder", str(tmp_path / "ae"), "--out", str(tmp_path / "seg")]) == 0
    err = capsys.readouterr().err
    assert "encoder initialised from" in err and "tensors copied" in err
    info = read_run(tmp_path / "seg")
    assert info.extra["init_encoder"]["copied"] > 0 and info.net_cfg.num_classes == 4
    assert (info.net_cfg.base_channels, info.net_cfg.depth) == (8, 2)
    default = count_params(build_net("unet", default_config("unet", in_channels=3, num_classes=4)))
    assert info.num_params < default / 10  # half the width and one stage fewer: about 1/16 of the weights
    assert "miou" in info.metrics
    assert main(["eval", str(tmp_path / "seg"), "--data", "shapes-seg", "--json"]) == 0
    assert "iou_" in capsys.readouterr().out
    # The same command again with --resume is accepted (it raised TypeError on the recorded dict) ...
    seg = ["train", "--model", "unet", *base, "--out", str(tmp_path / "seg")]
    assert main([*seg, "--init-encoder", str(tmp_path / "ae"), "--resume", "--max-steps", "3"]) == 0
    assert read_run(tmp_path / "seg").step == 3
    # ... and another encoder is refused as a change, naming the recorded one.
    assert main([*seg, "--init-encoder", str(tmp_path / "seg"), "--resume", "--max-steps", "4"]) == 2
    err = capsys.readouterr().err
    assert "--init-encoder" in err and str(tmp_path / "ae") in err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["train", "--model", "dense_ae", "--data", "digits", "--beta", "2"], "--beta does not apply to dense_ae; it is for: vae"),
        (["train", "--model", "dense_ae", "--data", "digits", "--classes", "3"], "--classes does not apply to dense_ae"),
        (["train", "--model", "dense_ae", "--data", "digits", "--base-channels", "8"], "--base-channels does not apply to dense_ae"),
        (["train", "--model", "conv_ae", "--data", "digits", "--base-channels", "0"], "--base-channels is 0; it must be between 1 and 1,024"),
        (["train", "--resume", "--depth", "2"], "no such run folder"),
        (["train", "--model", "nosuch", "--data", "digits"], "unknown net 'nosuch'"),
        (["train", "--model", "dense_ae", "--data", "nosuch"], "unknown data spec"),
        (["train", "--model", "dense_ae", "--data", "digits", "--noise", "fizz:1"], "--noise: unknown noise"),
        (["train", "--model", "dense_ae", "--data", "digits", "--device", "cuda:3"], "cuda:3"),
        (["train", "--model", "dense_ae", "--data", "digits", "--epochs", "-1"], "--epochs is -1; it must be between 0 and"),
        (["train", "--model", "unet", "--data", "digits"], "needs images with masks"),
        (["train", "--model", "conv_ae", "--data", "digits", "--layers", "4"], "--layers does not apply to conv_ae; it is for: denoising_ae"),
        (["train", "--model", "vae", "--data", "digits", "--width", "16"], "--width does not apply to vae"),
        (["train", "--model", "denoising_ae", "--data", "digits", "--layers", "0"], "--layers must be at least 1"),
        (["train", "--model", "dense_ae", "--data", "digits", "--checkpoint-every", "0"], "--checkpoint-every is 0; it must be between 1"),
        (["train", "--data", "digits"], "needs --model and --data"),
        (["train", "--resume"], "no such run folder"),
        (["info"], "run.json is missing"),
        (["eval"], "run.json is missing"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, capsys, argv, needle) -> None:
    out = tmp_path / "out"
    if argv[0] == "train":
        argv = [*argv, "--out", str(out)]
    else:
        out.mkdir()
        argv = [*argv, str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and err.startswith("aestudio: error:")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    if argv[0] == "train" and "--resume" not in argv:
        assert not out.exists()  # nothing written for a refused start


@pytest.mark.slow
def test_entry_point_and_ctrl_c_stops_with_a_resumable_checkpoint(tmp_path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aestudio", "train", "--model", "dense_ae", *TINY, "--epochs", "1000", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "metrics.jsonl").exists():  # at least one epoch done: it really trains
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no epoch finished in time"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "stopping after this step" in stderr
    assert f"aestudio train --resume --out {out}" in stdout
    info = read_run(out)
    assert info.status.value == "stopped" and info.step > 0 and info.epoch >= 1


def test_fixed_size_nets_train_at_the_built_in_datas_own_size(tmp_path, capsys) -> None:
    # Without --image-size the 32x32 shapes sprites stay 32x32 (the net's config default is 28).
    out = tmp_path / "vae"
    assert main(["train", "--model", "vae", "--data", "shapes", "--base-channels", "4", "--batch-size", "64",
                 "--max-steps", "1", "--no-progress", "--out", str(out)]) == 0
    info = read_run(out)
    assert info.net_cfg.image_size == 32
    assert main(["train", "--model", "vae", "--data", "shapes", "--image-size", "16", "--base-channels", "4",
                 "--max-steps", "1", "--no-progress", "--out", str(tmp_path / "small")]) == 0
    assert read_run(tmp_path / "small").net_cfg.image_size == 16  # an explicit size still wins
    capsys.readouterr()


def test_time_limit_stops_with_a_checkpoint_saying_why_and_resumes(tmp_path, capsys, monkeypatch) -> None:
    import itertools

    from aestudio.training import loop

    # The loop's clock advances one second each time it is read (about twice a step), so the limit falls
    # after a few steps of the first epoch whatever the machine's load (30 real ms once ran out before step 1).
    ticks = itertools.count()
    monkeypatch.setattr(loop, "_monotonic", lambda: float(next(ticks)))
    out = tmp_path / "run"
    assert main(["train", "--model", "dense_ae", *TINY, "--epochs", "100", "--time-limit", "0.1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "time limit of 0.1 min reached" in text and f"aestudio train --resume --out {out}" in text
    info = read_run(out)
    assert info.status.value == "stopped" and "time limit" in info.message and 0 < info.step < 100 * 23
    assert main(["train", "--resume", "--out", str(out), "--epochs", str(info.epoch + 1), "--no-progress"]) == 0
    assert read_run(out).status.value == "done" and read_run(out).epoch == info.epoch + 1
    assert main(["train", "--model", "dense_ae", *TINY, "--time-limit", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--time-limit must be > 0" in capsys.readouterr().err


def test_the_time_limit_counts_from_the_commands_start_data_loading_included(tmp_path, capsys, monkeypatch,
                                                                                  data_opens_in_10s) -> None:
    # A person budgets wall time: --time-limit counted from the first step, so a slow data load
    # (a big folder) came on top of it. The clock here is fake: opening the data takes 10 "seconds",
    # each step 1; a 0.1-minute (6 s) budget is spent before the first step.
    out = tmp_path / "run"
    assert main(["train", "--model", "dense_ae", *TINY, "--epochs", "3", "--time-limit", "0.1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "time limit of 0.1 min reached at step" in text
    info = read_run(out)
    assert info.status.value == "stopped" and "time limit" in info.message
    assert info.step == 0, f"{info.step} steps: the budget was counted from the first step, not the command's start"
    assert "opening the data took all of this one" in info.message  # says why no step was taken
    # Still a clean, resumable stop; a resume's budget counts its own data loading too (12 s: 2 steps).
    assert main(["train", "--resume", "--out", str(out), "--time-limit", "0.2", "--no-progress"]) == 0
    assert read_run(out).step == info.step + 2
    monkeypatch.undo()  # the real clock and data opening again
    assert main(["train", "--resume", "--out", str(out), "--no-progress"]) == 0
    done = read_run(out)
    assert done.status.value == "done" and done.epoch == 3


def _noisy_folder(root, n=2, size=64, sigma=0.1):
    """Smooth images plus Gaussian noise, and their clean copies (which training never sees)."""
    import numpy as np

    from aestudio.data.io import write_image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    (root / "noisy").mkdir(parents=True)
    cleans, noisys = [], []
    for i in range(n):
        clean = (0.5 + 0.35 * np.sin(7 * xx + i) * np.cos(5 * yy - i)).astype(np.float32)[..., None]
        noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 1).astype(np.float32)
        write_image(root / "noisy" / f"{i}.png", noisy, bit_depth=16)
        cleans.append(clean)
        noisys.append(noisy)
    return root / "noisy", cleans, noisys


def test_self_supervised_run_on_noisy_images_alone_gets_closer_to_the_clean_ones(tmp_path, capsys) -> None:
    import numpy as np
    import torch

    from aestudio.training.runs import load_net

    folder, cleans, noisys = _noisy_folder(tmp_path)
    mtimes = [(folder / f"{i}.png").stat().st_mtime_ns for i in range(len(noisys))]
    out = tmp_path / "run"
    # The default method (Neighbor2Neighbor, chosen by measurement): 40 steps of 8 crops of 32 px, a few seconds.
    assert main(["train", "--model", "denoising_ae", "--data", f"folder:{folder}", "--self-supervised",
                 "--image-size", "32", "--batch-size", "8", "--epochs", "100", "--max-steps", "40",
                 "--no-progress", "--out", str(out)]) == 0
    assert "sure_mse" in capsys.readouterr().out
    info = read_run(out)
    assert info.train_cfg.self_supervised.value == "ne2ne" and info.train_cfg.noise.kind == "none"
    assert info.best["metric"] == "sure_mse"
    net, _ = load_net(out)
    with torch.no_grad():
        err = [float(np.mean((net(torch.from_numpy(n.transpose(2, 0, 1))[None])[0].numpy().transpose(1, 2, 0) - c) ** 2))
               for n, c in zip(noisys, cleans, strict=True)]
    noisy_err = [float(np.mean((n - c) ** 2)) for n, c in zip(noisys, cleans, strict=True)]
    assert np.mean(err) < 0.5 * np.mean(noisy_err), (err, noisy_err)  # measured: about 0.25
    assert [(folder / f"{i}.png").stat().st_mtime_ns for i in range(len(noisys))] == mtimes  # inputs never written


def test_blind_spot_run_trains_and_resumes_from_the_cli(tmp_path, capsys) -> None:
    folder, _, _ = _noisy_folder(tmp_path)
    out = tmp_path / "run"
    base = ["--model", "denoising_ae", "--data", f"folder:{folder}", "--self-supervised", "n2v2", "--image-size", "32",
            "--batch-size", "8", "--epochs", "100", "--no-progress", "--out", str(out)]
    assert main(["train", *base, "--max-steps", "3"]) == 0
    assert read_run(out).train_cfg.self_supervised.value == "n2v2"
    # The first command repeated with --resume continues with the same method and data.
    assert main(["train", *base, "--resume", "--max-steps", "5"]) == 0
    assert read_run(out).step == 5
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert "self-supervised n2v2" in capsys.readouterr().out
    # eval scores it the way training validated it: its own loss on the same fixed noisy crops.
    assert main(["eval", str(out), "--which", "last", "--batch-size", "8", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res["metrics"]) == {"sure_mse", "ss_loss"}
    for key in ("sure_mse", "ss_loss"):
        assert res["metrics"][key] == pytest.approx(read_run(out).metrics[key], rel=1e-6)
    assert main(["train", "--resume", "--out", str(out), "--self-supervised", "ne2ne", "--no-progress"]) == 2
    assert "--self-supervised ne2ne differs" in capsys.readouterr().err


def test_self_supervised_refuses_other_nets_added_noise_and_non_folders(tmp_path, capsys) -> None:
    folder, _, _ = _noisy_folder(tmp_path)
    cases = [
        (["--model", "conv_ae", "--data", f"folder:{folder}"], "conv_ae is not one (use --model denoising_ae)"),
        (["--model", "denoising_ae", "--data", f"folder:{folder}", "--noise", "gaussian:0.1"], "leave out --noise"),
        (["--model", "denoising_ae", "--data", "digits"], "use folder:DIR"),
    ]
    for argv, needle in cases:
        assert main(["train", *argv, "--self-supervised", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1


def test_init_from_takes_the_source_nets_shape_unless_the_net_flags_are_given(tmp_path, capsys) -> None:
    """The shipped photo-denoiser is not denoising_ae's default shape (48 features x 13 layers, --unshuffle 2):
    fine-tuning a run or bundle without the net flags (`--init-from`, the Noise lab's "Learn this noise", which
    gives no net) builds the source's shape; flags that contradict it are refused naming the fix."""
    from aestudio.training.runner import source_net_config

    base = ["--model", "denoising_ae", "--data", "digits", "--image-size", "8", "--batch-size", "16",
            "--max-steps", "1", "--no-progress"]
    src = tmp_path / "src"
    assert main(["train", *base, "--width", "8", "--layers", "3", "--unshuffle", "2", "--out", str(src)]) == 0
    bundle = tmp_path / "bundle"
    assert main(["export", str(src), "-o", str(bundle)]) == 0
    shape = read_run(src).net_cfg
    assert source_net_config("denoising_ae", bundle) == shape and source_net_config("conv_ae", bundle) is None
    for source in (src, bundle):
        out = tmp_path / f"from-{source.name}"
        assert main(["train", *base, "--init-from", str(source), "--out", str(out)]) == 0
        assert read_run(out).net_cfg == shape and read_run(out).extra["init_weights"]["from"] == str(source)
    capsys.readouterr()
    assert main(["train", *base, "--init-from", str(bundle), "--width", "16", "--out", str(tmp_path / "x")]) == 2
    assert "do not fit this net" in capsys.readouterr().err


def test_self_supervised_fine_tuning_starts_from_a_bundles_weights(tmp_path, capsys) -> None:
    import numpy as np
    import torch

    from aestudio.data.io import write_image
    from aestudio.training.runs import load_net
    from aestudio.zoo.catalog import ZooError, find_model

    try:
        shipped = find_model("photo-denoiser").path
    except ZooError:
        pytest.skip("the shipped photo-denoiser is not built")
    folder, cleans, noisys = _noisy_folder(tmp_path)
    out = tmp_path / "run"
    base = ["--model", "denoising_ae", "--data", f"folder:{folder}", "--self-supervised", "--image-size", "32",
            "--batch-size", "8", "--no-progress"]
    assert main(["train", *base, "--init-from", str(shipped), "--max-steps", "2", "--lr", "1e-4", "--out", str(out)]) == 0
    assert read_run(out).extra["init_weights"]["from"] == str(shipped)
    net, _ = load_net(out, which="last")
    with torch.no_grad():
        err = np.mean([np.mean((net(torch.from_numpy(n.transpose(2, 0, 1))[None])[0].numpy().transpose(1, 2, 0) - c) ** 2)
                       for n, c in zip(noisys, cleans, strict=True)])
    assert err < 0.3 * np.mean([np.mean((n - c) ** 2) for n, c in zip(noisys, cleans, strict=True)])  # denoises at once
    # Colour images cannot start from a grey model: one line naming the fix.
    colour = tmp_path / "colour"
    colour.mkdir()
    write_image(colour / "c.png", np.random.default_rng(0).random((40, 40, 3), dtype=np.float32))
    capsys.readouterr()
    assert main(["train", *base[:2], "--data", f"folder:{colour}", *base[4:], "--init-from", str(shipped),
                 "--out", str(tmp_path / "x")]) == 2
    err_text = capsys.readouterr().err
    assert "do not fit this net" in err_text and "grey vs colour" in err_text


def test_train_opens_the_data_set_once_at_its_own_size(tmp_path, monkeypatch) -> None:
    """A fixed-size net on built-in data trains at the data's side without a second open (issue 15)."""
    from aestudio.data import specs

    opened: list[int | None] = []
    real = specs._open_digits

    def counting(image_size, *args, **kwargs):  # noqa: ANN001, ANN202 - same signature as the real one
        opened.append(image_size)
        return real(image_size, *args, **kwargs)

    monkeypatch.setattr(specs, "_open_digits", counting)
    out = tmp_path / "run"
    assert main(["train", "--model", "conv_ae", "--data", "digits", "--base-channels", "4", "--epochs", "1",
                 "--max-steps", "2", "--out", str(out), "--no-progress"]) == 0
    assert opened == [8]  # once, at the digits' own 8x8
    assert json.loads((out / "run.json").read_text())["net"]["params"]["image_size"] == 8


def test_denoiser_shape_flags_build_the_ffdnet_style_net_and_are_kept_on_resume(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    base = ["--data", "digits", "--image-size", "8", "--batch-size", "16", "--noise", "gaussian:0-0.2", "--no-progress"]
    assert main(["train", "--model", "denoising_ae", *base, "--width", "8", "--layers", "3", "--unshuffle", "2",
                 "--max-steps", "2", "--checkpoint-every", "1", "--out", str(out)]) == 0
    net = read_run(out).net_cfg
    assert (net.channels, tuple(net.dilations), net.unshuffle) == (8, (1, 1, 1), 2)
    assert read_run(out).train_cfg.checkpoint_every_steps == 1  # recorded, so a resume keeps it
    assert count_params(build_net("denoising_ae", net)) == read_run(out).num_params
    # Repeating the run's own flags is accepted; another shape is refused with one line.
    assert main(["train", "--resume", "--out", str(out), "--width", "8", "--layers", "3", "--max-steps", "3",
                 "--no-progress"]) == 0
    assert read_run(out).step == 3
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--layers", "4", "--max-steps", "4"]) == 2
    assert "--layers 4 differs from the run's 3" in capsys.readouterr().err


@pytest.mark.skipif(not __import__("aestudio.training.loop", fromlist=["cpu_has_bf16"]).cpu_has_bf16(),
                    reason="this CPU has no native bfloat16; the refusal is tested below")
def test_bf16_switches_on_and_off_on_resume_and_changes_the_arithmetic(tmp_path, capsys) -> None:
    from aestudio.training.checkpoint import load_weights

    base = ["--model", "denoising_ae", "--data", "digits", "--image-size", "8", "--batch-size", "16",
            "--noise", "gaussian:0-0.2", "--width", "8", "--layers", "3", "--unshuffle", "2", "--no-progress"]
    fp32, mixed = tmp_path / "fp32", tmp_path / "mixed"
    assert main(["train", *base, "--max-steps", "2", "--out", str(fp32)]) == 0
    assert main(["train", *base, "--max-steps", "2", "--out", str(mixed)]) == 0
    assert read_run(mixed).train_cfg.bf16 is False
    # The long photo-denoiser run's case: a float32 run resumed in bfloat16 (Adam state and all), then back.
    assert main(["train", "--resume", "--out", str(fp32), "--max-steps", "4", "--no-progress"]) == 0
    assert main(["train", "--resume", "--out", str(mixed), "--bf16", "--max-steps", "4", "--no-progress"]) == 0
    assert read_run(mixed).train_cfg.bf16 is True and read_run(mixed).step == 4
    a, b = load_weights(fp32 / "model.safetensors")[0], load_weights(mixed / "model.safetensors")[0]
    assert all(v.dtype == a[k].dtype for k, v in b.items())  # parameters stay float32 under autocast
    assert any(not torch.equal(a[k], b[k]) for k in a)  # bfloat16 arithmetic really ran
    assert all(torch.allclose(a[k], b[k], atol=0.05) for k in a if a[k].is_floating_point())  # ... and nearly agrees
    assert main(["train", "--resume", "--out", str(mixed), "--no-bf16", "--max-steps", "5", "--no-progress"]) == 0
    assert read_run(mixed).train_cfg.bf16 is False and read_run(mixed).step == 5


def test_bf16_is_refused_on_a_cpu_without_native_bfloat16(tmp_path, capsys, monkeypatch) -> None:
    from aestudio.training import loop

    monkeypatch.setattr(loop, "cpu_has_bf16", lambda: False)
    out = tmp_path / "run"
    assert main(["train", "--model", "denoising_ae", "--data", "digits", "--image-size", "8", "--max-steps", "1",
                 "--bf16", "--device", "cpu", "--no-progress", "--out", str(out)]) == 2
    assert "no native bfloat16" in capsys.readouterr().err
