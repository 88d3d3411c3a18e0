//! JSON Schema: loaded into a graph of typed nodes, and compared the way Confluent Schema
//! Registry's JSON Schema provider compares two schemas (its `SchemaDiff`): a walk over
//! both graphs that lists each difference by type and path, then counts the change
//! compatible when every difference's type is in the compatible set (Confluent's
//! default, "strict", policy).
//!
//! The model follows the loader Confluent uses for drafts 4, 6 and 7 (and its
//! translation of 2019-09 / 2020-12): a schema object becomes one node per keyword family
//! it uses (`enum`, each of `allOf`/`anyOf`/`oneOf`, `not`, `const`, `type`, then object,
//! array, number and string keywords sniffed without `type`), several of them an implicit
//! `allOf`; a `type` array is an `anyOf` of one node per type; `$ref` is followed (local
//! pointers, `definitions`/`$defs`, and references by name), cycles included. Like
//! Confluent, the meta-schema is not checked: a schema is refused when a keyword holds
//! the wrong kind of value or a `$ref` does not resolve.
//!
//! Deviations, each where Confluent's own code fails rather than answers: a chain of
//! `$ref`s is followed to its end (Confluent follows one step), a lowered
//! `exclusiveMaximum` is a difference of its own (Confluent compares it with `maximum`
//! and fails when that is absent), and of several matching `patternProperties` the first
//! declared is used (Confluent's pick is arbitrary).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::{Map, Value};

use super::Dependency;

type NodeId = usize;

/// A loaded schema: its nodes and the root.
#[derive(Debug, Clone)]
pub struct JsonSchema {
    nodes: Vec<Node>,
    root: NodeId,
}

#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    /// `default` is present (even `null`): decides whether an added required property
    /// has one.
    has_default: bool,
    /// The subschema's JSON, compact: equality of combined schemas' members.
    text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crit {
    All,
    Any,
    One,
}

#[derive(Debug, Clone)]
enum Kind {
    True,
    Empty,
    False,
    Null,
    Boolean,
    String(Str),
    Number(Num),
    Object(Box<Obj>),
    Array(Box<Arr>),
    Enum(Vec<Value>),
    Const(Value),
    Not(NodeId),
    Combined(Crit, Vec<NodeId>),
    Conditional,
    Ref(NodeId),
    /// Being loaded (only while a `$ref` cycle is followed).
    Pending,
}

impl Kind {
    fn family(&self) -> u8 {
        match self {
            Kind::True => 0,
            Kind::Empty => 1,
            Kind::False => 2,
            Kind::Null => 3,
            Kind::Boolean => 4,
            Kind::String(_) => 5,
            Kind::Number(_) => 6,
            Kind::Object(_) => 7,
            Kind::Array(_) => 8,
            Kind::Enum(_) => 9,
            Kind::Const(_) => 10,
            Kind::Not(_) => 11,
            Kind::Combined(..) => 12,
            Kind::Conditional => 13,
            Kind::Ref(_) => 14,
            Kind::Pending => 15,
        }
    }

    fn accepts_all(&self) -> bool {
        matches!(self, Kind::True | Kind::Empty)
    }
}

