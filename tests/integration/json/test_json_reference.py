#!/usr/bin/env python3
"""json_pb (lib/json_pb*.c) against the reference implementation of the
proto3 JSON mapping: Debian's python3-protobuf json_format, over the same
test protos (tests/unit/json/*.proto). For every JSON case:
  - JSON -> wire by json_pb parses (with Python) to the message json_format
    makes of the same JSON;
  - the wire Python writes for it decodes, by json_pb, to the JSON
    json_format prints (compared as parsed JSON, so only formatting may
    differ), with and without emit-defaults and proto names;
  - input json_format refuses, json_pb refuses too."""
import json
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../lib"))

import rpchost_test as rt  # noqa: E402
from google.protobuf import json_format  # noqa: E402

PROTO_DIR = os.path.join(rt.SOURCE_DIR, "tests/unit/json")
CLI = os.path.join(rt.BUILD_DIR, "bin/json_pb_cli")
jt = rt.proto_module("jsontest.proto", [PROTO_DIR])
jo = rt.proto_module("jsontest_optional.proto", [PROTO_DIR])
rides = rt.proto_module("rides.proto", [os.path.join(rt.SOURCE_DIR, "plugins/rides")])

CLASSES = {"StartRequest": rides.StartRequest, "Optionals": jo.Optionals}
for _n in ("Scalars", "Repeats", "Maps", "Oneofs", "Wkt", "Names", "Inner"):
    CLASSES[_n] = getattr(jt, _n)


def full(name):
    return name if name == "StartRequest" else "rpchost.jsontest." + name


def cli(type_name, op, data, *flags):
    p = subprocess.run([CLI, full(type_name), op] + list(flags), input=data,
                       capture_output=True, timeout=30)
    return p.returncode, p.stdout, p.stderr.decode().strip()


OK = [
    ("StartRequest", '{"car_id": 7, "driver_id": "Bond", "passenger_ids": ["M", "Q"], '
                     '"type": "POOL", "location": {"lat": 51.4871871, "lng": -0.1266743}, '
                     '"time": "2022-02-20T15:08:07.915156117+00:00"}'),
    ("StartRequest", '{"carId": "-9223372036854775808", "type": 1}'),
    ("Scalars", '{"fDouble": -2.5e-3, "fFloat": 0.1, "fInt32": -42, "fInt64": "123",'
                ' "fUint32": 4294967295, "fUint64": "18446744073709551615",'
                ' "fSint32": -2147483648, "fSint64": "9223372036854775807", "fFixed32": 7,'
                ' "fFixed64": "9007199254740993", "fSfixed32": -7, "fSfixed64": "-1",'
                ' "fBool": true, "fString": "h\\u00e9\\n\\u0000", "fBytes": "AAEC/w==",'
                ' "fEnum": "GREEN", "fInner": {"a": 1, "b": "x", "level": "HIGH"}}'),
    ("Scalars", '{"fDouble": "NaN", "fFloat": "-Infinity", "fInt32": "12", "fInt64": 13}'),
    ("Scalars", '{"fDouble": 1e308, "fFloat": 3.4028234e38, "fEnum": "NEGATIVE"}'),
    ("Scalars", '{"fDouble": 0.30000000000000004, "fFloat": 1e-40, "fUint64": 1e3}'),
    ("Scalars", '{"fBytes": "-_8", "fEnum": 77}'),
    ("Scalars", '{"fInt32": 0, "fString": "", "fInner": {}}'),
    ("Scalars", '{}'),
    ("Repeats", '{"rInt32": [1, -2, 300], "rInt64": ["5", 6], "rDouble": [0.5, "NaN"],'
                ' "rString": ["a", ""], "rBytes": ["AA=="], "rEnum": ["RED", 2, "NEGATIVE"],'
                ' "rMsg": [{"a": 1}, {}, {"children": [{"b": "z"}]}], "rSint64": ["-1"],'
                ' "rFixed32": [1, 2], "rBool": [true, false], "rFloat": [1.5],'
                ' "rUnpacked": [7, 8]}'),
    ("Maps", '{"strInt": {"a": 1, "b": 0}, "int64Str": {"-5": "x"},'
             ' "boolMsg": {"true": {"a": 2}, "false": {}}, "u32Enum": {"7": "GREEN"},'
             ' "strValue": {"n": null, "l": [1, "s", {"x": false}]},'
             ' "s32Bytes": {"-1": "AQ=="}}'),
    ("Oneofs", '{"name": ""}'),
    ("Oneofs", '{"number": 0, "plain": "p"}'),
    ("Oneofs", '{"inner": {"a": 3}}'),
    ("Oneofs", '{"val": null}'),
    ("Oneofs", '{"val": {"deep": [1, [2, {}]]}}'),
    ("Optionals", '{"optInt": 0, "optString": "", "plain": 0}'),
    ("Optionals", '{}'),
    ("Names", '{"snake_case_name": 1, "renamed": 2, "already_camelCase": 3}'),
    ("Names", '{"snakeCaseName": 1, "custom": 2, "alreadyCamelCase": 3}'),
    ("Wkt", '{"ts": "2022-02-20T16:08:07.9+01:00", "dur": "-1.000000001s",'
            ' "wDouble": 1.25, "wFloat": 2.5, "wInt64": "-3", "wUint64": "4",'
            ' "wInt32": -5, "wUint32": 6, "wBool": false, "wString": "", "wBytes": "AQI=",'
            ' "st": {"a": 1, "b": [true, null, "x", {"c": -0.5}], "d": {}},'
            ' "val": 0, "list": [[], {}, 2.5], "empty": {}, "mask": "fInt32,fInner.someField",'
            ' "rTs": ["1970-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z",'
            ' "0001-01-01T00:00:00Z", "1969-12-31T23:59:59.123Z"], "nullV": null}'),
    ("Wkt", '{"dur": "315576000000s", "ts": "2000-02-29T23:59:59.000001Z"}'),
    ("Wkt", '{"dur": "0.5s", "val": "", "wInt32": 0}'),
    ("Wkt", '{"any": {"@type": "type.googleapis.com/rpchost.jsontest.Inner", "a": 5,'
            ' "level": "HIGH"}}'),
    ("Wkt", '{"any": {"@type": "type.googleapis.com/google.protobuf.Duration",'
            ' "value": "2s"}}'),
    ("Wkt", '{"any": {"@type": "type.googleapis.com/google.protobuf.Struct",'
            ' "value": {"k": [1]}}}'),
]

