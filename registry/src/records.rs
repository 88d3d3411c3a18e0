//! The records of the `_schemas` topic, as Confluent Schema Registry writes them: keys
//! and values are compact JSON, the key's `keytype` says what the record is, a null value
//! deletes the key (the topic is compacted, so the last record of a key is its state).
//!
//! | keytype | key | value |
//! | --- | --- | --- |
//! | `SCHEMA` | subject, version, magic 1 | subject, version, id, schemaType (absent for AVRO), references, schema, deleted |
//! | `CONFIG` | subject (absent: global), magic 0 | compatibilityLevel |
//! | `MODE` | subject (absent: global), magic 0 | mode |
//! | `DELETE_SUBJECT` | subject, magic 0 | subject, version (the highest deleted) |
//! | `CLEAR_SUBJECT` | subject, magic 0 | subject |
//! | `NOOP` | magic 0 | none |

use serde::{Deserialize, Serialize};

use crate::format::SchemaType;

/// A record's key. Serialized with `keytype` first, as Confluent orders its fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "keytype")]
pub enum Key {
    #[serde(rename = "SCHEMA")]
    Schema {
        subject: String,
        version: i32,
        #[serde(default = "one")]
        magic: i32,
    },
    #[serde(rename = "CONFIG")]
    Config {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        #[serde(default)]
        magic: i32,
    },
    #[serde(rename = "MODE")]
    Mode {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        #[serde(default)]
        magic: i32,
    },
    #[serde(rename = "DELETE_SUBJECT")]
    DeleteSubject {
        subject: String,
        #[serde(default)]
        magic: i32,
    },
    #[serde(rename = "CLEAR_SUBJECT")]
    ClearSubject {
        subject: String,
        #[serde(default)]
        magic: i32,
    },
    #[serde(rename = "NOOP")]
    Noop {
        #[serde(default)]
        magic: i32,
    },
}

fn one() -> i32 {
    1
}

impl Key {
    pub fn schema(subject: &str, version: i32) -> Key {
        Key::Schema {
            subject: subject.to_string(),
            version,
            magic: 1,
        }
    }

    pub fn config(subject: Option<&str>) -> Key {
        Key::Config {
            subject: subject.map(str::to_string),
            magic: 0,
        }
    }

    pub fn mode(subject: Option<&str>) -> Key {
        Key::Mode {
            subject: subject.map(str::to_string),
            magic: 0,
        }
    }

    pub fn delete_subject(subject: &str) -> Key {
        Key::DeleteSubject {
            subject: subject.to_string(),
            magic: 0,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a key serializes")
    }
}

/// A reference from a schema to another subject's version (Avro named types, JSON `$ref`,
/// Protobuf imports).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Reference {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

/// The value of a `SCHEMA` record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaValue {
    pub subject: String,
    pub version: i32,
    pub id: i32,
    #[serde(
        default,
        skip_serializing_if = "SchemaType::is_avro",
        with = "crate::format::schema_type_name"
    )]
    pub schema_type: SchemaType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    pub schema: String,
    #[serde(default)]
    pub deleted: bool,
}

/// The value of a `CONFIG` record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub compatibility_level: String,
}

/// The value of a `MODE` record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub mode: String,
}

/// The value of a `DELETE_SUBJECT` record: versions up to `version` are soft-deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteSubjectValue {
    pub subject: String,
    pub version: i32,
}

/// The value of a `CLEAR_SUBJECT` record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearSubjectValue {
    pub subject: String,
}

/// A record to append: key and value (None: a tombstone) bytes.
pub type Record = (Vec<u8>, Option<Vec<u8>>);

pub fn record<V: Serialize>(key: &Key, value: Option<&V>) -> Record {
    (
        key.encode(),
        value.map(|v| serde_json::to_vec(v).expect("a value serializes")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_and_write_as_confluent_and_karapace_write_them() {
        assert_eq!(
            String::from_utf8(Key::schema("t-value", 3).encode()).unwrap(),
            r#"{"keytype":"SCHEMA","subject":"t-value","version":3,"magic":1}"#
        );
        assert_eq!(
            String::from_utf8(Key::config(None).encode()).unwrap(),
            r#"{"keytype":"CONFIG","magic":0}"#
        );
        // Karapace writes the global config's subject as null.
        let k: Key =
            serde_json::from_str(r#"{"keytype":"CONFIG","subject":null,"magic":0}"#).unwrap();
        assert_eq!(k, Key::config(None));
        let k: Key = serde_json::from_str(r#"{"keytype":"NOOP","magic":0}"#).unwrap();
        assert_eq!(k, Key::Noop { magic: 0 });
        assert!(serde_json::from_str::<Key>(r#"{"keytype":"WHAT","magic":0}"#).is_err());
    }

    #[test]
    fn a_schema_value_omits_the_avro_type_and_empty_references() {
        let v = SchemaValue {
            subject: "s".into(),
            version: 1,
            id: 7,
            schema_type: SchemaType::Avro,
            references: vec![],
            schema: "\"string\"".into(),
            deleted: false,
        };
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(
            text,
            r#"{"subject":"s","version":1,"id":7,"schema":"\"string\"","deleted":false}"#
        );
        assert_eq!(serde_json::from_str::<SchemaValue>(&text).unwrap(), v);
        let p: SchemaValue = serde_json::from_str(
            r#"{"subject":"p","version":2,"id":8,"schemaType":"PROTOBUF","references":[{"name":"a.proto","subject":"a","version":1}],"schema":"syntax = \"proto3\";","deleted":true}"#,
        )
        .unwrap();
        assert_eq!(p.schema_type, SchemaType::Protobuf);
        assert_eq!(p.references[0].subject, "a");
        assert!(p.deleted);
    }
}