#[derive(Debug, Clone, Default)]
struct Str {
    min_length: Option<u64>,
    max_length: Option<u64>,
    pattern: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Num {
    integer: bool,
    minimum: Option<f64>,
    maximum: Option<f64>,
    exclusive_minimum: Option<f64>,
    exclusive_maximum: Option<f64>,
    multiple_of: Option<f64>,
}

#[derive(Debug, Clone)]
struct Obj {
    properties: Vec<(String, NodeId)>,
    required: BTreeSet<String>,
    min_properties: Option<u64>,
    max_properties: Option<u64>,
    additional_permitted: bool,
    additional_schema: Option<NodeId>,
    pattern_properties: Vec<(Option<regex::Regex>, NodeId)>,
    property_deps: BTreeMap<String, BTreeSet<String>>,
    schema_deps: BTreeMap<String, NodeId>,
    unevaluated: Option<NodeId>,
}

#[derive(Debug, Clone)]
struct Arr {
    all_items: Option<NodeId>,
    tuple: Vec<NodeId>,
    additional_permitted: bool,
    additional_schema: Option<NodeId>,
    unevaluated: Option<NodeId>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    unique_items: bool,
    min_contains: Option<u64>,
    max_contains: Option<u64>,
}

const ARRAY_KEYS: &[&str] = &[
    "items",
    "additionalItems",
    "minItems",
    "maxItems",
    "uniqueItems",
    "contains",
    "prefixItems",
    "unevaluatedItems",
    "minContains",
    "maxContains",
];
const OBJECT_KEYS: &[&str] = &[
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "dependencies",
    "patternProperties",
    "additionalProperties",
    "propertyNames",
    "dependentRequired",
    "dependentSchemas",
    "unevaluatedProperties",
];
const NUMBER_KEYS: &[&str] = &[
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
];
const STRING_KEYS: &[&str] = &["minLength", "maxLength", "pattern", "format"];
const CONDITIONAL_KEYS: &[&str] = &["if", "then", "else"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Draft {
    V4,
    V6To7,
    V2019,
}

/// Parses `text` (with `deps`, the referenced schemas by name) into the model and its
/// stored text (compact JSON).
pub fn parse(text: &str, deps: &[Dependency]) -> Result<(JsonSchema, String), String> {
    let root: Value = serde_json::from_str(text).map_err(|e| format!("Invalid JSON: {e}"))?;
    let canonical = serde_json::to_string(&root).map_err(|e| e.to_string())?;
    let mut docs = vec![root];
    let mut names = HashMap::new();
    for (i, d) in deps.iter().enumerate() {
        let v: Value = serde_json::from_str(&d.schema)
            .map_err(|e| format!("Invalid JSON in reference {}: {e}", d.name))?;
        docs.push(v);
        names.insert(d.name.clone(), i + 1);
    }
    let draft = match docs[0].get("$schema").and_then(Value::as_str) {
        Some(s)
            if s.contains("draft-04")
                || s.trim_end_matches('#')
                    .ends_with("//json-schema.org/schema") =>
        {
            Draft::V4
        }
        Some(s) if s.contains("2019-09") || s.contains("2020-12") => Draft::V2019,
        _ => Draft::V6To7,
    };
    let root_id = docs[0]
        .get(if draft == Draft::V4 { "id" } else { "$id" })
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut loader = Loader {
        docs,
        names,
        root_id,
        draft,
        nodes: Vec::new(),
        cache: HashMap::new(),
        depth: 0,
    };
    let root = loader.load(0, String::new())?;
    Ok((
        JsonSchema {
            nodes: loader.nodes,
            root,
        },
        canonical,
    ))
}

struct Loader {
    docs: Vec<Value>,
    names: HashMap<String, usize>,
    root_id: Option<String>,
    draft: Draft,
    nodes: Vec<Node>,
    cache: HashMap<(usize, String), NodeId>,
    /// Subschemas being loaded, nested (a chain of `$ref`s nests them too).
    depth: usize,
}

/// How deep subschemas may nest, `$ref`s followed included: deeper is refused rather
/// than risking the stack (JSON text itself nests at most 128 deep).
const MAX_NESTING: usize = 128;

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

impl Loader {
    fn lookup(&self, doc: usize, pointer: &str) -> Option<&Value> {
        let d = &self.docs[doc];
        d.pointer(pointer).or_else(|| {
            // Confluent makes `definitions` reachable as `$defs` (and so both ways here).
            let alt = if let Some(rest) = pointer.strip_prefix("/definitions/") {
                format!("/$defs/{rest}")
            } else if let Some(rest) = pointer.strip_prefix("/$defs/") {
                format!("/definitions/{rest}")
            } else {
                return None;
            };
            d.pointer(&alt)
        })
    }

    /// The node of the subschema at `pointer` in document `doc`, loaded once.
    fn load(&mut self, doc: usize, pointer: String) -> Result<NodeId, String> {
        if let Some(&id) = self.cache.get(&(doc, pointer.clone())) {
            return Ok(id);
        }
        let value = self
            .lookup(doc, &pointer)
            .cloned()
            .ok_or_else(|| format!("no schema at #{pointer}"))?;
        let id = self.nodes.len();
        self.nodes.push(Node {
            kind: Kind::Pending,
            has_default: false,
            text: String::new(),
        });
        self.cache.insert((doc, pointer.clone()), id);
        if self.depth >= MAX_NESTING {
            return Err(format!(
                "subschemas nest deeper than {MAX_NESTING} (with $refs followed) at #{pointer}"
            ));
        }
        self.depth += 1;
        let kind = self.build(doc, &pointer, &value);
        self.depth -= 1;
        let kind = kind?;
        let node = &mut self.nodes[id];
        node.kind = kind;
        node.has_default = value.get("default").is_some();
        node.text = value.to_string();
        Ok(id)
    }

    fn sub(&mut self, doc: usize, pointer: &str, path: &[&str]) -> Result<NodeId, String> {
        let mut p = pointer.to_string();
        for s in path {
            p.push('/');
            p.push_str(&escape(s));
        }
        self.load(doc, p)
    }

    fn push(&mut self, kind: Kind, text: String) -> NodeId {
        self.nodes.push(Node {
            kind,
            has_default: false,
            text,
        });
        self.nodes.len() - 1
    }

    fn build(&mut self, doc: usize, pointer: &str, value: &Value) -> Result<Kind, String> {
        let o = match value {
            Value::Bool(true) => return Ok(Kind::True),
            Value::Bool(false) => return Ok(Kind::False),
            Value::Object(o) => o,
            other => {
                return Err(format!(
                    "a schema must be an object or a boolean, found {other} at #{pointer}"
                ))
            }
        };
        let new_draft = self.draft == Draft::V2019;
        if let Some(r) = o.get("$ref") {
            let r = r
                .as_str()
                .ok_or_else(|| format!("$ref must be a string at #{pointer}"))?;
            let (tdoc, tptr) = self.resolve(doc, r)?;
            let target = self.load(tdoc, tptr)?;
            // Drafts up to 7 ignore a `$ref`'s siblings; 2019-09 on applies them too.
            if !new_draft || !o.keys().any(|k| is_assertion(k)) {
                return Ok(Kind::Ref(target));
            }
            let ref_node = self.push(Kind::Ref(target), String::new());
            let mut rest = o.clone();
            rest.remove("$ref");
            let rest_kind = self.parts(doc, pointer, &rest)?;
            let rest_node = self.push(rest_kind, Value::Object(rest).to_string());
            return Ok(Kind::Combined(Crit::All, vec![ref_node, rest_node]));
        }
        self.parts(doc, pointer, o)
    }

    fn parts(&mut self, doc: usize, pointer: &str, o: &Map<String, Value>) -> Result<Kind, String> {
        let mut parts: Vec<Kind> = Vec::new();
        if let Some(e) = o.get("enum") {
            let values = e
                .as_array()
                .ok_or_else(|| format!("enum must be an array at #{pointer}"))?;
            parts.push(Kind::Enum(values.clone()));
        }
        for (key, crit) in [
            ("allOf", Crit::All),
            ("anyOf", Crit::Any),
            ("oneOf", Crit::One),
        ] {
            if let Some(v) = o.get(key) {
                let n = v
                    .as_array()
                    .ok_or_else(|| format!("{key} must be an array at #{pointer}"))?
                    .len();
                let mut subs = Vec::with_capacity(n);
                for i in 0..n {
                    subs.push(self.sub(doc, pointer, &[key, &i.to_string()])?);
                }
                parts.push(Kind::Combined(crit, subs));
            }
        }
        if o.contains_key("not") {
            parts.push(Kind::Not(self.sub(doc, pointer, &["not"])?));
        }
        if self.draft != Draft::V4 {
            if let Some(c) = o.get("const") {
                parts.push(Kind::Const(c.clone()));
            }
        }
        let mut consumed: Vec<&str> = Vec::new();
        match o.get("type") {
            None => {}
            Some(Value::String(t)) => {
                consumed.push(family_of(t, pointer)?);
                parts.push(self.typed(doc, pointer, o, t)?);
            }
            Some(Value::Array(ts)) => {
                let mut subs = Vec::new();
                for t in ts {
                    let t = t
                        .as_str()
                        .ok_or_else(|| format!("type must name types at #{pointer}"))?;
                    consumed.push(family_of(t, pointer)?);
                    let kind = self.typed(doc, pointer, o, t)?;
                    subs.push(self.push(kind, format!("{{\"type\":\"{t}\"}}")));
                }
                parts.push(Kind::Combined(Crit::Any, subs));
            }
            Some(other) => {
                return Err(format!(
                    "type must be a string or an array, found {other} at #{pointer}"
                ))
            }
        }
        let new_draft = self.draft == Draft::V2019;
        for (family, keys) in [
            ("array", ARRAY_KEYS),
            ("object", OBJECT_KEYS),
            ("number", NUMBER_KEYS),
            ("string", STRING_KEYS),
        ] {
            if consumed.contains(&family) {
                continue;
            }
            let used: Vec<&&str> = keys.iter().filter(|k| o.contains_key(**k)).collect();
            if used.is_empty() {
                continue;
            }
            if new_draft && inert(o, &used) {
                continue;
            }
            parts.push(self.typed(doc, pointer, o, family)?);
        }
        if CONDITIONAL_KEYS.iter().any(|k| o.contains_key(*k)) && self.draft != Draft::V4 {
            parts.push(Kind::Conditional);
        }
        Ok(match parts.len() {
            0 => Kind::Empty,
            1 => parts.pop().unwrap_or(Kind::Empty),
            _ => {
                let subs = parts
                    .into_iter()
                    .map(|k| self.push(k, String::new()))
                    .collect::<Vec<_>>();
                // Generated members are told apart by position only.
                for (i, &s) in subs.iter().enumerate() {
                    self.nodes[s].text = format!("{pointer}#part{i}");
                }
                Kind::Combined(Crit::All, subs)
            }
        })
    }

    /// The node for type `t` (a JSON Schema type name, or a keyword family's) from `o`'s
    /// keywords.
    fn typed(
        &mut self,
        doc: usize,
        pointer: &str,
        o: &Map<String, Value>,
        t: &str,
    ) -> Result<Kind, String> {
        Ok(match t {
            "null" => Kind::Null,
            "boolean" => Kind::Boolean,
            "string" => Kind::String(Str {
                min_length: count(o, "minLength", pointer)?,
                max_length: count(o, "maxLength", pointer)?,
                pattern: match o.get("pattern") {
                    None => None,
                    Some(Value::String(p)) => Some(p.clone()),
                    Some(_) => return Err(format!("pattern must be a string at #{pointer}")),
                },
            }),
            "integer" | "number" => {
                let mut n = Num {
                    integer: t == "integer",
                    minimum: number(o, "minimum", pointer)?,
                    maximum: number(o, "maximum", pointer)?,
                    multiple_of: number(o, "multipleOf", pointer)?,
                    ..Num::default()
                };
                // Draft 4's boolean exclusive flags are not compared.
                if !matches!(o.get("exclusiveMinimum"), Some(Value::Bool(_))) {
                    n.exclusive_minimum = number(o, "exclusiveMinimum", pointer)?;
                }
                if !matches!(o.get("exclusiveMaximum"), Some(Value::Bool(_))) {
                    n.exclusive_maximum = number(o, "exclusiveMaximum", pointer)?;
                }
                Kind::Number(n)
            }
            "object" => Kind::Object(Box::new(self.object(doc, pointer, o)?)),
            "array" => Kind::Array(Box::new(self.array(doc, pointer, o)?)),
            other => return Err(format!("unknown type {other} at #{pointer}")),
        })
    }

    fn object(&mut self, doc: usize, pointer: &str, o: &Map<String, Value>) -> Result<Obj, String> {
        let mut properties = Vec::new();
        if let Some(p) = o.get("properties") {
            let p = p
                .as_object()
                .ok_or_else(|| format!("properties must be an object at #{pointer}"))?;
            for name in p.keys() {
                properties.push((name.clone(), self.sub(doc, pointer, &["properties", name])?));
            }
        }
        let mut required = BTreeSet::new();
        if let Some(r) = o.get("required") {
            match r {
                Value::Array(names) => {
                    for n in names {
                        required.insert(
                            n.as_str()
                                .ok_or_else(|| format!("required must list names at #{pointer}"))?
                                .to_string(),
                        );
                    }
                }
                // Draft 3's per-property flag: nothing to collect here.
                Value::Bool(_) => {}
                _ => return Err(format!("required must be an array at #{pointer}")),
            }
        }
        let (mut additional_permitted, mut additional_schema) = (true, None);
        match o.get("additionalProperties") {
            None | Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => additional_permitted = false,
            Some(Value::Object(_)) => {
                additional_schema = Some(self.sub(doc, pointer, &["additionalProperties"])?)
            }
            Some(_) => {
                return Err(format!(
                    "additionalProperties must be a boolean or a schema at #{pointer}"
                ))
            }
        }
        let mut pattern_properties = Vec::new();
        if let Some(p) = o.get("patternProperties") {
            let p = p
                .as_object()
                .ok_or_else(|| format!("patternProperties must be an object at #{pointer}"))?;
            for pat in p.keys() {
                let node = self.sub(doc, pointer, &["patternProperties", pat])?;
                pattern_properties.push((regex::Regex::new(pat).ok(), node));
            }
        }
        let mut property_deps = BTreeMap::new();
        let mut schema_deps = BTreeMap::new();
        for key in ["dependencies", "dependentRequired", "dependentSchemas"] {
            let Some(d) = o.get(key) else { continue };
            let d = d
                .as_object()
                .ok_or_else(|| format!("{key} must be an object at #{pointer}"))?;
            for (k, v) in d {
                match v {
                    Value::Array(names) => {
                        let set: BTreeSet<String> = names
                            .iter()
                            .filter_map(|n| n.as_str().map(str::to_string))
                            .collect();
                        if !set.is_empty() {
                            property_deps.insert(k.clone(), set);
                        }
                    }
                    Value::Object(_) | Value::Bool(_) => {
                        schema_deps.insert(k.clone(), self.sub(doc, pointer, &[key, k])?);
                    }
                    _ => {
                        return Err(format!(
                            "{key}/{k} must be an array or a schema at #{pointer}"
                        ))
                    }
                }
            }
        }
        if o.contains_key("propertyNames") {
            self.sub(doc, pointer, &["propertyNames"])?;
        }
        let unevaluated = match o.get("unevaluatedProperties") {
            Some(_) => Some(self.sub(doc, pointer, &["unevaluatedProperties"])?),
            None => None,
        };
        Ok(Obj {
            properties,
            required,
            min_properties: count(o, "minProperties", pointer)?,
            max_properties: count(o, "maxProperties", pointer)?,
            additional_permitted,
            additional_schema,
            pattern_properties,
            property_deps,
            schema_deps,
            unevaluated,
        })
    }

    fn array(&mut self, doc: usize, pointer: &str, o: &Map<String, Value>) -> Result<Arr, String> {
        let mut a = Arr {
            all_items: None,
            tuple: Vec::new(),
            additional_permitted: true,
            additional_schema: None,
            unevaluated: None,
            min_items: count(o, "minItems", pointer)?,
            max_items: count(o, "maxItems", pointer)?,
            unique_items: matches!(o.get("uniqueItems"), Some(Value::Bool(true))),
            min_contains: count(o, "minContains", pointer)?,
            max_contains: count(o, "maxContains", pointer)?,
        };
        let tuple_key = if self.draft == Draft::V2019 {
            "prefixItems"
        } else {
            "items"
        };
        if let Some(Value::Array(items)) = o.get(tuple_key) {
            for i in 0..items.len() {
                a.tuple
                    .push(self.sub(doc, pointer, &[tuple_key, &i.to_string()])?);
            }
        }
        let (single_key, additional_key) = if self.draft == Draft::V2019 {
            if o.contains_key("prefixItems") {
                ("", "items")
            } else {
                ("items", "")
            }
        } else {
            ("items", "additionalItems")
        };
        match o.get(single_key) {
            Some(Value::Array(_)) if self.draft != Draft::V2019 => {}
            Some(Value::Bool(true)) if self.draft == Draft::V2019 => {}
            Some(Value::Bool(false)) if self.draft == Draft::V2019 => {
                a.additional_permitted = false
            }
            Some(Value::Object(_) | Value::Bool(_)) => {
                a.all_items = Some(self.sub(doc, pointer, &[single_key])?)
            }
            Some(_) => return Err(format!("items must be a schema or an array at #{pointer}")),
            None => {}
        }
        match o.get(additional_key) {
            None | Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => a.additional_permitted = false,
            Some(Value::Object(_)) => {
                a.additional_schema = Some(self.sub(doc, pointer, &[additional_key])?)
            }
            Some(_) => {
                return Err(format!(
                    "{additional_key} must be a boolean or a schema at #{pointer}"
                ))
            }
        }
        // With one schema for all items, additional items are not a thing.
        if a.all_items.is_some() {
            a.additional_permitted = true;
        }
        if o.contains_key("contains") {
            self.sub(doc, pointer, &["contains"])?;
        }
        if o.contains_key("unevaluatedItems") {
            a.unevaluated = Some(self.sub(doc, pointer, &["unevaluatedItems"])?);
        }
        Ok(a)
    }

    /// The document and pointer a `$ref` names.
    fn resolve(&self, doc: usize, r: &str) -> Result<(usize, String), String> {
        let (base, fragment) = match r.split_once('#') {
            Some((b, f)) => (b, f),
            None => (r, ""),
        };
        let fragment = percent_decode(fragment);
        if !fragment.is_empty() && !fragment.starts_with('/') {
            return Err(format!(
                "unsupported $ref {r}: only JSON pointers are resolved"
            ));
        }
        let target = if base.is_empty() || Some(base) == self.root_id.as_deref() {
            if base.is_empty() {
                doc
            } else {
                0
            }
        } else {
            let stripped = base.trim_start_matches("./");
            let relative = self
                .root_id
                .as_deref()
                .and_then(|id| id.rsplit_once('/'))
                .and_then(|(dir, _)| base.strip_prefix(dir))
                .map(|s| s.trim_start_matches('/'));
            *[Some(base), Some(stripped), relative]
                .into_iter()
                .flatten()
                .find_map(|n| self.names.get(n))
                .ok_or_else(|| format!("$ref {r} names no schema and no reference"))?
        };
        if self.lookup(target, &fragment).is_none() {
            return Err(format!("$ref {r} does not resolve"));
        }
        Ok((target, fragment))
    }
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Keywords that constrain a value (a `$ref`'s siblings that count from 2019-09 on).
fn is_assertion(k: &str) -> bool {
    ARRAY_KEYS.contains(&k)
        || OBJECT_KEYS.contains(&k)
        || NUMBER_KEYS.contains(&k)
        || STRING_KEYS.contains(&k)
        || matches!(
            k,
            "type" | "enum" | "const" | "allOf" | "anyOf" | "oneOf" | "not"
        )
}

/// Keywords that constrain nothing (`{"properties": {}}`, `"items": true`): from 2019-09
/// on they make no node.
fn inert(o: &Map<String, Value>, used: &[&&str]) -> bool {
    used.iter().all(|k| match o.get(**k) {
        Some(Value::Object(m)) => m.is_empty() && **k != "additionalProperties",
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Bool(true)) => **k == "items",
        _ => false,
    })
}

fn family_of<'a>(t: &str, pointer: &str) -> Result<&'a str, String> {
    Ok(match t {
        "string" => "string",
        "integer" | "number" => "number",
        "object" => "object",
        "array" => "array",
        "null" | "boolean" => "-",
        other => return Err(format!("unknown type {other} at #{pointer}")),
    })
}

fn count(o: &Map<String, Value>, key: &str, pointer: &str) -> Result<Option<u64>, String> {
    match o.get(key) {
        None => Ok(None),
        Some(v) => match v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }) {
            Some(n) => Ok(Some(n)),
            None => Err(format!(
                "{key} must be a non-negative integer at #{pointer}"
            )),
        },
    }
}

fn number(o: &Map<String, Value>, key: &str, pointer: &str) -> Result<Option<f64>, String> {
    match o.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("{key} must be a number at #{pointer}")),
    }
}

