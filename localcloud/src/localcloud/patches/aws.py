"""Patches of LocalStack's AWS plumbing (``localstack.aws`` and ``localstack.utils.aws``, localstack-core 2026.3.0):
request parsers, internal clients' signatures, services' valid regions.

- LocalStack builds a request parser per service model once, but a burst's first requests of a service each built one
  (~30 ms) before the first was kept; one is made while the others wait;
- LocalStack's own calls to its services are SigV4-signed like any request; in memory they carry their credential
  scope and a zero signature;
- each service's valid regions were computed from a new boto3 Session, which reads botocore's endpoints.json again
  (~1.2 s of CPU per LocalStack process); one session serves them all.
"""

from __future__ import annotations

import functools
import threading
import time

from localcloud.caches import MadeOnce
from localcloud.patching import Patch, hook, patch_all, rebind_imported


def parsers_made_once(create):
    """``create(service, protocol)`` made once per (service model, protocol), one at a time; concurrent callers wait."""
    parsers = MadeOnce()

    def create_parser(service, protocol=None):
        return parsers.get((service, protocol), lambda: create(service, protocol))

    return create_parser


@hook("request parsers made once")
def make_request_parsers_once() -> str | None:
    """LocalStack keeps one request parser per service model (``functools.cache``), but a burst's first requests of a
    service all miss together, and each built a parser (its werkzeug URL map of every operation: ~30 ms) before the
    first was kept: ~1.4 s of LocalStack's CPU at the start of a burst on a fresh local cloud (py-spy, 2026-12-04).
    One is made; the others wait for it."""
    from localstack.aws.protocol import parser

    original = getattr(parser, "create_parser", None)
    if not patch_all(Patch(parser, "create_parser", parsers_made_once, wraps=True)):
        return None
    rebind_imported("create_parser", original, parser.create_parser)
    return "request parsers are made once per service model"


@hook("scope-only signatures of in-memory internal requests")
def sign_internal_requests_by_scope() -> str | None:
    from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
    from localstack import config
    from localstack.aws.connect import InternalClientFactory

    # LocalStack's own calls to its services (Step Functions invoking Lambda, EventBridge starting executions, ...) are
    # SigV4-signed like any request, payload hash and HMACs included (through awscrt): ~4% of LocalStack's CPU in a
    # burst (py-spy, 2026-12-03). With IN_MEMORY_CLIENT they never leave the process, and LocalStack reads only the
    # Authorization header's credential scope (the access key gives the account, the scope the region): it checks no
    # signature but a presigned S3 URL's. Such a request keeps its headers and scope; its signature is zeros.
    # S3 clients (s3v4: payload hashes in headers) and every other signature version sign as before.
    if not config.IN_MEMORY_CLIENT:
        return None

    class ScopeOnlySigV4(SigV4Auth):
        def add_auth(self, request) -> None:  # a copy of botocore's, with the signature left out
            request.context["timestamp"] = time.strftime(SIGV4_TIMESTAMP, time.gmtime())
            self._modify_request_before_signing(request)
            self._inject_signature_to_request(request, "0" * 64)

    def scope_only(post_hook):
        def _get_client_post_hook(self, client):
            client = post_hook(self, client)
            signer = client._request_signer
            get_auth_instance = signer.get_auth_instance

            # botocore's RequestSigner.get_auth_instance, but for SigV4 with credentials: the signer it would make
            def scope_only_auth(signing_name, region_name, signature_version=None, request_credentials=None, **kwargs):
                credentials = request_credentials or signer._credentials
                if (signature_version or signer._signature_version) != "v4" or credentials is None:
                    return get_auth_instance(
                        signing_name, region_name, signature_version, request_credentials, **kwargs
                    )
                return ScopeOnlySigV4(credentials.get_frozen_credentials(), signing_name, region_name)

            signer.get_auth_instance = scope_only_auth
            return client

        return _get_client_post_hook

    copied = {
        "botocore.auth:SigV4Auth.add_auth": "0a37f12b13c3d758",
        "botocore.signers:RequestSigner.get_auth_instance": "cef293447a8fab22",
    }
    if not patch_all(Patch(InternalClientFactory, "_get_client_post_hook", scope_only, wraps=True, copies=copied)):
        return None
    return "in-memory internal requests carry their credential scope, not a computed signature"


def regions_from_one_session(make_session):
    """LocalStack's ``get_valid_regions_for_service`` (the service's regions, and CloudWatch's in every partition but
    "aws"), computed with one session from ``make_session`` for every service instead of a new one per service."""
    lock = threading.Lock()
    sessions: list = []

    @functools.cache
    def get_valid_regions_for_service(service_name: str) -> list[str]:  # a copy of LocalStack's, one session
        with lock:  # a botocore session's loader and resolver are made on first use, unguarded
            if not sessions:
                sessions.append(make_session())
            session = sessions[0]
            regions = list(session.get_available_regions(service_name))
            for partition in session.get_available_partitions():
                if partition != "aws":
                    regions.extend(session.get_available_regions("cloudwatch", partition_name=partition))
            return regions

    return get_valid_regions_for_service


@hook("service regions from one botocore session")
def valid_regions_from_one_session() -> str | None:
    import boto3
    from localstack.utils.aws import aws_stack

    # Each service's store, at its first use, asks for the service's valid regions, which LocalStack computes from a
    # new boto3 Session: each reads botocore's endpoints.json (1.3 MB of JSON) again, 60-270 ms of CPU per service and
    # ~1.2 s per LocalStack process, most of it during the first deploy (py-spy, 2026-12-04). One session reads it once.
    original = getattr(aws_stack, "get_valid_regions_for_service", None)
    replacement = regions_from_one_session(boto3.Session)
    copied = {"localstack.utils.aws.aws_stack:get_valid_regions_for_service": "02a9370c3e92bbf9"}
    if not patch_all(Patch(aws_stack, "get_valid_regions_for_service", replacement, copies=copied)):
        return None
    rebind_imported("get_valid_regions_for_service", original, replacement)
    return "services' valid regions come from one botocore session"
