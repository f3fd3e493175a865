"""Fixed-shape profiles through the API: GET /images/{id} lists each profile's renditions, /download?profile= hands
out one (by format or the Accept header), and an unknown profile is 404 NO_SUCH_PROFILE naming the image's."""

from __future__ import annotations

import pytest
from image_pipeline import api, keys
from image_pipeline.auth import Caller
from image_pipeline.config import Settings
from image_pipeline.errors import ApiError
from image_pipeline.quota import Limits, Quotas

from .conftest import claimed

ALICE = Caller("alice")
IMAGE_ID = "5b1c7f5e-3b8e-4c3e-9a51-6d0d2b8f4a10"


@pytest.fixture
def with_profiles(aws_env):
    repo = claimed(aws_env, IMAGE_ID)
    square = [
        {
            "size": None,
            "format": fmt,
            "width": 400,
            "height": 400,
            "bytes": 9,
            "key": keys.profile_key(IMAGE_ID, "v", "square", ext),
        }
        for fmt, ext in (("avif", "avif"), ("jpeg", "jpg"))
    ]
    default = {
        "key": keys.rendition_key(IMAGE_ID, "v", None, "jpg"),
        "bytes": 9,
        "width": 800,
        "height": 600,
        "format": "JPEG",
    }
    repo.mark_processed(
        IMAGE_ID, "arn:run", {"processed": default, "renditions": [], "profiles": {"square": square}, "version": "v"}
    )
    return aws_env["s3"], repo


def test_a_profile_is_listed_and_downloaded_by_format_or_accept(with_profiles):
    s3, repo = with_profiles
    settings = Settings.from_env()
    shown = api.to_api(repo.get(IMAGE_ID), ALICE)
    assert shown["profiles"] == {
        "square": [
            {"format": "avif", "width": 400, "height": 400, "bytes": 9},
            {"format": "jpeg", "width": 400, "height": 400, "bytes": 9},
        ]
    }
    jpeg = api.download(s3, repo, settings, ALICE, IMAGE_ID, format="jpeg", profile="square")
    assert f"/{IMAGE_ID}/v/square.jpg?" in jpeg["downloadUrl"] and jpeg["profile"] == "square"
    assert (jpeg["width"], jpeg["height"], jpeg["contentType"]) == (400, 400, "image/jpeg")
    auto = api.download(s3, repo, settings, ALICE, IMAGE_ID, accept="image/avif,*/*", profile="square")
    assert auto["format"] == "avif"


def test_an_unknown_profile_is_404_naming_the_images_profiles(with_profiles):
    s3, repo = with_profiles
    with pytest.raises(ApiError) as refused:
        api.download(s3, repo, Settings.from_env(), ALICE, IMAGE_ID, profile="banner")
    assert (refused.value.http_status, refused.value.code) == (404, "NO_SUCH_PROFILE")
    assert refused.value.extra == {"profiles": ["square"]}
    with pytest.raises(ApiError) as both:
        api.download(s3, repo, Settings.from_env(), ALICE, IMAGE_ID, size="400", profile="square")
    assert both.value.code == "INVALID_REQUEST"
    # another owner gets the same 404 as for an unknown image, not the profile list
    with pytest.raises(ApiError) as stranger:
        api.download(s3, repo, Settings.from_env(), Caller("bob"), IMAGE_ID, profile="banner")
    assert stranger.value.code == "NOT_FOUND"


def test_the_srcset_gives_each_profile_its_own_sources_and_fallback(with_profiles):
    s3, repo = with_profiles
    picture = api.srcset(s3, repo, Settings.from_env(), ALICE, IMAGE_ID)
    square = picture["profiles"]["square"]
    assert [(s["format"], s["type"]) for s in square["sources"]] == [("avif", "image/avif"), ("jpeg", "image/jpeg")]
    assert square["sources"][0]["srcset"].endswith(" 400w") and "/v/square.avif?" in square["sources"][0]["srcset"]
    assert "/v/square.jpg?" in square["fallback"]["src"] and (
        square["fallback"]["width"],
        square["fallback"]["height"],
    ) == (400, 400)


@pytest.fixture
def quotas(aws_env):
    return Quotas(aws_env["usage"], Limits(uploads_per_hour=3, uploads_per_day=10, stored_bytes=10**9))


class Starts:
    """What PATCH starts: each execution input it was given; answers an execution ARN."""

    def __init__(self) -> None:
        self.inputs: list[dict] = []

    def __call__(self, execution_input: dict) -> str:
        self.inputs.append(execution_input)
        return f"arn:aws:states:us-east-1:000000000000:execution:pipeline:run-{len(self.inputs)}"


