"""Sweep every field of a real trainer_state.json through hostile values and resume from each: the only
errors allowed are ValueError / FileNotFoundError naming the file (anything else is a finding).

    python benchmarks/fuzz_trainer_state.py          # prints the findings and the count of cases tried

The values: None, "x", -1, [], {}, 1e300, 10**30. Optimizer state entries are swept for parameter 0 only
(the others are the same code path). Writes benchmarks/results/fuzz_trainer_state.json.
"""
import json
import os
import pathlib
import shutil
import sys
import tempfile
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "reliability"))

VALUES = (None, "x", -1, [], {}, 1e300, 10**30)


def _paths(d, pre=()):
    if isinstance(d, dict):
        for k, v in d.items():
            yield pre + (k,)
            yield from _paths(v, pre + (k,))


def main():
    from rel_helpers import cfg, datasets, tiny_model

    from goldbull_np.text import TextTrainer
    from goldbull_np.train import CheckpointManager
    warnings.simplefilter("ignore")
    base = pathlib.Path(tempfile.mkdtemp(prefix="goldbull-state-fuzz-"))
    tok, train, _ = datasets()
    TextTrainer(tiny_model(tok.vocab_size), cfg(output_dir=str(base / "run"), save_steps=2), tokenizer=tok).train(train)
    st0 = json.loads((CheckpointManager(base / "run").latest() / "trainer_state.json").read_text())
    fields = [p for p in _paths(st0) if p[0] != "config"
              and not (p[:2] == ("optimizer", "state") and len(p) > 2 and p[2] != "0")]
    findings, cases = {}, 0
    for p in fields:
        for val in VALUES:
            st = json.loads(json.dumps(st0))
            d = st
            for k in p[:-1]:
                d = d[k]
            d[p[-1]] = val
            run = base / "case"
            shutil.rmtree(run, ignore_errors=True)
            shutil.copytree(base / "run", run)
            (CheckpointManager(run).latest() / "trainer_state.json").write_text(json.dumps(st))
            cases += 1
            try:
                t = TextTrainer(tiny_model(tok.vocab_size), cfg(output_dir=str(run), max_steps=3), tokenizer=tok)
                t.train(train, resume_from=run)
            except (ValueError, FileNotFoundError):
                pass
            except Exception as exc:  # noqa: BLE001 - a finding
                findings.setdefault(f"{type(exc).__name__} at {'.'.join(map(str, p))}", f"{val!r}: {exc}"[:200])
    shutil.rmtree(base, ignore_errors=True)
    print(f"{cases} cases over {len(fields)} fields, {len(findings)} findings")
    for k, v in findings.items():
        print(f"  {k}  ({v})")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "fuzz_trainer_state.json"), "w") as f:
        json.dump({"cases": cases, "fields": len(fields), "findings": findings}, f, indent=1)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
