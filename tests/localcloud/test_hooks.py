"""What became of each localcloud start-up hook (GET /_localcloud/hooks, localcloud/plugins/hook_report.py): on the
local cloud the tests run against, every hook installed, and each patch names the upstream version it targets."""

from __future__ import annotations

import json
import tomllib
import urllib.request

from tests.conftest import ROOT


def test_every_hook_installed_and_each_patch_names_its_upstream_version(localcloud):
    with urllib.request.urlopen(f"{localcloud}/_localcloud/hooks", timeout=10) as resp:
        report = json.load(resp)
    project = tomllib.loads((ROOT / "localcloud" / "pyproject.toml").read_text())["project"]
    hooks = {v.partition(":")[2]: v for v in project["entry-points"]["localstack.hooks.on_infra_start"].values()}

    assert report["failed"] == {}
    assert set(report["hooks"]) == set(hooks)
    assert all(h["status"] in ("installed", "unchanged") for h in report["hooks"].values()), report["hooks"]
    for name, value in hooks.items():
        targets = report["hooks"][name]["targets"]
        if value.startswith("localcloud.patches.") and name != "defer_moto_batch_backend":  # it defers, replaces none
            assert targets and all(
                " (localstack-core 2026.3.0)" in t
                or " (moto-ext 5.1.25)" in t
                or " (antlr4-python3-runtime 4.13.2)" in t
                for t in targets
            ), (name, targets)
        else:
            assert targets == [], (name, targets)
