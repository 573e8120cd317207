# Shared by the example scripts (sourced, not run).
#
# AUDIO_TRANSFER_CLI: how to call the command line, default `audio-transfer`; e.g.
#   AUDIO_TRANSFER_CLI="python -m audio_transfer" to run a source checkout without installing it.
# EPOCHS: head epochs of every `train` (default 30); tests use 2.
set -euo pipefail

read -r -a CLI <<< "${AUDIO_TRANSFER_CLI:-audio-transfer}"
EPOCHS="${EPOCHS:-30}"

# Print a step, then the command, then run it.
step() {
    printf '\n== %s\n' "$1" >&2
}

run() {
    printf '$ %s\n' "${CLI[*]} $*" >&2
    "${CLI[@]}" "$@"
}

usage() {
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0" >&2
    exit 2
}

# Link every clip of a Speech Commands-layout folder into OUT/<speaker>/ (speaker = file name before
# "_nohash_"), keeping speakers with at least MIN_CLIPS clips: a folder per speaker for the speaker tasks.
speakers_from_speech_commands() {
    local data="$1" out="$2" min_clips="$3" path name speaker
    mkdir -p "$out"
    for path in "$data"/*/*_nohash_*; do
        [[ -f "$path" && "$(basename "$(dirname "$path")")" != _* ]] || continue
        name="$(basename "$path")"
        speaker="${name%%_nohash_*}"
        mkdir -p "$out/$speaker"
        ln -sf "$(cd "$(dirname "$path")" && pwd)/$name" "$out/$speaker/$(basename "$(dirname "$path")")_$name"
    done
    for speaker in "$out"/*/; do
        if (( $(find "$speaker" -maxdepth 1 -name '*.wav' | wc -l) < min_clips )); then
            rm -r "$speaker"
        fi
    done
    printf '%s speakers with at least %s clips in %s\n' "$(find "$out" -mindepth 1 -maxdepth 1 -type d | wc -l)" \
        "$min_clips" "$out" >&2
}

# The folder per speaker a speaker task needs: DATA itself, or regrouped when it is Speech Commands-layout.
speaker_folders() {
    local data="$1" out="$2" min_clips="$3"
    if compgen -G "$data/*/*_nohash_*" > /dev/null; then
        speakers_from_speech_commands "$data" "$out" "$min_clips"
        printf '%s\n' "$out"
    else
        printf '%s\n' "$data"
    fi
}
