#!/usr/bin/env bash
# Keyword spotting on a Speech Commands-layout folder, exported to int8 TFLite.
#
# Usage: examples/keyword_spotting.sh DATA_DIR OUT_DIR [KEYWORDS [TEST_DIR]]
#   DATA_DIR  one sub-folder of clips per word (<speaker>_nohash_<n>.wav), optionally _background_noise_/,
#             e.g. $AUDIO_TRANSFER_DATA/speech_commands_subset
#   OUT_DIR   where the run folder and the TFLite file go
#   KEYWORDS  comma-separated words to spot (default yes,no,up,down,left,right,on,off,stop,go); the other
#             words become _unknown_, excerpts of _background_noise_ become _silence_
#   TEST_DIR  a folder of other speakers in the same layout to evaluate on (default: the validation
#             speakers held out of DATA_DIR, reported by train)
#
# Trains a keyword spotter on the frozen speech_embedding base (validation on unseen speakers), evaluates
# it, exports int8 TFLite with its parity report, and classifies two clips with it.
source "$(dirname "$0")/_common.sh"
[[ $# -ge 2 ]] || usage
DATA="$1" OUT="$2" KEYWORDS="${3:-yes,no,up,down,left,right,on,off,stop,go}" TEST="${4:-}"
mkdir -p "$OUT"

step "Settings beyond the flags go in a YAML file: 10% _silence_ clips cut from the background noise"
printf 'silence_fraction: 0.1\nunknown_fraction: 0.1\n' > "$OUT/kws.yaml"
cat "$OUT/kws.yaml" >&2

step "Train a keyword spotter for $KEYWORDS (held-out speakers measure it)"
run train "$DATA" --task kws --keywords "$KEYWORDS" --config "$OUT/kws.yaml" --epochs "$EPOCHS" --out "$OUT/run"

if [[ -n "$TEST" ]]; then
    step "Evaluate on $TEST (other words -> _unknown_, as in training)"
    run evaluate "$OUT/run" --data "$TEST" --out "$OUT/test"
fi

step "Export int8 TFLite (calibrated on training clips; the front-end stays float32) with a parity report"
run export "$OUT/run" --format tflite --quantize int8 --out "$OUT/kws_int8.tflite"

step "Classify two clips of the first keyword with the trained model"
FIRST="${KEYWORDS%%,*}"
mapfile -t CLIPS < <(find "$DATA/$FIRST" -name '*.wav' | sort | head -n 2)
run predict "$OUT/run" "${CLIPS[@]}" --top-k 3
