"""What verifying the bearer token adds to a warm API call, side by side in one process.

  make bench-auth [ROUNDS=5] [CALLS=400] [JSON=out.json]

The API function's own handler (functions/api/app.py) answers GET /images/{id} of an existing image (DynamoDB served
in-process by moto, the same for both), warm, in alternating rounds: once as deployed (image_pipeline.auth verifies
an RS256 token against the issuer's JWKS, fetched once and kept), once with the verifier replaced by one that returns
the same caller without looking at the token. The difference of the rounds' p50s is the verification's cost; the
report gives the median over the rounds, and the verifier's own p50 alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT)]

from stats import pct  # noqa: E402  (bench/ is on the path: these run as scripts)


def median(values: list[float]) -> float:
    return pct(values, 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "out" / "auth.json")
    args = parser.parse_args()

    import boto3
    import yaml
    from moto import mock_aws

    from tests.tokens import Issuer

    env = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TABLE_NAME": "images",
        "USAGE_TABLE": "usage",
        "ORIGINAL_BUCKET": "originals",
        "PROCESSED_BUCKET": "renditions",
        "POWERTOOLS_SERVICE_NAME": "image-pipeline",
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    warnings.filterwarnings("ignore", "No application metrics")  # the handler adds none on a GET
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.update(env)

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    table = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)["Resources"]["ImageTable"]["Properties"]  # noqa: S506
    with Issuer() as issuer, mock_aws():
        os.environ.update(AUTH_ISSUER=issuer.issuer, AUTH_AUDIENCE=issuer.audience, AUTH_JWKS_URL=issuer.jwks_url)
        boto3.resource("dynamodb").create_table(
            TableName="images",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[a for a in table["AttributeDefinitions"] if a],
            KeySchema=table["KeySchema"],
            GlobalSecondaryIndexes=[i for i in table["GlobalSecondaryIndexes"] if i],
        )
        spec = importlib.util.spec_from_file_location("api_handler", ROOT / "functions" / "api" / "app.py")
        handler = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(handler)
        from image_pipeline import keys

        image_id = keys.new_image_id()
        handler.repo.create_pending(image_id, keys.upload_key(image_id), "a.jpg", "image/jpeg", "alice", 10)
        token = issuer.token("alice")
        event = json.loads((ROOT / "events" / "api_get_image.json").read_text())
        event.update(path=f"/images/{image_id}", pathParameters={"imageId": image_id})
        event["headers"] = {**(event.get("headers") or {}), "Authorization": f"Bearer {token}"}

        class Context:
            function_name, memory_limit_in_mb, aws_request_id = "bench", 256, "bench"
            invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:bench"

        real = handler.verifier
        caller = real.caller(event["headers"]["Authorization"])

        class Trusting:  # the same caller, the token not looked at
            def caller(self, authorization):
                return caller

        def round_p50(verifier) -> float:
            handler.verifier = verifier
            times = []
            for _ in range(args.calls):
                start = time.perf_counter()
                answer = handler.lambda_handler(event, Context())
                times.append((time.perf_counter() - start) * 1000)
                assert answer["statusCode"] == 200, answer
            return median(times)

        round_p50(real), round_p50(Trusting())  # warm both: imports, the JWKS, moto's first calls
        verified, trusted = [], []
        for _ in range(args.rounds):
            verified.append(round_p50(real))
            trusted.append(round_p50(Trusting()))
        alone = []
        for _ in range(args.calls):
            start = time.perf_counter()
            real.caller(event["headers"]["Authorization"])
            alone.append((time.perf_counter() - start) * 1000)
    added = [v - t for v, t in zip(verified, trusted, strict=True)]
    result = {
        "rounds": args.rounds,
        "calls_per_round": args.calls,
        "p50_ms_verified": verified,
        "p50_ms_not_verified": trusted,
        "added_ms_median": median(added),
        "verifier_alone_p50_ms": median(alone),
        "jwks_fetches": issuer.fetches,
    }
    print(
        f"warm GET /images/{{id}}, p50 per round of {args.calls} calls, {args.rounds} rounds alternated:\n"
        f"  verified     {' '.join(f'{v:.3f}' for v in verified)} ms\n"
        f"  not verified {' '.join(f'{v:.3f}' for v in trusted)} ms\n"
        f"  added by verification: median {median(added):.3f} ms; the verifier alone p50 {median(alone):.3f} ms;"
        f" JWKS fetched {issuer.fetches} time(s)"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
