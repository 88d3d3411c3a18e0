//! Schema formats: parsing a submitted schema into its stored (canonical) text, and the
//! compatibility check between two schemas of a format.
//!
//! Avro, JSON Schema and Protobuf, each with the compatibility rules Confluent's registry
//! applies to it.

use std::fmt;

mod avro;
mod json;
mod proto;
mod proto_text;

/// A schema's type, as the REST API and the `_schemas` records name it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SchemaType {
    #[default]
    Avro,
    Json,
    Protobuf,
}

impl SchemaType {
    pub fn name(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }

    /// Confluent's names, in any case.
    pub fn parse(s: &str) -> Option<SchemaType> {
        match s.to_ascii_uppercase().as_str() {
            "AVRO" => Some(SchemaType::Avro),
            "JSON" => Some(SchemaType::Json),
            "PROTOBUF" => Some(SchemaType::Protobuf),
            _ => None,
        }
    }

    pub fn is_avro(&self) -> bool {
        *self == SchemaType::Avro
    }

    /// The types this registry can register (`GET /schemas/types`).
    pub fn supported() -> &'static [SchemaType] {
        &[SchemaType::Avro, SchemaType::Json, SchemaType::Protobuf]
    }
}

impl fmt::Display for SchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Serde as the type's name (`"AVRO"` …).
pub mod schema_type_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::SchemaType;

    pub fn serialize<S: Serializer>(t: &SchemaType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(t.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SchemaType, D::Error> {
        let s = String::deserialize(d)?;
        SchemaType::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown schema type {s}")))
    }
}

/// A referenced schema, resolved: the name the referring schema uses and its text.
#[derive(Clone, Debug)]
pub struct Dependency {
    pub name: String,
    pub schema_type: SchemaType,
    pub schema: String,
}

/// A schema parsed and checked.
#[derive(Clone, Debug)]
pub struct ParsedSchema {
    pub schema_type: SchemaType,
    /// The text stored and served: one form per schema, so that the same schema
    /// registered twice is recognised whatever its whitespace.
    pub canonical: String,
    inner: Inner,
}

#[derive(Clone, Debug)]
enum Inner {
    Avro(Box<apache_avro::Schema>),
    Json(Box<json::JsonSchema>),
    Proto(Box<proto::ProtoSchema>),
}

/// Parses `text` as a schema of type `t`; `deps` are its references, resolved
/// (transitively, dependencies first). The error is the parser's message.
pub fn parse(t: SchemaType, text: &str, deps: &[Dependency]) -> Result<ParsedSchema, String> {
    match t {
        SchemaType::Avro => {
            let (schema, canonical) = avro::parse(text, deps)?;
            Ok(ParsedSchema {
                schema_type: t,
                canonical,
                inner: Inner::Avro(Box::new(schema)),
            })
        }
        SchemaType::Json => {
            let (schema, canonical) = json::parse(text, deps)?;
            Ok(ParsedSchema {
                schema_type: t,
                canonical,
                inner: Inner::Json(Box::new(schema)),
            })
        }
        SchemaType::Protobuf => {
            let (schema, canonical) = proto::parse(text, deps)?;
            Ok(ParsedSchema {
                schema_type: t,
                canonical,
                inner: Inner::Proto(Box::new(schema)),
            })
        }
    }
}

impl ParsedSchema {
    /// The schema in Confluent's `serialized` format, where its type has one (Protobuf:
    /// the base64 `FileDescriptorProto`).
    pub fn serialized(&self) -> Option<String> {
        match &self.inner {
            Inner::Proto(p) => p.serialized(),
            _ => None,
        }
    }

    /// Whether data written with `writer` can be read with `self` (Confluent's
    /// `isBackwardCompatible(previous)` with `self` new, `writer` previous): the reasons
    /// it cannot, empty when it can.
    pub fn can_read(&self, writer: &ParsedSchema) -> Vec<String> {
        if self.schema_type != writer.schema_type {
            return vec!["Incompatible because of different schema type".to_string()];
        }
        match (&self.inner, &writer.inner) {
            (Inner::Avro(reader), Inner::Avro(w)) => avro::can_read(reader, w),
            (Inner::Json(reader), Inner::Json(w)) => json::can_read(reader, w),
            (Inner::Proto(reader), Inner::Proto(w)) => proto::can_read(reader, w),
            _ => vec!["Incompatible because of different schema type".to_string()],
        }
    }
}
