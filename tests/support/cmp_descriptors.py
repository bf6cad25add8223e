"""Compares two FileDescriptorSets file by file, as tests/editions.rs asks.

usage: cmp_descriptors.py OURS THEIRS [FILE...]

Descriptors (without source info) must be equal after canonical encoding; source info is
compared as a sorted list of locations (path, span, comments), since buf and protoreg emit
them in different orders. One known difference is allowed and listed in the README: buf
also records locations inside message-literal option values (`(opt) = { a: 1 }` gets
`[..., a's number]`), which protoreg does not. Exit status 1 and a report when anything
else differs.
"""
import difflib
import sys

from google.protobuf import descriptor_pb2, text_format


def load(path):
    s = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        s.ParseFromString(f.read())
    return {f.name: f for f in s.file}


def key(loc):
    return (
        tuple(loc.path),
        tuple(loc.span),
        loc.leading_comments,
        loc.trailing_comments,
        tuple(loc.leading_detached_comments),
    )


def inside_aggregate(loc, ours_paths):
    """A location strictly below an option location of ours: a field in a message literal."""
    path = tuple(loc.path)
    return any(len(p) >= 2 and len(path) > len(p) and path[: len(p)] == p for p in ours_paths)


def main():
    ours, theirs = load(sys.argv[1]), load(sys.argv[2])
    names = sys.argv[3:] or sorted(theirs)
    bad = 0
    for name in names:
        a, b = ours.get(name), theirs.get(name)
        if a is None or b is None:
            print(f"{name}: missing from {'ours' if a is None else 'theirs'}")
            bad += 1
            continue
        la, lb = a.source_code_info.location, b.source_code_info.location
        a2, b2 = descriptor_pb2.FileDescriptorProto(), descriptor_pb2.FileDescriptorProto()
        a2.CopyFrom(a)
        b2.CopyFrom(b)
        a2.ClearField("source_code_info")
        b2.ClearField("source_code_info")
        if a2.SerializeToString(deterministic=True) != b2.SerializeToString(deterministic=True):
            bad += 1
            ta, tb = text_format.MessageToString(a2), text_format.MessageToString(b2)
            print(f"{name}: descriptors differ")
            print("".join(difflib.unified_diff(ta.splitlines(True), tb.splitlines(True), "protoreg", "buf")))
        option_paths = {tuple(l.path) for l in la if len(l.path) >= 2}
        ka = sorted(map(key, la))
        kb = sorted(key(l) for l in lb if not inside_aggregate(l, option_paths) or key(l) in set(ka))
        if ka != kb:
            bad += 1
            print(f"{name}: source info differs")
            sa, sb = set(ka), set(kb)
            for x in sorted(sa - sb)[:20]:
                print("  protoreg only:", x)
            for x in sorted(sb - sa)[:20]:
                print("  buf only:     ", x)
    print(f"{len(names)} files compared, {bad} differences")
    sys.exit(1 if bad else 0)


main()
