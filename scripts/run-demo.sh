#!/usr/bin/env bash
# `make run`: the signaling server with demo data, and the echo bot that
# answers calls to `echo` (everyone's test call). Ctrl-C stops both.
set -euo pipefail
data="$1"
listen="$2"
bin=target/debug
"$bin/peal-server" --data "$data" demo-data
"$bin/peal-server" --data "$data" --listen "$listen" &
server=$!
trap 'kill $server $bot 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
bot=""
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/${listen%:*}/${listen##*:}") 2>/dev/null; then break; fi
  sleep 0.1
done
"$bin/peal" --server "http://$listen" --user echo --password peal --device echo-bot \
  echo-bot --answer-after 1000 >/dev/null &
bot=$!
scripts/demo-help.sh "$listen"
wait "$server"
