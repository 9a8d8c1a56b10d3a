#!/usr/bin/env bash
# Printed by `make run`: how to ring the demo server from two terminals.
listen="$1"
cat <<MSG

Peal signaling server with demo data (users alice, bob, carol; password "peal"; group "friends"),
and the echo bot answering calls to "echo" with your own audio and video.
Ring it from two more terminals:

  terminal 2 (bob answers, hangs up after 5 s):
    target/debug/peal --server http://$listen --user bob --password peal answer --accept --hangup-after 5000

  terminal 3 (alice calls bob):
    target/debug/peal --server http://$listen --user alice --password peal call bob

  with media (a moving test pattern and a tone both ways; stats at the end):
    ... answer --accept --media synthetic --stats
    ... call bob --media synthetic --hangup-after 5000 --stats

  a test call to the echo bot:
    target/debug/peal --server http://$listen --user alice --password peal call echo --media synthetic --hangup-after 5000 --stats

  others: peal ... listen | contacts | history | call friends --group

Stop the server with Ctrl-C.
MSG
