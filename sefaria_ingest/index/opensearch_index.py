"""The OpenSearch full-text backend: opensearch-py clients, `knn_vector` vectors; the rest is es_common."""

from __future__ import annotations

from typing import Any, AsyncIterator, Iterable

from opensearchpy import AsyncOpenSearch, OpenSearch
from opensearchpy.exceptions import NotFoundError, RequestError
from opensearchpy.helpers import async_streaming_bulk

from .es_common import SOURCE_FIELDS, Credentials, EngineBackend


class OpenSearchBackend(EngineBackend):
    """Chunks in an OpenSearch index behind an alias (the Elasticsearch client's compatibility headers are
    refused by OpenSearch, hence its own client)."""

    engine = "opensearch"
    _not_found = (NotFoundError,)
    _bad_request = (RequestError,)

    def _make_client(self, creds: Credentials, *, sync: bool):
        if creds.api_key is not None:
            raise ValueError("OpenSearch takes username_env/password_env, not api_key_env")
        c = self.config
        kwargs: dict[str, Any] = {
            "hosts": c.url,
            "timeout": c.request_timeout,
            "verify_certs": c.verify_certs,
            "max_retries": 3,
            "retry_on_timeout": True,
        }
        if c.ca_certs:
            kwargs["ca_certs"] = c.ca_certs
        if creds.username is not None:
            kwargs["http_auth"] = (creds.username, creds.password)
        return OpenSearch(**kwargs) if sync else AsyncOpenSearch(**kwargs)

    def _streaming_bulk(self, client, actions: Iterable[dict]) -> AsyncIterator[tuple[bool, dict]]:
        return async_streaming_bulk(client, actions, **self._bulk_options())

    def _vector_field(self) -> dict:
        method = {"name": "hnsw", "space_type": "cosinesimil", "engine": "lucene"}
        return {"type": "knn_vector", "dimension": self.config.vector_dims, "method": method}

    def _engine_settings(self) -> dict:
        return {"knn": True}

    def _knn_body(self, vector: list[float], k: int, filters: list[dict]) -> dict:
        knn: dict[str, Any] = {"vector": vector, "k": k}
        if filters:
            knn["filter"] = {"bool": {"filter": filters}}
        return {"size": k, "_source": SOURCE_FIELDS, "query": {"knn": {"vector": knn}}}