def test_a_focal_point_starts_a_crops_only_run_of_the_original(with_profiles, quotas, monkeypatch):
    monkeypatch.setenv("RENDITION_PROFILES", "square:400x400:attention")
    s3, repo = with_profiles
    settings, start = Settings.from_env(), Starts()
    status, shown = api.set_focal_point(
        repo, quotas, settings, ALICE, IMAGE_ID, {"focalPoint": {"x": 0.42, "y": 1}}, start
    )
    assert (status, shown["focalPoint"], shown["rendering"]) == (202, {"x": 0.42, "y": 1}, "run-1")
    (given,) = start.inputs
    record = repo.get(IMAGE_ID)
    assert given["reprocess"] is True and given["scope"] == "crops"
    assert given["detail"]["object"]["key"] == record["originalKey"]
    assert given["detail"]["bucket"]["name"] == settings.original_bucket
    # once that run rendered the crops there, clearing the point sends them back to their strategies: a re-render too
    repo.table.update_item(Key={"imageId": IMAGE_ID}, UpdateExpression="SET focalRendered = focalPoint")
    status, shown = api.set_focal_point(repo, quotas, settings, ALICE, IMAGE_ID, {"focalPoint": None}, start)
    assert (status, shown["focalPoint"]) == (202, None) and "focalPoint" not in repo.get(IMAGE_ID)
    # without profiles configured the point is kept for later, and nothing runs
    monkeypatch.setenv("RENDITION_PROFILES", "")
    status, shown = api.set_focal_point(
        repo, quotas, Settings.from_env(), ALICE, IMAGE_ID, {"focalPoint": {"x": 0, "y": 0}}, start
    )
    assert (status, shown["rendering"], len(start.inputs)) == (200, None, 2)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (None, "INVALID_REQUEST"),
        ([], "INVALID_REQUEST"),
        ({"focalPoint": {"x": 0.5, "y": 0.5}, "owner": "bob"}, "INVALID_REQUEST"),  # nothing else is settable
        ({"focalPoint": {"x": 1.5, "y": 0.5}}, "INVALID_FOCAL_POINT"),
        ({"focalPoint": {"x": -0.1, "y": 0.5}}, "INVALID_FOCAL_POINT"),
        ({"focalPoint": {"x": "0.5", "y": 0.5}}, "INVALID_FOCAL_POINT"),
        ({"focalPoint": {"x": True, "y": 0.5}}, "INVALID_FOCAL_POINT"),
        ({"focalPoint": {"x": float("nan"), "y": 0.5}}, "INVALID_FOCAL_POINT"),
        ({"focalPoint": {"x": 0.5}}, "INVALID_FOCAL_POINT"),
        ({"focalPoint": [0.5, 0.5]}, "INVALID_FOCAL_POINT"),
    ],
)
def test_a_bad_focal_point_is_400_and_changes_nothing(with_profiles, quotas, body, code):
    s3, repo = with_profiles
    start = Starts()
    with pytest.raises(ApiError) as refused:
        api.set_focal_point(repo, quotas, Settings.from_env(), ALICE, IMAGE_ID, body, start)
    assert (refused.value.http_status, refused.value.code) == (400, code)
    assert "focalPoint" not in repo.get(IMAGE_ID) and start.inputs == []


def test_another_owners_image_is_404_and_an_image_in_flight_409(with_profiles, quotas):
    s3, repo = with_profiles
    start, body = Starts(), {"focalPoint": {"x": 0.5, "y": 0.5}}
    with pytest.raises(ApiError) as stranger:
        api.set_focal_point(repo, quotas, Settings.from_env(), Caller("bob"), IMAGE_ID, body, start)
    assert stranger.value.code == "NOT_FOUND" and "focalPoint" not in repo.get(IMAGE_ID)
    repo.claim(IMAGE_ID, f"uploads/{IMAGE_ID}", "e", "arn:reprocess", reprocess=True)  # a run owns it now
    with pytest.raises(ApiError) as busy:
        api.set_focal_point(repo, quotas, Settings.from_env(), ALICE, IMAGE_ID, body, start)
    assert (busy.value.http_status, busy.value.code, busy.value.extra) == (409, "NOT_READY", {"status": "PROCESSING"})
    assert "focalPoint" not in repo.get(IMAGE_ID) and start.inputs == []


def test_re_renders_count_against_the_upload_quota(with_profiles, quotas, monkeypatch):
    monkeypatch.setenv("RENDITION_PROFILES", "square:400x400:attention")
    s3, repo = with_profiles
    settings, start = Settings.from_env(), Starts()
    for i in range(3):  # three runs an hour: a point, then another (as a run would have rendered each)
        status, _ = api.set_focal_point(
            repo, quotas, settings, ALICE, IMAGE_ID, {"focalPoint": {"x": i / 10, "y": 0}}, start
        )
        assert status == 202
        repo.table.update_item(Key={"imageId": IMAGE_ID}, UpdateExpression="SET focalRendered = focalPoint")
    with pytest.raises(ApiError) as refused:
        api.set_focal_point(repo, quotas, settings, ALICE, IMAGE_ID, {"focalPoint": {"x": 0.9, "y": 0}}, start)
    assert (refused.value.http_status, refused.value.code, refused.value.extra["limit"]) == (
        429,
        "QUOTA_EXCEEDED",
        "uploadsPerHour",
    )
    assert refused.value.retry_after and "re-renders" in refused.value.message
    assert len(start.inputs) == 3 and float(repo.get(IMAGE_ID)["focalPoint"]["x"]) == 0.9  # kept: PATCH again later


def test_a_point_too_fine_for_dynamodb_is_rounded_not_a_500(with_profiles, quotas):
    s3, repo = with_profiles
    status, shown = api.set_focal_point(
        repo, quotas, Settings.from_env(), ALICE, IMAGE_ID, {"focalPoint": {"x": 1e-200, "y": 0.1234567891}}, Starts()
    )
    assert status == 200 and shown["focalPoint"] == {"x": 0, "y": 0.123457}
