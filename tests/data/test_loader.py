import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from goldbull_np.data import DataLoader, PadCollator, pad_collate


class Toy:
    """Items of varying length: item i holds i % 5 + 1 copies of i."""

    pad_token_id = 99

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        x = np.full(i % 5 + 1, i, dtype=np.int64)
        return {"input_ids": x, "labels": x + 1, "attention_mask": np.ones_like(x)}


def ids(batches):
    return [b["input_ids"][:, 0].tolist() for b in batches]


def test_builder_and_keyword_forms_agree():
    a = DataLoader(Toy(20)).batch_size(8).shuffle(True).drop_last(True)
    k = DataLoader(Toy(20), batch_size=8, shuffle=True, drop_last=True)
    assert isinstance(a, DataLoader) and a.batch_size == 8 and a.shuffle and a.drop_last
    assert ids(a) == ids(k)
    assert repr(a.shuffle) == "True" and int(a.batch_size) == 8
    with pytest.raises(ValueError):
        DataLoader(Toy(3)).batch_size(0)
    with pytest.raises(TypeError):
        DataLoader(Toy(3), shuffle="yes")


def test_batches_are_padded_dicts_of_int64():
    batch = next(iter(DataLoader(Toy(10), batch_size=3)))
    assert set(batch) == {"input_ids", "labels", "attention_mask"}
    assert all(v.dtype == np.int64 and v.shape == (3, 3) for v in batch.values())
    assert batch["input_ids"].tolist() == [[0, 99, 99], [1, 1, 99], [2, 2, 2]]
    assert batch["labels"].tolist() == [[1, -100, -100], [2, 2, -100], [3, 3, 3]]
    assert batch["attention_mask"].tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]


def test_pad_collate_options():
    items = [Toy(5)[i] for i in range(3)]
    assert pad_collate(items, 0, pad_to=6)["input_ids"].shape == (3, 6)
    with pytest.raises(ValueError, match="does not fit"):
        pad_collate(items, 0, pad_to=2)
    assert PadCollator(7)(items[:2])["input_ids"].tolist() == [[0, 7], [1, 1]]
    fixed = [{"input_ids": np.arange(4), "labels": np.arange(4)}] * 2  # equal lengths: stacked, no mask added
    assert set(pad_collate(fixed)) == {"input_ids", "labels"}


def test_len_and_drop_last():
    assert len(DataLoader(Toy(10), batch_size=3)) == 4 == len(list(DataLoader(Toy(10), batch_size=3)))
    assert len(DataLoader(Toy(10), batch_size=3, drop_last=True)) == 3
    got = ids(DataLoader(Toy(10), batch_size=3, drop_last=True))
    assert sum(len(b) for b in got) == 9 and all(len(b) == 3 for b in got)
    assert sorted(sum(ids(DataLoader(Toy(10), batch_size=3)), [])) == list(range(10))


def test_order_is_a_function_of_seed_and_epoch():
    a = DataLoader(Toy(50), batch_size=50, shuffle=True, seed=3)
    e0, e1 = ids(a), ids(a)  # a full iteration moves to the next epoch
    assert a.epoch == 2 and e0 != e1 and sorted(e0[0]) == sorted(e1[0]) == list(range(50))
    b = DataLoader(Toy(50), batch_size=50, shuffle=True, seed=3)
    b.set_epoch(1)
    assert ids(b) == e1
    assert ids(DataLoader(Toy(50), batch_size=50, shuffle=True, seed=4)) != e0
    assert ids(DataLoader(Toy(50), batch_size=50)) == [list(range(50))]


def test_loader_determinism_across_processes():
    script = textwrap.dedent("""
        import json, numpy as np
        from goldbull_np.data import DataLoader
        class Toy:
            def __len__(self): return 37
            def __getitem__(self, i): return {"input_ids": np.array([i]), "labels": np.array([i])}
        l = DataLoader(Toy(), batch_size=4, shuffle=True, seed=11)
        l.set_epoch(5)
        print(json.dumps([b["input_ids"][:, 0].tolist() for b in l]))
    """)
    runs = []
    for hashseed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONHASHSEED": hashseed, "PYTHONPATH": os.getcwd()})
        assert out.returncode == 0, out.stderr
        runs.append(json.loads(out.stdout))
    local = DataLoader(Toy(37), batch_size=4, shuffle=True, seed=11)
    local.set_epoch(5)
    assert runs[0] == runs[1] == [b["input_ids"][:, 0].tolist() for b in local]