# Refused by json_format; json_pb must refuse them as well.
BAD = [
    ("StartRequest", '{"location": {"latt": 1}}'),
    ("StartRequest", '{"type": "BUS"}'),
    ("StartRequest", '{"time": "2022-02-20 15:08:07Z"}'),
    ("StartRequest", '{"time": "2022-02-30T15:08:07Z"}'),
    ("StartRequest", '{"passenger_ids": "M"}'),
    ("Scalars", '{"fInt32": 2147483648}'),
    ("Scalars", '{"fInt32": 1.5}'),
    ("Scalars", '{"fUint32": -1}'),
    ("Scalars", '{"fBool": "true"}'),
    ("Scalars", '{"fString": 5}'),
    ("Scalars", '{"fInner": "x"}'),
    ("Scalars", '{"fFloat": 1e39}'),
    ("Scalars", '{"fInt64": "9223372036854775808"}'),
    ("Repeats", '{"rInt32": [null]}'),
    ("Maps", '{"int64Str": {"abc": "x"}}'),
    ("Maps", '{"boolMsg": {"yes": {}}}'),
    ("Oneofs", '{"name": "a", "number": 1}'),
    ("Wkt", '{"dur": "1.5"}'),
    ("Wkt", '{"dur": "315576000001s"}'),
    ("Wkt", '{"ts": "0000-12-31T23:59:59Z"}'),
    ("Wkt", '{"any": {"a": 1}}'),
    ("Wkt", '{"any": {"@type": "t/no.Such"}}'),
]


# Refused by json_pb though json_format lets them through: base64 with
# characters outside both alphabets (Python drops them silently) and one
# field given under both of its names (protobuf's C++ parser refuses it).
STRICTER = [
    ("Scalars", '{"fBytes": "a*b="}'),
    ("Names", '{"snakeCaseName": 1, "snake_case_name": 2}'),
]

# Float fields: both sides print a text that reads back as the same float;
# Python starts its search at 6 digits, json_pb finds the shortest (1e-40
# rather than 9.99995e-41 for a subnormal), so compare them as floats.
FLOAT_KEYS = {"fFloat", "f_float", "rFloat", "r_float", "wFloat", "w_float"}


def as_f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def same_json(a, b, key=None):
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k], k) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y, key) for x, y in zip(a, b))
    if key in FLOAT_KEYS and isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return as_f32(a) == as_f32(b)
    return a == b and type(a) is type(b) or (
        isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == b)


def wire(msg):
    return msg.SerializeToString(deterministic=True)


def py_parse(type_name, text):
    return json_format.Parse(text, CLASSES[type_name]())


def check_ok(type_name, text):
    ref = py_parse(type_name, text)
    rc, data, err = cli(type_name, "encode", text.encode())
    assert rc == 0, "json_pb refused what json_format accepts: %s" % err
    got = CLASSES[type_name].FromString(data)
    # Compared as Python's deterministic serialization: NaN != NaN as fields.
    assert wire(got) == wire(ref), \
        "encoded differently:\n json_pb   %s\n json_format %s" % (got, ref)
    py_wire = ref.SerializeToString()
    for flags, kw in (((), {}),
                      (("--emit-defaults",), {"including_default_value_fields": True}),
                      (("--proto-names",), {"preserving_proto_field_name": True})):
        rc, out, err = cli(type_name, "decode", py_wire, *flags)
        assert rc == 0, "json_pb cannot decode Python's wire: %s" % err
        mine = json.loads(out)
        theirs = json.loads(json_format.MessageToJson(ref, **kw))
        assert same_json(mine, theirs), "decoded %s differently:\n json_pb     %s\n json_format %s" % (
            flags, json.dumps(mine, sort_keys=True), json.dumps(theirs, sort_keys=True))


def check_bad(type_name, text):
    try:
        py_parse(type_name, text)
    except json_format.ParseError:
        pass
    else:
        raise AssertionError("json_format accepts this case: fix the test")
    rc, _, err = cli(type_name, "encode", text.encode())
    assert rc == 1 and err, "json_pb accepted %s" % text


def check_stricter(type_name, text):
    py_parse(type_name, text)  # accepted there
    rc, _, err = cli(type_name, "encode", text.encode())
    assert rc == 1 and err, "json_pb accepted %s" % text


def main():
    if not os.path.exists(CLI):
        print("json_pb_cli not built: %s" % CLI)
        sys.exit(1)
    r = rt.Results()
    for i, (t, text) in enumerate(OK):
        r.run("same as json_format: %s #%d" % (t, i), check_ok, t, text)
    for i, (t, text) in enumerate(BAD):
        r.run("refused like json_format: %s #%d" % (t, i), check_bad, t, text)
    for i, (t, text) in enumerate(STRICTER):
        r.run("refused, stricter than json_format: %s #%d" % (t, i), check_stricter, t, text)
    r.finish()


if __name__ == "__main__":
    main()
