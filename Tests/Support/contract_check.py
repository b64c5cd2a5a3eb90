"""Checks real exchanges with a running Gatehouse against its OpenAPI document.

    python contract_check.py SPEC.json EXCHANGES.jsonl
    python contract_check.py SPEC.json --document


SPEC.json is what the server served at /openapi.json. Each line of EXCHANGES.jsonl is one call:
{"method": "GET", "path": "/api/v1/keys?limit=5", "status": 200, "content_type": "...", "body": "..."}.

For each call: the path must match a documented path template and method, the status must be
documented for that operation (or `default`), and a JSON body must validate against the schema
documented for that status. With --document, checks instead that the document itself is a valid
OpenAPI 3.1 document (done once per suite: it is the slow part). Prints every mismatch and exits 1
when there is one; a file with no exchanges is itself a mismatch (a check of nothing passes nothing).
"""
import json
import re
import sys

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

# jsonschema checks `date-time` only when an optional package is installed; this is RFC 3339's
# own grammar, so a timestamp in another shape fails whether or not that package is there.
FORMATS = FormatChecker()
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


@FORMATS.checks("date-time")
def is_date_time(value):
    return not isinstance(value, str) or RFC3339.match(value) is not None


def templates(spec):
    """(regex, template) for every documented path, literal paths first."""
    out = []
    for template in spec.get("paths", {}):
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "/?$"
        out.append((template.count("{"), re.compile(pattern), template))
    out.sort(key=lambda t: t[0])
    return [(rx, t) for _, rx, t in out]


def main():
    spec = json.load(open(sys.argv[1]))
    problems = []
    if sys.argv[2] == "--document":
        from openapi_spec_validator import validate  # slow to import; only this mode needs it
        try:
            validate(spec)
        except Exception as error:  # the validator's own exception types vary by version
            problems.append(f"the document is not valid OpenAPI: {error}")
        report(problems, "the document")

    registry = Registry().with_resource("urn:gatehouse", Resource.from_contents(spec, default_specification=DRAFT202012))
    paths = templates(spec)
    count = 0
    for line in open(sys.argv[2]):
        if not line.strip():
            continue
        count += 1
        call = json.loads(line)
        method, raw_path, status = call["method"].lower(), call["path"], call["status"]
        where = f"{call['method']} {raw_path} → {status}"
        path = raw_path.split("?", 1)[0]
        template = next((t for rx, t in paths if rx.match(path)), None)
        if template is None:
            problems.append(f"{where}: no documented path matches")
            continue
        operation = spec["paths"][template].get(method)
        if operation is None:
            problems.append(f"{where}: {template} documents no {method.upper()}")
            continue
        responses = operation.get("responses", {})
        response = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
        if response is None:
            problems.append(f"{where}: status {status} is not documented for {method.upper()} {template} (documented: {', '.join(responses)})")
            continue
        if "$ref" in response:
            response = resolve(spec, response["$ref"])
        content = response.get("content")
        body = call.get("body") or ""
        if not content:
            continue
        media = next((m for m in content if m.split(";")[0] == (call.get("content_type") or "").split(";")[0].strip()), None)
        if media is None:
            problems.append(f"{where}: answered {call.get('content_type')!r}, documented {', '.join(content)}")
            continue
        schema = content[media].get("schema")
        if schema is None or not media.startswith("application/json"):
            continue
        try:
            document = json.loads(body)
        except ValueError:
            problems.append(f"{where}: the body is not JSON: {body[:200]!r}")
            continue
        validator = Draft202012Validator(schema_with_base(schema), registry=registry, format_checker=FORMATS)
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
            at = "/".join(str(p) for p in error.absolute_path) or "(root)"
            problems.append(f"{where}: at {at}: {error.message[:300]}")

    if count == 0:
        problems.append("no exchanges to check: the test made no typed API call")
    report(problems, f"{count} exchanges against the document")


def report(problems, what):
    for p in problems:
        print(p)
    print(f"checked {what}: {len(problems)} problem(s)")
    sys.exit(1 if problems else 0)


def schema_with_base(schema):
    """The schema with its `#/components/...` references resolved against the whole document."""
    return {"$id": "urn:gatehouse-operation", "$defs": {}, "allOf": [rebase(schema)]}


def rebase(node):
    if isinstance(node, dict):
        return {k: ("urn:gatehouse" + v if k == "$ref" and isinstance(v, str) and v.startswith("#") else rebase(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [rebase(v) for v in node]
    return node


def resolve(spec, ref):
    node = spec
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


if __name__ == "__main__":
    main()
