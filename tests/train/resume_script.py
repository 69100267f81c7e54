"""Run by test_sigkill_resume.py in a subprocess: a tiny TextTrainer run that can SIGKILL itself.

    python resume_script.py OUT_DIR [--resume] [--kill-at-forward N] [--kill-in-save STEP]

--kill-at-forward N: SIGKILL inside the N-th training forward (counting from the start of this process),
    i.e. in the middle of a gradient-accumulation step when N is not a multiple of the accumulation.
--kill-in-save STEP: SIGKILL while checkpoint STEP is being written (after its temporary directory is
    complete, just before it is renamed into place).
"""
import argparse
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import goldbull_np.train.checkpoint as ckmod  # noqa: E402
from goldbull_np.text import TextTrainer, TextTrainingConfig  # noqa: E402
from train_helpers import CORPUS, datasets, tiny_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--kill-at-forward", type=int)
    ap.add_argument("--kill-in-save", type=int)
    a = ap.parse_args()
    tok, train, val = datasets(text=CORPUS[:700])  # 33 sequences: 11 micro-batches per epoch, 3.3 epochs
    model = tiny_model(tok.vocab_size, dropout=0.1)
    cfg = TextTrainingConfig(learning_rate=5e-3, batch_size=3, gradient_accumulation_steps=3, max_steps=12,
                             warmup_steps=3, lr_scheduler="cosine", max_grad_norm=0.5, weight_decay=0.1,
                             save_steps=3, eval_steps=4, eval_iters=2, logging_steps=1, output_dir=a.out,
                             max_checkpoints=2, progress_bar=False, seed=7)
    if a.kill_at_forward:
        calls = [0]
        forward = model.forward

        def killing_forward(*args, **kw):
            if model.training:
                calls[0] += 1
                if calls[0] == a.kill_at_forward:
                    os.kill(os.getpid(), signal.SIGKILL)
            return forward(*args, **kw)

        model.forward = killing_forward
    if a.kill_in_save:
        rename = os.rename

        def killing_rename(src, dst):
            if os.path.basename(str(dst)) == f"checkpoint-{a.kill_in_save:08d}":
                os.kill(os.getpid(), signal.SIGKILL)
            return rename(src, dst)

        ckmod.os.rename = killing_rename
    trainer = TextTrainer(model, cfg, tokenizer=tok)
    state = trainer.train(train, val, resume_from=a.out if a.resume else None)
    print("final step", state.step)


if __name__ == "__main__":
    main()
