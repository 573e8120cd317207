#!/usr/bin/env bash
# Keywords nobody has recorded yet: train on eSpeak NG speech only, test on real recordings.
#
# Usage: examples/synthetic_keywords.sh REAL_DIR OUT_DIR [WORDS]
#   REAL_DIR  real recordings, one sub-folder per word (e.g. $AUDIO_TRANSFER_DATA/speech_commands_subset); only
#             the WORDS folders are used, and only for testing
#   OUT_DIR   where the synthetic data, the run and the test report go
#   WORDS     comma-separated words (default: the digits zero,...,nine)
#
# Environment: PER_WORD synthesized clips per word (default 200), EPOCHS (default 30).
source "$(dirname "$0")/_common.sh"
[[ $# -ge 2 ]] || usage
REAL="$1" OUT="$2" WORDS="${3:-zero,one,two,three,four,five,six,seven,eight,nine}"
PER_WORD="${PER_WORD:-200}"
mkdir -p "$OUT"

step "Synthesize $PER_WORD clips of each word with eSpeak NG (one voice per clip index)"
run synth --words "$WORDS" --per-word "$PER_WORD" --out "$OUT/synth" --overwrite

step "Train a keyword spotter on the synthetic clips only (validation: unseen synthetic voices)"
run train "$OUT/synth" --task kws --epochs "$EPOCHS" --out "$OUT/run"

step "Test on the real recordings of the same words"
rm -rf "$OUT/real"
mkdir -p "$OUT/real"
IFS=, read -r -a WORD_LIST <<< "$WORDS"
for word in "${WORD_LIST[@]}"; do
    [[ -d "$REAL/$word" ]] || { echo "$REAL has no folder $word" >&2; exit 1; }
    ln -s "$(cd "$REAL/$word" && pwd)" "$OUT/real/$word"
done
run evaluate "$OUT/run" --data "$OUT/real" --out "$OUT/real_test"
