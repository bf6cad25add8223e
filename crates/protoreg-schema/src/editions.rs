//! Editions files around the linker: how their descriptors are marked once linked
//! (`syntax = "editions"`; the edition number is kept on the `ImageFile`, since prost-types
//! has no `edition` field), and the feature-extension files
//! (`google/protobuf/{cpp,java}_features.proto`) that protox does not bundle.

use prost_types::FileDescriptorProto;

/// `EDITION_2023` of `google.protobuf.Edition`.
pub const EDITION_2023: i32 = 1000;

/// Marks a linked descriptor (presented to prost-reflect as proto2) as the editions file it is.
/// (prost-types has no `edition` field: the edition is kept on the `ImageFile` and added
/// back when the image is encoded.)
pub(crate) fn mark(proto: &mut FileDescriptorProto) {
    proto.syntax = Some("editions".to_string());
}

/// The feature-extension files protox does not bundle.
pub(crate) fn bundled(name: &str) -> Option<&'static str> {
    match name {
        "google/protobuf/cpp_features.proto" => Some(CPP_FEATURES),
        "google/protobuf/java_features.proto" => Some(JAVA_FEATURES),
        _ => None,
    }
}

const CPP_FEATURES: &str = r#"syntax = "proto2";
package pb;
import "google/protobuf/descriptor.proto";
option java_package = "com.google.protobuf";
option java_outer_classname = "CppFeaturesOuterClass";
extend google.protobuf.FeatureSet {
  optional CppFeatures cpp = 1000;
}
message CppFeatures {
  optional bool legacy_closed_enum = 1;
  enum StringType {
    STRING_TYPE_UNKNOWN = 0;
    VIEW = 1;
    CORD = 2;
    STRING = 3;
  }
  optional StringType string_type = 2;
  optional bool enable_lazy_initialization = 3;
}
"#;

const JAVA_FEATURES: &str = r#"syntax = "proto2";
package pb;
import "google/protobuf/descriptor.proto";
option java_package = "com.google.protobuf";
option java_outer_classname = "JavaFeaturesProto";
extend google.protobuf.FeatureSet {
  optional JavaFeatures java = 1001;
}
message JavaFeatures {
  optional bool legacy_closed_enum = 1;
  enum Utf8Validation {
    UTF8_VALIDATION_UNKNOWN = 0;
    DEFAULT = 1;
    VERIFY = 2;
  }
  optional Utf8Validation utf8_validation = 2;
  optional bool large_enum = 3;
  optional bool use_old_outer_classname_default = 4;
  optional bool nest_in_file_class = 5;
}
"#;
