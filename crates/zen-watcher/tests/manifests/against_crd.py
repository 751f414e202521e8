"""Validates custom resources against the openAPIV3Schema of their CustomResourceDefinition.

usage: python3 against_crd.py CRD.yaml RESOURCE.yaml...

Prints one line per resource, `ok NAME` or `invalid NAME: where: what`, and exits 1 if any is
invalid. The schema's OpenAPI dialect is read as JSON Schema: `nullable` allows null, and the
`x-kubernetes-*` extensions are left to the API server. It checks what a schema says (types,
enums, patterns, required fields, unknown fields where the schema does not keep them); not
what only an API server does (defaulting, CEL rules, metadata).
"""
import sys

import jsonschema
import yaml


def dialect(schema):
    """The schema with OpenAPI's `nullable` made JSON Schema's, and unknown fields refused
    where the structural schema would prune them."""
    if isinstance(schema, dict):
        out = {k: dialect(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
        if schema.get("nullable"):
            out.pop("nullable")
            out = {"anyOf": [{"type": "null"}, out]}
        elif (
            schema.get("type") == "object"
            and "properties" in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in schema
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [dialect(s) for s in schema]
    return schema


class Loader(yaml.SafeLoader):
    """YAML as the API server reads it: times stay strings."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def main():
    crd_path, *paths = sys.argv[1:]
    with open(crd_path) as f:
        crd = yaml.load(f, Loader)
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    schemas = {
        f"{group}/{v['name']}": dialect(v["schema"]["openAPIV3Schema"]) for v in crd["spec"]["versions"]
    }
    bad = 0
    for path in paths:
        with open(path) as f:
            for doc in yaml.load_all(f, Loader):
                if not doc or doc.get("kind") != kind:
                    continue
                name = doc.get("metadata", {}).get("name", "?")
                schema = schemas.get(doc.get("apiVersion"))
                if schema is None:
                    print(f"invalid {name}: apiVersion {doc.get('apiVersion')} is not served")
                    bad += 1
                    continue
                body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
                errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(body), key=str)
                if errors:
                    e = errors[0]
                    where = ".".join(str(p) for p in e.absolute_path) or "(top)"
                    print(f"invalid {name}: {where}: {e.message}")
                    bad += 1
                else:
                    print(f"ok {name}")
    sys.exit(1 if bad else 0)


main()
