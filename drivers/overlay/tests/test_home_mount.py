"""The home's private bind mount (upstream's MakePrivate) shared by many processes: one
left behind by a killed process is taken down by the next cleanup, and a cleanup between
another process's init and its layer mount never leaves that layer mount hidden."""

from __future__ import annotations

import os

from containers_storage.drivers.mounts import find_mount, is_mounted, mountinfo

from .conftest import DriverMaker

ID = "a" * 64


def test_a_bind_left_by_a_killed_process_is_taken_down(driver_factory: DriverMaker) -> None:
    dead = driver_factory()
    assert is_mounted(dead.home)
    dead._home_bound = False  # as if its process had been killed before cleaning up
    heir = driver_factory(root=os.path.dirname(dead.home), run_root=os.path.dirname(dead.run_home))
    assert not heir._home_bound  # found it mounted
    heir.cleanup()
    assert not is_mounted(dead.home)


def test_layer_mounts_land_inside_the_bind_after_another_cleanup(driver_factory: DriverMaker) -> None:
    first = driver_factory()
    roots = {"root": os.path.dirname(first.home), "run_root": os.path.dirname(first.run_home)}
    first.create(ID, None)
    second = driver_factory(**roots)  # inits while the bind is up: does not make its own
    first.cleanup()  # the binder ends: the bind goes
    assert not is_mounted(first.home)
    merged = second.get(ID)
    home = find_mount(second.home)
    assert home is not None, "the layer was mounted on the bare home"
    layer = next(m for m in mountinfo() if m.mount_point == merged)
    assert layer.parent_id == home.mount_id
    third = driver_factory(**roots)  # sees the bind and the layer mount in it
    third.put(ID)
    assert not is_mounted(merged)
    third.remove(ID)
    assert not os.path.exists(os.path.dirname(merged))
    third.cleanup()
    assert not is_mounted(second.home)
