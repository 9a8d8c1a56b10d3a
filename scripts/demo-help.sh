#!/usr/bin/env bash
# Printed by `make run`: how to ring the demo server from two terminals.
listen="$1"
cat <<MSG

Peal signaling server with demo data (users alice, bob, carol; password "peal"; group "friends").
Ring it from two more terminals:

  terminal 2 (bob answers, hangs up after 5 s):
    target/debug/peal --server http://$listen --user bob --password peal answer --accept --hangup-after 5000

  terminal 3 (alice calls bob):
    target/debug/peal --server http://$listen --user alice --password peal call bob

  others: peal ... listen | contacts | history | call friends --group

Stop the server with Ctrl-C.
MSG
