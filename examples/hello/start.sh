#!/bin/sh
# Started by `tarscli supervisor` after `tarscli genconf` wrote $TARS_PATH/conf/HelloPy.conf.
# exec: the server replaces this shell, so it gets the supervisor's signals itself.
: "${TARS_PATH:=/tars}"
exec "${PYTHON:-python3}" "$(dirname "$0")/server.py" --config="$TARS_PATH/conf/HelloPy.conf"
