#!/usr/bin/env bash
# Speaker identification (closed set) with the ge2e_speaker base.
#
# Usage: examples/speaker_identification.sh DATA_DIR OUT_DIR [MIN_CLIPS]
#   DATA_DIR   one sub-folder of clips per speaker; or a Speech Commands-layout folder
#              (<word>/<speaker>_nohash_<n>.wav, e.g. $AUDIO_TRANSFER_DATA/speech_commands_subset), regrouped by
#              speaker into OUT_DIR/speakers with links
#   OUT_DIR    where the run folder goes
#   MIN_CLIPS  when regrouping: keep speakers with at least this many clips (default 10)
#
# Trains a speaker classifier (attentive statistics pooling on frozen ge2e_speaker partial embeddings;
# validation holds out a share of every speaker's clips), then names the speaker of two clips.
source "$(dirname "$0")/_common.sh"
[[ $# -ge 2 ]] || usage
DATA="$1" OUT="$2" MIN_CLIPS="${3:-10}"
mkdir -p "$OUT"

step "One folder per speaker"
SPEAKERS="$(speaker_folders "$DATA" "$OUT/speakers" "$MIN_CLIPS")"
run info "$SPEAKERS"

step "Train a speaker classifier on ge2e_speaker"
run train "$SPEAKERS" --task speaker-id --base ge2e_speaker --epochs "$EPOCHS" --out "$OUT/run"

step "Who speaks in these two clips?"
mapfile -t CLIPS < <(find -L "$SPEAKERS" -mindepth 2 -name '*.wav' | sort | head -n 2)
run predict "$OUT/run" "${CLIPS[@]}" --top-k 2
