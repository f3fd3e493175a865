"""One home for settings: every setting in Settings, required names fail loudly, defaults written once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from image_pipeline import config
from image_pipeline.config import Settings
from image_pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {"TABLE_NAME": "t", "ORIGINAL_BUCKET": "o", "PROCESSED_BUCKET": "p", "WORK_BUCKET": "w"}


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_a_missing_required_name_raises_instead_of_defaulting(missing):
    env = {k: v for k, v in REQUIRED.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        Settings.from_env(env)
    with pytest.raises(ConfigError, match=missing):
        Settings.from_env({**env, missing: ""})


def test_every_setting_is_read_and_defaults_hold():
    settings = Settings.from_env(
        {**REQUIRED, "IMAGE_ENGINE_BACKEND": "pillow", "CORS_ALLOW_ORIGIN": "https://x", "STATE_MACHINE_ARN": "arn"}
    )
    assert (settings.engine_backend, settings.cors_allow_origin, settings.require_state_machine_arn()) == (
        "pillow",
        "https://x",
        "arn",
    )
    assert settings.max_dimension == config.DEFAULT_MAX_DIMENSION and settings.accept_heic
    with pytest.raises(ConfigError, match="STATE_MACHINE_ARN"):
        Settings.from_env(REQUIRED).require_state_machine_arn()


def test_the_template_defaults_are_the_code_defaults():
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    parameters = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)["Parameters"]  # noqa: S506
    assert parameters["MaxDimension"]["Default"] == config.DEFAULT_MAX_DIMENSION
    assert parameters["MaxUploadBytes"]["Default"] == config.DEFAULT_MAX_UPLOAD_BYTES
    assert parameters["MaxPixels"]["Default"] == config.DEFAULT_MAX_PIXELS
    assert parameters["UrlExpirySeconds"]["Default"] == config.DEFAULT_URL_EXPIRY_SECONDS


def test_nothing_but_config_reads_the_environment():
    readers = [
        str(path.relative_to(ROOT))
        for folder in ("layers/shared/image_pipeline", "functions")
        for path in (ROOT / folder).rglob("*.py")
        if re.search(r"os\.environ|os\.getenv", path.read_text())
    ]
    assert readers == ["layers/shared/image_pipeline/config.py"]


@pytest.mark.parametrize(
    "text",
    [
        "square",
        "square:400",
        "Square:400x400",
        "square:400x400:smart",
        "square:8x8",
        "a:400x400,a:200x200",
        "default:400x400",
    ],
)
def test_a_profile_that_is_not_name_size_strategy_is_refused(monkeypatch, text):
    from image_pipeline.config import parse_profiles
    from image_pipeline.errors import ConfigError

    with pytest.raises(ConfigError):
        parse_profiles(text)


def test_profiles_parse_with_attention_by_default():
    from image_pipeline.config import parse_profiles
    from image_pipeline.contracts import Profile

    assert parse_profiles("square:400x400, card:1200x630:focal") == (
        Profile("square", 400, 400, "attention"),
        Profile("card", 1200, 630, "focal"),
    )
    assert parse_profiles("") == ()
