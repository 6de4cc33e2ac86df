"""build.files in the artifact bucket: uploaded once under their content hash, presigned
for a builder without credentials; and amiforge's real Linux wrapper, run by bash,
fetches them from the local cloud's S3 and refuses a file whose bytes do not match."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from amiforge.aws.assets import AssetBucket
from amiforge.aws.session import AwsContext
from amiforge.core.assets import Asset, builder_manifest, launch_key, object_key
from amiforge.core.userdata import wrap


def asset(path: str, data: bytes) -> Asset:
    return Asset(path, hashlib.sha256(data).hexdigest(), len(data))


@pytest.fixture
def bucket(local_cloud: Any, unique: Callable[[str], str]) -> AssetBucket:
    s3 = boto3.client("s3", region_name=local_cloud.region, endpoint_url=local_cloud.endpoint)
    name = unique("assets")
    s3.create_bucket(Bucket=name) if local_cloud.region == "us-east-1" else s3.create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": local_cloud.region})
    return AssetBucket(s3, name)


def test_files_are_uploaded_once_under_their_content_hash(bucket: AssetBucket) -> None:
    files = {"files/a": b"alpha\n", "files/b": b"beta\n"}
    assets = [asset(p, d) for p, d in files.items()]
    reads: list[str] = []

    def read(a: Asset) -> bytes:
        reads.append(a.path)
        return files[a.path]
    assert bucket.upload(assets, read) == ["files/a", "files/b"]
    body = bucket.s3.get_object(Bucket=bucket.bucket, Key=object_key(assets[0].sha256))
    assert body["Body"].read() == b"alpha\n"
    # Published again (or by another recipe with the same file): nothing is read or sent.
    assert bucket.upload(assets, read) == []
    assert reads == ["files/a", "files/b"]


def test_the_wrapper_fetches_files_into_place_before_the_script(
        bucket: AssetBucket, tmp_path: Path) -> None:
    data = b"welcome to the golden image\n"
    motd = asset("files/etc/motd", data)
    bucket.upload([motd], lambda _: data)
    urls = {motd.path: bucket.presign(object_key(motd.sha256), 300)}
    key = launch_key("web-1", 1)
    bucket.put_text(key, builder_manifest([motd], urls))
    script = ('#!/bin/bash\nset -e\n'
              'grep -qx "welcome to the golden image" "$AMIFORGE_FILES/files/etc/motd"\n'
              'cp "$AMIFORGE_FILES/files/etc/motd" "$OUT/motd"\n')
    result, console = run_wrapper(tmp_path, script, bucket.presign(key, 300))
    assert result.returncode == 0, console
    assert "AMIFORGE-RESULT: success" in console
    assert (tmp_path / "out" / "motd").read_bytes() == data
    assert not (tmp_path / "work").exists()  # the files are not left in the image


def test_a_file_that_does_not_match_its_hash_fails_the_build_before_the_script(
        bucket: AssetBucket, tmp_path: Path) -> None:
    claimed = asset("files/x", b"what was published")
    bucket.s3.put_object(Bucket=bucket.bucket, Key="other", Body=b"something else")
    key = launch_key("web-2", 1)
    bucket.put_text(key, builder_manifest([claimed], {"files/x": bucket.presign("other", 300)}))
    result, console = run_wrapper(tmp_path, 'touch "$OUT/ran"\n', bucket.presign(key, 300))
    assert result.returncode == 1
    assert f"amiforge: files/x does not match its sha256 {claimed.sha256}" in console
    assert "AMIFORGE-RESULT: failure exit=1" in console
    assert not (tmp_path / "out" / "ran").exists()


def test_an_expired_or_missing_list_fails_the_build(bucket: AssetBucket,
                                                    tmp_path: Path) -> None:
    result, console = run_wrapper(tmp_path, 'touch "$OUT/ran"\n',
                                  bucket.presign("launches/none/1.txt", 300))
    assert result.returncode == 1
    assert "amiforge: could not fetch the build.files list" in console
    assert not (tmp_path / "out" / "ran").exists()


def run_wrapper(tmp_path: Path, script: str, url: str) -> tuple[Any, str]:
    """Run the real wrapper with bash, its console, log and work directory in tmp_path."""
    (tmp_path / "out").mkdir(exist_ok=True)
    wrapper = tmp_path / "user-data"
    wrapper.write_text(wrap("linux", script, recipe_name="web", recipe_hash="0" * 64,
                            assets_url=url))
    console = tmp_path / "console"
    env = {"PATH": "/usr/bin:/bin", "OUT": str(tmp_path / "out"),
           "AMIFORGE_CONSOLE": str(console), "AMIFORGE_LOG": str(tmp_path / "log"),
           "AMIFORGE_WORKDIR": str(tmp_path / "work"), "AMIFORGE_POWEROFF": "true",
           "AMIFORGE_CLOUD_DIR": str(tmp_path / "cloud")}
    result = subprocess.run(["bash", str(wrapper)], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    return result, console.read_text() if console.exists() else ""


def test_presigned_urls_on_aws_are_sigv4_on_the_bucket_s_regional_host(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Signing is local: no call is made. SigV2 (botocore's presigning default) is refused
    # by buckets made since 2020, and the global host redirects a new bucket's requests.
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    s3 = AwsContext(region="eu-west-1").client("s3")
    url = AssetBucket(s3, "amiforge-artifacts-123456789012-eu-west-1").presign("k", 60)
    assert url.startswith("https://amiforge-artifacts-123456789012-eu-west-1.s3.eu-west-1."
                          "amazonaws.com/k?")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
