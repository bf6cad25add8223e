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

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format


def raw_files(path):
    s = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        s.ParseFromString(f.read())
    return s.file


def canonical_class(files):
    """FileDescriptorProto as a pool built from the set itself knows it: option extensions
    (google.api.http, field_behavior, ...) are then known fields, so canonical encoding sorts
    them and applies their declared packedness, whatever order each tool wrote them in."""
    pool = descriptor_pool.DescriptorPool()
    for f in files:
        try:
            pool.Add(f)
        except Exception:  # a file the pool cannot take: compare it without extensions
            pass
    try:
        return message_factory.GetMessageClass(
            pool.FindMessageTypeByName("google.protobuf.FileDescriptorProto"))
    except KeyError:
        return descriptor_pb2.FileDescriptorProto


def load(path, cls):
    out = {}
    for f in raw_files(path):
        c = cls()
        c.ParseFromString(f.SerializeToString())
        out[f.name] = c
    return out


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
    return any(path[:n] in ours_paths for n in range(2, len(path)))


def main():
    cls = canonical_class(raw_files(sys.argv[2]))
    ours, theirs = load(sys.argv[1], cls), load(sys.argv[2], cls)
    names = sys.argv[3:] or sorted(theirs)
    bad = 0
    for name in names:
        a, b = ours.get(name), theirs.get(name)
        if a is None or b is None:
            print(f"{name}: missing from {'ours' if a is None else 'theirs'}")
            bad += 1
            continue
        la, lb = a.source_code_info.location, b.source_code_info.location
        a2, b2 = cls(), cls()
        a2.CopyFrom(a)
        b2.CopyFrom(b)
        a2.ClearField("source_code_info")
        b2.ClearField("source_code_info")
        if a2.SerializeToString(deterministic=True) != b2.SerializeToString(deterministic=True):
            bad += 1
            ta, tb = text_format.MessageToString(a2), text_format.MessageToString(b2)
            print(f"{name}: descriptors differ")
            if bad <= 5:  # a few full diffs; the rest are only named
                diff = difflib.unified_diff(ta.splitlines(True), tb.splitlines(True), "protoreg", "buf", n=2)
                print("".join(list(diff)[:60]))
        option_paths = {tuple(l.path) for l in la if len(l.path) >= 2}
        ka = sorted(map(key, la))
        ka_set = set(ka)
        kb = sorted(key(l) for l in lb if key(l) in ka_set or not inside_aggregate(l, option_paths))
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
