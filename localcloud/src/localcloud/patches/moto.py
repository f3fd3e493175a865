"""Patches of moto's core and package loading (``moto.core``, ``moto.batch``; moto-ext 5.1.25).

- moto lists the methods of a service's response class with ``inspect.getmembers`` on every request, to find the
  action's handler; the class does not change while LocalStack runs, so the list is made once per class.
- the Step Functions engine's import of ``moto.batch.utils`` ran moto.batch's __init__, which loads moto's Batch and
  EC2 backends (~45% of LocalStack's start-up CPU, ~80 MB); that body now runs only if something uses the package
  itself (localcloud.lazy).
"""

from __future__ import annotations

import functools
import logging

from localcloud.patching import Patch, check_version, hook, patch_all

LOG = logging.getLogger(__name__)


@hook("moto action lookup cache")
def cache_moto_action_lookup() -> str | None:
    from moto.core import responses

    def cached(names):
        per_class = functools.cache(lambda cls: tuple(names(cls)))

        def cached_names(clazz) -> list[str]:
            return list(per_class(clazz))

        return cached_names

    if not patch_all(Patch(responses, "method_names_from_class", cached, wraps=True)):
        return None
    return "moto finds each action's handler without listing its class on every request"


@hook("moto's Batch backend loaded on first use", priority=200)  # before any hook imports the Step Functions engine
def defer_moto_batch_backend() -> str | None:
    from localcloud.lazy import deferred_package

    # The Step Functions engine imports ``moto.batch.utils`` (JobStatus, for its Batch integration), and moto.batch's
    # __init__ imports moto's Batch backend and through it EC2's (region, zone and instance-type tables from botocore's
    # data files): ~45% of LocalStack's start-up CPU (py-spy), for services this local cloud does not run. The package is
    # registered with its body deferred: its submodules import as usual, and the body runs on first use of the package
    # itself (``from moto.batch import batch_backends``, what moto's backend lookup does).
    def on_run(attribute: str) -> None:
        LOG.info("localcloud: moto.batch's body runs now (asked for %s)", attribute)

    check_version("moto.batch", "moto.batch")  # no attribute is replaced: the version is checked here
    if deferred_package("moto.batch", on_run) is None:
        return None
    return "moto.batch's body deferred to its first use (the Step Functions engine imports only moto.batch.utils)"
