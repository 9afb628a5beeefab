"""ThreadChooser: the training's steps take the thread count that measured faster."""

from __future__ import annotations

from aestudio.training.threads import ThreadChooser


def _run(chooser: ThreadChooser, seconds_per_step: dict[int, float], t: float, until: float,
         sharing: bool = False) -> tuple[float, list[int]]:
    used = []
    while t < until:
        n = chooser.want(t, sharing)
        used.append(n)
        dt = seconds_per_step[n]
        t += dt
        chooser.record(n, dt, t, sharing)
    return t, used


def test_it_keeps_the_faster_count_and_follows_a_change_of_load() -> None:
    c = ThreadChooser(2, every_s=10.0, steps=3)
    loaded = {1: 0.3, 2: 0.9}  # two threads waiting for each other's time slices
    t, used = _run(c, loaded, 0.0, 4.0)
    assert set(used) == {2}  # nothing tried before the first probe is due (5 s in)
    t, used = _run(c, loaded, t, 8.0)
    first = used.index(1)  # the probe, once due
    assert set(used[:first]) == {2} and set(used[first:]) == {1} and c.current == 1
    idle = {1: 0.5, 2: 0.3}  # the other programs ended: two threads are faster again
    t, used = _run(c, idle, t, 40.0)
    assert c.current == 2 and used.count(2) > 2 * used.count(1)
    # A probe that is not 10% faster does not switch.
    even = {1: 0.3, 2: 0.31}
    _run(c, even, t, 80.0)
    assert c.current == 2


def test_one_thread_while_sharing_and_nothing_measured_then() -> None:
    c = ThreadChooser(2, every_s=1.0, steps=3)
    t, used = _run(c, {1: 5.0, 2: 0.2}, 0.0, 20.0, sharing=True)
    assert set(used) == {1} and len(c._times[1]) == 0  # slow shared steps never count against one thread
    _, used = _run(c, {1: 0.5, 2: 0.2}, t, 40.0)
    assert c.current == 2 and used.count(1) >= 3  # probed, and kept two
    assert ThreadChooser(1).want(100.0) == 1