// ---------------------------------------------------------------------------------------
// The comparison

/// The difference types Confluent's strict policy counts compatible; any other
/// difference makes a change incompatible.
const COMPATIBLE: &[&str] = &[
    "SCHEMA_REMOVED",
    "TYPE_EXTENDED",
    "MAX_LENGTH_INCREASED",
    "MAX_LENGTH_REMOVED",
    "MIN_LENGTH_DECREASED",
    "MIN_LENGTH_REMOVED",
    "PATTERN_REMOVED",
    "MAXIMUM_INCREASED",
    "MAXIMUM_REMOVED",
    "MINIMUM_DECREASED",
    "MINIMUM_REMOVED",
    "EXCLUSIVE_MAXIMUM_INCREASED",
    "EXCLUSIVE_MAXIMUM_REMOVED",
    "EXCLUSIVE_MINIMUM_DECREASED",
    "EXCLUSIVE_MINIMUM_REMOVED",
    "MULTIPLE_OF_REDUCED",
    "MULTIPLE_OF_REMOVED",
    "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED",
    "REQUIRED_ATTRIBUTE_REMOVED",
    "DEPENDENCY_ARRAY_NARROWED",
    "DEPENDENCY_ARRAY_REMOVED",
    "DEPENDENCY_SCHEMA_REMOVED",
    "MAX_PROPERTIES_INCREASED",
    "MAX_PROPERTIES_REMOVED",
    "MIN_PROPERTIES_DECREASED",
    "MIN_PROPERTIES_REMOVED",
    "ADDITIONAL_PROPERTIES_ADDED",
    "ADDITIONAL_PROPERTIES_EXTENDED",
    "UNEVALUATED_PROPERTIES_ADDED",
    "UNEVALUATED_PROPERTIES_EXTENDED",
    "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
    "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL",
    "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
    "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
    "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    "MAX_ITEMS_INCREASED",
    "MAX_ITEMS_REMOVED",
    "MIN_ITEMS_DECREASED",
    "MIN_ITEMS_REMOVED",
    "MAX_CONTAINS_INCREASED",
    "MAX_CONTAINS_REMOVED",
    "MIN_CONTAINS_DECREASED",
    "MIN_CONTAINS_REMOVED",
    "UNIQUE_ITEMS_REMOVED",
    "ADDITIONAL_ITEMS_ADDED",
    "ADDITIONAL_ITEMS_EXTENDED",
    "UNEVALUATED_ITEMS_ADDED",
    "UNEVALUATED_ITEMS_EXTENDED",
    "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
    "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL",
    "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL",
    "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    "ENUM_ARRAY_EXTENDED",
    "COMBINED_TYPE_EXTENDED",
    "PRODUCT_TYPE_NARROWED",
    "SUM_TYPE_EXTENDED",
    "NOT_TYPE_NARROWED",
];

