"""Reading a gateway's ``/metrics`` as a scraper does: fetched over HTTP, parsed by prometheus-client's own
parser (``text_string_to_metric_families``), into samples looked up by name and labels."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

#: ``{(sample name, ((label, value), ...) sorted): value}``
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(base_url: str, path: str = "/metrics") -> Samples:
    response = httpx.get(f"{base_url}{path}", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def ascrape(base_url: str, path: str = "/metrics") -> Samples:
    """:func:`scrape` from a test whose event loop serves the gateway itself."""
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{base_url}{path}", timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly ``labels`` (0 when the series does not exist yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def label_values(samples: Samples, label: str, prefix: str = "fedgate_") -> set[str]:
    """Every value ``label`` takes in the samples of metrics named ``prefix...``."""
    return {value for (name, labels) in samples if name.startswith(prefix) for key, value in labels if key == label}


def wait_for(
    base_url: str, condition: Callable[[Samples], bool], seconds: float = 30, what: str = "the metrics"
) -> Samples:
    """Scrape until ``condition`` holds (every 0.2 s, for at most ``seconds``); the samples that showed it."""
    deadline = time.monotonic() + seconds
    while True:
        samples = scrape(base_url)
        if condition(samples):
            return samples
        if time.monotonic() > deadline:
            shown = {key: found for key, found in samples.items() if "department" in dict(key[1])}
            raise AssertionError(f"{what} did not show it within {seconds:.0f} s: {shown}")
        time.sleep(0.2)
