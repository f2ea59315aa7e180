#!/bin/sh
# Entry point of the Tenantry image: runs `tenantry "$@"`.
#
# INIT_ENV_FILE (optional) names a file of KEY=VALUE lines, written by the compose stack's init job
# (deploy/compose/init/tenantry_init.py) with the credentials it created (Stalwart API key, oCIS app token).
# Its variables are exported before Tenantry starts; variables already set in the environment win.
set -eu
if [ -n "${INIT_ENV_FILE:-}" ] && [ -r "${INIT_ENV_FILE}" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in
            ''|'#'*) continue ;;
        esac
        key=${line%%=*}
        value=${line#*=}
        case "$key" in
            *[!A-Za-z0-9_]*|'') echo "tenantry-entrypoint: ignoring malformed line in ${INIT_ENV_FILE}" >&2; continue ;;
        esac
        if eval "[ -z \"\${$key+x}\" ]"; then
            export "$key=$value"
        fi
    done < "${INIT_ENV_FILE}"
fi
exec tenantry "$@"
