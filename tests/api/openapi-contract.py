#!/usr/bin/env python3
"""Validates recorded droverd answers against the OpenAPI document.

    openapi-contract.py DOC RECORDS

RECORDS is {"records": [{op, method, path, status, want, stream, websocket, text, body}]},
written by tests/api/test-api-openapi.c.  Fails (exit 1), one line each:

  - a record whose operation is not in DOC, or whose method and path do
    not match that operation's template;
  - a status other than the step's `want`, or, with no `want`, not the
    operation's documented success status;
  - a 400 whose error names no field (bad input names the field);
  - a request body (but a 400's) that the operation's requestBody schema
    refuses: the steps are the documented request shapes;
  - a body that does not validate against the schema DOC gives that
    status (its exact code, else `default`), with the JSON path of each
    error (python3-jsonschema, Draft 2020-12);
  - an operation of DOC that no record exercised with its documented
    success or its `want`.
"""

import json
import re
import sys

from jsonschema import Draft202012Validator


def template_regex(path):
    parts = []
    for seg in path.strip("/").split("/"):
        parts.append("[^/]+" if seg.startswith("{") else re.escape(seg))
    return re.compile("^/" + "/".join(parts) + "$")


def main(doc_path, records_path):
    doc = json.load(open(doc_path, encoding="utf-8"))
    records = json.load(open(records_path, encoding="utf-8"))["records"]
    bad = validate(doc, records)
    for b in bad:
        print(b)
    # The check must be able to fail: a document wanting a member no
    # record has, a time rendered as an integer and a renamed member are
    # all caught.
    mutated = json.loads(json.dumps(doc))
    mutated["components"]["schemas"]["Record"]["required"].append("zz_absent")
    if not any("zz_absent" in b for b in validate(mutated, records, False)):
        print("openapi-contract: self-check: a missing required member was not caught")
        bad.append("self-check")
    broken = json.loads(json.dumps(records))
    for r in broken:
        if isinstance(r.get("body"), dict) and "created_at" in r["body"] and "id" in r["body"]:
            r["body"]["created_at"] = 1765000000000000
            break
    if not any("created_at" in b for b in validate(doc, broken, False)):
        print("openapi-contract: self-check: an unrendered time was not caught")
        bad.append("self-check")
    # A kind's record with a member renamed (what a change of the code
    # building it would do) is caught, for every kind answered.
    kinds = renamed_members(doc, records)
    print(f"openapi-contract: a renamed member is caught in {len(kinds)} kinds' records "
          f"({', '.join(f'{k}.{m}' for k, m in kinds)})")
    if len(kinds) < 10:
        print("openapi-contract: self-check: fewer than 10 kinds' records answered")
        bad.append("self-check")
    for kind, member in kinds:
        renamed = json.loads(json.dumps(records))
        for r in renamed:
            if r.get("kind") == kind:
                r["body"][member + "_renamed"] = r["body"].pop(member)
                break
        if not any(f"'{member}' is a required property" in b
                   for b in validate(doc, renamed, False)):
            print(f"openapi-contract: self-check: {kind}.{member} renamed was not caught")
            bad.append("self-check")
    return 1 if bad else 0


def record_kind(doc, r):
    """The kind schema (Vm, Host...) the answer @r is documented with, or None."""
    ops = {o["operationId"]: o for item in doc["paths"].values() for o in item.values()}
    o = ops.get(r["op"])
    if o is None or not isinstance(r.get("body"), dict):
        return None
    resp = o["responses"].get(str(r["status"]))
    ref = (resp or {}).get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
    name = ref.rsplit("/", 1)[1] if ref else None
    schema = doc["components"]["schemas"].get(name or "", {})
    return name if "allOf" in schema else None


