"""eSpeak NG's shared library through ctypes (the library and data PyPI ``espeakng-loader`` ships)."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from audio_transfer.errors import ConfigError, DependencyError
from audio_transfer.synth.speech_synthesizer import SpeechSynthesizer

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "Install eSpeak NG's library with `pip install espeakng-loader`, or the espeak-ng program "
    "(`apt-get install espeak-ng`, `brew install espeak-ng`)."
)

# speak_lib.h constants.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of calling exit() when the data is missing
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PHONEMES = 0x100  # [[...]] in the text is phoneme mnemonics, as on espeak-ng's command line
_EE_OK = 0
# espeak_TextToPhonemes' phonememode: bits 8-23 hold the character written between phonemes ("_").
_PHONEME_SEPARATOR = ord("_") << 8
_EE_NOT_FOUND = 2
_RATE, _PITCH, _RANGE = 1, 3, 4  # espeak_PARAMETER

# The process's C library (its rand() is eSpeak's noise source) and the seed set before every utterance.
_C_LIBRARY = ctypes.CDLL(ctypes.util.find_library("msvcrt" if sys.platform == "win32" else "c"))
_RAND_SEED = 1

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

# eSpeak NG keeps its state in process globals and is not re-entrant: one synthesis at a time, process-wide.
_LOCK = threading.Lock()
# Private copies of the shared library, by original path (see EspeakLibrary).
_PRIVATE_COPIES: dict[Path, Path] = {}


class _EspeakVoice(ctypes.Structure):
    """speak_lib.h's ``espeak_VOICE``."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, NUL-terminated language) pairs, ended by a 0 byte
        ("identifier", ctypes.c_char_p),  # file path inside espeak-ng-data/voices or lang
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


class EspeakLibrary(SpeechSynthesizer):
    """eSpeak NG through its C library, in this process, at the library's rate (22,050 Hz).

    eSpeak NG carries state from one utterance to the next (its pitch-flutter phase is a static variable
    that nothing resets), so the same call would give slightly different samples depending on what was
    spoken before. Every :meth:`synthesize` therefore loads a fresh instance of the library (a private copy
    of the ``.so``, so that no other user of the same file keeps it loaded), initialises it, speaks and
    unloads it: the same arguments always give the same samples, at the cost of one library load per call
    (its time: ``benchmarks/RESULTS.md``). Calls
    are serialised by one process-wide lock.

    Args:
        library_path: ``libespeak-ng.so`` / ``.dylib`` / ``espeak-ng.dll``; ``None`` takes espeakng-loader's.
        data_path: the ``espeak-ng-data`` folder; ``None`` takes espeakng-loader's.

    Raises:
        DependencyError: espeakng-loader is not installed (and no paths were given), or the library or its
            data cannot be loaded.

    Example:
        >>> engine = EspeakLibrary()
        >>> samples = engine.synthesize("seven", voice="en-us+m3", rate_wpm=160)
        >>> samples.dtype, engine.sample_rate
        (dtype('int16'), 22050)
    """

    name = "espeak-library"

    def __init__(
        self, *, library_path: str | os.PathLike | None = None, data_path: str | os.PathLike | None = None
    ):
        if library_path is None or data_path is None:
            try:
                import espeakng_loader
            except ImportError:
                raise DependencyError(f"eSpeak NG's library is not available. {INSTALL_HINT}") from None
            library_path = library_path or espeakng_loader.get_library_path()
            data_path = data_path or espeakng_loader.get_data_path()
        self.library_path = Path(library_path)
        self.data_path = Path(data_path)
        if not self.library_path.is_file():
            raise DependencyError(
                f"eSpeak NG's library {os.fspath(self.library_path)!r} does not exist. {INSTALL_HINT}"
            )
        if not (self.data_path / "phontab").is_file():
            raise DependencyError(
                f"{os.fspath(self.data_path)!r} is not an espeak-ng-data folder (it has no phontab). "
                f"{INSTALL_HINT}"
            )
        with self._loaded() as (library, sample_rate):
            super().__init__(
                sample_rate=sample_rate,
                voice_files=_list_voices(library, None),
                variant_files=_list_voices(library, b"variant"),
            )

    def render(self, text: str, *, voice: str, rate_wpm: int, pitch: int, pitch_range: int) -> np.ndarray:
        chunks: list[np.ndarray] = []

        @_SYNTH_CALLBACK
        def collect(samples, num_samples, _events):
            if samples and num_samples > 0:
                chunks.append(np.ctypeslib.as_array(samples, shape=(num_samples,)).copy())
            return 0  # continue

        with self._loaded() as (library, _):
            library.espeak_SetSynthCallback(collect)
            status = library.espeak_SetVoiceByName(voice.encode("utf-8"))
            if status != _EE_OK:
                raise ConfigError(f"eSpeak NG cannot select voice {voice!r} (status {status}).")
            for parameter, value in ((_RATE, rate_wpm), (_PITCH, pitch), (_RANGE, pitch_range)):
                library.espeak_SetParameter(parameter, value, 0)
            # Breathy voices and the Klatt variants draw noise from eSpeak's own generator (1.52+) or the C
            # library's rand(), both seeded with the time of day: reseed them for reproducible samples.
            if hasattr(library, "espeak_ng_SetRandSeed"):
                library.espeak_ng_SetRandSeed(_RAND_SEED)
            _C_LIBRARY.srand(_RAND_SEED)
            encoded = text.encode("utf-8") + b"\0"
            status = library.espeak_Synth(
                encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _PHONEMES, None, None
            )
            if status != _EE_OK:
                raise DependencyError(f"eSpeak NG failed to speak {text!r} with {voice!r} (status {status}).")
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)

    def render_phonemes(self, texts: list[str], *, voice: str) -> list[str]:
        found = []
        with self._loaded() as (library, _):
            status = library.espeak_SetVoiceByName(voice.encode("utf-8"))
            if status != _EE_OK:
                raise ConfigError(f"eSpeak NG cannot select voice {voice!r} (status {status}).")
            for text in texts:
                # One call per clause: the pointer advances past what each call translated.
                remaining = ctypes.c_char_p(text.encode("utf-8"))
                clauses = []
                while remaining.value:
                    phonemes = library.espeak_TextToPhonemes(
                        ctypes.byref(remaining), _CHARS_UTF8, _PHONEME_SEPARATOR
                    )
                    clauses.append((phonemes or b"").decode("utf-8").strip())
                found.append(" ".join(clause for clause in clauses if clause))
        return found

    @contextlib.contextmanager
    def _loaded(self) -> Iterator[tuple[ctypes.CDLL, int]]:
        """A freshly loaded and initialised instance of the library, and its sample rate; unloaded after."""
        with _LOCK:
            try:
                library = ctypes.CDLL(os.fspath(_private_copy(self.library_path)))
            except OSError as error:
                raise DependencyError(
                    f"Cannot load eSpeak NG's library {os.fspath(self.library_path)!r}: {error}. "
                    f"{INSTALL_HINT}"
                ) from None
            try:
                _declare_functions(library)
                sample_rate = library.espeak_Initialize(
                    _AUDIO_OUTPUT_SYNCHRONOUS, 0, os.fsencode(self.data_path), _INITIALIZE_DONT_EXIT
                )
                if sample_rate <= 0:
                    raise DependencyError(
                        f"eSpeak NG could not initialise with data {os.fspath(self.data_path)!r} (status "
                        f"{sample_rate}). {INSTALL_HINT}"
                    )
                try:
                    yield library, sample_rate
                finally:
                    library.espeak_Terminate()
            finally:
                _unload(library)