/// One difference: its type and where (a path relative to the pair compared).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Diff {
    kind: &'static str,
    path: String,
}

impl Diff {
    fn compatible(&self) -> bool {
        COMPATIBLE.contains(&self.kind)
    }
}

fn all_compatible(d: &[Diff]) -> bool {
    d.iter().all(Diff::compatible)
}

/// Whether data valid under `original` (the writer's, older schema) is valid under
/// `update` (the reader's): the reasons it is not, empty when it is.
pub fn can_read(update: &JsonSchema, original: &JsonSchema) -> Vec<String> {
    let diffs = compare(original, update, 0);
    let mut out: Vec<String> = diffs
        .iter()
        .filter(|d| !d.compatible())
        .map(|d| {
            let path = if d.path.is_empty() {
                "#/".to_string()
            } else {
                format!("#/{}", d.path)
            };
            format!(
                "{{errorType:\"{}\", description:\"at path '{path}'\"}}",
                d.kind
            )
        })
        .collect();
    out.dedup();
    out
}

type Pair = (NodeId, NodeId);

/// Nested comparisons in their own contexts (`not` reverses the sides) stop here.
const MAX_DEPTH: usize = 32;

fn compare(o: &JsonSchema, u: &JsonSchema, depth: usize) -> Vec<Diff> {
    if depth > MAX_DEPTH {
        return Vec::new();
    }
    // Pairs met again while still being compared (a `$ref` cycle) are first taken as
    // compatible; the walk is repeated with the pairs that turned out incompatible until
    // that set stops changing.
    let mut seed: HashMap<Pair, Vec<Diff>> = HashMap::new();
    for _ in 0..16 {
        let mut cx = Cx {
            o,
            u,
            depth,
            memo: HashMap::new(),
            active: HashSet::new(),
            seed: &seed,
            optimistic: false,
        };
        let diffs = cx.cmp(Some(o.root), Some(u.root));
        let bad: HashMap<Pair, Vec<Diff>> = cx
            .memo
            .into_iter()
            .filter(|(_, d)| !all_compatible(d))
            .collect();
        let same = bad.len() == seed.len() && bad.keys().all(|k| seed.contains_key(k));
        if !cx.optimistic || same {
            return diffs;
        }
        seed = bad;
    }
    Vec::new()
}

