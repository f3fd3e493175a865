"""Test function that reports what its runtime process sees: environment, folder, import path, parent, a module."""

import gc
import os
import sys


def handler(event, context):
    view = {
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "path": sys.path,
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "hash_randomization": sys.flags.hash_randomization,  # PYTHONHASHSEED applies only as the interpreter starts
        "frozen": gc.get_freeze_count(),  # objects the fork server froze after its imports (none in a new interpreter)
    }
    if event.get("botocore"):  # the data loader of two new botocore sessions (the fork server shares one)
        import botocore.session

        first, second = (botocore.session.Session().get_component("data_loader") for _ in range(2))
        view["botocore"] = {
            "shared": first is second,
            "search_paths": first.search_paths,
            "s3_model_read": any(key[:3] == ("load_service_model", "s3", "service-2") for key in first._cache),
        }
    if event.get("module"):
        module = __import__(event["module"])
        view["marker"] = getattr(module, "MARKER", None)
        view["module_file"] = module.__file__
    return view
