//! Field numbers of `google/protobuf/descriptor.proto`, as used in source-info paths.

pub const FILE_NAME: i32 = 1;
pub const FILE_PACKAGE: i32 = 2;
pub const FILE_DEPENDENCY: i32 = 3;
pub const FILE_MESSAGE: i32 = 4;
pub const FILE_ENUM: i32 = 5;
pub const FILE_SERVICE: i32 = 6;
pub const FILE_EXTENSION: i32 = 7;
pub const FILE_OPTIONS: i32 = 8;
pub const FILE_SOURCE_CODE_INFO: i32 = 9;
pub const FILE_PUBLIC_DEPENDENCY: i32 = 10;
pub const FILE_WEAK_DEPENDENCY: i32 = 11;
pub const FILE_SYNTAX: i32 = 12;
pub const FILE_EDITION: i32 = 14;
pub const FILE_OPTION_DEPENDENCY: i32 = 15;

pub const MSG_NAME: i32 = 1;
pub const MSG_FIELD: i32 = 2;
pub const MSG_NESTED: i32 = 3;
pub const MSG_ENUM: i32 = 4;
pub const MSG_EXTENSION_RANGE: i32 = 5;
pub const MSG_EXTENSION: i32 = 6;
pub const MSG_OPTIONS: i32 = 7;
pub const MSG_ONEOF: i32 = 8;
pub const MSG_RESERVED_RANGE: i32 = 9;
pub const MSG_RESERVED_NAME: i32 = 10;
pub const MSG_VISIBILITY: i32 = 11;

pub const EXT_RANGE_OPTIONS: i32 = 3;

pub const FIELD_NAME: i32 = 1;
pub const FIELD_EXTENDEE: i32 = 2;
pub const FIELD_NUMBER: i32 = 3;
pub const FIELD_LABEL: i32 = 4;
pub const FIELD_TYPE: i32 = 5;
pub const FIELD_TYPE_NAME: i32 = 6;
pub const FIELD_DEFAULT: i32 = 7;
pub const FIELD_OPTIONS: i32 = 8;
pub const FIELD_JSON_NAME: i32 = 10;

pub const ONEOF_NAME: i32 = 1;
pub const ONEOF_OPTIONS: i32 = 2;

pub const ENUM_NAME: i32 = 1;
pub const ENUM_VALUE: i32 = 2;
pub const ENUM_OPTIONS: i32 = 3;
pub const ENUM_RESERVED_RANGE: i32 = 4;
pub const ENUM_RESERVED_NAME: i32 = 5;
pub const ENUM_VISIBILITY: i32 = 6;

pub const VALUE_NAME: i32 = 1;
pub const VALUE_NUMBER: i32 = 2;
pub const VALUE_OPTIONS: i32 = 3;

pub const SERVICE_NAME: i32 = 1;
pub const SERVICE_METHOD: i32 = 2;
pub const SERVICE_OPTIONS: i32 = 3;

pub const METHOD_NAME: i32 = 1;
pub const METHOD_INPUT: i32 = 2;
pub const METHOD_OUTPUT: i32 = 3;
pub const METHOD_OPTIONS: i32 = 4;
pub const METHOD_CLIENT_STREAMING: i32 = 5;
pub const METHOD_SERVER_STREAMING: i32 = 6;

/// `uninterpreted_option` in every `*Options` message.
pub const UNINTERPRETED: i32 = 999;
