"""Language identification for the cleaning language filter, via `langdetect` (the optional
extra `langdetect`): a maintained port of Google's language-detection whose n-gram profiles for
55 languages ship inside the package, so nothing is downloaded at run time.

Detection is made deterministic by seeding the detector (langdetect samples n-grams at random).
"""
from __future__ import annotations

from .errors import require

_FACTORY = None  # one loaded set of profiles per process (loading takes ~1 s)


def _factory():
    global _FACTORY
    if _FACTORY is None:
        require("langdetect", "CleaningConfig.language_filter", "langdetect")
        from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

        factory = DetectorFactory()
        factory.load_profile(PROFILES_DIRECTORY)
        factory.seed = 0  # read by every Detector it creates: same text, same answer
        _FACTORY = factory
    return _FACTORY


def detect_language(text: str) -> tuple[str, float]:
    """Most probable language of `text`.

    Args:
        text: any text (a sentence or more gives reliable answers).
    Returns:
        (code, probability): an ISO 639-1 code such as "en" ("zh-cn"/"zh-tw" for Chinese),
        or ("unknown", 0.0) when the text has no letters to judge by.
    """
    from langdetect.lang_detect_exception import LangDetectException

    detector = _factory().create()
    detector.append(text)
    try:
        best = detector.get_probabilities()
    except LangDetectException:
        return "unknown", 0.0
    if not best:
        return "unknown", 0.0
    return best[0].lang, float(best[0].prob)


def supported_languages() -> list[str]:
    """The language codes the detector knows."""
    return list(_factory().get_lang_list())


class LanguageFilter:
    """Keep text whose detected language is one of `languages`.

    Args:
        languages: a code ("en") or several codes.
        min_probability: the detection must be at least this confident.
    """

    def __init__(self, languages: str | list[str] | tuple[str, ...], min_probability: float = 0.0):
        self.languages = {languages} if isinstance(languages, str) else set(languages)
        self.min_probability = min_probability
        known = set(supported_languages())
        unknown = self.languages - known
        if unknown:
            raise ValueError(f"unknown language code(s) {sorted(unknown)}; known: {', '.join(sorted(known))}")

    def __call__(self, text: str) -> bool:
        lang, prob = detect_language(text)
        return lang in self.languages and prob >= self.min_probability
