#!/usr/bin/env bash
# Speaker verification with the bare ge2e_speaker base: EER over all clip pairs, then enroll and verify.
#
# Usage: examples/speaker_verification.sh DATA_DIR OUT_DIR [MIN_CLIPS]
#   DATA_DIR   one sub-folder of clips per speaker; or a Speech Commands-layout folder (regrouped by speaker
#              into OUT_DIR/speakers with links, e.g. $AUDIO_TRANSFER_DATA/speech_commands_subset)
#   OUT_DIR    where the enrollments and reports go
#   MIN_CLIPS  when regrouping: keep speakers with at least this many clips (default 10)
#
# No training: ge2e_speaker's utterance embeddings already separate voices. Scores every same- and
# different-speaker pair (EER, minDCF, DET curve), enrolls the first speaker from half of their clips, and
# verifies one of their other clips and one clip of another speaker against the enrollment.
source "$(dirname "$0")/_common.sh"
[[ $# -ge 2 ]] || usage
DATA="$1" OUT="$2" MIN_CLIPS="${3:-10}"
mkdir -p "$OUT"

step "One folder per speaker"
SPEAKERS="$(speaker_folders "$DATA" "$OUT/speakers" "$MIN_CLIPS")"
mapfile -t NAMES < <(for dir in "$SPEAKERS"/*/; do basename "$dir"; done)
(( ${#NAMES[@]} >= 2 )) || { echo "need at least two speakers in $SPEAKERS" >&2; exit 1; }

step "Equal error rate of the bare base over every pair of clips"
run evaluate ge2e_speaker --task speaker-verification --data "$SPEAKERS" --out "$OUT/verification"

FIRST="${NAMES[0]}" OTHER="${NAMES[1]}"
mapfile -t OWN < <(find -L "$SPEAKERS/$FIRST" -name '*.wav' | sort)
HALF=$(( (${#OWN[@]} + 1) / 2 ))
(( ${#OWN[@]} >= 2 )) || { echo "$FIRST needs at least two clips" >&2; exit 1; }

step "Enroll $FIRST from ${HALF} of their ${#OWN[@]} clips"
rm -f "$OUT/enrollments.json"
run enroll ge2e_speaker --enrollments "$OUT/enrollments.json" --name "$FIRST" "${OWN[@]:0:HALF}"

step "Verify another clip of $FIRST and a clip of $OTHER against $FIRST, at the EER threshold measured above"
IMPOSTOR="$(find -L "$SPEAKERS/$OTHER" -name '*.wav' | sort | head -n 1)"
# verify exits 1 when it rejects a clip, as it should reject the impostor's.
run verify ge2e_speaker --enrollments "$OUT/enrollments.json" --threshold-from "$OUT/verification" \
    --name "$FIRST" "${OWN[HALF]}" "$IMPOSTOR" || (( $? == 1 ))