struct Cx<'a> {
    o: &'a JsonSchema,
    u: &'a JsonSchema,
    depth: usize,
    memo: HashMap<Pair, Vec<Diff>>,
    active: HashSet<Pair>,
    seed: &'a HashMap<Pair, Vec<Diff>>,
    optimistic: bool,
}

fn deref(s: &JsonSchema, mut id: NodeId) -> NodeId {
    for _ in 0..64 {
        match s.nodes[id].kind {
            Kind::Ref(t) => id = t,
            _ => break,
        }
    }
    id
}

fn prefixed(seg: &str, diffs: Vec<Diff>, out: &mut Vec<Diff>) {
    out.extend(diffs.into_iter().map(|d| Diff {
        kind: d.kind,
        path: if d.path.is_empty() {
            seg.to_string()
        } else if seg.is_empty() {
            d.path
        } else {
            format!("{seg}/{}", d.path)
        },
    }));
}

fn diff(kind: &'static str, path: &str) -> Diff {
    Diff {
        kind,
        path: path.to_string(),
    }
}

/// Bound changes: `names` = [ADDED, REMOVED, INCREASED, DECREASED].
fn bound<T: PartialOrd>(
    o: Option<T>,
    u: Option<T>,
    names: [&'static str; 4],
    path: &str,
    out: &mut Vec<Diff>,
) {
    match (o, u) {
        (None, Some(_)) => out.push(diff(names[0], path)),
        (Some(_), None) => out.push(diff(names[1], path)),
        (Some(a), Some(b)) if a < b => out.push(diff(names[2], path)),
        (Some(a), Some(b)) if a > b => out.push(diff(names[3], path)),
        _ => {}
    }
}

macro_rules! bound_names {
    ($p:literal) => {
        [
            concat!($p, "_ADDED"),
            concat!($p, "_REMOVED"),
            concat!($p, "_INCREASED"),
            concat!($p, "_DECREASED"),
        ]
    };
}

impl Cx<'_> {
    fn node_o(&self, id: NodeId) -> &Kind {
        &self.o.nodes[id].kind
    }

    fn node_u(&self, id: NodeId) -> &Kind {
        &self.u.nodes[id].kind
    }

    fn cmp(&mut self, o: Option<NodeId>, u: Option<NodeId>) -> Vec<Diff> {
        let (o, u) = match (o, u) {
            (None, None) => return vec![],
            (None, Some(_)) => return vec![diff("SCHEMA_ADDED", "")],
            (Some(_), None) => return vec![diff("SCHEMA_REMOVED", "")],
            (Some(o), Some(u)) => (deref(self.o, o), deref(self.u, u)),
        };
        let key = (o, u);
        if let Some(d) = self.memo.get(&key) {
            return d.clone();
        }
        if self.active.contains(&key) {
            if let Some(d) = self.seed.get(&key) {
                return d.clone();
            }
            self.optimistic = true;
            return vec![];
        }
        // As deep as the loader allowed, and no deeper: past that, nothing more is told.
        if self.active.len() > 2 * MAX_NESTING {
            return vec![];
        }
        self.active.insert(key);
        let d = self.compare_types(o, u);
        self.active.remove(&key);
        self.memo.insert(key, d.clone());
        d
    }

    /// A property or item one side names and the other covers with a schema of its
    /// partially open content model: compared with that schema; `names` = [covered, not].
    fn coverage(
        &mut self,
        seg: &str,
        o: NodeId,
        u: NodeId,
        names: [&'static str; 2],
        out: &mut Vec<Diff>,
    ) {
        let d = self.cmp(Some(o), Some(u));
        let ok = all_compatible(&d);
        prefixed(seg, d, out);
        out.push(diff(if ok { names[0] } else { names[1] }, seg));
    }

    fn sub(&mut self, seg: &str, o: Option<NodeId>, u: Option<NodeId>, out: &mut Vec<Diff>) {
        let d = self.cmp(o, u);
        prefixed(seg, d, out);
    }

    fn compare_types(&mut self, o: NodeId, u: NodeId) -> Vec<Diff> {
        let ok = self.node_o(o).clone();
        let uk = self.node_u(u).clone();
        let mut out = Vec::new();
        // A combined schema on one side only: does one member stand for the other side?
        if let (false, Kind::Combined(crit, subs)) = (matches!(ok, Kind::Combined(..)), &uk) {
            if subs.len() == 1 {
                let d = self.cmp(Some(o), Some(subs[0]));
                if all_compatible(&d) {
                    return d;
                }
            } else if *crit != Crit::All {
                for &s in subs {
                    let d = self.cmp(Some(o), Some(s));
                    if all_compatible(&d) {
                        out.extend(d);
                        out.push(diff("SUM_TYPE_EXTENDED", ""));
                        return out;
                    }
                }
            }
        }
        if let (Kind::Combined(crit, subs), false) = (&ok, matches!(uk, Kind::Combined(..))) {
            if subs.len() == 1 {
                let d = self.cmp(Some(subs[0]), Some(u));
                if all_compatible(&d) {
                    return d;
                }
            } else if *crit == Crit::All {
                for &s in subs {
                    let d = self.cmp(Some(s), Some(u));
                    if all_compatible(&d) {
                        out.extend(d);
                        out.push(diff("PRODUCT_TYPE_NARROWED", ""));
                        return out;
                    }
                }
            }
        }
        if ok.family() != uk.family() {
            if !matches!(ok, Kind::False) && !uk.accepts_all() {
                out.push(diff("TYPE_CHANGED", ""));
            }
            return out;
        }
        match (&ok, &uk) {
            (Kind::String(a), Kind::String(b)) => {
                bound(
                    a.max_length,
                    b.max_length,
                    bound_names!("MAX_LENGTH"),
                    "maxLength",
                    &mut out,
                );
                bound(
                    a.min_length,
                    b.min_length,
                    bound_names!("MIN_LENGTH"),
                    "minLength",
                    &mut out,
                );
                match (&a.pattern, &b.pattern) {
                    (None, Some(_)) => out.push(diff("PATTERN_ADDED", "pattern")),
                    (Some(_), None) => out.push(diff("PATTERN_REMOVED", "pattern")),
                    (Some(x), Some(y)) if x != y => out.push(diff("PATTERN_CHANGED", "pattern")),
                    _ => {}
                }
            }
            (Kind::Number(a), Kind::Number(b)) => number_diff(a, b, &mut out),
            (Kind::Enum(a), Kind::Enum(b)) => {
                let ext = a.iter().all(|v| b.contains(v));
                let nar = b.iter().all(|v| a.contains(v));
                match (ext, nar) {
                    (true, true) => {}
                    (true, false) => out.push(diff("ENUM_ARRAY_EXTENDED", "enum")),
                    (false, true) => out.push(diff("ENUM_ARRAY_NARROWED", "enum")),
                    (false, false) => out.push(diff("ENUM_ARRAY_CHANGED", "enum")),
                }
            }
            (Kind::Const(a), Kind::Const(b)) if a != b => {
                out.push(diff("ENUM_ARRAY_CHANGED", "const"))
            }
            (Kind::Not(a), Kind::Not(b)) => {
                // The negated schemas compare the other way round.
                let (a, b) = (*a, *b);
                let reversed = compare(
                    &JsonSchema {
                        nodes: self.u.nodes.clone(),
                        root: b,
                    },
                    &JsonSchema {
                        nodes: self.o.nodes.clone(),
                        root: a,
                    },
                    self.depth + 1,
                );
                out.push(diff(
                    if all_compatible(&reversed) {
                        "NOT_TYPE_NARROWED"
                    } else {
                        "NOT_TYPE_EXTENDED"
                    },
                    "not",
                ));
            }
            (Kind::Combined(ca, sa), Kind::Combined(cb, sb)) => {
                self.combined(*ca, sa, *cb, sb, &mut out)
            }
            (Kind::Object(a), Kind::Object(b)) => self.object(a, b, &mut out),
            (Kind::Array(a), Kind::Array(b)) => self.array(a, b, &mut out),
            _ => {}
        }
        out
    }

    fn combined(&mut self, ca: Crit, sa: &[NodeId], cb: Crit, sb: &[NodeId], out: &mut Vec<Diff>) {
        if ca != cb {
            if cb == Crit::Any
                || (sa.len() == 1 && sb.len() == 1)
                || (sa.len() == 1 && cb == Crit::One)
                || (sb.len() == 1 && ca == Crit::All)
            {
                out.push(diff("COMBINED_TYPE_EXTENDED", ""));
            } else {
                out.push(diff("COMBINED_TYPE_CHANGED", ""));
                return;
            }
        }
        let mut oa: Vec<NodeId> = Vec::new();
        for &s in sa {
            if !oa
                .iter()
                .any(|&x| self.o.nodes[x].text == self.o.nodes[s].text)
            {
                oa.push(s);
            }
        }
        let mut ub: Vec<NodeId> = Vec::new();
        for &s in sb {
            if !ub
                .iter()
                .any(|&x| self.u.nodes[x].text == self.u.nodes[s].text)
            {
                ub.push(s);
            }
        }
        let (n, m) = (oa.len(), ub.len());
        if n < m {
            out.push(diff(
                if cb == Crit::All {
                    "PRODUCT_TYPE_EXTENDED"
                } else {
                    "SUM_TYPE_EXTENDED"
                },
                "",
            ));
        } else if n > m {
            out.push(diff(
                if ca == Crit::All {
                    "PRODUCT_TYPE_NARROWED"
                } else {
                    "SUM_TYPE_NARROWED"
                },
                "",
            ));
        }
        let crit = match ca {
            Crit::All => "allOf",
            Crit::Any => "anyOf",
            Crit::One => "oneOf",
        };
        let mut edges: Vec<Vec<(usize, Vec<Diff>)>> = vec![Vec::new(); n];
        for (i, &x) in oa.iter().enumerate() {
            for (j, &y) in ub.iter().enumerate() {
                let d = self.cmp(Some(x), Some(y));
                if all_compatible(&d) {
                    edges[i].push((j, d));
                }
            }
        }
        let matched = max_matching(n, m, &edges);
        for (i, j) in matched.iter().enumerate() {
            if let Some(j) = j {
                if let Some((_, d)) = edges[i].iter().find(|(jj, _)| jj == j) {
                    prefixed(&format!("{crit}/{i}"), d.clone(), out);
                }
            }
        }
        if matched.iter().flatten().count() < n.min(m) {
            out.push(diff("COMBINED_TYPE_SUBSCHEMAS_CHANGED", ""));
        }
    }

    fn object(&mut self, a: &Obj, b: &Obj, out: &mut Vec<Diff>) {
        let ua: HashMap<&str, NodeId> =
            a.properties.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let ub: HashMap<&str, NodeId> =
            b.properties.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        for (p, bn) in &b.properties {
            let bn = *bn;
            if !ua.contains_key(p.as_str()) {
                continue;
            }
            let path = format!("required/{p}");
            match (a.required.contains(p), b.required.contains(p)) {
                (true, false) => out.push(diff("REQUIRED_ATTRIBUTE_REMOVED", &path)),
                (false, true) => out.push(diff(
                    if self.u.nodes[bn].has_default {
                        "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED"
                    } else {
                        "REQUIRED_ATTRIBUTE_ADDED"
                    },
                    &path,
                )),
                _ => {}
            }
        }
        let mut names: Vec<&str> = a.properties.iter().map(|(k, _)| k.as_str()).collect();
        for (k, _) in &b.properties {
            if !ua.contains_key(k.as_str()) {
                names.push(k);
            }
        }
        for p in names {
            let seg = format!("properties/{p}");
            match (ua.get(p), ub.get(p)) {
                (Some(&x), Some(&y)) => self.sub(&seg, Some(x), Some(y), out),
                (Some(&x), None) => {
                    if open_object(self.u, b) {
                        out.push(diff("PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL", &seg));
                    } else if let Some(s) = partial_object(self.u, b, p) {
                        self.coverage(
                            &seg,
                            x,
                            s,
                            [
                                "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                                "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                            ],
                            out,
                        );
                    } else if matches!(self.node_o(deref(self.o, x)), Kind::False) {
                        out.push(diff(
                            "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                            &seg,
                        ));
                    } else {
                        out.push(diff("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", &seg));
                    }
                }
                (None, Some(&y)) => {
                    let required = b.required.contains(p);
                    let default = self.u.nodes[y].has_default;
                    if open_object(self.o, a) {
                        if self.node_u(deref(self.u, y)).accepts_all() {
                            out.push(diff(
                                "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
                                &seg,
                            ));
                        } else if required {
                            out.push(diff(
                                if default {
                                    "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL"
                                } else {
                                    "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
                                },
                                &seg,
                            ));
                        } else {
                            out.push(diff("OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", &seg));
                        }
                    } else {
                        if let Some(s) = partial_object(self.o, a, p) {
                            self.coverage(
                                &seg,
                                s,
                                y,
                                [
                                    "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                                    "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                                ],
                                out,
                            );
                        }
                        out.push(diff(
                            match (required, default) {
                                (true, true) => {
                                    "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL"
                                }
                                (true, false) => "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
                                _ => "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
                            },
                            &seg,
                        ));
                    }
                }
                (None, None) => {}
            }
        }
        let keys: BTreeSet<&String> = a
            .property_deps
            .keys()
            .chain(b.property_deps.keys())
            .collect();
        for k in keys {
            let path = format!("dependencies/{k}");
            match (a.property_deps.get(k), b.property_deps.get(k)) {
                (Some(_), None) => out.push(diff("DEPENDENCY_ARRAY_REMOVED", &path)),
                (None, Some(_)) => out.push(diff("DEPENDENCY_ARRAY_ADDED", &path)),
                (Some(x), Some(y)) if x != y => out.push(diff(
                    if y.is_superset(x) {
                        "DEPENDENCY_ARRAY_EXTENDED"
                    } else if x.is_superset(y) {
                        "DEPENDENCY_ARRAY_NARROWED"
                    } else {
                        "DEPENDENCY_ARRAY_CHANGED"
                    },
                    &path,
                )),
                _ => {}
            }
        }
        let keys: BTreeSet<&String> = a.schema_deps.keys().chain(b.schema_deps.keys()).collect();
        for k in keys {
            let path = format!("dependencies/{k}");
            match (a.schema_deps.get(k), b.schema_deps.get(k)) {
                (Some(_), None) => out.push(diff("DEPENDENCY_SCHEMA_REMOVED", &path)),
                (None, Some(_)) => out.push(diff("DEPENDENCY_SCHEMA_ADDED", &path)),
                (Some(&x), Some(&y)) => self.sub(&path, Some(x), Some(y), out),
                (None, None) => {}
            }
        }
        if a.additional_permitted != b.additional_permitted {
            out.push(diff(
                if b.additional_permitted {
                    "ADDITIONAL_PROPERTIES_ADDED"
                } else {
                    "ADDITIONAL_PROPERTIES_REMOVED"
                },
                "additionalProperties",
            ));
        } else {
            match (a.additional_schema, b.additional_schema) {
                (None, Some(_)) => out.push(diff(
                    "ADDITIONAL_PROPERTIES_NARROWED",
                    "additionalProperties",
                )),
                (Some(_), None) => out.push(diff(
                    "ADDITIONAL_PROPERTIES_EXTENDED",
                    "additionalProperties",
                )),
                (Some(x), Some(y)) => self.sub("additionalProperties", Some(x), Some(y), out),
                (None, None) => {}
            }
        }
        self.unevaluated(
            a.unevaluated,
            b.unevaluated,
            "PROPERTIES",
            "unevaluatedProperties",
            out,
        );
        bound(
            a.max_properties,
            b.max_properties,
            bound_names!("MAX_PROPERTIES"),
            "maxProperties",
            out,
        );
        bound(
            a.min_properties,
            b.min_properties,
            bound_names!("MIN_PROPERTIES"),
            "minProperties",
            out,
        );
    }

    fn unevaluated(
        &mut self,
        a: Option<NodeId>,
        b: Option<NodeId>,
        what: &str,
        seg: &str,
        out: &mut Vec<Diff>,
    ) {
        let name = |s: &str| -> &'static str {
            match (what, s) {
                ("PROPERTIES", "ADDED") => "UNEVALUATED_PROPERTIES_ADDED",
                ("PROPERTIES", "REMOVED") => "UNEVALUATED_PROPERTIES_REMOVED",
                ("PROPERTIES", "NARROWED") => "UNEVALUATED_PROPERTIES_NARROWED",
                ("PROPERTIES", _) => "UNEVALUATED_PROPERTIES_EXTENDED",
                (_, "ADDED") => "UNEVALUATED_ITEMS_ADDED",
                (_, "REMOVED") => "UNEVALUATED_ITEMS_REMOVED",
                (_, "NARROWED") => "UNEVALUATED_ITEMS_NARROWED",
                _ => "UNEVALUATED_ITEMS_EXTENDED",
            }
        };
        let is_false_o = |cx: &Self, n: NodeId| matches!(cx.node_o(deref(cx.o, n)), Kind::False);
        let is_false_u = |cx: &Self, n: NodeId| matches!(cx.node_u(deref(cx.u, n)), Kind::False);
        let empty_o = |cx: &Self, n: NodeId| cx.node_o(deref(cx.o, n)).accepts_all();
        let empty_u = |cx: &Self, n: NodeId| cx.node_u(deref(cx.u, n)).accepts_all();
        let kind = match (a, b) {
            (None, None) => return,
            (None, Some(y)) => Some(if is_false_u(self, y) {
                "REMOVED"
            } else {
                "NARROWED"
            }),
            (Some(x), None) => Some(if is_false_o(self, x) {
                "ADDED"
            } else {
                "EXTENDED"
            }),
            (Some(x), Some(y)) => {
                let (fx, fy) = (is_false_o(self, x), is_false_u(self, y));
                if fx && !fy {
                    Some("ADDED")
                } else if !fx && fy {
                    Some("REMOVED")
                } else if empty_o(self, x) && !empty_u(self, y) {
                    Some("NARROWED")
                } else if !empty_o(self, x) && empty_u(self, y) {
                    Some("EXTENDED")
                } else {
                    self.sub(seg, Some(x), Some(y), out);
                    None
                }
            }
        };
        if let Some(k) = kind {
            out.push(diff(name(k), seg));
        }
    }

    fn array(&mut self, a: &Arr, b: &Arr, out: &mut Vec<Diff>) {
        if a.all_items.is_some() || b.all_items.is_some() {
            self.sub("items", a.all_items, b.all_items, out);
        }
        let (n, m) = (a.tuple.len(), b.tuple.len());
        for i in 0..n.min(m) {
            self.sub(
                &format!("items/{i}"),
                Some(a.tuple[i]),
                Some(b.tuple[i]),
                out,
            );
        }
        for i in m..n {
            let seg = format!("items/{i}");
            let x = a.tuple[i];
            if open_array(self.u, b) {
                out.push(diff("ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL", &seg));
            } else if let Some(s) = partial_array(self.u, b) {
                self.coverage(
                    &seg,
                    x,
                    s,
                    [
                        "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                        "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                    ],
                    out,
                );
            } else if matches!(self.node_o(deref(self.o, x)), Kind::False) {
                out.push(diff(
                    "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                    &seg,
                ));
            } else {
                out.push(diff("ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL", &seg));
            }
        }
        for i in n..m {
            let seg = format!("items/{i}");
            let y = b.tuple[i];
            if open_array(self.o, a) {
                out.push(diff(
                    if self.node_u(deref(self.u, y)).accepts_all() {
                        "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL"
                    } else {
                        "ITEM_ADDED_TO_OPEN_CONTENT_MODEL"
                    },
                    &seg,
                ));
            } else if let Some(s) = partial_array(self.o, a) {
                self.coverage(
                    &seg,
                    s,
                    y,
                    [
                        "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                        "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                    ],
                    out,
                );
            } else {
                out.push(diff("ITEM_ADDED_TO_CLOSED_CONTENT_MODEL", &seg));
            }
        }
        if a.additional_permitted != b.additional_permitted {
            out.push(diff(
                if a.additional_permitted {
                    "ADDITIONAL_ITEMS_REMOVED"
                } else {
                    "ADDITIONAL_ITEMS_ADDED"
                },
                "additionalItems",
            ));
        } else {
            match (a.additional_schema, b.additional_schema) {
                (None, Some(_)) => out.push(diff("ADDITIONAL_ITEMS_NARROWED", "additionalItems")),
                (Some(_), None) => out.push(diff("ADDITIONAL_ITEMS_EXTENDED", "additionalItems")),
                (Some(x), Some(y)) => self.sub("additionalItems", Some(x), Some(y), out),
                (None, None) => {}
            }
        }
        self.unevaluated(
            a.unevaluated,
            b.unevaluated,
            "ITEMS",
            "unevaluatedItems",
            out,
        );
        bound(
            a.max_items,
            b.max_items,
            bound_names!("MAX_ITEMS"),
            "maxItems",
            out,
        );
        bound(
            a.min_items,
            b.min_items,
            bound_names!("MIN_ITEMS"),
            "minItems",
            out,
        );
        match (a.unique_items, b.unique_items) {
            (true, false) => out.push(diff("UNIQUE_ITEMS_REMOVED", "uniqueItems")),
            (false, true) => out.push(diff("UNIQUE_ITEMS_ADDED", "uniqueItems")),
            _ => {}
        }
        bound(
            a.max_contains,
            b.max_contains,
            bound_names!("MAX_CONTAINS"),
            "maxContains",
            out,
        );
        bound(
            a.min_contains,
            b.min_contains,
            bound_names!("MIN_CONTAINS"),
            "minContains",
            out,
        );
    }
}

