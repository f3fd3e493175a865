"""checkov, as the scan environment's `checkov` command runs it, with one cost removed:
`.venv/scan/bin/python scripts/policy_scan.py ARGS` (not named checkov.py, which would shadow the package).

checkov addresses a template's attributes by JSONPath through bc_jsonpath_ng, whose parser has ply build its LALR
tables again for every path it parses: about half of a scan's CPU here (~6 s of ~12 s; py-spy, 2026-12-03). The
tables depend only on the grammar (the parser's class), so each thread builds them once per parser class and start
symbol and parses every path with them; what each path parses to is unchanged.
"""

from __future__ import annotations

import sys
import threading
import warnings

import ply.yacc
from bc_jsonpath_ng.parser import JsonPathParser

_yacc = ply.yacc.yacc
_made = threading.local()  # an LR parser keeps its stacks on itself while it parses: one per thread


def _yacc_once(*args, **kwargs):
    module = kwargs.get("module")
    if args or not isinstance(module, JsonPathParser):
        return _yacc(*args, **kwargs)
    parsers = _made.__dict__.setdefault("parsers", {})
    key = (type(module), kwargs.get("start"), kwargs.get("debug"))
    if key not in parsers:
        parsers[key] = _yacc(**kwargs)
    return parsers[key]


ply.yacc.yacc = _yacc_once

if __name__ == "__main__":
    from checkov.main import Checkov

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=SyntaxWarning)
        sys.exit(Checkov().run())
