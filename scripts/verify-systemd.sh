#!/usr/bin/env bash
# Check the units in systemd/ with `systemd-analyze verify` (Debian/Ubuntu package: systemd).
# Installs nothing and works without systemd running as PID 1 (containers, CI).
#
# usage: scripts/verify-systemd.sh [units-dir]      (default: systemd/ next to this script)
# exit:  0 all units clean, 1 a unit has a problem, 2 systemd-analyze is not installed
#
# What it does, and why:
# - Units are checked from a temporary copy. `*.service.example` files are user units
#   (systemctl --user) and are checked as such, under their name without `.example`.
# - `verify` refuses a unit whose Exec*= binary is missing on this machine. podman lives on
#   the GPU hosts, not here, so in the copy such a binary is replaced by /bin/true (and
#   named in a note); everything else about the line is still parsed.
# - `verify` exits 0 on unknown keys and bad values (it logs "..., ignoring."), so any
#   diagnostic that names one of our units counts as a failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
units_dir=${1:-"$here/../systemd"}

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "verify-systemd: systemd-analyze not found; install the 'systemd' package (apt-get install systemd)" >&2
  exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/system" "$tmp/user" "$tmp/runtime"
chmod 0700 "$tmp/runtime"

shopt -s nullglob
system_units=()
user_units=()
for f in "$units_dir"/*.service "$units_dir"/*.timer "$units_dir"/*.socket "$units_dir"/*.path; do
  cp "$f" "$tmp/system/"
  system_units+=("$tmp/system/$(basename "$f")")
done
for f in "$units_dir"/*.example; do
  name=$(basename "$f" .example)
  cp "$f" "$tmp/user/$name"
  user_units+=("$tmp/user/$name")
done
if ((${#system_units[@]} + ${#user_units[@]} == 0)); then
  echo "verify-systemd: no units found in $units_dir" >&2
  exit 1
fi

# Point Exec*= lines whose binary is not installed here at /bin/true.
for unit in "${system_units[@]}" "${user_units[@]}"; do
  while IFS= read -r bin; do
    if [[ ! -x $bin ]]; then
      echo "verify-systemd: note: $(basename "$unit"): $bin is not installed here; checked with /bin/true in its place"
      sed -E -i "s#^(Exec[A-Za-z]*=[-@:+!]*)${bin}([[:space:]]|\$)#\1/bin/true\2#" "$unit"
    fi
  done < <(sed -nE 's#^Exec[A-Za-z]*=[-@:+!]*(/[^[:space:]]+).*#\1#p' "$unit" | sort -u)
done

out=$tmp/verify.log
rc=0
if ((${#system_units[@]} > 0)); then
  systemd-analyze verify "${system_units[@]}" >"$out" 2>&1 || rc=$?
fi
if ((${#user_units[@]} > 0)); then
  # --user needs a runtime dir even to parse; a throwaway one is enough.
  XDG_RUNTIME_DIR="$tmp/runtime" systemd-analyze --user verify "${user_units[@]}" >>"$out" 2>&1 || rc=$?
fi

# Lines about other units on the machine (a CI runner's own) are not ours to fix.
names=()
for unit in "${system_units[@]}" "${user_units[@]}"; do names+=("$(basename "$unit")"); done
pattern=$(printf '%s\n' "$tmp" "${names[@]}" | sed 's/[.[\*^$]/\\&/g' | paste -sd '|')
ours=$(grep -E "$pattern" "$out" || true)

if ((rc != 0)) || [[ -n $ours ]]; then
  echo "verify-systemd: FAILED (systemd-analyze exit $rc)" >&2
  sed "s#$tmp/[a-z]*/##g" "$out" >&2
  exit 1
fi
echo "verify-systemd: ok: ${names[*]}"