fn number_diff(a: &Num, b: &Num, out: &mut Vec<Diff>) {
    bound(
        a.maximum,
        b.maximum,
        bound_names!("MAXIMUM"),
        "maximum",
        out,
    );
    bound(
        a.minimum,
        b.minimum,
        bound_names!("MINIMUM"),
        "minimum",
        out,
    );
    bound(
        a.exclusive_maximum,
        b.exclusive_maximum,
        bound_names!("EXCLUSIVE_MAXIMUM"),
        "exclusiveMaximum",
        out,
    );
    bound(
        a.exclusive_minimum,
        b.exclusive_minimum,
        bound_names!("EXCLUSIVE_MINIMUM"),
        "exclusiveMinimum",
        out,
    );
    let divides = |d: f64, n: f64| {
        if d == 0.0 {
            return false;
        }
        let q = n / d;
        (q - q.round()).abs() < 1e-9
    };
    match (a.multiple_of, b.multiple_of) {
        (None, Some(_)) => out.push(diff("MULTIPLE_OF_ADDED", "multipleOf")),
        (Some(_), None) => out.push(diff("MULTIPLE_OF_REMOVED", "multipleOf")),
        (Some(x), Some(y)) if x != y => out.push(diff(
            if divides(x, y) {
                "MULTIPLE_OF_EXPANDED"
            } else if divides(y, x) {
                "MULTIPLE_OF_REDUCED"
            } else {
                "MULTIPLE_OF_CHANGED"
            },
            "multipleOf",
        )),
        _ => {}
    }
    match (a.integer, b.integer) {
        (true, false) => out.push(diff("TYPE_EXTENDED", "")),
        (false, true) => out.push(diff("TYPE_NARROWED", "")),
        _ => {}
    }
}

