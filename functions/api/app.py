"""HTTP API: POST /upload, GET /images, GET|PATCH|DELETE /images/{imageId}, GET /images/{imageId}/srcset,
GET /download?imageId=[&size=&format=], and the web page (GET /web/{file}, from the web bucket). Every route but the
web page's files needs a bearer token of the configured issuer (image_pipeline.auth)."""

from __future__ import annotations

import json
from typing import Any

import boto3
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from image_pipeline import api, auth, cdn, events, web
from image_pipeline.aws import transient_errors
from image_pipeline.config import Settings
from image_pipeline.errors import ApiError, TransientAWSError
from image_pipeline.observability import annotate_image, logger, metrics, quota_counters, repository, tracer

settings = Settings.from_env()
s3 = boto3.client("s3", config=Config(signature_version="s3v4"))
sfn = boto3.client("stepfunctions")
logs = boto3.client("logs")  # an Express execution's history (GET /images/{id}/trace)
repo = repository(settings)
issuer, audience = settings.require_auth()
verifier = auth.TokenVerifier(
    issuer,
    audience,
    auth.jwks_url(issuer, settings.auth_jwks_url, settings.aws_endpoint_url),
    settings.auth_admin_claim,
    settings.auth_admin_value,
)
quotas = quota_counters(settings)
cdn_url = (  # EnableCdn: rendition URLs signed with the key kept in Secrets Manager, read at the first one
    cdn.lazy_signer(
        settings.cdn_domain,
        settings.cdn_key_pair_id or "",
        lambda: (
            boto3.client("secretsmanager")
            .get_secret_value(SecretId=settings.cdn_signing_key_secret or "")["SecretString"]
            .encode()
        ),
        settings.url_expiry_seconds,
    )
    if settings.cdn_domain
    else None
)
publish = events.Publisher(boto3.client("events"), settings.event_bus_name) if settings.event_bus_name else None
app = APIGatewayRestResolver(cors=CORSConfig(allow_origin=settings.cors_allow_origin, max_age=600))
PUBLIC_ROUTES = ("/web/{file}",)  # the web page's files: a browser loads them before anyone signs in


def error_response(http_status: int, code: str, message: str, **extra) -> Response:
    body = {"error": {"code": code, "message": message}, **extra}
    return Response(status_code=http_status, content_type="application/json", body=json.dumps(body))


@app.exception_handler(ApiError)
def handle_api_error(e: ApiError) -> Response:
    logger.info("request refused", extra={"code": e.code, "http_status": e.http_status})
    response = error_response(e.http_status, e.code, e.message, **e.extra)
    if e.retry_after is not None:
        response.headers["Retry-After"] = str(e.retry_after)
    if e.http_status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


