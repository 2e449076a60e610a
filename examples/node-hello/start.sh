#!/bin/sh
# Started by `tarscli supervisor` after `tarscli genconf` wrote $TARS_PATH/conf/HelloNode.conf.
# exec: node replaces this shell, so it gets the supervisor's signals itself.
: "${TARS_PATH:=/tars}"
cd "$(dirname "$0")" || exit 1
exec "${NODE:-node}" server.js --config="$TARS_PATH/conf/HelloNode.conf"
