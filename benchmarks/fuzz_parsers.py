"""Fuzz the parsers that take untrusted bytes: the safetensors reader, config.json (native and Hugging Face
mapping), the data formats (text/JSON/JSONL/chat, plain and gzip) and tokenizer files.

With atheris installed (pip install atheris): coverage-guided libFuzzer runs, one process per target,
each for --seconds, starting from valid seed files (tests/reliability/fuzz_targets.py). Without it: a
seeded byte-mutation loop over the same targets. A finding is any exception a target does not
document (see fuzz_targets.py); its input is written to --artifacts.

    python benchmarks/fuzz_parsers.py --seconds 300              # every target, 5 minutes each
    python benchmarks/fuzz_parsers.py --targets safetensors --seconds 60

Prints a table (target, engine, executions, seconds, findings) and writes JSON to
benchmarks/results/fuzz_parsers.json.
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGETS_DIR = os.path.join(ROOT, "tests", "reliability")
DICTIONARY = [b"{", b"}", b"[", b"]", b'"', b":", b",", b"null", b"true", b"-1", b"1e999", b"NaN",
              b"99999999999999999999", b"\x00", b"\xff\xfe", b"\x1f\x8b", b'"dtype"', b'"shape"', b'"data_offsets"',
              b'"F32"', b'"BF16"', b'"__metadata__"', b'"n_layer"', b'"vocab_size"', b'"model_type"', b'"gpt2"',
              b'"llama"', b'"rope_scaling"', b'"messages"', b'"role"', b'"content"', b'"kind"', b'"bpe"', b'"char"',
              b'"chars"', b'"special_tokens"', b'"tokenizer_file"', b"\n"]


def _child(target, seconds, artifacts):
    """Run one target under atheris in this process (never returns: libFuzzer exits)."""
    import atheris

    sys.path.insert(0, TARGETS_DIR)
    # coverage for the parsing modules only: instrumenting the whole package (autograd, kernels) costs seconds
    with atheris.instrument_imports(include=["goldbull_np.io", "goldbull_np.data", "goldbull_np._config_io",
                                             "goldbull_np.text.hf", "goldbull_np.text.config",
                                             "goldbull_np.nn.model_base"]):
        import fuzz_targets
        import goldbull_np.data  # noqa: F401
        import goldbull_np.io  # noqa: F401
        import goldbull_np.text  # noqa: F401
    fn = fuzz_targets.TARGETS[target]
    corpus = tempfile.mkdtemp(prefix=f"fuzz-{target}-")
    for i, s in enumerate(fuzz_targets.seeds(target)):
        with open(os.path.join(corpus, f"seed{i}"), "wb") as f:
            f.write(s)
    dict_path = os.path.join(corpus, "..", f"fuzz-{target}.dict")
    with open(dict_path, "w") as f:
        for tok in DICTIONARY:
            f.write('"' + "".join(f"\\x{b:02x}" for b in tok) + '"\n')
    os.makedirs(artifacts, exist_ok=True)
    atheris.Setup([sys.argv[0], f"-max_total_time={int(seconds)}", f"-artifact_prefix={artifacts}/{target}-",
                   f"-dict={dict_path}", "-max_len=4096", "-rss_limit_mb=4096", "-print_final_stats=1", corpus],
                  fn)
    atheris.Fuzz()


def run_atheris(target, seconds, artifacts):
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", target, "--seconds", str(seconds),
                        "--artifacts", artifacts], capture_output=True, text=True, timeout=seconds * 3 + 120)
    elapsed = time.perf_counter() - t0
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", p.stderr) or re.search(r"Done (\d+) runs", p.stderr)
    execs = int(m.group(1)) if m else None
    crashed = p.returncode != 0
    detail = ""
    if crashed:
        lines = p.stderr.splitlines()
        at = next((i for i, ln in enumerate(lines) if "Uncaught Python exception" in ln), None)
        exc = next((ln for ln in lines[at:] if re.match(r"^\w+(Error|Exception|Exit)\b", ln)), None) if at is not None \
            else None
        unit = next((ln.split("written to ")[-1] for ln in lines if "Test unit written to" in ln), "")
        detail = f"{exc or lines[-1] if lines else ''} (input: {unit})"
    return {"target": target, "engine": "atheris", "executions": execs, "seconds": round(elapsed, 1),
            "findings": 1 if crashed else 0, "detail": detail}


def run_mutation(target, seconds, artifacts, seed=0):
    sys.path.insert(0, TARGETS_DIR)
    import fuzz_targets

    fn, seeds = fuzz_targets.TARGETS[target], fuzz_targets.seeds(target)
    rng = random.Random(seed)
    t0, n, found = time.perf_counter(), 0, {}
    while time.perf_counter() - t0 < seconds:
        s = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            op = rng.random()
            if op < 0.35 and s:
                s[rng.randrange(len(s))] = rng.randrange(256)
            elif op < 0.55:
                s.insert(rng.randrange(len(s) + 1), rng.randrange(256))
            elif op < 0.75 and s:
                del s[rng.randrange(len(s)):rng.randrange(len(s)) + rng.randint(1, 8)]
            else:
                i = rng.randrange(len(s) + 1)
                s[i:i] = rng.choice(DICTIONARY)
        try:
            fn(bytes(s))
        except Exception as exc:  # noqa: BLE001 - a finding
            key = (type(exc).__name__, str(exc)[:120])
            if key not in found:
                found[key] = bytes(s)
                os.makedirs(artifacts, exist_ok=True)
                with open(os.path.join(artifacts, f"{target}-mutation-{len(found)}"), "wb") as f:
                    f.write(bytes(s))
        n += 1
    return {"target": target, "engine": "mutation", "executions": n, "seconds": round(time.perf_counter() - t0, 1),
            "findings": len(found), "detail": "; ".join(f"{k[0]}: {k[1]}" for k in found)[:500]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", nargs="+", default=["safetensors", "config", "data", "tokenizer"])
    ap.add_argument("--seconds", type=float, default=60.0, help="per target")
    ap.add_argument("--engine", choices=("auto", "atheris", "mutation"), default="auto")
    ap.add_argument("--artifacts", default=os.path.join(tempfile.gettempdir(), "goldbull-fuzz-artifacts"))
    ap.add_argument("--json", default=os.path.join(HERE, "results", "fuzz_parsers.json"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.seconds, args.artifacts)
        return 0
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401
            engine = "atheris"
        except ImportError:
            engine = "mutation"
    rows = [(run_atheris if engine == "atheris" else run_mutation)(t, args.seconds, args.artifacts)
            for t in args.targets]
    print(f"{'target':<12} {'engine':<9} {'executions':>11} {'seconds':>8} {'findings':>9}")
    for r in rows:
        print(f"{r['target']:<12} {r['engine']:<9} {r['executions'] or '?':>11} {r['seconds']:>8} {r['findings']:>9}"
              + (f"   {r['detail']}" if r["detail"] else ""))
    if args.json:
        os.makedirs(os.path.dirname(args.json), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "python": sys.version.split()[0], "time": time.strftime("%Y-%m-%d %H:%M:%S")},
                      f, indent=1)
    return 1 if any(r["findings"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
