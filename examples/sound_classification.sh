#!/usr/bin/env bash
# Sound classification on a folder of labelled clips with YAMNet: from TF Hub, or rebuilt in Keras.
#
# Usage: examples/sound_classification.sh DATA_DIR OUT_DIR [BASE [WEIGHTS]]
#   DATA_DIR  one sub-folder of clips per class (dog/, siren/, ...). Long recordings instead? Cut them into
#             1 s clips first, each stretch of 5 clips named as one "speaker" so that validation clips come
#             from other parts of the recordings than training clips:
#               python examples/slice_recordings.py RECORDINGS DATA_DIR --max-clips 40
#             e.g. RECORDINGS=$AUDIO_TRANSFER_DATA/speech_commands_subset/_background_noise_ (6 recordings: dishes,
#             cat, exercise bike, pink noise, running tap, white noise -> 6 sound classes)
#   OUT_DIR   where the run folder and the exported model go
#   BASE      hub:<handle> of a hub preset (see `audio-transfer bases`; default
#             hub:https://tfhub.dev/google/yamnet/1), found in the tensorflow_hub cache ($TFHUB_CACHE_DIR) or
#             downloaded with the [hub] extra; or yamnet (the Keras YAMNet, which needs WEIGHTS)
#   WEIGHTS   for BASE=yamnet: Google's yamnet.h5, a YAMNet .tflite (e.g. Coral's int8 one) or an unpacked
#             TF Hub google/yamnet/1 folder
#
# Trains a classifier head on the frozen base's 1024-d patch embeddings, then exports it: int8 TFLite for
# the Keras YAMNet (builtin ops, front-end kept float), a SavedModel for a TF Hub base (TF Hub YAMNet
# holds ops TFLite builtins lack, and hub bases cannot be partly unfrozen). Runs on a hub base load with
# --no-safe-mode (their SavedModel graph runs when loaded).
source "$(dirname "$0")/_common.sh"
[[ $# -ge 2 ]] || usage
DATA="$1" OUT="$2" BASE="${3:-hub:https://tfhub.dev/google/yamnet/1}" WEIGHTS="${4:-}"
mkdir -p "$OUT"

WEIGHT_FLAGS=() SAFE_FLAGS=()
if [[ -n "$WEIGHTS" ]]; then
    WEIGHT_FLAGS=(--base-weights "$WEIGHTS")
fi
if [[ "$BASE" == hub:* ]]; then
    # A hub base's SavedModel graph runs when its model file loads, which Keras's safe mode refuses: we
    # trust the run we just trained.
    SAFE_FLAGS=(--no-safe-mode)
fi

step "Train a sound classifier on $BASE"
run train "$DATA" --task classify --base "$BASE" "${WEIGHT_FLAGS[@]}" --epochs "$EPOCHS" --out "$OUT/run"

if [[ "$BASE" == hub:* ]]; then
    step "Export a SavedModel (serving signature returns scores and labels)"
    run export "$OUT/run" --format saved_model --out "$OUT/saved_model" "${SAFE_FLAGS[@]}"
else
    step "Export int8 TFLite with a parity report"
    run export "$OUT/run" --format tflite --quantize int8 --out "$OUT/sounds_int8.tflite"
fi

step "Classify two clips"
mapfile -t CLIPS < <(find -L "$DATA" -mindepth 2 -name '*.wav' -not -path '*/_*' | sort | head -n 2)
run predict "$OUT/run" "${CLIPS[@]}" --top-k 3 "${SAFE_FLAGS[@]}"
