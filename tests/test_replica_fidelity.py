"""The replica answers like the real API: recorded responses (live captures) vs the replica's answer to the
closest request the sample allows, compared by status, key sets (and order), and JSON types, recursively."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

LIVE = Path(__file__).resolve().parents[1].parent / "shared" / "sefaria-api" / "examples" / "live-fixtures"
WEB = LIVE / "sefaria-web-components"

# Fields whose type really varies between records (SPEC §4 [rec]): an attribute a version lacks is "".
VARIANT_TYPES = {"priority": {"number", "string"}, "digitizedBySefaria": {"boolean", "string"},
                 "versionSource": {"string", "null"}}
# Keys the 2015 sample has no data for (linker templates of alt structures); everything else must match.
SAMPLE_CANNOT_PROVIDE = {"match_templates", "isMapReferenceable"}
# Keys real records only carry when true (SPEC §2: `titles: [{text, lang, primary?}]`).
OPTIONAL_KEYS = {"primary"}


def json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def structure_problems(recorded, actual, *, exact_keys: bool, ordered: bool = False, path: str = "$",
                       key: str = "") -> list[str]:
    """Differences in shape between a recorded response and the replica's: missing/renamed keys, types.

    A recorded null accepts a string (e.g. `prev` at a book's start); arrays: every replica element must match
    the shape of some recorded element; exact_keys also rejects keys the recording lacks.
    """
    rt, at = json_type(recorded), json_type(actual)
    if rt != at and not (rt == "null" and at == "string") and not {rt, at} <= VARIANT_TYPES.get(key, set()):
        return [f"{path}: recorded {rt}, replica {at}"]
    problems: list[str] = []
    if rt == "object" and at == "object":
        for k in recorded:
            if k not in actual and k not in SAMPLE_CANNOT_PROVIDE | OPTIONAL_KEYS:
                problems.append(f"{path}: replica lacks key {k!r}")
        if exact_keys:
            problems += [f"{path}: replica has extra key {k!r}" for k in actual if k not in recorded]
            if ordered and not problems and list(actual) != list(recorded):
                problems.append(f"{path}: key order {list(actual)} != recorded {list(recorded)}")
        for k in recorded:
            if k in actual:
                problems += structure_problems(recorded[k], actual[k], exact_keys=exact_keys, ordered=ordered,
                                               path=f"{path}.{k}", key=k)
    elif rt == "array" and at == "array" and recorded:
        for i, item in enumerate(actual):
            attempts = [structure_problems(r, item, exact_keys=exact_keys, ordered=ordered, path=f"{path}[{i}]",
                                           key=key) for r in recorded]
            if all(attempts):
                problems += min(attempts, key=len)
    return problems


@dataclass
class Case:
    name: str
    recorded: object
    status: int  # the recorded HTTP status
    path: str  # the closest request the sample allows
    params: list = field(default_factory=list)
    mode: str = "subset"  # "equal": same body; "exact": same keys (and order); "subset": recorded keys present


def _read(name: str):
    return json.loads((WEB / name).read_text(encoding="utf-8"))


def _manifest_status(name: str) -> int:
    return _read("manifest.json")[name]["status"]


def cases(he_title: str) -> list[Case]:
    micah = json.loads((LIVE / "sefaria-frontend-toolkit" / "micah-6-8-2026-09-28.json").read_text(encoding="utf-8"))
    primary_translation = [("version", "primary"), ("version", "translation")]
    missing = [("version", "english|__missing_component_fixture__")]
    return [
        # Complete captures: same keys in the same order, same types.
        Case("v3 segment (Micah 6:8, complete)", micah["payload"], 200, "/api/v3/texts/Genesis 6:8",
             [("return_format", "default"), *primary_translation], "exact"),
        Case("v3 Talmud section (Berakhot 2a, complete)", _read("v3-connections-berakhot-section-2026-09-06.json"),
             200, "/api/v3/texts/Berakhot 2a", primary_translation, "exact"),
        # Reduced captures: every recorded key present with the same type.
        Case("v3 bilingual segment", _read("v3-text-genesis-bilingual-2026-09-02.json"),
             _manifest_status("v3-text-genesis-bilingual-2026-09-02.json"), "/api/v3/texts/Genesis 1:1",
             [("version", "hebrew"), ("version", "english")]),
        Case("v3 spanning bilingual", _read("v3-text-genesis-spanning-bilingual-2026-09-02.json"),
             _manifest_status("v3-text-genesis-spanning-bilingual-2026-09-02.json"),
             "/api/v3/texts/Genesis 1:31-2:2", [("version", "hebrew"), ("version", "english")]),
        Case("v3 spanning primary", _read("v3-text-spanning-2026-08-29.json"),
             _manifest_status("v3-text-spanning-2026-08-29.json"), "/api/v3/texts/Genesis 1:31-2:2",
             [("version", "primary")]),
        Case("v3 Shulchan Arukh segment", _read("v3-text-shulchan-arukh-long-2026-09-02.json"),
             _manifest_status("v3-text-shulchan-arukh-long-2026-09-02.json"),
             "/api/v3/texts/Shulchan Arukh, Orach Chayyim 1:1", [("version", "primary")]),
        Case("v3 missing version warning", _read("v3-text-genesis-missing-english-2026-09-02.json"),
             _manifest_status("v3-text-genesis-missing-english-2026-09-02.json"), "/api/v3/texts/Genesis 1:1",
             [("version", f"hebrew|{he_title}"), *missing]),
        Case("v3 only a missing version", _read("v3-text-genesis-missing-only-2026-09-02.json"),
             _manifest_status("v3-text-genesis-missing-only-2026-09-02.json"), "/api/v3/texts/Genesis 1:1", missing),
        Case("index v2", _read("index-genesis-2026-09-01.json"), _manifest_status("index-genesis-2026-09-01.json"),
             "/api/v2/index/Genesis"),
        Case("versions list", _read("versions-nullable-2026-08-30.json"),
             _manifest_status("versions-nullable-2026-08-30.json"), "/api/texts/versions/Rashi on Genesis",
             mode="exact"),
        # Unmodified captures of the same request: the very same body.
        Case("v3 invalid ref 404", _read("v3-text-invalid-ref-2026-09-02.json"),
             _manifest_status("v3-text-invalid-ref-2026-09-02.json"), "/api/v3/texts/__missing_component_fixture__",
             mode="equal"),
        Case("v3 invalid format 400", _read("v3-text-invalid-format-2026-09-02.json"),
             _manifest_status("v3-text-invalid-format-2026-09-02.json"), "/api/v3/texts/Genesis 1:1",
             [("return_format", "__invalid_component_fixture__")], "equal"),
        Case("shape list", _read("shape-genesis-2026-08-30.json"), _manifest_status("shape-genesis-2026-08-30.json"),
             "/api/shape/Genesis", mode="equal"),
        Case("shape error", _read("shape-error-2026-08-30.json"), _manifest_status("shape-error-2026-08-30.json"),
             "/api/shape/Torah", mode="equal"),
        Case("versions error", _read("versions-error-2026-08-30.json"),
             _manifest_status("versions-error-2026-08-30.json"),
             "/api/texts/versions/__missing_generated_client_probe__", mode="equal"),
    ]


@pytest.fixture(scope="module")
def he_title(sample_dir) -> str:
    doc = json.loads((sample_dir / "json/Tanach/Torah/Genesis/Hebrew/merged.json").read_text(encoding="utf-8"))
    return doc["versions"][0][0]


CASE_NAMES = [c.name for c in cases("x")]


def check(case: Case, status: int, body) -> list[str]:
    problems = [] if status == case.status else [f"status {status}, recorded {case.status}"]
    if case.mode == "equal":
        if body != case.recorded:
            problems.append(f"body {body!r} != recorded {case.recorded!r}")
    else:
        problems += structure_problems(case.recorded, body, exact_keys=case.mode == "exact",
                                       ordered=case.mode == "exact")
    return problems


@pytest.mark.parametrize("name", CASE_NAMES)
def test_replica_answers_like_the_recording(name, he_title, replica_get):
    case = next(c for c in cases(he_title) if c.name == name)
    reply = replica_get(case.path, case.params)
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    body = reply.json()
    # Sefaria's jsonResponse: json.dumps(..., ensure_ascii=False) with default separators.
    assert reply.body == json.dumps(body, ensure_ascii=False).encode("utf-8")
    assert check(case, reply.status, body) == []


def test_warnings_match_the_recording_exactly(he_title, replica_get):
    for name in ("v3 missing version warning", "v3 only a missing version"):
        case = next(c for c in cases(he_title) if c.name == name)
        body = replica_get(case.path, case.params).json()
        assert body["warnings"] == case.recorded["warnings"], name
        assert len(body["versions"]) == len(case.recorded["versions"]), name


def test_the_check_fails_on_a_renamed_field_or_changed_code(he_title, replica_get):
    """Negative control: mutated copies of real replica answers must be rejected by the same check."""
    micah = next(c for c in cases(he_title) if c.name.startswith("v3 segment"))
    body = replica_get(micah.path, micah.params).json()
    assert check(micah, 200, body) == []
    renamed = copy.deepcopy(body)
    renamed["heRef"] = renamed.pop("heRef")  # same keys, but moved to the end: order is checked
    assert check(micah, 200, renamed)
    renamed = {("he_ref" if k == "heRef" else k): v for k, v in body.items()}
    assert any("heRef" in p for p in check(micah, 200, renamed))
    nested = copy.deepcopy(body)
    nested["versions"][0]["version_title"] = nested["versions"][0].pop("versionTitle")
    assert check(micah, 200, nested)
    retyped = copy.deepcopy(body)
    retyped["sections"] = [6, 8]
    assert check(micah, 200, retyped)
    assert check(micah, 404, body)
    invalid = next(c for c in cases(he_title) if c.name == "v3 invalid ref 404")
    reply = replica_get(invalid.path)
    assert check(invalid, reply.status, reply.json()) == []
    assert check(invalid, 400, reply.json())
    assert check(invalid, reply.status, {"message": reply.json()["error"]})
