"""Test function that reports what its runtime process sees: environment, folder, import path, parent, a module."""

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
    }
    if event.get("module"):
        module = __import__(event["module"])
        view["marker"] = getattr(module, "MARKER", None)
        view["module_file"] = module.__file__
    return view
