"""Reading a Prometheus exposition in tests: a sample's value by its name and exact labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


def samples(page: str) -> list[Sample]:
    """Every sample on a metrics page (Prometheus text format), parsed by prometheus-client."""
    return [sample for family in text_string_to_metric_families(page) for sample in family.samples]


def value(page: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` with exactly ``labels`` (0 when there is none, as
    Prometheus reads a series that has not been created yet)."""
    found = [s.value for s in samples(page) if s.name == name and s.labels == labels]
    assert len(found) <= 1, f"{name}{labels} appears {len(found)} times"
    return found[0] if found else 0.0


def label_values(page: str, name: str, label: str) -> set[str]:
    """Every value ``label`` takes among the samples called ``name``."""
    return {s.labels[label] for s in samples(page) if s.name == name and label in s.labels}
