"""A local stand-in for sefaria.org's API and export bucket, served from a Sefaria-Export tree.

Tests, benchmarks and offline runs point the pipeline at it instead of sefaria.org:
`python -m sefaria_ingest.replica --data ../shared/sefaria-sample` prints `listening on http://HOST:PORT`.
"""

from .app import make_app
from .runner import ReplicaThread, run_replica
from .stats import Stats

__all__ = ["make_app", "run_replica", "ReplicaThread", "Stats"]
