"""The pieces of aestudio.training.distributed that need no second process."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aestudio.training import distributed
from aestudio.training.distributed import (
    CpuSyncBatchNorm,
    DistributedError,
    LaunchInfo,
    detect_launch,
    split_batches,
)


def test_detect_launch_reads_the_torchrun_environment() -> None:
    assert detect_launch({}) is None
    assert detect_launch({"PATH": "/bin"}) is None
    got = detect_launch({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert got == LaunchInfo(rank=3, world_size=4, local_rank=1, local_world_size=2)
    with pytest.raises(DistributedError, match="RANK=5 WORLD_SIZE=4"):
        detect_launch({"RANK": "5", "WORLD_SIZE": "4"})
    with pytest.raises(DistributedError, match="torchrun"):
        detect_launch({"RANK": "x", "WORLD_SIZE": "2"})


def test_a_world_of_one_is_an_ordinary_run() -> None:
    assert distributed.init_from_env({"RANK": "0", "WORLD_SIZE": "1"}) is None
    assert distributed.active() is None and distributed.is_main()


def test_timeout_comes_from_the_environment() -> None:
    assert distributed.timeout_seconds({}) == distributed.DEFAULT_TIMEOUT_S
    assert distributed.timeout_seconds({distributed.TIMEOUT_ENV: "30"}) == 30
    with pytest.raises(DistributedError, match="seconds"):
        distributed.timeout_seconds({distributed.TIMEOUT_ENV: "soon"})


@pytest.mark.parametrize(("n", "batch", "world"), [(10, 4, 2), (10, 5, 3), (7, 7, 2), (9, 4, 4), (1437, 359, 2)])
def test_split_batches_cover_every_global_batch_once(n: int, batch: int, world: int) -> None:
    order = list(torch.randperm(n, generator=torch.Generator().manual_seed(0)).tolist())
    single = split_batches(order, batch)
    per_rank = [split_batches(order, batch, rank, world) for rank in range(world)]
    assert all(len(shares) == len(single) for shares in per_rank)
    for step, whole in enumerate(single):
        assert whole.weight == 1.0 and whole.n_global == len(whole.indices)
        parts = [shares[step] for shares in per_rank]
        assert all(p.n_global == whole.n_global for p in parts)
        real = [i for p in parts if p.weight for i in p.indices]
        assert sorted(real) == sorted(whole.indices)  # each sample on exactly one rank
        # The weights make the mean of the rank losses the global-batch mean: sum_r w_r * n_r^-1 ... = sum n_r / n.
        assert sum(p.weight for p in parts) == pytest.approx(world)
        assert sum(p.n_local for p in parts) == whole.n_global


def test_a_batch_smaller_than_the_world_gives_a_weightless_stand_in() -> None:
    shares = split_batches([4, 2, 7, 1, 9], 4, rank=2, world=3)  # batches [4 2 7 1] and [9]
    assert shares[0].indices == [7] and shares[0].weight == pytest.approx(3 / 4)
    assert shares[1].indices == [9] and shares[1].weight == 0.0 and shares[1].n_local == 0
    assert shares[1].n_global == 1


def test_even_splits_keep_a_weight_of_exactly_one() -> None:
    # Exactly 1.0, so an evenly split step multiplies the loss by one: no rounding at all.
    assert {s.weight for r in range(4) for s in split_batches(list(range(64)), 32, r, 4)} == {1.0}


def test_cpu_sync_batchnorm_keeps_names_and_is_batchnorm_without_a_group() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Sequential(nn.BatchNorm2d(4, momentum=None)))
    ref = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Sequential(nn.BatchNorm2d(4, momentum=None)))
    ref.load_state_dict(net.state_dict())
    keys = list(net.state_dict())
    params = {id(p) for p in net.parameters()}
    conv = CpuSyncBatchNorm.convert(net)
    assert conv is net and isinstance(net[1], CpuSyncBatchNorm) and isinstance(net[3][0], CpuSyncBatchNorm)
    assert list(net.state_dict()) == keys  # checkpoints stay interchangeable
    assert {id(p) for p in net.parameters()} == params  # shared, so an optimizer made before still works
    x = torch.rand(6, 1, 7, 7)
    assert torch.allclose(net(x), ref(x)) and torch.allclose(net[1].running_var, ref[1].running_var)
    net.eval()
    ref.eval()
    assert torch.allclose(net(x), ref(x))


@pytest.mark.parametrize("name", ["dense_ae", "conv_ae", "denoising_ae", "sparse_ae", "contractive_ae", "vae", "unet"])
def test_every_family_uses_every_parameter_in_a_training_step(name: str) -> None:
    """DDP runs with find_unused_parameters=False: a parameter left out of forward_train
    would make the second step fail on every rank."""
    from aestudio.config import ReconLoss
    from aestudio.nets import build_net, default_config, get_spec
    from aestudio.training.losses import batch_loss

    spec = get_spec(name)
    fields = set(spec.config_cls.__dataclass_fields__)
    kw = {"image_size": 16} if "image_size" in fields and not spec.fully_convolutional else {}
    torch.manual_seed(0)
    net = build_net(name, default_config(name, **kw)).train()
    x = torch.rand(4, 1, 16, 16)
    segment = spec.task.value == "segment"
    target = torch.randint(0, 2, (4, 16, 16)) if segment else x
    out = net.forward_train(x)
    loss, _ = batch_loss(net, out, x, target, segmentation=segment, recon=ReconLoss.MSE, kl_weight=1.0)
    loss.backward()
    unused = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused, f"{name}: parameters without a gradient: {unused}"


def test_rank_helpers_without_a_process_group() -> None:
    from aestudio.training.device import DeviceError

    dist = distributed.Dist(LaunchInfo(rank=1, world_size=3, local_rank=1, local_world_size=3), "gloo", 60)
    assert not dist.is_main and dist.place(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(DeviceError, match="use --device cpu"):
        dist.place(torch.device("cuda", 0))  # a Gloo-only group: CUDA was not there at start-up
    with pytest.raises(DeviceError, match="torchrun"):
        dist.place(torch.device("mps"))
    with pytest.raises(ValueError, match="at least 3"):
        dist.check_batch(2)
    dist.check_batch(3)
    assert "global batch 64 = 22 on ranks 0-0" not in dist.batch_note(64, torch.device("cpu"))
    assert "64 = 22 on rank 0 and 21 on the others" in dist.batch_note(64, torch.device("cpu"))
    assert "96 = 32 per process" in dist.batch_note(96, torch.device("cpu"))
    # Ranks > 0 get their own seeds and noise, rank 0 keeps the run's; all are reproducible.
    assert dist.rank_seed(0, 5) == dist.rank_seed(0, 5) != dist.rank_seed(0, 6)
    import numpy as np

    a, b = np.random.default_rng(1), np.random.default_rng(1)
    assert dist.noise_rng(a).random() == dist.noise_rng(b).random()
    assert a.bit_generator.state == b.bit_generator.state  # the shared stream advanced alike
    launches = dist.record([{"world_size": 1}], 7, 64, torch.device("cpu"))
    assert launches[-1] == {"world_size": 3, "backend": "gloo", "start_step": 7, "global_batch": 64}


def test_the_test_fault_hook_fires_only_where_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    distributed._test_fault(1, 2)  # unset: nothing
    monkeypatch.setenv(distributed.TEST_FAULT_ENV, "1:2")
    distributed._test_fault(0, 2)
    distributed._test_fault(1, 3)
    with pytest.raises(RuntimeError, match="injected test failure at step 2"):
        distributed._test_fault(1, 2)


def test_one_process_is_a_solo_with_the_interface_the_loop_uses() -> None:
    import inspect
    import re

    import numpy as np

    from aestudio.training import loop

    solo = distributed.for_this_process()  # no torchrun here
    assert isinstance(solo, distributed.Solo) and distributed.for_this_process() is not solo  # fresh per fit
    asked = set(re.findall(r"self\.ranks\.(\w+)", inspect.getsource(loop))) | {"place", "check_batch", "check_same_data"}
    for cls in (distributed.Solo, distributed.Dist):
        missing = {name for name in asked if not hasattr(cls, name)}
        assert not missing, f"{cls.__name__} lacks {missing}"
    assert "if self.dist" not in inspect.getsource(loop) and "self.dist." not in inspect.getsource(loop)
    net = nn.Linear(2, 2)
    assert solo.prepare(net, torch.device("cpu")) is net
    assert (solo.rank, solo.world_size, solo.is_main) == (0, 1, True)
    # Its "reduction" is its own loss, terms and stop flag; its streams are the run's own.
    share = split_batches([3, 1, 2], 3)[0]
    assert share.weight == 1.0
    value, terms, stop = solo.reduce_step(torch.tensor(0.25), {"kl": torch.tensor(0.5)}, share, True, 1)
    assert (value, terms, stop) == (0.25, {"kl": 0.5}, True)
    rng = np.random.default_rng(0)
    assert solo.noise_rng(rng) is rng and solo.loader_seed(41) == 41
    assert solo.stop_seen(agreed=False, asked=True) and solo.oom_refusal(8) is None
    assert solo.batch_note(8, torch.device("cpu")) == "" and solo.record_fields({}, 0, 8, torch.device("cpu")) == {}
    dist = distributed.Dist(LaunchInfo(rank=0, world_size=2, local_rank=0, local_world_size=2), "gloo", 60)
    assert not dist.stop_seen(agreed=False, asked=True) and "out of memory" in (dist.oom_refusal(8) or "")


def test_ranks_draw_their_own_self_supervised_masks() -> None:
    """Under torchrun each rank's blind spots and neighbour pairs are its own (rank 0 keeps the run's stream):
    ranks repeating each other's draws would halve the variety of the masks a global batch sees."""
    from aestudio.training.selfsup import blind_spot_mask, neighbour_indices

    draws = []
    for rank in (0, 1, 0):
        torch.manual_seed(3)  # what the loop's _seed does on every rank
        distributed.Dist(LaunchInfo(rank=rank, world_size=2, local_rank=rank, local_world_size=2), "gloo", 60).seed_rank(3, 0)
        draws.append((blind_spot_mask((2, 24, 24)), neighbour_indices((2, 24, 24))[0]))
    (mask0, pairs0), (mask1, pairs1), (again0, again_pairs0) = draws
    assert not torch.equal(mask0, mask1) and not torch.equal(pairs0, pairs1)
    assert torch.equal(mask0, again0) and torch.equal(pairs0, again_pairs0)  # reproducible per rank
