"""Random valid .proto modules and evolutions, for the differential test against buf.

usage: gen_diff.py SEED OUT_DIR

Writes OUT_DIR/previous and OUT_DIR/current (each a module with a buf.yaml selecting one
rule category) from SEED: the same seed always gives the same case. Modules mix proto2,
proto3 and edition 2023 files with nested types, oneofs, maps, options, reserved ranges and
names, enums and services; the evolution applies a few random changes: deletions, renames,
renumbering, type and label changes, moves between files, oneof moves, option and feature
changes, and proto2/proto3 -> edition 2023 migrations.
"""
import copy
import json
import os
import random
import sys

SCALARS = ["int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64",
           "sfixed32", "sfixed64", "bool", "string", "bytes", "double", "float"]
WIRE_COMPAT = {"int32": ["int64", "uint32", "uint64", "bool"], "sint32": ["sint64"],
               "fixed32": ["sfixed32"], "string": ["bytes"], "int64": ["uint64", "int32"],
               "bytes": ["string"], "double": ["float"], "float": ["double"]}
CATEGORIES = ["FILE", "PACKAGE", "WIRE_JSON", "WIRE"]


def field(r, number, name, types):
    kind = r.random()
    f = {"name": name, "number": number, "label": "", "type": r.choice(SCALARS),
         "json_name": None, "deprecated": False, "presence": None}
    if kind < 0.2 and types["messages"]:
        f["type"] = r.choice(types["messages"])
    elif kind < 0.3 and types["enums"]:
        f["type"] = r.choice(types["enums"])
    if r.random() < 0.2:
        f["label"] = "repeated"
    elif r.random() < 0.15:
        f["label"] = "optional"
    if r.random() < 0.1:
        f["json_name"] = name.replace("_", "") + "Json"
    if r.random() < 0.1:
        f["deprecated"] = True
    return f


def enum(r, name, prefix):
    n = r.randint(1, 3)
    values = [(f"{prefix}_UNSPECIFIED", 0)] + [(f"{prefix}_V{i}", i) for i in range(1, n + 1)]
    return {"name": name, "values": values, "reserved": [], "closed": False}


def message(r, name, depth, types):
    m = {"name": name, "fields": [], "oneofs": [], "maps": [], "nested": [], "enums": [],
         "reserved_numbers": [], "reserved_names": []}
    if depth < 1 and r.random() < 0.3:
        m["enums"].append(enum(r, "Kind", name.upper() + "_KIND"))
    if depth < 1 and r.random() < 0.3:
        m["nested"].append(message(r, "Inner", depth + 1, {"messages": [], "enums": []}))
    local = {"messages": types["messages"] + [f"{name}.{n['name']}" for n in m["nested"]],
             "enums": types["enums"] + [f"{name}.{e['name']}" for e in m["enums"]]}
    number = 1
    for i in range(r.randint(1, 6)):
        m["fields"].append(field(r, number, f"f_{name.lower()}_{i}", local))
        number += r.choice([1, 1, 1, 2, 5])
    if r.random() < 0.3:
        m["oneofs"].append({"name": "choice", "fields": [
            dict(field(r, number, "opt_a", local), label=""),
            dict(field(r, number + 1, "opt_b", local), label="")]})
        number += 2
    if r.random() < 0.25:
        m["maps"].append({"name": "by_key", "number": number, "key": r.choice(["string", "int32", "bool"]),
                          "value": r.choice(["string", "int64"] + local["messages"][:1])})
        number += 1
    if r.random() < 0.2:
        m["reserved_numbers"].append(number + 10)
        m["reserved_names"].append("old_field")
    return m


def service(r, name, messages):
    s = {"name": name, "rpcs": []}
    for i in range(r.randint(1, 3)):
        s["rpcs"].append({"name": f"Call{i}", "in": r.choice(messages), "out": r.choice(messages),
                          "cs": r.random() < 0.2, "ss": r.random() < 0.2,
                          "idempotent": r.random() < 0.2})
    return s