def _declare_functions(library: ctypes.CDLL) -> None:
    library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    library.espeak_Initialize.restype = ctypes.c_int
    library.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
    library.espeak_SetSynthCallback.restype = None
    library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    library.espeak_SetVoiceByName.restype = ctypes.c_int
    library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    library.espeak_SetParameter.restype = ctypes.c_int
    library.espeak_Synth.argtypes = [
        ctypes.c_char_p,  # text
        ctypes.c_size_t,  # size in bytes, NUL included
        ctypes.c_uint,  # position
        ctypes.c_int,  # position type
        ctypes.c_uint,  # end position
        ctypes.c_uint,  # flags
        ctypes.c_void_p,  # unique identifier out
        ctypes.c_void_p,  # user data
    ]
    library.espeak_Synth.restype = ctypes.c_int
    library.espeak_ListVoices.argtypes = [ctypes.POINTER(_EspeakVoice)]
    library.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_EspeakVoice))
    if hasattr(library, "espeak_ng_SetRandSeed"):  # eSpeak NG 1.52 and later
        library.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        library.espeak_ng_SetRandSeed.restype = ctypes.c_int
    library.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
    library.espeak_TextToPhonemes.restype = ctypes.c_char_p
    library.espeak_Terminate.argtypes = []
    library.espeak_Terminate.restype = ctypes.c_int


def _list_voices(library: ctypes.CDLL, language: bytes | None) -> list[str]:
    """Identifiers (``"gmw/en-US"``, ``"!v/m3"``) of the voices of ``language``, or of all languages."""
    if language is None:
        voices = library.espeak_ListVoices(None)
    else:
        language_buffer = ctypes.create_string_buffer(language)
        spec = _EspeakVoice(languages=ctypes.cast(language_buffer, ctypes.c_void_p))
        voices = library.espeak_ListVoices(ctypes.byref(spec))
    identifiers = []
    index = 0
    while voices[index]:
        identifiers.append(voices[index].contents.identifier.decode("utf-8"))
        index += 1
    return identifiers


def _private_copy(library_path: Path) -> Path:
    """A copy of the library that only this module loads, so that unloading it really drops its state."""
    if library_path not in _PRIVATE_COPIES:
        folder = Path(tempfile.mkdtemp(prefix="audio_transfer_espeak_"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _PRIVATE_COPIES[library_path] = Path(shutil.copy2(library_path, folder / library_path.name))
    return _PRIVATE_COPIES[library_path]


def _unload(library: ctypes.CDLL) -> None:
    import _ctypes

    if sys.platform == "win32":
        _ctypes.FreeLibrary(library._handle)
    else:
        _ctypes.dlclose(library._handle)