/// An object that takes any property it does not name.
fn open_object(s: &JsonSchema, o: &Obj) -> bool {
    o.additional_permitted
        && o.additional_schema.is_none()
        && o.pattern_properties.is_empty()
        && o.unevaluated
            .is_none_or(|n| s.nodes[deref(s, n)].kind.accepts_all())
}

/// The schema an object gives a property it does not name, if it gives one.
fn partial_object(s: &JsonSchema, o: &Obj, name: &str) -> Option<NodeId> {
    if let Some((_, n)) = o
        .pattern_properties
        .iter()
        .find(|(re, _)| re.as_ref().is_some_and(|re| re.is_match(name)))
    {
        return Some(*n);
    }
    if o.additional_schema.is_some() {
        return o.additional_schema;
    }
    if o.additional_permitted {
        if let Some(u) = o.unevaluated {
            let k = &s.nodes[deref(s, u)].kind;
            if !k.accepts_all() && !matches!(k, Kind::False) {
                return Some(u);
            }
        }
    }
    None
}

fn open_array(s: &JsonSchema, a: &Arr) -> bool {
    a.additional_permitted
        && a.additional_schema.is_none()
        && a.unevaluated
            .is_none_or(|n| s.nodes[deref(s, n)].kind.accepts_all())
}

fn partial_array(s: &JsonSchema, a: &Arr) -> Option<NodeId> {
    if a.additional_schema.is_some() {
        return a.additional_schema;
    }
    if a.additional_permitted {
        if let Some(u) = a.unevaluated {
            let k = &s.nodes[deref(s, u)].kind;
            if !k.accepts_all() && !matches!(k, Kind::False) {
                return Some(u);
            }
        }
    }
    None
}

