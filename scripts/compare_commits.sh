#!/bin/bash
# The command line's render speed at an earlier commit against the working tree, in one run:
# the fast engine at 640x360 (48 frames of the shared bunny clip) and a short Gatys render at
# 128 px, each timed by hyperfine (median and spread; its JSON beside the tables).
#
#     scripts/compare_commits.sh 13ca859 [RUNS]        # needs hyperfine (apt install hyperfine)
set -euo pipefail
rev=${1:?give the earlier commit}
runs=${2:-5}
repo=$(cd "$(dirname "$0")/.." && pwd)
media=${MEDIA:-$repo/../shared/media}
py=${PYTHON:-$repo/.venv/bin/python}
work=$(mktemp -d)
trap 'git -C "$repo" worktree remove --force "$work/before" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git -C "$repo" worktree add -q "$work/before" "$rev"
cd "$work"  # (not the repository: its folder would come first on the import path)
clip="$media/video/bunny_640x360_24fps_aac.mp4"
style="$media/style/starry_night.jpg"
fast="-m videostyle render $clip --style $style --method fast --size 640 --max-frames 48 -y -q"
gatys="-m videostyle render $clip --style $style --size 128 --max-frames 6 --iterations 40 --iterations-later 10 --settle 0 -y -q --restart"
for name in fast gatys; do
  args=${!name}
  hyperfine --warmup 1 --runs "$runs" --export-json "$name.json" --export-markdown "$name.md" \
    -n "before ($rev)" "PYTHONPATH=$work/before $py $args -o $work/b_$name.mp4" \
    -n "after (working tree)" "PYTHONPATH=$repo $py $args -o $work/a_$name.mp4"
  "$py" -c "import json, sys; r = json.load(open(sys.argv[1]))['results']
print('| $name | ' + ' | '.join(f\"{x['median']:.2f}\" for x in r) + f\" | {r[1]['median'] / r[0]['median']:.3f} |\")" "$name.json"
done
