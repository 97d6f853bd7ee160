#!/bin/sh
# Points the checkout's DVC cache at the cache volume (a local, untracked setting),
# then runs the command: `dvc repro` by default.
set -e
if [ -n "${DVC_CACHE_DIR}" ] && [ -d .dvc ]; then
    dvc cache dir --local "${DVC_CACHE_DIR}"
fi
exec "$@"
