"""One home for logger, metrics, tracer: every handler uses it, and the image id reaches logs and X-Ray."""

from __future__ import annotations

import io
from pathlib import Path

from image_pipeline import observability

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))


def test_the_image_id_is_an_xray_annotation_and_a_log_key(monkeypatch):
    annotations = []
    monkeypatch.setattr(observability.tracer, "put_annotation", lambda key, value: annotations.append((key, value)))
    observability.annotate_image("3f1c7f5e-3b8e-4c3e-9a51-6d0d2b8f4a10")
    assert annotations == [("imageId", "3f1c7f5e-3b8e-4c3e-9a51-6d0d2b8f4a10")]
    assert observability.logger.get_current_keys()["image_id"] == "3f1c7f5e-3b8e-4c3e-9a51-6d0d2b8f4a10"
    observability.annotate_image(None)  # a failure without an image: nothing to annotate
    assert len(annotations) == 1


def test_every_handler_takes_its_setup_from_the_observability_module_and_is_traced():
    assert len(HANDLERS) == 8
    for handler in HANDLERS:
        source = handler.read_text()
        assert "from image_pipeline.observability import" in source, handler
        assert "Logger()" not in source and "Metrics()" not in source and "Tracer()" not in source, handler
        assert "@tracer.capture_lambda_handler" in source, handler


def test_no_invocation_logs_under_the_image_id_of_the_one_before(aws_env, lambda_context):
    """A warm function's next invocation starts without the previous image's id (imgpipe trace finds an image's
    log lines by it): a line logged before the handler names its image carries no image id at all."""
    from tests.unit.conftest import load_handler

    handler = load_handler("mark_failed")
    observability.annotate_image("11111111-1111-4111-8111-111111111111")  # what the previous invocation did
    stream = io.StringIO()
    previous = observability.logger.registered_handler.setStream(stream)
    try:  # an invocation that fails before it knows its image
        handler.lambda_handler({"state": {"error": {"Error": "X"}}, "executionArn": "arn:y"}, lambda_context)
    finally:
        observability.logger.registered_handler.setStream(previous)
    lines = stream.getvalue().splitlines()
    assert lines and all("11111111-1111-4111-8111-111111111111" not in line for line in lines)
