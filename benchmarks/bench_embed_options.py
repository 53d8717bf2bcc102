"""Benchmark 4: CPU options for the embedding model against the current default, interleaved in one run.

    python benchmarks/bench_embed_options.py [--texts 192] [--rounds 3] [--batch-sizes 16,32,64,128]
                                             [--threads 1,2] [--only NAME,...] [--no-onnx] [--json PATH]

Options: batch size, torch threads, length-sorted vs arrival order, fp16/bf16 weights, dynamic int8 (torch,
per-tensor and per-channel), and ONNX Runtime (fp32, fused fp32, int8) when `onnxruntime` and `onnx` can be
imported (they are not project dependencies). Faithful: cosine similarity to the fp32 reference model >= 0.99
on every text. Options whose speed depends on this CPU's instruction set (half precision) are measured but never
proposed as the default. Speeds are each option's fastest round (load only adds time); the per-round ratios are
shown beside them. Exits 1 when the default is not faithful, or when a faithful portable option runs more than
--margin faster than the default (then it should be the default)."""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_stages import SAMPLE, chunk_stage, english_sample, fetch_stage, select_titles  # noqa: E402

from sefaria_ingest.embed import Embedder, normalise_rows  # noqa: E402
from sefaria_ingest.tokens import TokenCounter  # noqa: E402

MIN_COSINE = 0.99
# Speed differences below this are within what the load on a shared 2-core machine moves between rounds.
DEFAULT_MARGIN = 0.10


@dataclass(slots=True)
class Variant:
    """One way to embed texts; `threads` is torch's thread count while it runs (None: as the process has it).

    `portable` is False where the speed depends on this CPU's instruction set: such an option is never a default.
    """

    name: str
    setup: str
    encode: Callable[[list[str]], np.ndarray]
    threads: int | None = None
    portable: bool = True


@dataclass(slots=True)
class OptionResult:
    """A variant's speed over the rounds and its faithfulness to the reference vectors."""

    name: str
    setup: str
    portable: bool = True
    seconds: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # the default's seconds / this variant's, per round
    default_best: float = float("nan")  # the default's fastest round, for `ratio`
    texts: int = 0
    tokens: int = 0
    min_cosine: float = float("nan")
    mean_cosine: float = float("nan")

    @property
    def best(self) -> float:
        """The fastest round: other work on the machine only ever adds time."""
        return min(self.seconds)

    @property
    def texts_per_second(self) -> float:
        return self.texts / self.best

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.best

    @property
    def median_ratio(self) -> float:
        """Median over rounds of the speed relative to the default measured in the same round."""
        return statistics.median(self.ratios)

    @property
    def ratio(self) -> float:
        """Speed relative to the default, fastest round against fastest round."""
        return self.default_best / self.best

    @property
    def faithful(self) -> bool:
        return self.min_cosine >= MIN_COSINE


# --- variants -----------------------------------------------------------------------------------------------------


def _with_batch(embedder: Embedder, batch_size: int) -> Callable[[list[str]], np.ndarray]:
    def encode(texts: list[str]) -> np.ndarray:
        saved = embedder.batch_size
        embedder.batch_size = batch_size
        try:
            return embedder.encode(texts)
        finally:
            embedder.batch_size = saved

    return encode


def _arrival_order(model, batch_size: int) -> Callable[[list[str]], np.ndarray]:
    # One encode call per batch in arrival order: the model's own length sort then only acts within a batch.
    def encode(texts: list[str]) -> np.ndarray:
        parts = [model.encode(texts[i : i + batch_size], batch_size=batch_size, normalize_embeddings=True,
                              convert_to_numpy=True, show_progress_bar=False)
                 for i in range(0, len(texts), batch_size)]
        return np.concatenate(parts)

    return encode


def _bare(model, batch_size: int) -> Callable[[list[str]], np.ndarray]:
    def encode(texts: list[str]) -> np.ndarray:
        vecs = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_tensor=True,
                            show_progress_bar=False)
        return vecs.float().cpu().numpy()

    return encode