def module(r):
    files = []
    for fi in range(r.randint(1, 3)):
        syntax = r.choice(["proto2", "proto3", "2023"])
        pkg = r.choice(["acme.a.v1", "acme.a.v1", "acme.b.v1"])
        enums = [enum(r, f"E{fi}x{i}", f"E{fi}X{i}") for i in range(r.randint(0, 2))]
        types = {"messages": [], "enums": [e["name"] for e in enums]}
        messages = []
        for mi in range(r.randint(1, 4)):
            m = message(r, f"M{fi}x{mi}", 0, types)
            messages.append(m)
            types["messages"].append(m["name"])
        services = [service(r, f"S{fi}", [m["name"] for m in messages])] if r.random() < 0.5 else []
        files.append({"name": f"{pkg.replace('.', '/')}/f{fi}.proto", "package": pkg,
                      "syntax": syntax, "enums": enums, "messages": messages,
                      "services": services, "features": {}})
    return files


# ---------------- rendering ----------------

def render_field(f, syntax, in_oneof=False):
    label = f["label"]
    opts = []
    if syntax == "proto2" and not in_oneof and label == "":
        label = "optional"
    if syntax == "proto3" and label == "required":
        label = ""
    if syntax == "2023":
        if label in ("optional", "required"):
            if label == "required":
                opts.append("features.field_presence = LEGACY_REQUIRED")
            label = ""
        if f.get("presence") and not in_oneof and f["label"] != "repeated":
            opts.append(f"features.field_presence = {f['presence']}")
    if f["json_name"]:
        opts.append(f'json_name = "{f["json_name"]}"')
    if f["deprecated"]:
        opts.append("deprecated = true")
    o = f" [{', '.join(opts)}]" if opts else ""
    lab = f"{label} " if label else ""
    return f"{lab}{f['type']} {f['name']} = {f['number']}{o};"


def render_enum(e, syntax, indent):
    p = "  " * indent
    out = [f"{p}enum {e['name']} {{"]
    if syntax == "2023" and e.get("closed"):
        out.append(f"{p}  option features.enum_type = CLOSED;")
    for name, num in e["values"]:
        out.append(f"{p}  {name} = {num};")
    for n in e["reserved"]:
        out.append(f"{p}  reserved {n};")
    out.append(f"{p}}}")
    return out


def render_message(m, syntax, indent):
    p = "  " * indent
    out = [f"{p}message {m['name']} {{"]
    for e in m["enums"]:
        out += render_enum(e, syntax, indent + 1)
    for n in m["nested"]:
        out += render_message(n, syntax, indent + 1)
    for f in m["fields"]:
        out.append(f"{p}  {render_field(f, syntax)}")
    for o in m["oneofs"]:
        out.append(f"{p}  oneof {o['name']} {{")
        for f in o["fields"]:
            out.append(f"{p}    {render_field(f, syntax, True)}")
        out.append(f"{p}  }}")
    for mp in m["maps"]:
        out.append(f"{p}  map<{mp['key']}, {mp['value']}> {mp['name']} = {mp['number']};")
    for n in m["reserved_numbers"]:
        out.append(f"{p}  reserved {n};")
    for n in m["reserved_names"]:
        out.append(f"{p}  reserved {n if syntax == '2023' else repr(n).replace(chr(39), chr(34))};")
    out.append(f"{p}}}")
    return out


def render_file(f):
    syntax = f["syntax"]
    out = [f'edition = "2023";' if syntax == "2023" else f'syntax = "{syntax}";', "",
           f"package {f['package']};", ""]
    for k, v in sorted(f["features"].items()):
        out.append(f"option features.{k} = {v};")
    for e in f["enums"]:
        out += render_enum(e, syntax, 0)
    for m in f["messages"]:
        out += render_message(m, syntax, 0)
    for s in f["services"]:
        out.append(f"service {s['name']} {{")
        for rpc in s["rpcs"]:
            i = ("stream " if rpc["cs"] else "") + rpc["in"]
            o = ("stream " if rpc["ss"] else "") + rpc["out"]
            body = " { option idempotency_level = NO_SIDE_EFFECTS; }" if rpc["idempotent"] else ";"
            out.append(f"  rpc {rpc['name']}({i}) returns ({o}){body}")
        out.append("}")
    return "\n".join(out) + "\n"


def fix_for_syntax(f):
    """Keeps a file valid for its syntax: proto3 has no required fields and only open enums."""
    for m in walk_messages(f["messages"]):
        for fl in m["fields"]:
            if f["syntax"] == "proto3" and fl["label"] == "required":
                fl["label"] = ""
            if f["syntax"] != "2023":
                fl["presence"] = None
            if fl.get("presence") == "IMPLICIT" and (fl["label"] or not is_scalar(fl["type"])):
                fl["presence"] = None


