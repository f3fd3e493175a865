"""Write template.yaml as CloudFormation after the SAM transform (what AWS deploys), for the policy scan.

The roles, permissions, stage and deployment SAM generates are only visible here. Local code paths become
placeholder S3 URIs (the scan reads properties, not code). Usage: python scripts/sam_transform.py OUT.json
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[1]
CODE_PATHS = ("CodeUri", "ContentUri", "DefinitionUri")


class NoManagedPolicies:
    """The transform asks for AWS managed policy ARNs only to expand names; the template uses none."""

    def load(self) -> dict:
        return {}


def main(out: str) -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = yaml_parse((ROOT / "template.yaml").read_text())
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        for key in CODE_PATHS:
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://local-artifacts/{props[key].strip('/')}"
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(transform(template, {}, NoManagedPolicies()), indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
