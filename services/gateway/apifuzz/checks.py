"""What spool's API promises of its errors beyond what the OpenAPI document
states of each answer: every error (status >= 400) is a JSON object with a
non-empty string code and a string message, sent as application/json.

Loaded by schemathesis from SCHEMATHESIS_HOOKS (TestSchemathesis sets it).
"""

import json

import schemathesis


@schemathesis.check
def error_has_code_and_message(ctx, response, case):
    if response.status_code < 400:
        return None
    ctype = ";".join(response.headers.get("content-type", []))
    if ctype.split(";")[0].strip().lower() != "application/json":
        raise AssertionError(
            f"error {response.status_code} with Content-Type {ctype!r}: want application/json"
        )
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"error {response.status_code}: the body is not JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise AssertionError(f"error {response.status_code}: the body is not a JSON object: {body!r}")
    code, message = body.get("code"), body.get("message")
    if not isinstance(code, str) or not code:
        raise AssertionError(f"error {response.status_code}: no code in {body!r}")
    if not isinstance(message, str):
        raise AssertionError(f"error {response.status_code}: no message in {body!r}")
    return None
