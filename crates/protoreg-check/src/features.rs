//! Resolved features (editions) and their proto2/proto3 equivalents, as buf resolves them.

use prost::Message;
use prost_types::FieldDescriptorProto;
use protoreg_schema::{Image, ImageFile, wire};

/// A file's syntax; editions carry their `google.protobuf.Edition` number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    Proto2,
    Proto3,
    Editions(i32),
}

impl Syntax {
    pub fn of(f: &ImageFile) -> Self {
        match (f.edition, f.proto.syntax()) {
            (Some(ed), _) => Syntax::Editions(ed),
            (None, "proto3") => Syntax::Proto3,
            (None, "editions") => Syntax::Editions(1000),
            _ => Syntax::Proto2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Syntax::Proto2 => "proto2",
            Syntax::Proto3 => "proto3",
            Syntax::Editions(_) => "editions",
        }
    }
}

pub const PRESENCE_EXPLICIT: i32 = 1;
pub const PRESENCE_IMPLICIT: i32 = 2;
pub const PRESENCE_LEGACY_REQUIRED: i32 = 3;
pub const ENUM_CLOSED: i32 = 2;
pub const UTF8_VERIFY: i32 = 2;
pub const ENCODING_DELIMITED: i32 = 2;
pub const JSON_ALLOW: i32 = 1;
/// `pb.CppFeatures.StringType`.
pub const CPP_STRING: i32 = 3;
pub const CPP_VIEW: i32 = 1;
/// `pb.JavaFeatures.Utf8Validation`.
pub const JAVA_VERIFY: i32 = 2;

/// The features the breaking rules read, resolved for one element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Features {
    pub presence: i32,
    pub enum_type: i32,
    pub utf8: i32,
    pub encoding: i32,
    pub json: i32,
    pub cpp_string_type: i32,
    pub java_utf8: i32,
}

impl Features {
    /// The defaults of a syntax or edition (descriptor.proto's `edition_defaults`).
    pub fn defaults(syntax: Syntax) -> Self {
        match syntax {
            Syntax::Proto2 => Features {
                presence: PRESENCE_EXPLICIT,
                enum_type: ENUM_CLOSED,
                utf8: 3,
                encoding: 1,
                json: 2,
                cpp_string_type: CPP_STRING,
                java_utf8: 1,
            },
            Syntax::Proto3 => Features {
                presence: PRESENCE_IMPLICIT,
                enum_type: 1,
                utf8: UTF8_VERIFY,
                encoding: 1,
                json: JSON_ALLOW,
                cpp_string_type: CPP_STRING,
                java_utf8: 1,
            },
            Syntax::Editions(ed) => Features {
                presence: PRESENCE_EXPLICIT,
                enum_type: 1,
                utf8: UTF8_VERIFY,
                encoding: 1,
                json: JSON_ALLOW,
                cpp_string_type: if ed >= 1001 { CPP_VIEW } else { CPP_STRING },
                java_utf8: 1,
            },
        }
    }

    /// Overlays the `features` field (number `field`) of an encoded options message.
    /// `utf8_none` is the number of `NONE` in the compiler's `Utf8Validation` (older copies
    /// of descriptor.proto number it 1, newer ones 3); it is normalised to 3.
    fn overlay(mut self, options: &[u8], field: u32, utf8_none: i32) -> Self {
        let Some(parts) = wire::fields(options) else {
            return self;
        };
        for (tag, bytes, _) in parts {
            if tag != field {
                continue;
            }
            let Some(set) = wire::fields(payload(bytes)) else {
                continue;
            };
            for (t, b, v) in set {
                match (t, v) {
                    (1, Some(v)) => self.presence = v as i32,
                    (2, Some(v)) => self.enum_type = v as i32,
                    (4, Some(v)) => {
                        // 1 is NONE in older copies of descriptor.proto and reserved in
                        // newer ones, so it always means NONE.
                        self.utf8 = if v as i32 == utf8_none || v == 1 {
                            3
                        } else {
                            v as i32
                        }
                    }
                    (5, Some(v)) => self.encoding = v as i32,
                    (6, Some(v)) => self.json = v as i32,
                    (1000 | 1001, None) => {
                        for (ft, _, fv) in wire::fields(payload(b)).unwrap_or_default() {
                            if let (2, Some(fv)) = (ft, fv) {
                                if t == 1000 {
                                    self.cpp_string_type = fv as i32;
                                } else {
                                    self.java_utf8 = fv as i32;
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        self
    }
}

/// The payload of a length-delimited field (key and length stripped).
pub(crate) fn payload(mut field: &[u8]) -> &[u8] {
    let _ = prost::encoding::decode_key(&mut field);
    let _ = prost::encoding::decode_varint(&mut field);
    field
}

const FILE_FEATURES: u32 = 50;
const MESSAGE_FEATURES: u32 = 12;
const FIELD_FEATURES: u32 = 21;
const ENUM_FEATURES: u32 = 7;

/// Overlays an element's `features` option on its parent's features (editions only:
/// proto2 and proto3 cannot set features).
fn resolve(
    image: &Image,
    syntax: Syntax,
    parent: Features,
    features_field: u32,
    options: impl FnOnce() -> Option<prost_reflect::DynamicMessage>,
) -> Features {
    if !matches!(syntax, Syntax::Editions(_)) {
        return parent;
    }
    match options() {
        Some(o) => parent.overlay(&o.encode_to_vec(), features_field, utf8_none(image)),
        None => parent,
    }
}

pub(crate) fn for_file(image: &Image, f: &ImageFile, syntax: Syntax) -> Features {
    resolve(
        image,
        syntax,
        Features::defaults(syntax),
        FILE_FEATURES,
        || {
            image
                .pool
                .get_file_by_name(f.proto.name())
                .map(|x| x.options())
        },
    )
}

pub(crate) fn for_message(image: &Image, syntax: Syntax, full: &str, parent: Features) -> Features {
    resolve(image, syntax, parent, MESSAGE_FEATURES, || {
        image.pool.get_message_by_name(full).map(|x| x.options())
    })
}

pub(crate) fn for_enum(image: &Image, syntax: Syntax, full: &str, parent: Features) -> Features {
    resolve(image, syntax, parent, ENUM_FEATURES, || {
        image.pool.get_enum_by_name(full).map(|x| x.options())
    })
}

pub(crate) fn for_field(
    image: &Image,
    syntax: Syntax,
    scope: &str,
    fd: &FieldDescriptorProto,
    is_extension: bool,
    parent: Features,
) -> Features {
    resolve(image, syntax, parent, FIELD_FEATURES, || {
        if is_extension {
            let full = if scope.is_empty() {
                fd.name().to_string()
            } else {
                format!("{scope}.{}", fd.name())
            };
            image.pool.get_extension_by_name(&full).map(|x| x.options())
        } else {
            image
                .pool
                .get_message_by_name(scope)
                .and_then(|m| m.get_field_by_name(fd.name()))
                .map(|x| x.options())
        }
    })
}

/// The number of `google.protobuf.FeatureSet.Utf8Validation.NONE` in the image's pool.
fn utf8_none(image: &Image) -> i32 {
    image
        .pool
        .get_enum_by_name("google.protobuf.FeatureSet.Utf8Validation")
        .and_then(|e| e.get_value_by_name("NONE"))
        .map(|v| v.number())
        .unwrap_or(3)
}
