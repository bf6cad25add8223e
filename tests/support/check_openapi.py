"""Validates protoreg's /openapi.json and real responses against it.

Usage: check_openapi.py DOC.json SAMPLES.json
DOC.json is the served document; SAMPLES.json a list of
{"method", "path" (the route template), "status", "body"} taken from a running server.
Exits 1 naming the first problem.
"""
import json
import sys

import jsonschema
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


def main():
    doc = json.load(open(sys.argv[1]))
    samples = json.load(open(sys.argv[2]))
    validate(doc)  # the document is valid OpenAPI 3.1
    resource = Resource.from_contents(doc, default_specification=DRAFT202012)
    registry = Registry().with_resource("urn:protoreg-openapi", resource)
    checked = 0
    for s in samples:
        op = doc["paths"][s["path"]][s["method"].lower()]
        responses = op["responses"]
        response = responses.get(str(s["status"])) or responses["default"]
        schema = response["content"]["application/json"]["schema"]
        # Resolve $refs against the document.
        schema = json.loads(json.dumps(schema).replace('"#/', '"urn:protoreg-openapi#/'))
        validator = jsonschema.Draft202012Validator(schema, registry=registry)
        errors = sorted(validator.iter_errors(s["body"]), key=lambda e: e.path)
        if errors:
            e = errors[0]
            print(f"{s['method']} {s['path']} {s['status']}: {e.message} at {list(e.path)}")
            sys.exit(1)
        checked += 1
    # Every body schema is an object with the fields a client relies on being required.
    for name, schema in doc["components"]["schemas"].items():
        if schema.get("type") == "object" and not schema.get("properties"):
            print(f"schema {name} has no properties")
            sys.exit(1)
    print(f"ok: document valid, {checked} responses match their schemas")


main()