def authenticate(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response:
    """Every route but PUBLIC_ROUTES runs only for a verified caller (``app.context["caller"]``): 401 otherwise."""
    event = app.current_event
    if event.resource not in PUBLIC_ROUTES and event.http_method != "OPTIONS":
        caller = verifier.caller((event.headers or {}).get("Authorization"))
        app.append_context(caller=caller)
        logger.append_keys(caller=caller.sub)
    return next_middleware(app)


app.use(middlewares=[authenticate])


def caller() -> auth.Caller:
    """The verified caller of this request; a route that runs without one (it cannot: see authenticate) is refused."""
    if "caller" not in app.context:
        raise ApiError(401, "UNAUTHORIZED", "sign in: send Authorization: Bearer <token>")
    return app.context["caller"]


@app.exception_handler(TransientAWSError)
def handle_transient(e: TransientAWSError) -> Response:
    logger.warning("dependency unavailable", extra={"reason": str(e)})
    response = error_response(503, "SERVICE_UNAVAILABLE", "a dependency is unavailable, retry shortly")
    response.headers["Retry-After"] = "1"
    return response


@app.exception_handler(Exception)
def handle_unexpected(e: Exception) -> Response:
    logger.exception("unexpected error")
    return error_response(500, "INTERNAL_ERROR", "internal error")


@app.not_found
def handle_not_found(e: Exception) -> Response:
    return error_response(404, "ROUTE_NOT_FOUND", "no such route")


def json_body() -> Any:
    """The request's JSON body (None when empty); 400 INVALID_JSON when it is not JSON."""
    raw = app.current_event.decoded_body
    try:
        return json.loads(raw) if raw and raw.strip() else None
    except (ValueError, RecursionError):  # RecursionError: a deeply nested body
        logger.info(
            "body is not JSON", extra={"body_start": (raw or "")[:80], "base64": app.current_event.is_base64_encoded}
        )
        raise ApiError(
            400, "INVALID_JSON", "the body is not valid JSON (send Content-Type: application/json)"
        ) from None


@app.post("/upload")
def upload() -> Response:
    body = json_body()
    result = api.create_upload(s3, repo, quotas, settings, caller(), api.UploadRequest.parse(body, settings))
    annotate_image(result["imageId"])
    metrics.add_metric(name="UploadUrlsIssued", unit=MetricUnit.Count, value=1)
    return Response(status_code=201, content_type="application/json", body=json.dumps(result))


@app.get("/images/<image_id>")
def get_image(image_id: str) -> dict:
    # API Gateway's own path parameter, not the router's match (its "$" lets a trailing newline through)
    image_id = (app.current_event.path_parameters or {}).get("imageId", image_id)
    annotate_image(image_id)
    return api.get_image(repo, caller(), image_id)


@app.get("/images")
def list_images() -> dict:
    event = app.current_event
    return api.list_images(
        repo,
        caller(),
        status=event.get_query_string_value("status"),
        limit=event.get_query_string_value("limit"),
        cursor=event.get_query_string_value("cursor"),
        owner=event.get_query_string_value("owner"),
        everyone=event.get_query_string_value("all"),
    )


@app.get("/images/<image_id>/trace")
def get_trace(image_id: str) -> dict:
    image_id = (app.current_event.path_parameters or {}).get("imageId", image_id)
    annotate_image(image_id)
    return api.get_trace(sfn, repo, caller(), image_id, logs=logs, log_group=settings.workflow_log_group)


@app.delete("/images/<image_id>")
def delete_image(image_id: str) -> Response:
    image_id = (app.current_event.path_parameters or {}).get("imageId", image_id)
    annotate_image(image_id)
    api.delete_image(s3, repo, quotas, settings, caller(), image_id, publish)
    metrics.add_metric(name="ImagesDeleted", unit=MetricUnit.Count, value=1)
    return Response(status_code=204, body="")


@app.patch("/images/<image_id>")
def patch_image(image_id: str) -> Response:
    image_id = (app.current_event.path_parameters or {}).get("imageId", image_id)
    annotate_image(image_id)
    status, result = api.set_focal_point(repo, quotas, settings, caller(), image_id, json_body(), start_crops)
    return Response(status_code=status, content_type="application/json", body=json.dumps(result))


def start_crops(execution_input: dict) -> str:
    """Start the image pipeline on ``execution_input`` (a crops-only run); its execution's ARN."""
    with transient_errors():
        return sfn.start_execution(
            stateMachineArn=settings.require_state_machine_arn(), input=json.dumps(execution_input)
        )["executionArn"]


@app.get("/web/<name>")
def web_asset(name: str) -> Response:
    name = (app.current_event.path_parameters or {}).get("file", name)
    asset = web.asset(s3, settings, name)
    return Response(status_code=200, content_type=asset.content_type, body=asset.body, headers=asset.headers)


@app.get("/images/<image_id>/srcset")
def get_srcset(image_id: str) -> dict:
    image_id = (app.current_event.path_parameters or {}).get("imageId", image_id)
    annotate_image(image_id)
    return api.srcset(s3, repo, settings, caller(), image_id, cdn=cdn_url)


@app.get("/download")
def download() -> Response:
    event = app.current_event
    image_id = event.get_query_string_value("imageId")
    annotate_image(image_id)
    result = api.download(
        s3,
        repo,
        settings,
        caller(),
        image_id,
        size=event.get_query_string_value("size"),
        format=event.get_query_string_value("format"),
        accept=(event.headers or {}).get("Accept"),  # case-insensitive in Powertools v3
        cdn=cdn_url,
        profile=event.get_query_string_value("profile"),
    )
    headers = {"Vary": "Accept"}  # format=auto answers by the Accept header: caches must key on it
    return Response(status_code=200, content_type="application/json", body=json.dumps(result), headers=headers)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # responses hold presigned URLs and keys
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
