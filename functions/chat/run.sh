#!/bin/sh
# Entry point of the chat function. AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap (the Lambda Web Adapter
# layer) execs "$LAMBDA_TASK_ROOT/$_HANDLER", i.e. this script, instead of the Python runtime. We
# start uvicorn on 127.0.0.1:$PORT; the adapter waits for GET $AWS_LWA_READINESS_CHECK_PATH, then
# forwards requests and streams responses (AWS_LWA_INVOKE_MODE=response_stream).
# Keep this file executable with LF line endings.
set -eu

: "${LAMBDA_TASK_ROOT:=$(cd "$(dirname "$0")" && pwd)}"
: "${PORT:=8080}"

# The shared layer's packages live in /opt/python; the handler module in the task root; the
# runtime directory keeps the runtime-provided boto3 importable.
PYTHONPATH="/opt/python:${LAMBDA_TASK_ROOT}:${LAMBDA_RUNTIME_DIR:-/var/runtime}${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
export PATH="${PATH}:${LAMBDA_TASK_ROOT}/bin"

cd "$LAMBDA_TASK_ROOT"
exec python -m uvicorn --host 127.0.0.1 --port "$PORT" --no-access-log app:app
