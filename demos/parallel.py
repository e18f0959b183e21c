"""One worker function over many items, in parallel: a local process pool, or Ray (this machine or a cluster).

Both backends call ``init(*init_args, pool_worker=...)`` once in each worker process and give ``work(item)``
for every item in the order of ``items``: what comes out depends on neither the backend nor the worker count
(episode seeds travel with the items). ``collect`` and ``evaluate`` run their episodes through it.

``backend="ray"``: ``address=""`` starts a Ray instance on this machine for the call (and stops it after);
``address="HOST:PORT"`` (or ``"auto"``) joins a running cluster (``ray start --head`` there), whose nodes must
have hrlbc installed. One actor per worker, one CPU each.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

BACKENDS = ("local", "ray")


def check_backend(backend: str) -> None:
    """ValueError naming ``backend`` unless it is one of :data:`BACKENDS` (and Ray is installed for ``ray``)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be {' or '.join(BACKENDS)}, got {backend!r}")
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ValueError("backend=ray needs Ray: pip install 'ray>=2.9'") from None


def parallel_map(
    init: Callable[..., None],
    init_args: tuple,
    work: Callable[[Any], Any],
    items: Iterable[Any],
    workers: int,
    backend: str = "local",
    address: str = "",
) -> Iterator[Any]:
    """``work(item)`` for each item, in order, over ``workers`` processes each set up by ``init(*init_args)``.

    ``local`` with ``workers`` <= 1 (or one item) runs in this process (``pool_worker=False``).
    """
    items = list(items)
    n = max(1, min(workers, len(items)))
    if backend == "ray":
        yield from _ray_map(init, init_args, work, items, n, address)
    elif n > 1:
        # fork: callers open no PyBullet client before this point, and it needs no __main__ guard
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ctx.Pool(n, initializer=init, initargs=init_args) as pool:  # exiting terminates the workers
            yield from pool.imap(work, items)
    else:
        init(*init_args, pool_worker=False)
        yield from map(work, items)


class _RayWorker:
    def __init__(self, init: Callable[..., None], init_args: tuple, work: Callable[[Any], Any]) -> None:
        init(*init_args, pool_worker=False)
        self.work = work

    def run(self, item: Any) -> Any:
        return self.work(item)


@contextmanager
def ray_session(address: str = "") -> Iterator[None]:
    """Ray for the duration of the block: the running instance if there is one (left running), else one
    started here (``address`` joins a cluster) and stopped after."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address=address or None, include_dashboard=False, logging_level=logging.ERROR, configure_logging=False)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def _ray_map(init, init_args, work, items: list, n: int, address: str) -> Iterator[Any]:
    import ray
    from ray.util import ActorPool

    with ray_session(address):
        worker = ray.remote(num_cpus=1)(_RayWorker)
        actors = [worker.remote(init, init_args, work) for _ in range(n)]
        try:
            yield from ActorPool(actors).map(lambda actor, item: actor.run.remote(item), items)
        finally:
            for actor in actors:
                ray.kill(actor)
