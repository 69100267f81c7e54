"""goldbull_np.data: files -> examples -> token ids -> datasets -> batches of NumPy arrays.

    formats.py        text / JSON / JSONL readers (streaming, gzip by magic bytes), example types
    reader.py         bounded-memory line and text streams, UTF-8 checking, path/glob expansion
    cleaning.py       CleaningConfig, Preprocessor.process_file (html.parser, whitespace, lengths,
                      duplicates, language via language.py)
    preprocess.py     PreprocessConfig, DatasetStats
    tokenizers.py     ByteTokenizer, CharTokenizer, load_tokenizer;  bpe.py: BPETokenizer
    templates.py      text / prompt+completion / chat encodings with loss masks (-100)
    datasets.py       TextDataset (no packing across example boundaries)
    token_dataset.py  TokenDataset: memory-mapped .bin of uint16/uint32 ids, with prepare()
    collate.py        right-padding collate;  loader.py: DataLoader (seeded, epoch-aware, resumable)

Batches are dicts of int64 arrays: input_ids (B, T), labels (B, T) already shifted with -100 for
no loss, attention_mask (B, T) when examples are padded. Nothing here imports the autograd Tensor;
`tokenizers` and `langdetect` are imported only when used.
"""
from .bpe import BPETokenizer
from .cleaning import CleaningConfig, CleaningResult, Preprocessor, normalize_whitespace, strip_html
from .collate import PadCollator, pad_collate
from .datasets import TextDataset
from .errors import (
    DataEncodingError,
    DataError,
    DataFormatError,
    DataWarning,
    EmptyDatasetError,
    MalformedJSONError,
    MissingDependencyError,
    SchemaError,
    UnknownRoleError,
)
from .formats import Conversation, ExampleReader, Message, PromptExample, TextExample, detect_format
from .language import LanguageFilter, detect_language
from .loader import DataLoader
from .preprocess import DatasetStats, PreprocessConfig
from .templates import IGNORE_INDEX, encode_chat, encode_example, encode_prompt_completion, encode_text
from .token_dataset import TokenDataset
from .tokenizers import SPECIAL_TOKENS, ByteTokenizer, CharTokenizer, Tokenizer, load_tokenizer

__all__ = [
    "BPETokenizer", "ByteTokenizer", "CharTokenizer", "Tokenizer", "load_tokenizer", "SPECIAL_TOKENS",
    "CleaningConfig", "CleaningResult", "Preprocessor", "strip_html", "normalize_whitespace",
    "LanguageFilter", "detect_language",
    "PreprocessConfig", "DatasetStats", "TextDataset", "TokenDataset",
    "DataLoader", "PadCollator", "pad_collate",
    "IGNORE_INDEX", "encode_text", "encode_prompt_completion", "encode_chat", "encode_example",
    "ExampleReader", "detect_format", "TextExample", "PromptExample", "Conversation", "Message",
    "DataError", "DataFormatError", "MalformedJSONError", "SchemaError", "UnknownRoleError",
    "DataEncodingError", "EmptyDatasetError", "MissingDependencyError", "DataWarning",
]