def renamed_members(doc, records):
    """(kind, member) for one answer of each kind schema: its last
    required member, which the body holds."""
    out = {}
    for r in records:
        kind = record_kind(doc, r)
        if kind is None or kind in out:
            continue
        r["kind"] = kind
        required = doc["components"]["schemas"][kind]["allOf"][1]["required"]
        member = next((m for m in reversed(required) if m in r["body"] and m != "id"), None)
        if member is not None:
            out[kind] = member
    return sorted(out.items())


def schema_errors(schema, doc, instance):
    """Each way @instance fails @schema (whose $refs point into @doc), as
    "at $.json.path: message"."""
    schema = dict(schema)
    schema["components"] = doc["components"]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    out = []
    errors = Draft202012Validator(schema).iter_errors(instance)
    for e in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        jp = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
        out.append(f"at {jp}: {e.message[:200]}")
    return out


def validate(doc, records, summary=True):
    ops = {}
    for path, item in doc["paths"].items():
        for method, o in item.items():
            ops[o["operationId"]] = (method.upper(), path, o)
    bad = []
    covered = set()
    for r in records:
        where = f"{r['op']} {r['method']} {r['path']} -> {r['status']}"
        if r["op"] not in ops:
            bad.append(f"{where}: not an operation of the document")
            continue
        method, template, o = ops[r["op"]]
        if method != r["method"] or not template_regex(template).match(r["path"].split("?")[0]):
            bad.append(f"{where}: not {method} {template}")
            continue
        success = [c for c in o["responses"] if c != "default"]
        want = str(r["want"]) if r.get("want") else None
        status = str(r["status"])
        if r.get("websocket"):
            # libsoup keeps a refused handshake's body to itself: the status only
            if status != (want or "101") or (want is None and "101" not in success):
                bad.append(f"{where}: a WebSocket handshake, expected {want or '101'}")
            else:
                covered.add(r["op"])
            continue
        if want is not None and status != want:
            bad.append(f"{where}: expected {want}; body {json.dumps(r['body'])[:300]}")
            continue
        if want is None and status not in success:
            bad.append(f"{where}: not a documented success ({', '.join(success)}); "
                       f"body {json.dumps(r['body'])[:300]}")
            continue
        rb = o.get("requestBody", {}).get("content", {}).get("application/json")
        if r.get("request") is not None and want != "400":
            if rb is None:
                bad.append(f"{where}: sent a body the document does not take")
            else:
                for e in schema_errors(rb["schema"], doc, r["request"]):
                    bad.append(f"{where}: request {e}")
        if status == "400":
            err = r["body"].get("error", {}) if isinstance(r["body"], dict) else {}
            if not isinstance(err.get("field"), str) or not err["field"]:
                bad.append(f"{where}: a 400 that names no field: {json.dumps(r['body'])[:200]}")
        resp = o["responses"].get(status) or o["responses"]["default"]
        content = resp.get("content", {})
        if r.get("text"):
            if "text/plain" not in content:
                bad.append(f"{where}: text where the document has {list(content)}")
            covered.add(r["op"])
            continue
        if r.get("stream"):
            if "text/event-stream" not in content:
                bad.append(f"{where}: a stream where the document has {list(content)}")
            covered.add(r["op"])
            continue
        media = content.get("application/json")
        if media is None:
            bad.append(f"{where}: the document gives no JSON body for {status}")
            continue
        errors = schema_errors(media["schema"], doc, r["body"])
        for e in errors:
            bad.append(f"{where}: {e}")
        if not errors:
            covered.add(r["op"])
    for name in ops:
        if name not in covered:
            bad.append(f"{name}: no request of this operation was answered as documented")
    if summary:
        print(f"openapi-contract: {len(records)} answers, {len(covered)} of {len(ops)} operations "
              f"covered, {len(bad)} problems (jsonschema {jsonschema_version()})")
    return bad


def jsonschema_version():
    try:
        from importlib.metadata import version
        return version("jsonschema")
    except Exception:  # noqa: BLE001 - the version is only informative
        return "?"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
