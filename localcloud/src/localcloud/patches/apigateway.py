"""Patches of LocalStack's API Gateway (``localstack.services.apigateway``, localstack-core 2026.3.0) where our stack
depends on AWS's behaviour.

- API Gateway's OpenAPI import ignores ``x-amazon-apigateway-gateway-responses``. SAM writes an Api's
  ``GatewayResponses`` into the definition it imports, so without this an API's custom error bodies (ours:
  ``{"error": {"code": ..., "message": ...}}``) never take effect locally, while AWS applies them. After the
  import we apply them as ``PutGatewayResponse`` would.
- API Gateway's invocation path then answers every gateway error with ``{"message": ...}`` whatever the
  gateway response says (a TODO in LocalStack). We render the response's ``application/json`` template with
  LocalStack's own VTL engine, with ``$context.error.messageString`` quoted as AWS documents it.
"""

from __future__ import annotations

import copy
import functools
import json
import logging

from localcloud.patching import Patch, hook, patch_all

LOG = logging.getLogger(__name__)


GATEWAY_RESPONSES = "x-amazon-apigateway-gateway-responses"


DEFAULT_TEMPLATE = '{"message":$context.error.messageString}'


def apply_gateway_responses(rest_api_container, spec: dict) -> None:
    """The gateway responses of an OpenAPI/Swagger document, stored on the imported API."""
    from localstack.services.apigateway.next_gen.execute_api.gateway_response import build_gateway_response

    responses = spec.get(GATEWAY_RESPONSES) or {}
    for response_type, response in responses.items():
        status = response.get("statusCode")
        rest_api_container.gateway_responses[response_type] = build_gateway_response(
            response_type=response_type,
            status_code=str(status) if status is not None else None,
            response_parameters=response.get("responseParameters"),
            response_templates=response.get("responseTemplates"),
            default_response=False,
        )


@hook("OpenAPI gateway responses import")
def import_openapi_gateway_responses() -> str | None:
    from localstack.services.apigateway import helpers
    from localstack.services.apigateway.legacy import provider

    def applying_responses(original):
        @functools.wraps(original)
        def import_api_from_openapi_spec(rest_api, context, open_api_spec, mode):
            result = original(rest_api, context, open_api_spec, mode)
            container = helpers.get_apigateway_store(context=context).rest_apis.get(rest_api.id)
            if container is not None:
                apply_gateway_responses(container, open_api_spec)
            return result

        return import_api_from_openapi_spec

    if not patch_all(Patch(provider, "import_api_from_openapi_spec", applying_responses, wraps=True)):
        return None
    return "OpenAPI imports apply x-amazon-apigateway-gateway-responses"


@hook("gateway response template rendering")
def render_gateway_response_templates() -> str | None:
    from localstack.services.apigateway.next_gen.execute_api.gateway_response import get_gateway_response_or_default
    from localstack.services.apigateway.next_gen.execute_api.handlers.gateway_exception import GatewayExceptionHandler
    from localstack.services.apigateway.next_gen.execute_api.template_mapping import ApiGatewayVtlTemplate

    vtl = ApiGatewayVtlTemplate()

    def rendering(original):
        @functools.wraps(original)
        def create_exception_response(self, exception, context):
            response = original(self, exception, context)
            gateway_response = get_gateway_response_or_default(
                exception.type, context.deployment.rest_api.gateway_responses
            )
            template = (gateway_response.get("responseTemplates") or {}).get("application/json")
            if response is None or not template or template == DEFAULT_TEMPLATE:
                return response  # LocalStack's own answer is what the default template renders
            variables = copy.deepcopy(context.context_variables)
            error = variables.get("error") or {}
            error["messageString"] = json.dumps(error.get("message") or exception.message)
            variables["error"] = error
            try:
                body = vtl.render_vtl(template=template.strip(), variables={"context": variables, "stageVariables": {}})
            except Exception as e:  # noqa: BLE001 - a broken template: keep LocalStack's answer, say why
                LOG.warning("localcloud: gateway response template of %s not rendered: %s", exception.type, e)
                return response
            response.set_response(body)
            return response

        return create_exception_response

    if not patch_all(Patch(GatewayExceptionHandler, "create_exception_response", rendering, wraps=True)):
        return None
    return "gateway responses render their application/json templates"
