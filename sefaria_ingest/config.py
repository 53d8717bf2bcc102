"""The workflow configuration: validated against config/schema.yaml, defaults filled, turned into typed options."""

from __future__ import annotations

import sys
from pathlib import Path

# jsonschema and yaml are imported where they are used: every workflow job imports this module for the typed
# options, but only the Snakefile validates (jsonschema alone costs a fetch job ~0.06 s of start-up).

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "config" / "schema.yaml"


class ConfigError(ValueError):
    """The configuration does not satisfy the schema; the message is one line naming the key."""


def _with_defaults(validator_class):
    """A validator that fills `default` values in as it validates (like snakemake.utils.validate)."""
    import jsonschema

    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = sub["default"] if not isinstance(sub["default"], (dict, list)) else type(sub["default"])(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    import yaml

    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """Validate in place, fill defaults, return the config; raise ConfigError with a one-line message."""
    import jsonschema

    schema = schema or load_schema()
    validator = _with_defaults(jsonschema.validators.validator_for(schema))(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        message = err.message
        if err.validator == "anyOf" and not err.absolute_path:
            message = "select something to ingest: set `books` and/or `categories`"
        raise ConfigError(f"invalid config: {where}: {message}")
    return config


def validate_or_exit(config: dict) -> dict:
    """For the Snakefile: print the one-line error and stop before any job runs."""
    try:
        return validate_config(config)
    except ConfigError as exc:
        print(f"sefaria-ingest: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def fetch_base(config: dict) -> str:
    """The base URL (or directory) the fetch stage reads from."""
    return config["api_url"] if config["source"] == "api" else config["export_url"]


def uses_network(config: dict) -> bool:
    from .sources import is_url

    return is_url(fetch_base(config))


def client_config(config: dict):
    """ClientConfig for one fetch job from the `fetch` section."""
    from .client import ClientConfig
    from .retry import RetryPolicy

    f = config["fetch"]
    # A local export directory needs no client; the API URL keeps the config valid all the same.
    return ClientConfig(
        base_url=fetch_base(config) if uses_network(config) else config["api_url"],
        requests_per_second=f["requests_per_second"],
        burst=f["burst"],
        max_in_flight=f["max_in_flight"],
        max_connections=f["max_connections"],
        request_timeout=f["request_timeout"],
        retry=RetryPolicy(max_attempts=f["retries"], backoff_base=f["backoff_base"], backoff_max=f["backoff_max"]),
    )


def fetch_options(config: dict):
    from .sources import FetchOptions

    return FetchOptions(languages=tuple(config["languages"]), versions=config["versions"],
                        max_segments_per_request=config["fetch"]["max_segments_per_request"])
