#!/usr/bin/env bash
# Checks the README's JupyterLab path from a fresh clone of the committed tree:
#   python3 -m venv .venv && pip install torch==2.13.0 -e ".[lab]" && jupyter lab notebooks/
# then asks the running server (REST API, with its token) for the notebooks and the kernel,
# runs `import vae_course` in that kernel, and stops the server. Bounded in time throughout.
#
# Usage: bash tools/check_jupyterlab.sh   (TORCH_SPEC=... to change the torch pin; KEEP=1 keeps
# the temporary clone and venv and prints their folder)
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "check_jupyterlab: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

git clone -q . "$work/clone"
cd "$work/clone"
python3 -m venv .venv
.venv/bin/python -m pip install -q "$TORCH_SPEC" -e ".[lab]"
echo "check_jupyterlab: JupyterLab $(.venv/bin/jupyter lab --version), $(.venv/bin/python -c 'import torch; print("torch", torch.__version__)')"

port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(16))')
root_flag=()
[ "$(id -u)" = 0 ] && root_flag=(--allow-root)  # JupyterLab refuses to run as root without it
timeout 300 .venv/bin/jupyter lab notebooks/ --no-browser "${root_flag[@]}" \
  --ServerApp.ip=127.0.0.1 --ServerApp.port="$port" --ServerApp.token="$token" \
  > "$work/lab.log" 2>&1 &
server=$!

.venv/bin/python - "$port" "$token" <<'EOF'
import json, sys, time, urllib.request
from jupyter_client.manager import start_new_kernel

port, token = sys.argv[1:3]
base = f"http://127.0.0.1:{port}"

def get(path):
    request = urllib.request.Request(base + path, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.load(answer)

for _ in range(120):  # a busy machine may need a while to start the server
    try:
        status = get("/api/status")
        break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit("check_jupyterlab: the server did not answer within 60 s")
version = get("/api/")["version"]
names = sorted(item["name"] for item in get("/api/contents/")["content"])
chapters = [name for name in names if name.endswith(".ipynb")]
print(f"jupyter server {version} on port {port}: {len(chapters)} notebooks: {', '.join(chapters)}")
assert len(chapters) >= 9 and chapters[0].startswith("01_"), names
specs = get("/api/kernelspecs")
print("kernels:", {name: spec["spec"]["display_name"] for name, spec in specs["kernelspecs"].items()})
assert "python3" in specs["kernelspecs"], "the notebooks' kernel python3 is not offered"

# The kernel the notebooks name (python3) must be this environment, with the package installed.
manager, client = start_new_kernel(kernel_name="python3", startup_timeout=60)
try:
    reply = client.execute_interactive(
        "import sys, vae_course; print(sys.prefix, vae_course.__file__)", timeout=60,
        output_hook=lambda msg: print("kernel:", msg["content"].get("text", "").strip())
        if msg["msg_type"] == "stream" else None)
    assert reply["content"]["status"] == "ok", reply["content"]
finally:
    client.stop_channels()
    manager.shutdown_kernel(now=True)
EOF
echo "check_jupyterlab: ok"