def torch_variants(embedder: Embedder, batch_sizes: Sequence[int], threads: Sequence[int]) -> list[Variant]:
    """The default, then batch sizes, thread counts, arrival order, half precision and int8 on the same model."""
    import torch

    model = embedder.model
    current = torch.get_num_threads()
    bs = embedder.batch_size
    variants = [Variant("default", f"Embedder(): batch {bs}, length-sorted, {current} threads, fp32",
                        embedder.encode)]
    for b in batch_sizes:
        if b != bs:
            variants.append(Variant(f"batch {b}", f"batch {b}, length-sorted, {current} threads",
                                    _with_batch(embedder, b)))
    for t in threads:
        if t != current:
            variants.append(Variant(f"threads {t}", f"batch {bs}, length-sorted, {t} threads", embedder.encode, t))
    variants.append(Variant("arrival order", f"batch {bs} in arrival order, {current} threads",
                            _arrival_order(model, bs)))
    # Half precision is only fast where oneDNN has native kernels for it (AVX512-FP16/BF16, AMX); elsewhere
    # PyTorch's fallback runs fp16 several times slower than fp32.
    for dtype, label in ((torch.float16, "fp16"), (torch.bfloat16, "bf16")):
        variants.append(Variant(f"{label} weights", f"batch {bs}, model.to({label}); CPU-specific",
                                _bare(copy.deepcopy(model).to(dtype), bs), portable=False))
    from torch.ao.quantization import per_channel_dynamic_qconfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear},
                                                           dtype=torch.qint8)
        per_channel = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model),
                                                             {torch.nn.Linear: per_channel_dynamic_qconfig})
    variants.append(Variant("int8 dynamic (torch)", f"batch {bs}, quantize_dynamic on nn.Linear, qint8",
                            _bare(quantized, bs)))
    variants.append(Variant("int8 dynamic per-channel (torch)", f"batch {bs}, as above, per-channel weight scales",
                            _bare(per_channel, bs)))
    return variants


