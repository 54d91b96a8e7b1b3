"""Fetching GraphiQL's assets for self-hosting (``fedgate graphiql-assets DIR``).

A closed government network cannot reach a public CDN. This downloads the exact files the page loads
from the npm registry, checks each against the Subresource Integrity hash the page will demand, and
writes them in the npm-style tree ``graphiql.assets_url`` / ``graphiql.assets_dir`` expect.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
from pathlib import Path

import httpx

from gateway.graphiql import ASSETS, Asset

NPM_REGISTRY = "https://registry.npmjs.org"
_ASSET_PATH = re.compile(r"^(?P<name>[^@/]+)@(?P<version>[^/]+)/(?P<file>.+)$")


class AssetIntegrityError(Exception):
    """A downloaded asset does not match the integrity hash the GraphiQL page requires."""


def integrity(content: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(content).digest()).decode()


def missing_assets(directory: Path) -> list[str]:
    """The assets ``directory`` lacks, or holds altered (the page would refuse them), by path."""
    return [
        asset.path
        for asset in ASSETS
        if not (directory / asset.path).is_file() or integrity((directory / asset.path).read_bytes()) != asset.integrity
    ]


def missing_assets_advice(directory: Path) -> str | None:
    """One line saying which assets ``directory`` lacks and the command that fetches them, or None."""
    missing = missing_assets(directory)
    if not missing:
        return None
    return (
        f"graphiql.assets_dir {directory} lacks {len(missing)} of GraphiQL's {len(ASSETS)} files "
        f"(e.g. {missing[0]}): run `fedgate graphiql-assets {directory}` where the npm registry can be reached"
    )


def fetch_assets(directory: Path, registry: str = NPM_REGISTRY, *, timeout: float = 60.0) -> list[Path]:
    """Download every asset into ``directory``; files already present and intact are kept."""
    written = []
    packages: dict[tuple[str, str], bytes] = {}
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:
        for asset in ASSETS:
            target = directory / asset.path
            if target.is_file() and integrity(target.read_bytes()) == asset.integrity:
                continue
            content = _extract(asset, client, registry, packages)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
            partial.write_bytes(content)
            partial.replace(target)  # atomic: a page (or another fetch) never sees half a file
            written.append(target)
    return written


def _extract(asset: Asset, client: httpx.Client, registry: str, packages: dict[tuple[str, str], bytes]) -> bytes:
    match = _ASSET_PATH.match(asset.path)
    assert match is not None, asset.path
    name, version, file = match["name"], match["version"], match["file"]
    if (name, version) not in packages:
        response = client.get(f"{registry.rstrip('/')}/{name}/-/{name}-{version}.tgz")
        response.raise_for_status()
        packages[(name, version)] = response.content
    with tarfile.open(fileobj=io.BytesIO(packages[(name, version)]), mode="r:gz") as archive:
        member = archive.extractfile(f"package/{file}")
        if member is None:
            raise AssetIntegrityError(f"{asset.path} is not in the {name}@{version} package")
        content = member.read()
    if integrity(content) != asset.integrity:
        raise AssetIntegrityError(f"{asset.path} does not match its integrity hash")
    return content