/// A maximum matching of left 0..n to right 0..m along `edges` (augmenting paths).
fn max_matching(n: usize, m: usize, edges: &[Vec<(usize, Vec<Diff>)>]) -> Vec<Option<usize>> {
    fn augment(
        i: usize,
        edges: &[Vec<(usize, Vec<Diff>)>],
        seen: &mut [bool],
        right: &mut [Option<usize>],
    ) -> bool {
        for (j, _) in &edges[i] {
            if seen[*j] {
                continue;
            }
            seen[*j] = true;
            if right[*j].is_none_or(|k| augment(k, edges, seen, right)) {
                right[*j] = Some(i);
                return true;
            }
        }
        false
    }
    let mut right: Vec<Option<usize>> = vec![None; m];
    for i in 0..n {
        let mut seen = vec![false; m];
        augment(i, edges, &mut seen, &mut right);
    }
    let mut left = vec![None; n];
    for (j, i) in right.iter().enumerate() {
        if let Some(i) = i {
            left[*i] = Some(j);
        }
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(old: &str, new: &str) -> Vec<String> {
        let (o, _) = parse(old, &[]).unwrap();
        let (n, _) = parse(new, &[]).unwrap();
        can_read(&n, &o)
    }

    #[test]
    fn content_models_decide_added_properties() {
        let closed = r#"{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}"#;
        let open = r#"{"type":"object","properties":{"a":{"type":"string"}}}"#;
        let add = |s: &str| {
            s.replace(
                r#""a":{"type":"string"}"#,
                r#""a":{"type":"string"},"b":{"type":"integer"}"#,
            )
        };
        assert!(verdict(closed, &add(closed)).is_empty());
        let v = verdict(open, &add(open));
        assert!(
            v[0].contains("OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"),
            "{v:?}"
        );
    }

    #[test]
    fn recursive_schemas_compare_and_long_ref_chains_are_refused() {
        let tree = serde_json::json!({
            "$ref": "#/definitions/node",
            "definitions": {"node": {"type": "object", "properties": {
                "kids": {"type": "array", "items": {"$ref": "#/definitions/node"}},
                "n": {"type": "integer"}
            }}}
        })
        .to_string();
        let tree = tree.as_str();
        assert!(verdict(tree, &tree.replace("integer", "number")).is_empty());
        assert!(!verdict(&tree.replace("integer", "number"), tree).is_empty());
        // 10,000 definitions, each a $ref to the next: refused, not a stack overflow.
        let mut defs = serde_json::Map::new();
        for i in 0..10_000 {
            defs.insert(
                format!("d{i}"),
                serde_json::json!({"$ref": format!("#/definitions/d{}", i + 1)}),
            );
        }
        defs.insert("d10000".into(), serde_json::json!({"type": "string"}));
        let chain =
            serde_json::json!({"$ref": "#/definitions/d0", "definitions": defs}).to_string();
        assert!(parse(&chain, &[]).unwrap_err().contains("nest deeper"));
    }
}