class OrtEncoder:
    """The same model in ONNX Runtime: tokenizer and mean pooling as sentence-transformers does them."""

    def __init__(self, model, onnx_path: Path, batch_size: int, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = model.tokenizer
        self.max_length = model.max_seq_length
        self.batch_size = batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: np.ndarray | None = None
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            feats = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="np")
            feed = {k: v.astype(np.int64) for k, v in feats.items() if k in self.inputs}
            hidden = self.session.run(None, feed)[0]
            mask = feats["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            if out is None:
                out = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            out[idx] = pooled
        return normalise_rows(out)


def export_onnx(model, work: Path) -> dict[str, Path]:
    """The model's transformer as ONNX (eager attention, so ONNX Runtime's BERT fusions apply), fused, and int8
    (per-tensor and per-channel weight scales)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel

    pooling = model[1].get_config_dict() if len(model) > 1 else {}
    # Named `pooling_mode` in sentence-transformers 6, one flag per mode before.
    if pooling.get("pooling_mode", "mean" if pooling.get("pooling_mode_mean_tokens") else None) != "mean":
        raise ValueError(f"only mean-pooling models are exported, not {pooling}")
    path = model[0].auto_model.name_or_path
    hf = AutoModel.from_pretrained(path, attn_implementation="eager", local_files_only=True).eval()
    config = hf.config
    names = ["input_ids", "attention_mask", "token_type_ids"]
    sample = model.tokenizer(["a short text", "and a somewhat longer second text"], padding=True,
                             return_tensors="pt")

    class Wrapped(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    plain = work / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Wrapped(hf), tuple(sample[n] for n in names), str(plain), input_names=names,
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]})
        fused = work / "model-fused.onnx"
        optimize_model(str(plain), model_type="bert", num_heads=config.num_attention_heads,
                       hidden_size=config.hidden_size, opt_level=1, use_gpu=False).save_model_to_file(str(fused))
        int8 = work / "model-int8.onnx"
        # From the plain graph: the quantizer cannot type the fused graph's contrib operators.
        quantize_dynamic(str(plain), str(int8), weight_type=QuantType.QInt8)
        int8_channel = work / "model-int8-per-channel.onnx"
        quantize_dynamic(str(plain), str(int8_channel), weight_type=QuantType.QInt8, per_channel=True)
    return {"fp32": plain, "fused fp32": fused, "int8": int8, "int8 per-channel": int8_channel}


def ort_variants(model, batch_size: int, threads: int, work: Path) -> tuple[list[Variant], str]:
    """ONNX Runtime variants, or none and why."""
    try:
        import onnx  # noqa: F401
        import onnxruntime as ort
    except ImportError as exc:
        return [], f"ONNX Runtime variants skipped: {exc}"
    try:
        paths = export_onnx(model, work)
    except Exception as exc:  # the export's failure is a result to report, not a crash of the benchmark
        return [], f"ONNX export failed: {type(exc).__name__}: {exc}"
    variants = [Variant(f"onnxruntime {label}", f"onnxruntime {ort.__version__}, batch {batch_size}, "
                                                f"{threads} threads, {path.name}",
                        OrtEncoder(model, path, batch_size, threads).encode)
                for label, path in paths.items()]
    return variants, f"onnxruntime {ort.__version__} available"


# --- measuring ----------------------------------------------------------------------------------------------------


def _run(variant: Variant, texts: list[str]) -> tuple[float, np.ndarray]:
    import torch

    saved = torch.get_num_threads()
    if variant.threads:
        torch.set_num_threads(variant.threads)
    try:
        started = time.perf_counter()
        vectors = variant.encode(texts)
        return time.perf_counter() - started, np.asarray(vectors, dtype=np.float32)
    finally:
        torch.set_num_threads(saved)


def measure(variants: Sequence[Variant], texts: list[str], reference: np.ndarray, tokens: int,
            rounds: int) -> list[OptionResult]:
    """Every variant once per round, the order rotated each round; the first variant is the default."""
    results = [OptionResult(v.name, v.setup, v.portable, texts=len(texts), tokens=tokens) for v in variants]
    for v in variants:  # warm-up: one-time allocations and kernel choices, untimed
        _run(v, texts[:8])
    for r in range(rounds):
        shift = r % len(variants)
        seconds: dict[int, float] = {}
        for i in list(range(shift, len(variants))) + list(range(shift)):
            elapsed, vectors = _run(variants[i], texts)
            seconds[i] = elapsed
            if r == 0:
                cos = np.sum(normalise_rows(vectors) * reference, axis=1)
                results[i].min_cosine, results[i].mean_cosine = float(cos.min()), float(cos.mean())
        for i, result in enumerate(results):
            result.seconds.append(seconds[i])
            result.ratios.append(seconds[0] / seconds[i])
    for result in results:
        result.default_best = results[0].best
    return results


def fastest_faithful(results: Sequence[OptionResult], portable_only: bool = True) -> OptionResult | None:
    """The fastest faithful option (only those that could be a default on any CPU, unless told otherwise)."""
    faithful = [r for r in results if r.faithful and (r.portable or not portable_only)]
    return max(faithful, key=lambda r: r.ratio) if faithful else None


def check_targets(results: Sequence[OptionResult], margin: float = DEFAULT_MARGIN) -> list[str]:
    """Missed: the default (first) is unfaithful, or a faithful portable option beats it by more than `margin`."""
    default = results[0]
    missed = []
    if not default.faithful:
        missed.append(f"the default is not faithful: min cosine {default.min_cosine:.4f} < {MIN_COSINE}")
    best = fastest_faithful(results)
    if best is not None and best is not default and best.ratio > 1.0 + margin:
        missed.append(f"{best.name!r} ({best.setup}) is faithful and runs {best.ratio:.2f}x the default: "
                      f"make it the default")
    return missed


def format_table(results: Sequence[OptionResult]) -> str:
    lines = ["| option | setup | texts/s | tokens/s | x default | x default, per round | cosine min | cosine mean "
             "| faithful | portable |", "|---|---|---:|---:|---:|---|---:|---:|---|---|"]
    for r in results:
        rounds = " ".join(f"{x:.2f}" for x in r.ratios)
        lines.append(f"| {r.name} | {r.setup} | {r.texts_per_second:.2f} | {r.tokens_per_second:,.0f} | "
                     f"{r.ratio:.3f} | {rounds} | {r.min_cosine:.5f} | {r.mean_cosine:.5f} | "
                     f"{'yes' if r.faithful else 'NO'} | {'yes' if r.portable else 'no'} |")
    return "\n".join(lines)


def load_texts(sample_dir: Path, n: int, seed: int) -> list[str]:
    """`n` seeded distinct English chunk texts of the whole sample, chunked as the pipeline chunks them."""
    segments, _ = fetch_stage(select_titles(sample_dir, None), "export", str(sample_dir))
    chunks, _ = chunk_stage(segments, TokenCounter(Embedder().model_name))
    return [c.text for c in english_sample(chunks, n, seed)]


def _ints(value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=SAMPLE)
    p.add_argument("--texts", type=int, default=192, help="seeded sample of distinct English chunks (default 192)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-sizes", type=_ints, default=[16, 32, 64, 128])
    p.add_argument("--threads", type=_ints, default=[1, 2])
    p.add_argument("--no-onnx", action="store_true", help="skip ONNX Runtime even when it is installed")
    p.add_argument("--only", type=lambda v: [n.strip() for n in v.split(",") if n.strip()],
                   help="measure only these options beside the default (names as in the table)")
    p.add_argument("--margin", type=float, default=DEFAULT_MARGIN)
    p.add_argument("--json", type=Path)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    texts = load_texts(args.data, args.texts, args.seed)
    embedder = Embedder()
    model = embedder.model
    tokens = sum(map(len, model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]))
    # The reference: the fp32 model's own encode, as sentence-transformers ships it.
    reference = normalise_rows(_bare(model, 32)(texts))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_embed_options.") as tmp:
        variants = torch_variants(embedder, args.batch_sizes, args.threads)
        note = "ONNX Runtime variants skipped (--no-onnx)"
        if not args.no_onnx:
            extra, note = ort_variants(model, embedder.batch_size, torch.get_num_threads(), Path(tmp))
            variants += extra
        if args.only:
            unknown = set(args.only) - {v.name for v in variants}
            if unknown:
                raise SystemExit(f"unknown options {sorted(unknown)}; known: {[v.name for v in variants]}")
            variants = [v for v in variants if v.name == "default" or v.name in args.only]
        results = measure(variants, texts, reference, tokens, args.rounds)
    load = (load_before, os.getloadavg()[0])
    print(f"\nBenchmark 4 — embedding options on {len(texts)} English chunks ({tokens / len(texts):.0f} tokens each "
          f"on average), {args.rounds} rounds, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"1-minute load average {load[0]:.1f} before and {load[1]:.1f} after; {note}\n")
    print(format_table(results))
    missed = check_targets(results, args.margin)
    best = fastest_faithful(results)
    if best is not None:
        print(f"\nfastest faithful option: {best.name} ({best.ratio:.3f}x the default)")
    anywhere = fastest_faithful(results, portable_only=False)
    if anywhere is not None and anywhere is not best:
        print(f"fastest faithful option on this CPU only: {anywhere.name} ({anywhere.ratio:.3f}x the default)")
    if args.json:
        from sefaria_ingest.atomic import atomic_write_bytes

        doc = {"cpus": os.cpu_count(), "load_average": load, "texts": len(texts), "tokens": tokens, "note": note,
               "targets_missed": missed,
               "options": [{**asdict(r), "texts_per_second": r.texts_per_second, "ratio": r.ratio,
                            "median_ratio": r.median_ratio}
                           for r in results]}
        atomic_write_bytes(args.json, json.dumps(doc, indent=2).encode("utf-8"))
    if missed:
        print("\nTARGETS MISSED:\n" + "\n".join(f"- {m}" for m in missed))
        return 1
    print("\nall targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
