//! Avro: parsed and checked with the `apache-avro` crate. The stored text is the parsed
//! schema written back as compact JSON (one form per schema, as Confluent stores Avro's
//! `Schema.toString()`); compatibility is Avro's schema resolution
//! (`SchemaCompatibility::can_read`), counted compatible only when resolution always
//! works (a partial match, e.g. a reader enum missing a writer's symbol without a default,
//! is not).

use std::collections::BTreeSet;

use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use apache_avro::Schema;
use serde_json::{Map, Value};

use super::Dependency;

const PRIMITIVES: &[&str] = &[
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// The schema (references inlined, for compatibility checks) and its stored text.
pub fn parse(text: &str, deps: &[Dependency]) -> Result<(Schema, String), String> {
    let json: Value = serde_json::from_str(text).map_err(|e| format!("Invalid JSON: {e}"))?;
    if deps.is_empty() {
        let schema = Schema::parse(&json).map_err(|e| e.to_string())?;
        let canonical = serde_json::to_string(&schema).map_err(|e| e.to_string())?;
        return Ok((schema, canonical));
    }
    // The stored text keeps references as names; the checked schema has them inlined.
    let dep_texts: Vec<&str> = deps.iter().map(|d| d.schema.as_str()).collect();
    let (main, _) = Schema::parse_str_with_list(text, &dep_texts).map_err(|e| e.to_string())?;
    let canonical = serde_json::to_string(&main).map_err(|e| e.to_string())?;
    let mut defs = Vec::new();
    for d in deps {
        let v: Value = serde_json::from_str(&d.schema)
            .map_err(|e| format!("Invalid JSON in reference {}: {e}", d.name))?;
        defs.push((full_name(&v, None).unwrap_or_else(|| d.name.clone()), v));
    }
    let mut inlined = BTreeSet::new();
    let whole = inline(&json, None, &defs, &mut inlined);
    let schema = Schema::parse(&whole).map_err(|e| e.to_string())?;
    Ok((schema, canonical))
}

/// The full name a named type's JSON defines, resolved against `ns`.
fn full_name(v: &Value, ns: Option<&str>) -> Option<String> {
    let o = v.as_object()?;
    let name = o.get("name")?.as_str()?;
    if name.contains('.') {
        return Some(name.to_string());
    }
    match o.get("namespace").and_then(Value::as_str).or(ns) {
        Some(n) if !n.is_empty() => Some(format!("{n}.{name}")),
        _ => Some(name.to_string()),
    }
}

/// `v` with each first use of a referenced type's name replaced by its definition.
fn inline(
    v: &Value,
    ns: Option<&str>,
    defs: &[(String, Value)],
    done: &mut BTreeSet<String>,
) -> Value {
    match v {
        Value::String(s) if !PRIMITIVES.contains(&s.as_str()) => {
            let full = if s.contains('.') {
                s.clone()
            } else {
                ns.map_or(s.clone(), |n| format!("{n}.{s}"))
            };
            let found = defs
                .iter()
                .find(|(n, _)| *n == full || n == s)
                .map(|(n, d)| (n.clone(), d));
            match found {
                Some((n, d)) if done.insert(n.clone()) => {
                    let inner_ns = n.rsplit_once('.').map(|(ns, _)| ns.to_string());
                    inline(d, inner_ns.as_deref(), defs, done)
                }
                _ => v.clone(),
            }
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|x| inline(x, ns, defs, done)).collect())
        }
        Value::Object(o) => {
            // A named type defined here is not inlined again; its namespace is the
            // enclosing one for what it contains.
            let name = full_name(v, ns);
            let named = matches!(o.get("type"), Some(Value::String(t)) if matches!(t.as_str(), "record" | "enum" | "fixed" | "error"));
            if let (Some(n), true) = (&name, named) {
                done.insert(n.clone());
            }
            let own_ns = name.and_then(|n| n.rsplit_once('.').map(|(a, _)| a.to_string()));
            let here = own_ns.as_deref().or(ns);
            let mut out = Map::new();
            for (k, x) in o {
                let y = match k.as_str() {
                    "type" | "items" | "values" | "fields" => inline(x, here, defs, done),
                    _ => x.clone(),
                };
                out.insert(k.clone(), y);
            }
            Value::Object(out)
        }
        _ => v.clone(),
    }
}

/// Why `reader` cannot read what `writer` wrote (empty: it can).
pub fn can_read(reader: &Schema, writer: &Schema) -> Vec<String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => vec![],
        Ok(Compatibility::Partial) => vec![
            "The new schema can read only part of what the old schema writes (a union branch or enum symbol of the writer is missing in the reader)".to_string(),
        ],
        Err(e) => vec![e.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> (Schema, String) {
        parse(text, &[]).unwrap()
    }

    #[test]
    fn the_stored_text_is_one_form_whatever_the_whitespace() {
        let a = p(r#"{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}"#);
        let b = p(r#"{"fields":[{"type":"int","name":"a"}],"name":"R","type":"record"}"#);
        assert_eq!(a.1, b.1);
        assert_eq!(p(r#""string""#).1, p(r#"{"type":"string"}"#).1);
        assert!(parse(r#"{"type":"record","name":"R"}"#, &[]).is_err());
        assert!(parse("not json", &[]).is_err());
        assert!(parse(r#"{"type":"nope"}"#, &[]).is_err());
    }

    #[test]
    fn adding_a_field_with_a_default_reads_old_data_and_without_one_does_not() {
        let old = p(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#).0;
        let with_default = p(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string","default":"x"}]}"#).0;
        let without = p(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}"#).0;
        assert!(can_read(&with_default, &old).is_empty());
        assert!(!can_read(&without, &old).is_empty());
        // The old schema reads the new data either way (it ignores the extra field).
        assert!(can_read(&old, &without).is_empty());
    }

    #[test]
    fn a_referenced_type_is_inlined_for_the_check_and_kept_as_a_name_in_the_text() {
        let dep = Dependency {
            name: "com.example.Address".into(),
            schema_type: super::super::SchemaType::Avro,
            schema: r#"{"type":"record","name":"Address","namespace":"com.example","fields":[{"name":"city","type":"string"}]}"#.into(),
        };
        let text = r#"{"type":"record","name":"Person","namespace":"com.example","fields":[{"name":"home","type":"Address"}]}"#;
        let (schema, canonical) = parse(text, std::slice::from_ref(&dep)).unwrap();
        assert!(
            canonical.contains(r#""type":"com.example.Address""#)
                || canonical.contains(r#""type":"Address""#),
            "{canonical}"
        );
        let Schema::Record(r) = &schema else { panic!() };
        assert!(matches!(r.fields[0].schema, Schema::Record(_)));
        assert!(
            parse(text, &[]).is_err(),
            "unresolved without the reference"
        );
    }
}