def is_scalar(t):
    return t in SCALARS


def walk_messages(ms):
    for m in ms:
        yield m
        yield from walk_messages(m["nested"])


def write(files, root, category):
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "buf.yaml"), "w") as fh:
        fh.write(f"version: v2\nbreaking:\n  use: [{category}]\n")
    for f in files:
        fix_for_syntax(f)
        p = os.path.join(root, f["name"])
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as fh:
            fh.write(render_file(f))


# ---------------- evolutions ----------------

def evolve(r, files):
    files = copy.deepcopy(files)
    changes = []
    target, attempts = r.randint(1, 3), 0
    while len(changes) < target and attempts < 50:
        attempts += 1
        f = r.choice(files)
        ms = list(walk_messages(f["messages"]))
        m = r.choice(ms)
        op = r.choice(["del_field", "rename_field", "renumber_field", "type_field", "label_field",
                       "to_oneof", "from_oneof", "del_message", "rename_message", "del_enum_value",
                       "renumber_enum_value", "del_rpc", "stream_rpc", "rpc_type", "package",
                       "move_message", "del_file", "reserve", "json_name", "deprecated",
                       "presence", "migrate", "closed_enum", "required"])
        if op == "del_field" and m["fields"]:
            m["fields"].pop(r.randrange(len(m["fields"])))
        elif op == "rename_field" and m["fields"]:
            r.choice(m["fields"])["name"] += "_renamed"
        elif op == "renumber_field" and m["fields"]:
            r.choice(m["fields"])["number"] += 100
        elif op == "type_field" and m["fields"]:
            fl = r.choice(m["fields"])
            if fl["type"] in WIRE_COMPAT and r.random() < 0.6:
                fl["type"] = r.choice(WIRE_COMPAT[fl["type"]])
            else:
                fl["type"] = r.choice(SCALARS)
        elif op == "label_field" and m["fields"]:
            fl = r.choice(m["fields"])
            fl["label"] = r.choice(["", "repeated", "optional"])
        elif op == "to_oneof" and m["fields"]:
            fl = m["fields"].pop(r.randrange(len(m["fields"])))
            fl["label"] = ""
            if not m["oneofs"]:
                m["oneofs"].append({"name": "moved", "fields": []})
            m["oneofs"][0]["fields"].append(fl)
        elif op == "from_oneof" and m["oneofs"]:
            o = m["oneofs"][0]
            m["fields"].append(o["fields"].pop())
            if not o["fields"]:
                m["oneofs"].pop(0)
        elif op == "del_message" and len(f["messages"]) > 1:
            victim = f["messages"].pop(r.randrange(len(f["messages"])))
            drop_refs(files, victim["name"])
        elif op == "rename_message":
            victim = r.choice(f["messages"])
            old = victim["name"]
            victim["name"] = old + "Renamed"
            rename_refs(files, old, victim["name"])
        elif op == "del_enum_value" and f["enums"]:
            e = r.choice(f["enums"])
            if len(e["values"]) > 1:
                e["values"].pop()
        elif op == "renumber_enum_value" and f["enums"]:
            e = r.choice(f["enums"])
            if len(e["values"]) > 1:
                name, num = e["values"][-1]
                e["values"][-1] = (name, num + 10)
        elif op == "del_rpc" and f["services"] and f["services"][0]["rpcs"]:
            f["services"][0]["rpcs"].pop()
        elif op == "stream_rpc" and f["services"] and f["services"][0]["rpcs"]:
            rpc = r.choice(f["services"][0]["rpcs"])
            rpc["ss"] = not rpc["ss"]
        elif op == "rpc_type" and f["services"] and f["services"][0]["rpcs"]:
            r.choice(f["services"][0]["rpcs"])["out"] = r.choice(f["messages"])["name"]
        elif op == "package" and len(files) == 1:
            f["package"] = f["package"].replace(".v1", ".v2")
        elif op == "move_message" and len(files) > 1:
            other = r.choice([g for g in files if g is not f])
            if other["package"] == f["package"] and len(f["messages"]) > 1 and other["syntax"] == f["syntax"]:
                victim = f["messages"].pop()
                if not refers_to_local(victim, f):
                    other["messages"].append(victim)
                else:
                    f["messages"].append(victim)
        elif op == "del_file" and len(files) > 1:
            files.remove(f)
        elif op == "reserve" and m["fields"]:
            fl = m["fields"].pop()
            m["reserved_numbers"].append(fl["number"])
            m["reserved_names"].append(fl["name"])
        elif op == "json_name" and m["fields"]:
            fl = r.choice(m["fields"])
            fl["json_name"] = "changed" + fl["name"].replace("_", "")
        elif op == "deprecated" and m["fields"]:
            fl = r.choice(m["fields"])
            fl["deprecated"] = not fl["deprecated"]
        elif op == "presence" and f["syntax"] == "2023" and m["fields"]:
            r.choice(m["fields"])["presence"] = r.choice(["EXPLICIT", "IMPLICIT", "LEGACY_REQUIRED"])
        elif op == "migrate" and f["syntax"] != "2023":
            migrate(f)
        elif op == "closed_enum" and f["syntax"] == "2023" and f["enums"]:
            e = r.choice(f["enums"])
            e["closed"] = not e["closed"]
        elif op == "required" and f["syntax"] == "proto2" and m["fields"]:
            fl = r.choice(m["fields"])
            fl["label"] = "required" if fl["label"] != "required" else "optional"
        else:
            continue
        changes.append(op)
    return files, changes


