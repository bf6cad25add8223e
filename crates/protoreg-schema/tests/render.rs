//! `.proto` text rendered from compiled descriptors compiles back to the same descriptors
//! (source info aside), over a file exercising every construct the renderer writes and
//! over the example estate; and what it cannot write back is refused, never dropped.

use std::collections::BTreeMap;

use prost::Message;
use protoreg_schema::SourceSet;
use protoreg_schema::render::{RenderError, render_encoded};

const EVERYTHING_PROTO2: &str = r#"syntax = "proto2";
package demo.v2;

import "google/protobuf/timestamp.proto";

option java_package = "com.example.demo";
option java_multiple_files = true;
option optimize_for = CODE_SIZE;
option go_package = "example.com/demo;demo";

message Outer {
  option deprecated = true;
  required string id = 1;
  optional int32 count = 2 [default = -7];
  optional string name = 3 [default = "a \"quoted\"\n\tname\\"];
  optional bytes blob = 4 [default = "\001\377x"];
  optional double ratio = 5 [default = inf];
  optional float tiny = 6 [default = -1.5e-3];
  optional Kind kind = 7 [default = KIND_B];
  repeated int32 packed_numbers = 8 [packed = true];
  repeated int64 plain = 9 [deprecated = true, jstype = JS_STRING];
  optional string renamed = 10 [json_name = "other"];
  map<string, Inner> inners = 11;
  optional group Legacy = 12 {
    optional int32 a = 13;
  }
  oneof choice {
    string text = 14;
    Inner inner = 15;
  }
  optional .google.protobuf.Timestamp at = 16;
  extensions 100 to 199, 1000 to max;
  reserved 20, 22 to 25;
  reserved "gone", "old";
  message Inner {
    optional string v = 1;
    enum Level {
      LEVEL_UNKNOWN = 0;
    }
  }
  enum Kind {
    option allow_alias = true;
    KIND_A = 0;
    KIND_B = 1;
    KIND_BB = 1 [deprecated = true];
    reserved 5 to 9, 100;
    reserved "KIND_OLD";
  }
  extend Outer {
    optional string nested_ext = 150;
  }
}

extend Outer {
  optional int64 top_ext = 1000;
  repeated string more = 1001;
}

service Things {
  option deprecated = true;
  rpc Get(Outer) returns (Outer);
  rpc Watch(Outer) returns (stream Outer) {
    option idempotency_level = NO_SIDE_EFFECTS;
  }
  rpc Upload(stream Outer.Inner) returns (Outer);
  rpc Chat(stream Outer) returns (stream Outer) {
    option deprecated = true;
  }
}
"#;

const EVERYTHING_PROTO3: &str = r#"syntax = "proto3";
package demo.v3;

import public "demo/v2/all.proto";

message Thing {
  string id = 1;
  optional int32 maybe = 2;
  repeated demo.v2.Outer outers = 3;
  map<int64, demo.v2.Outer.Kind> kinds = 4;
  oneof pick {
    bool yes = 5;
    uint64 n = 6;
  }
  optional string also = 7;
  bytes raw = 8;
  sint32 s32 = 9;
  sfixed64 sf64 = 10;
  fixed32 f32 = 11;
}

enum Top {
  TOP_UNSPECIFIED = 0;
  TOP_ONE = 1;
}
"#;

/// Compiles `files`, renders each of them from its compiled descriptor, compiles the
/// rendered texts, and compares the two descriptor sets file by file.
fn round_trip(files: BTreeMap<String, String>) {
    let compile = |files: &BTreeMap<String, String>| {
        SourceSet::from_memory(
            files
                .iter()
                .map(|(p, t)| (p.clone(), t.clone().into_bytes())),
            "",
        )
        .unwrap()
        .compile()
        .unwrap_or_else(|e| panic!("{e}\n{files:#?}"))
    };
    let first = compile(&files);
    let mut rendered = BTreeMap::new();
    for f in first.files.iter().filter(|f| !f.is_import) {
        let mut proto = (*f.proto).clone();
        proto.source_code_info = None;
        let (text, _) = render_encoded(&proto.encode_to_vec())
            .unwrap_or_else(|e| panic!("{}: {e}", proto.name()));
        rendered.insert(proto.name().to_string(), text);
    }
    let second = compile(&rendered);
    for f in first.files.iter().filter(|f| !f.is_import) {
        let mut a = (*f.proto).clone();
        a.source_code_info = None;
        let b = second
            .files
            .iter()
            .find(|g| g.proto.name() == a.name())
            .unwrap();
        let mut b = (*b.proto).clone();
        b.source_code_info = None;
        assert_eq!(
            a,
            b,
            "{} differs after rendering:\n{}",
            a.name(),
            rendered[a.name()]
        );
    }
}

#[test]
fn every_construct_round_trips() {
    round_trip(BTreeMap::from([
        (
            "demo/v2/all.proto".to_string(),
            EVERYTHING_PROTO2.to_string(),
        ),
        (
            "demo/v3/thing.proto".to_string(),
            EVERYTHING_PROTO3.to_string(),
        ),
    ]));
}

#[test]
fn the_example_estate_round_trips() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto-examples");
    let mut files = BTreeMap::new();
    for module in ["common", "orders", "payments", "users"] {
        let dir = root.join(module);
        let set = SourceSet::from_dir(&dir, "").unwrap();
        for f in set.files.values() {
            files.insert(f.name.clone(), f.text.clone().unwrap().to_string());
        }
    }
    assert!(files.len() >= 4, "{files:?}");
    round_trip(files);
}

#[test]
fn what_cannot_be_written_back_is_refused() {
    // A custom option (an unknown field 50000 in MessageOptions) would be dropped.
    let set = SourceSet::from_memory(
        [(
            "a.proto".to_string(),
            br#"syntax = "proto3";
import "google/protobuf/descriptor.proto";
extend google.protobuf.MessageOptions { string table = 50000; }
message A { option (table) = "a"; string x = 1; }
"#
            .to_vec(),
        )],
        "",
    )
    .unwrap()
    .compile()
    .unwrap();
    let bytes = set_with_options(&set, "a.proto");
    // Decoded, it still is a descriptor of a.proto: only the re-encoding shows the loss.
    let decoded = prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap();
    assert_eq!(decoded.name(), "a.proto");
    assert_eq!(
        render_encoded(&bytes).unwrap_err(),
        RenderError::Unrepresentable
    );
    assert!(matches!(
        render_encoded(b"\xff\xff\xff").unwrap_err(),
        RenderError::Decode(_)
    ));
}

/// The encoded descriptor of `name` with every option as written (custom ones included).
fn set_with_options(image: &protoreg_schema::Image, name: &str) -> Vec<u8> {
    let bytes = image
        .encode(protoreg_schema::OutputFormat::Binary, false, false)
        .unwrap();
    let set = prost_types::FileDescriptorSet::decode(bytes.as_slice()).unwrap();
    let index = set.file.iter().position(|f| f.name() == name).unwrap();
    // The raw file, not a prost-types re-encoding (which would drop the option).
    let fields = protoreg_schema::wire::fields(&bytes).unwrap();
    let mut raw = fields[index].1;
    prost::encoding::decode_key(&mut raw).unwrap();
    let len = prost::encoding::decode_varint(&mut raw).unwrap() as usize;
    assert_eq!(len, raw.len());
    raw.to_vec()
}
