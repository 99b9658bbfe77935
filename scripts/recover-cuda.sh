#!/usr/bin/env bash
# Recover a GPU whose CUDA context is poisoned ("CUDA error: unspecified launch failure",
# Xid 13/31/43): stop the model server, reload nvidia_uvm, start it again, and wait until
# its /v1/models answers. Runs on the GPU host; the router's watchdog calls it over SSH as
# recovery.cuda, and runbooks/recover-cuda.md runs it by hand.
#
# usage: recover-cuda.sh <unit> <probe-url> [timeout_s]
#   unit       systemd unit of the model server, e.g. vllm-qwen-vl
#   probe-url  e.g. http://127.0.0.1:8000/v1/models
#   timeout_s  how long to wait for the probe after the start (default 300)
#
# exit codes:
#   0 recovered   2 usage   3 stop failed   4 module reload failed
#   5 start failed   6 the probe never answered 200 in time
#
# environment:
#   RECOVER_CUDA_SYSTEMCTL  systemctl command (default "systemctl --user"; e.g. "sudo systemctl")
#   RECOVER_CUDA_MODPROBE   module reload command, run with bash -c
#                           (default "sudo -n modprobe -r nvidia_uvm && sudo -n modprobe nvidia_uvm")
#   RECOVER_CUDA_POLL_S     seconds between probes (default 2)
set -euo pipefail

usage() {
  echo "usage: $(basename "$0") <unit> <probe-url> [timeout_s]" >&2
  exit 2
}

[[ $# -ge 2 && $# -le 3 ]] || usage
unit=$1
url=$2
timeout_s=${3:-300}
[[ -n $unit && -n $url ]] || usage
[[ $timeout_s =~ ^[0-9]+$ && $timeout_s -gt 0 ]] || usage
poll_s=${RECOVER_CUDA_POLL_S:-2}

read -r -a systemctl <<<"${RECOVER_CUDA_SYSTEMCTL:-systemctl --user}"
# Over a non-interactive SSH session the user manager's bus is not always in the
# environment; without it `systemctl --user` fails with "Failed to connect to bus".
if [[ -z ${RECOVER_CUDA_SYSTEMCTL:-} && -z ${XDG_RUNTIME_DIR:-} ]]; then
  export XDG_RUNTIME_DIR="/run/user/$(id -u)"
fi
modprobe_cmd=${RECOVER_CUDA_MODPROBE:-"sudo -n modprobe -r nvidia_uvm && sudo -n modprobe nvidia_uvm"}

step() { echo "recover-cuda: $*"; }
fail() {
  echo "recover-cuda: FAILED: $2" >&2
  exit "$1"
}

step "1/4 stopping $unit (${systemctl[*]} stop $unit)"
"${systemctl[@]}" stop "$unit" || fail 3 "could not stop $unit; nothing else was touched"

step "2/4 reloading nvidia_uvm ($modprobe_cmd)"
if ! bash -c "$modprobe_cmd"; then
  # Do not leave the route stopped: a model server on a sick GPU is no worse than none.
  step "module reload failed; starting $unit again anyway"
  "${systemctl[@]}" start "$unit" || true
  fail 4 "could not reload nvidia_uvm (is a process still holding /dev/nvidia-uvm? see: sudo lsof /dev/nvidia-uvm)"
fi

step "3/4 starting $unit"
"${systemctl[@]}" start "$unit" || fail 5 "could not start $unit (see: ${systemctl[*]} status $unit; journalctl --user -u $unit)"

step "4/4 waiting up to ${timeout_s}s for $url to answer 200"
deadline=$((SECONDS + timeout_s))
last=none
while :; do
  last=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url" || true)
  if [[ $last == 200 ]]; then
    step "recovered: $url answered 200 after $((SECONDS - deadline + timeout_s))s"
    exit 0
  fi
  ((SECONDS < deadline)) || break
  sleep "$poll_s"
done
[[ $last == 000 || -z $last ]] && last="no answer"
fail 6 "$url did not answer 200 within ${timeout_s}s (last status: $last)"