def migrate(f):
    """proto2/proto3 -> edition 2023, keeping the meaning (protobuf's migration guide)."""
    if f["syntax"] == "proto3":
        f["features"] = {"field_presence": "IMPLICIT"}
        for m in walk_messages(f["messages"]):
            for fl in m["fields"]:
                if fl["label"] == "optional":
                    fl["label"] = ""
                    fl["presence"] = "EXPLICIT"
    else:
        f["features"] = {"enum_type": "CLOSED", "repeated_field_encoding": "EXPANDED",
                         "utf8_validation": "NONE", "json_format": "LEGACY_BEST_EFFORT"}
        for m in walk_messages(f["messages"]):
            for fl in m["fields"]:
                if fl["label"] == "optional":
                    fl["label"] = ""
    f["syntax"] = "2023"


def refers_to_local(m, f):
    local = {x["name"] for x in f["messages"]} | {e["name"] for e in f["enums"]}
    for x in walk_messages([m]):
        for fl in x["fields"] + [g for o in x["oneofs"] for g in o["fields"]]:
            if fl["type"].split(".")[0] in local:
                return True
        for mp in x["maps"]:
            if mp["value"].split(".")[0] in local:
                return True
    return False


def each_type_ref(files):
    for f in files:
        for m in walk_messages(f["messages"]):
            for fl in m["fields"] + [g for o in m["oneofs"] for g in o["fields"]]:
                yield fl, "type"
            for mp in m["maps"]:
                yield mp, "value"
        for s in f["services"]:
            for rpc in s["rpcs"]:
                yield rpc, "in"
                yield rpc, "out"


def drop_refs(files, name):
    for obj, key in each_type_ref(files):
        head = obj[key].split(".")[0]
        if head == name:
            obj[key] = "string" if key in ("type", "value") else None
    for f in files:
        for s in f["services"]:
            s["rpcs"] = [rpc for rpc in s["rpcs"] if rpc["in"] and rpc["out"]]


def rename_refs(files, old, new):
    for obj, key in each_type_ref(files):
        parts = obj[key].split(".")
        if parts[0] == old:
            obj[key] = ".".join([new] + parts[1:])


def main():
    seed, out = int(sys.argv[1]), sys.argv[2]
    r = random.Random(seed)
    prev = module(r)
    cur, changes = evolve(r, prev)
    category = r.choice(CATEGORIES)
    write(copy.deepcopy(prev), os.path.join(out, "previous"), category)
    write(copy.deepcopy(cur), os.path.join(out, "current"), category)
    with open(os.path.join(out, "CASE"), "w") as fh:
        fh.write(f"seed {seed}\ncategory {category}\nchanges {' '.join(changes)}\n")
    # What the differential test needs to apply the documented differences from buf.
    facts = {"editions_files": sorted({f["name"] for f in prev + cur if f["syntax"] == "2023"}),
             "current_packages": {}}
    for f in cur:
        p = facts["current_packages"].setdefault(f["package"], {"messages": 0, "enums": 0})
        for m in walk_messages(f["messages"]):
            p["messages"] += 1
            p["enums"] += len(m["enums"])
        p["enums"] += len(f["enums"])
    with open(os.path.join(out, "FACTS.json"), "w") as fh:
        json.dump(facts, fh)


main()