@pytest.mark.parametrize("prefetch", [0, 2])
def test_resume_mid_epoch_gives_the_same_remaining_batches(prefetch):
    full = DataLoader(Toy(23), batch_size=4, shuffle=True, seed=7, prefetch=prefetch)
    full.set_epoch(2)
    expected = ids(full)

    run = DataLoader(Toy(23), batch_size=4, shuffle=True, seed=7, prefetch=prefetch)
    run.set_epoch(2)
    seen = []
    for k, batch in enumerate(run):
        seen.append(batch["input_ids"][:, 0].tolist())
        if k == 2:
            state = json.loads(json.dumps(run.state_dict()))  # what trainer_state.json would hold
            break
    assert state["epoch"] == 2 and state["position"] == 12 and state["seed"] == 7

    resumed = DataLoader(Toy(23), batch_size=4, shuffle=True, seed=0, prefetch=prefetch)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # a trainer's set_epoch for the current epoch keeps the position
    rest = ids(resumed)
    assert seen + rest == expected
    assert resumed.epoch == 3 and resumed.position == 0  # finished epoch 2


def test_state_at_end_of_epoch_resumes_into_next_epoch():
    run = DataLoader(Toy(8), batch_size=4, shuffle=True)
    it = iter(run)
    next(it), next(it)
    state = run.state_dict()  # taken inside the loop body after the last batch
    assert (state["epoch"], state["position"]) == (0, 8)
    resumed = DataLoader(Toy(8), batch_size=4, shuffle=True)
    resumed.load_state_dict(state)
    assert ids(resumed) == []  # epoch 0 is done
    assert ids(resumed) == _epoch(1)


def _epoch(e):
    l = DataLoader(Toy(8), batch_size=4, shuffle=True)
    l.set_epoch(e)
    return ids(l)


def test_set_epoch_resets_position_only_when_epoch_changes():
    l = DataLoader(Toy(10), batch_size=2)
    it = iter(l)
    next(it)
    it.close()
    assert l.position == 2
    l.set_epoch(0)
    assert l.position == 2
    l.set_epoch(1)
    assert (l.epoch, l.position) == (1, 0)


def test_load_state_dict_rejects_mismatch():
    state = DataLoader(Toy(10), shuffle=True).state_dict()
    with pytest.raises(ValueError, match="saved for 10 samples"):
        DataLoader(Toy(11), shuffle=True).load_state_dict(state)
    with pytest.raises(ValueError, match="shuffle=True"):
        DataLoader(Toy(10), shuffle=False).load_state_dict(state)


def test_prefetch_matches_and_propagates_errors():
    assert ids(DataLoader(Toy(30), batch_size=4, shuffle=True, prefetch=3)) == ids(
        DataLoader(Toy(30), batch_size=4, shuffle=True))

    class Broken(Toy):
        def __getitem__(self, i):
            if i == 9:
                raise KeyError("broken item")
            return super().__getitem__(i)

    with pytest.raises(KeyError, match="broken item"):
        list(DataLoader(Broken(20), batch_size=4, prefetch=2))


def test_prefetch_thread_stops_when_iteration_is_abandoned():
    import threading

    l = DataLoader(Toy(100), batch_size=1, prefetch=2)
    it = iter(l)
    next(it)
    it.close()
    assert not any(t.name == "goldbull-data-prefetch" for t in threading.enumerate())
    assert l.position == 1


def test_with_text_dataset_end_to_end(write):
    from goldbull_np.data import PreprocessConfig, TextDataset

    p = write("t.txt", "".join(f"line number {i} of the corpus\n" for i in range(20)))
    ds = TextDataset.from_file(p, PreprocessConfig(max_sequence_length=16))
    loader = DataLoader(ds).batch_size(4).shuffle(True).drop_last(True)
    batches = list(loader)
    assert len(batches) == len(ds) // 4
    for batch in batches:
        x, y, m = batch["input_ids"], batch["labels"], batch["attention_mask"]
        assert x.shape == y.shape == m.shape and x.shape[1] <= 16
        assert (y[m == 0] == -100).all() and (x[m == 0] == ds.pad_token_id).all()


def test_empty_dataset_or_no_full_batch_errors_before_training():
    from goldbull_np.data import EmptyDatasetError

    with pytest.raises(EmptyDatasetError, match="no training examples found"):
        DataLoader(Toy(0))
    loader = DataLoader(Toy(3)).batch_size(4).drop_last(True)
    with pytest.raises(EmptyDatasetError, match="3 samples make no batch of 4"):
        next(iter(loader))
