"""Cognito user pools (the ``cognito-idp`` API) served by moto, which LocalStack's open-source edition leaves out.

Targets LocalStack 2026.3.0 and its moto-ext 5.1.25 (``moto/cognitoidp``). Two parts here (moto's answers are
corrected by localcloud.patches.cognito_idp):

- ``build_provider``: the provider of the ``cognito-idp:moto`` plugin (localcloud.plugins.entry_points). LocalStack has
  no typed API class for cognito-idp (``localstack.aws.api.*`` covers only the services it implements), so the
  provider is made from the service's specification: a handler per operation that hands the request to moto.
- ``serve_jwks``: the pool's public keys as Cognito publishes them, on the gateway:

      GET /{userPoolId}/.well-known/jwks.json  -> 200 moto's jwks-public.json (the keys of every pool's tokens, kid
                                                  "dummy"); 404 {"message": ...} for a pool that does not exist

  It answers only GET and HEAD, on the gateway's own host names (localhost, localhost.localstack.cloud, an IP address,
  LOCALSTACK_HOST, cognito-idp.*), for a first path segment shaped like a pool id (``us-east-1_AbC123``), which no S3
  bucket has (a bucket name has no underscore). Any other request, e.g. to a service's virtual host (an S3 bucket, an
  API Gateway API, a function URL), goes on to the services.
"""

from __future__ import annotations

import ipaddress
import json
from urllib.parse import urlsplit

from localstack.http import Request, Response, route
from werkzeug.exceptions import NotFound

from localcloud.patching import hook

SERVICE = "cognito-idp"


POOL_ID = r"[a-z]{2}(?:-[a-z]+)+-[0-9]+_[0-9A-Za-z]+"


def build_provider() -> object:
    """A provider with a handler for every cognito-idp operation, each raising NotImplementedError, which
    MotoFallbackDispatcher answers by calling moto (what a generated ``*Api`` class gives the services LocalStack
    types)."""
    from localstack.aws.api import handler
    from localstack.aws.spec import load_service

    def moto_handler(operation: str):
        def serve(self, context, request):
            raise NotImplementedError

        serve.__name__ = f"moto_{operation}"  # the dispatch table finds each handler by its name
        return handler(operation, expand=False)(serve)

    handlers = {f"moto_{op}": moto_handler(op) for op in load_service(SERVICE).operation_names}
    provider = type("MotoCognitoIdpProvider", (), {"service": SERVICE, **handlers})()
    return provider


def pool_exists(user_pool_id: str) -> bool:
    """Whether any account has this pool (pool ids are unique; the JWKS request names no account)."""
    from moto.cognitoidp.models import cognitoidp_backends

    region = user_pool_id.split("_", 1)[0]
    for account in list(cognitoidp_backends.values()):
        backend = dict.get(account, region)  # dict.get: looking must not create a backend
        if backend is not None and user_pool_id in backend.user_pools:
            return True
    return False


def gateway_host(request: Request) -> bool:
    """Whether the request is addressed to the gateway itself rather than to a service's virtual host."""
    from localstack import config

    hostname = urlsplit(f"//{request.host}").hostname or ""
    if hostname in ("localhost", "localhost.localstack.cloud", config.LOCALSTACK_HOST.host):
        return True
    try:
        return hostname.startswith("cognito-idp.") or bool(ipaddress.ip_address(hostname))
    except ValueError:
        return False


class JwksRoutes:
    @route(f"/<regex('{POOL_ID}'):user_pool_id>/.well-known/jwks.json")
    def jwks(self, request: Request, user_pool_id: str) -> Response:
        if request.method not in ("GET", "HEAD") or not gateway_host(request):
            raise NotFound()  # the edge router's handler lets the request go on to the services
        if not pool_exists(user_pool_id):
            body = {"message": f"User pool {user_pool_id} does not exist."}
            return Response(json.dumps(body), status=404, mimetype="application/json")
        from moto.cognitoidp.responses import CognitoIdpJsonWebKeyResponse

        return Response(CognitoIdpJsonWebKeyResponse.json_web_key, status=200, mimetype="application/json")


@hook("Cognito user pool JWKS")
def serve_jwks() -> str | None:
    from localstack.services.edge import ROUTER

    ROUTER.add(JwksRoutes())
    return "Cognito user pool keys at /{userPoolId}/.well-known/jwks.json"
