#!/bin/sh
# For every VAR_FILE in the environment, export VAR with the file's content (the convention of
# the official database images), so secrets can be mounted files (/run/secrets/...) instead of
# environment values. Variables the services already read as paths are left alone.
set -eu

native_file_settings=" AUTH_SIGNING_KEY_FILE AUTH_PREVIOUS_PUBLIC_KEY_FILES "

for name in $(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)_FILE=.*/\1/p'); do
    case "$native_file_settings" in
        *" ${name}_FILE "*) continue ;;
    esac
    eval "path=\${${name}_FILE}"
    eval "already=\${${name}:-}"
    if [ -n "$already" ]; then
        echo "natomedia-entrypoint: both $name and ${name}_FILE are set" >&2
        exit 1
    fi
    if [ ! -r "$path" ]; then
        echo "natomedia-entrypoint: ${name}_FILE=$path is not readable" >&2
        exit 1
    fi
    value=$(cat "$path")
    export "$name=$value"
    unset "${name}_FILE"
done

exec "$@"
