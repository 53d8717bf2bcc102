"""The Elasticsearch full-text backend: elasticsearch-py clients, `dense_vector` vectors; the rest is es_common.

Verified only against a live server (tests/test_search_engines.py with ELASTICSEARCH_URL set); the request
bodies it sends are es_common's, which the OpenSearch tests exercise.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Iterable

from elasticsearch import AsyncElasticsearch, BadRequestError, Elasticsearch, NotFoundError
from elasticsearch.helpers import async_streaming_bulk

from .es_common import SOURCE_FIELDS, Credentials, EngineBackend

# kNN candidates per shard: ten times k, within what Elasticsearch accepts.
MAX_NUM_CANDIDATES = 10_000


class ElasticsearchBackend(EngineBackend):
    """Chunks in an Elasticsearch index behind an alias (the client's major version must match the server's)."""

    engine = "elasticsearch"
    _not_found = (NotFoundError,)
    _bad_request = (BadRequestError,)

    def _make_client(self, creds: Credentials, *, sync: bool):
        c = self.config
        kwargs: dict[str, Any] = {
            "hosts": c.url,
            "request_timeout": c.request_timeout,
            "verify_certs": c.verify_certs,
            "max_retries": 3,
            "retry_on_timeout": True,
        }
        if c.ca_certs:
            kwargs["ca_certs"] = c.ca_certs
        if creds.username is not None:
            kwargs["basic_auth"] = (creds.username, creds.password)
        if creds.api_key is not None:
            kwargs["api_key"] = creds.api_key
        return Elasticsearch(**kwargs) if sync else AsyncElasticsearch(**kwargs)

    def _streaming_bulk(self, client, actions: Iterable[dict]) -> AsyncIterator[tuple[bool, dict]]:
        return async_streaming_bulk(client, actions, retry_on_status=(429,), **self._bulk_options())

    def _vector_field(self) -> dict:
        return {"type": "dense_vector", "dims": self.config.vector_dims, "index": True, "similarity": "cosine"}

    def _knn_body(self, vector: list[float], k: int, filters: list[dict]) -> dict:
        knn: dict[str, Any] = {
            "field": "vector",
            "query_vector": vector,
            "k": k,
            "num_candidates": min(max(10 * k, 100), MAX_NUM_CANDIDATES),
        }
        if filters:
            knn["filter"] = filters
        return {"size": k, "_source": SOURCE_FIELDS, "knn": knn}
