//! Protobuf: parsed and linked with `protox` (a pure-Rust protobuf compiler: the
//! schema's imports resolve to its references by name, and to Google's well-known types),
//! stored as `.proto` text rendered from the compiled descriptor, served as that text or,
//! with `format=serialized`, as the base64 `FileDescriptorProto` confluent-kafka-python's
//! deserializer asks for. A schema may be submitted either way: as `.proto` text, or as a
//! base64 serialized `FileDescriptorProto` (what confluent-kafka-python's serializer
//! registers).
//!
//! Compatibility follows Confluent's Protobuf `SchemaDiff` (see `diff`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use base64::Engine;
use prost::Message;
use prost_reflect::{
    Cardinality, DescriptorPool, FieldDescriptor, Kind, MessageDescriptor, Syntax,
};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use super::proto_text;
use super::Dependency;

/// How deep braces, brackets and parentheses may nest in `.proto` text.
const MAX_NESTING: usize = 64;

/// The name a schema's own file is compiled under (its references keep their names).
const MAIN: &str = "strom-registry-schema.proto";

/// A compiled schema: the pool with its imports, and the main file's name in it.
#[derive(Clone, Debug)]
pub struct ProtoSchema {
    pub(super) pool: DescriptorPool,
    pub(super) file: String,
}

struct Sources {
    files: HashMap<String, File>,
}

impl FileResolver for Sources {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        self.files
            .get(name)
            .cloned()
            .ok_or_else(|| protox::Error::file_not_found(name))
    }
}

/// A submitted schema as a protox file called `name`: `.proto` text, else (as Confluent
/// reads it) a base64 serialized `FileDescriptorProto`.
fn source(name: &str, text: &str) -> Result<File, String> {
    if text.trim().is_empty() {
        return Err("Empty schema".to_string());
    }
    // The parser descends once per nested block: refuse depths no schema needs before
    // they can exhaust the stack (a descriptor's decoder has its own limit).
    let mut depth = 0usize;
    for b in text.bytes() {
        match b {
            b'{' | b'[' | b'(' | b'<' => depth += 1,
            b'}' | b']' | b')' | b'>' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_NESTING {
            return Err(format!("blocks nest deeper than {MAX_NESTING}"));
        }
    }
    match File::from_source(name, text) {
        Ok(f) => Ok(f),
        Err(text_err) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| text_err.to_string())?;
            let mut d = prost_types::FileDescriptorProto::decode(bytes.as_slice())
                .map_err(|_| text_err.to_string())?;
            d.name = Some(name.to_string());
            Ok(File::from_file_descriptor_proto(d))
        }
    }
}

/// Compiles `text` with `deps` (its references, by import name) into a schema and its
/// stored text.
pub fn parse(text: &str, deps: &[Dependency]) -> Result<(ProtoSchema, String), String> {
    let mut files = HashMap::new();
    for d in deps {
        let f = source(&d.name, &d.schema).map_err(|e| format!("reference {}: {e}", d.name))?;
        files.insert(d.name.clone(), f);
    }
    files.insert(MAIN.to_string(), source(MAIN, text)?);
    let mut chain = ChainFileResolver::new();
    chain.add(Sources { files });
    chain.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(chain);
    compiler.include_imports(true);
    compiler.open_file(MAIN).map_err(|e| e.to_string())?;
    let pool = compiler.descriptor_pool();
    let file = pool
        .get_file_by_name(MAIN)
        .ok_or_else(|| "the schema was not compiled".to_string())?;
    let canonical = proto_text::render(file.file_descriptor_proto());
    Ok((
        ProtoSchema {
            pool,
            file: MAIN.to_string(),
        },
        canonical,
    ))
}

impl ProtoSchema {
    /// The main file's `FileDescriptorProto`, serialized, in base64.
    pub fn serialized(&self) -> Option<String> {
        // Named "default", as Confluent's registry names it (clients rename it anyway).
        let mut f = self
            .pool
            .get_file_by_name(&self.file)?
            .file_descriptor_proto()
            .clone();
        f.name = Some("default".to_string());
        Some(base64::engine::general_purpose::STANDARD.encode(f.encode_to_vec()))
    }
}

// ---------------------------------------------------------------------------------------
// Compatibility: Confluent's Protobuf `SchemaDiff`. Messages match by simple name within
// their scope, fields by number; a field's kind (scalar, message, map) and scalar group
// must stay, a message-typed field's type keeps its name (without its file's package)
// and, when defined in a referenced file, stays compatible itself; required fields
// cannot come or go; fields cannot move between oneofs or into one. Enum changes, added
// and removed optional fields, renamed fields, new messages and oneofs are compatible.
// Options, reserved ranges, imports, syntax and services are not compared.

/// One incompatible difference: its type and path (`#/Msg/…/tag`).
struct Diff {
    kind: &'static str,
    path: String,
}

/// Whether data written with `original` reads with `update`: the reasons it does not.
pub fn can_read(update: &ProtoSchema, original: &ProtoSchema) -> Vec<String> {
    let (Some(o), Some(u)) = (
        original.pool.get_file_by_name(&original.file),
        update.pool.get_file_by_name(&update.file),
    ) else {
        return vec!["the schema could not be loaded".to_string()];
    };
    let mut cx = Cx {
        out: Vec::new(),
        seen: HashSet::new(),
        o_file: original.file.clone(),
        u_file: update.file.clone(),
    };
    if o.package_name() != u.package_name() {
        cx.push("PACKAGE_CHANGED", "#/".to_string());
    }
    cx.types(o.messages().collect(), u.messages().collect(), &mut vec![]);
    cx.out
        .into_iter()
        .map(|d| {
            format!(
                "{{errorType:\"{}\", description:\"at path '{}'\"}}",
                d.kind, d.path
            )
        })
        .collect()
}

struct Cx {
    out: Vec<Diff>,
    /// Message pairs compared already (or being compared): recursion through fields.
    seen: HashSet<(String, String)>,
    o_file: String,
    u_file: String,
}

fn path_of(segments: &[String]) -> String {
    format!("#/{}", segments.join("/"))
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Group {
    Number,
    Signed,
    StringOrBytes,
    Fixed32,
    Fixed64,
    Float,
    Double,
}

enum FieldKind {
    Scalar(Group, bool),
    Message(MessageDescriptor),
    Map(Box<FieldKind>, Box<FieldKind>),
}

fn kind_of(kind: Kind) -> FieldKind {
    let g = match kind {
        Kind::Message(m) => return FieldKind::Message(m),
        Kind::Int32 | Kind::Int64 | Kind::Uint32 | Kind::Uint64 | Kind::Bool | Kind::Enum(_) => {
            Group::Number
        }
        Kind::Sint32 | Kind::Sint64 => Group::Signed,
        Kind::String | Kind::Bytes => Group::StringOrBytes,
        Kind::Fixed32 | Kind::Sfixed32 => Group::Fixed32,
        Kind::Fixed64 | Kind::Sfixed64 => Group::Fixed64,
        Kind::Float => Group::Float,
        Kind::Double => Group::Double,
    };
    FieldKind::Scalar(g, g == Group::StringOrBytes)
}

fn field_kind(f: &FieldDescriptor) -> FieldKind {
    match f.kind() {
        Kind::Message(m) if m.is_map_entry() => FieldKind::Map(
            Box::new(kind_of(m.map_entry_key_field().kind())),
            Box::new(kind_of(m.map_entry_value_field().kind())),
        ),
        k => kind_of(k),
    }
}

/// The real (not proto3-optional) oneof a field is in.
fn oneof_of(f: &FieldDescriptor) -> Option<String> {
    f.containing_oneof()
        .filter(|o| !o.is_synthetic())
        .map(|o| o.name().to_string())
}

/// The label as written: none for proto3's implicit presence, oneof members and maps.
fn label(f: &FieldDescriptor) -> Option<Cardinality> {
    if oneof_of(f).is_some() || f.is_map() {
        return None;
    }
    let implicit = f.parent_file().syntax() == Syntax::Proto3
        && f.cardinality() == Cardinality::Optional
        && !f.field_descriptor_proto().proto3_optional();
    (!implicit).then(|| f.cardinality())
}

/// A message's name without its file's package.
fn local_name(m: &MessageDescriptor) -> &str {
    let pkg = m.package_name();
    if pkg.is_empty() {
        m.full_name()
    } else {
        m.full_name()
            .strip_prefix(pkg)
            .map(|s| s.trim_start_matches('.'))
            .unwrap_or(m.full_name())
    }
}

impl Cx {
    fn push(&mut self, kind: &'static str, path: String) {
        self.out.push(Diff { kind, path });
    }

    fn types(
        &mut self,
        o: Vec<MessageDescriptor>,
        u: Vec<MessageDescriptor>,
        path: &mut Vec<String>,
    ) {
        let ou: BTreeMap<&str, &MessageDescriptor> = u.iter().map(|m| (m.name(), m)).collect();
        for m in &o {
            path.push(m.name().to_string());
            match ou.get(m.name()) {
                Some(n) => self.message(m, n, path),
                None if !m.is_map_entry() => self.push("MESSAGE_REMOVED", path_of(path)),
                None => {}
            }
            path.pop();
        }
    }

    fn message(&mut self, o: &MessageDescriptor, u: &MessageDescriptor, path: &mut Vec<String>) {
        if !self
            .seen
            .insert((o.full_name().to_string(), u.full_name().to_string()))
        {
            return;
        }
        let of: BTreeMap<u32, FieldDescriptor> = o.fields().map(|f| (f.number(), f)).collect();
        let uf: BTreeMap<u32, FieldDescriptor> = u.fields().map(|f| (f.number(), f)).collect();
        let o_oneof: BTreeMap<u32, String> = o
            .fields()
            .filter_map(|f| oneof_of(&f).map(|n| (f.number(), n)))
            .collect();
        let u_oneof: BTreeMap<u32, String> = u
            .fields()
            .filter_map(|f| oneof_of(&f).map(|n| (f.number(), n)))
            .collect();
        let u_oneof_names: BTreeSet<&String> = u_oneof.values().collect();
        // An original oneof gone with every one of its fields.
        let deleted = |name: &String| {
            !u_oneof_names.contains(name)
                && o_oneof
                    .iter()
                    .filter(|(_, n)| *n == name)
                    .all(|(t, _)| !uf.contains_key(t))
        };
        // A new oneof may gather fields of one origin only (one old oneof, or one field).
        for name in &u_oneof_names {
            let mut groups = BTreeSet::new();
            let mut top_moved = 0;
            for (t, _) in u_oneof.iter().filter(|(_, n)| n == name) {
                if !of.contains_key(t) {
                    continue;
                }
                match o_oneof.get(t) {
                    Some(x) => {
                        groups.insert(format!("oneof:{x}"));
                    }
                    None => {
                        groups.insert(format!("field:{t}"));
                        top_moved += 1;
                    }
                }
            }
            if groups.len() > 1 {
                path.push((*name).clone());
                let kind = if top_moved > 1 {
                    "MULTIPLE_FIELDS_MOVED_TO_ONEOF"
                } else {
                    "FIELD_MOVED_TO_EXISTING_ONEOF"
                };
                self.push(kind, path_of(path));
                path.pop();
            }
        }
        let tags: BTreeSet<u32> = of.keys().chain(uf.keys()).copied().collect();
        for t in tags {
            match (of.get(&t), uf.get(&t)) {
                (Some(f), None) => match o_oneof.get(&t) {
                    Some(x) if !deleted(x) => {
                        path.push(x.clone());
                        path.push(t.to_string());
                        self.push("ONEOF_FIELD_REMOVED", path_of(path));
                        path.truncate(path.len() - 2);
                    }
                    Some(_) => {}
                    None if f.cardinality() == Cardinality::Required => {
                        path.push(t.to_string());
                        self.push("REQUIRED_FIELD_REMOVED", path_of(path));
                        path.pop();
                    }
                    None => {}
                },
                (None, Some(f)) => {
                    if !u_oneof.contains_key(&t) && f.cardinality() == Cardinality::Required {
                        path.push(t.to_string());
                        self.push("REQUIRED_FIELD_ADDED", path_of(path));
                        path.pop();
                    }
                }
                (Some(a), Some(b)) => {
                    let depth = path.len();
                    if let Some(x) = u_oneof.get(&t) {
                        path.push(x.clone());
                    }
                    path.push(t.to_string());
                    self.labels_and_types(label(a), label(b), field_kind(a), field_kind(b), path);
                    path.truncate(depth);
                }
                (None, None) => {}
            }
        }
        self.types(
            o.child_messages().collect(),
            u.child_messages().collect(),
            path,
        );
    }

    fn labels_and_types(
        &mut self,
        ol: Option<Cardinality>,
        ul: Option<Cardinality>,
        ok: FieldKind,
        uk: FieldKind,
        path: &mut Vec<String>,
    ) {
        match (ok, uk) {
            (FieldKind::Scalar(a, string_or_bytes), FieldKind::Scalar(b, _)) => {
                if a != b {
                    self.push("FIELD_SCALAR_KIND_CHANGED", path_of(path));
                } else if ol.is_some() && ul.is_some() && ol != ul && !string_or_bytes {
                    self.push("FIELD_NUMERIC_LABEL_CHANGED", path_of(path));
                }
            }
            (FieldKind::Map(ak, av), FieldKind::Map(bk, bv)) => {
                self.labels_and_types(None, None, *ak, *bk, path);
                self.labels_and_types(None, None, *av, *bv, path);
            }
            (FieldKind::Message(a), FieldKind::Message(b)) => {
                if local_name(&a) != local_name(&b) {
                    self.push("FIELD_NAMED_TYPE_CHANGED", path_of(path));
                    return;
                }
                // Types of the schema itself are compared where they are declared.
                if a.parent_file().name() == self.o_file && b.parent_file().name() == self.u_file {
                    return;
                }
                let before = self.out.len();
                let mut sub = vec![local_name(&a).to_string()];
                self.message(&a, &b, &mut sub);
                if self.out.len() > before {
                    self.push("FIELD_NAMED_TYPE_CHANGED", path_of(path));
                }
            }
            _ => self.push("FIELD_KIND_CHANGED", path_of(path)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = r#"
        syntax = "proto3";
        package shop;
        import "google/protobuf/timestamp.proto";
        option java_package = "com.example.shop";
        message Order {
          string id = 1;
          map<string, int32> counts = 2;
          oneof pay { string card = 3; Iban iban = 4; }
          optional int64 qty = 5 [json_name = "quantity"];
          repeated Line lines = 6;
          google.protobuf.Timestamp at = 7;
          message Line { string sku = 1; reserved 2, 9 to 11; reserved "old"; }
          enum State { NEW = 0; PAID = 1; }
          State state = 8;
        }
        message Iban { string number = 1; }
        enum Kind { A = 0; B = 1; }
    "#;

    #[test]
    fn the_stored_text_compiles_back_to_itself() {
        let (_, text) = parse(ORDER, &[]).unwrap();
        let (_, again) = parse(&text, &[]).unwrap();
        assert_eq!(text, again);
        for needle in [
            "map<string, int32> counts = 2;",
            "oneof pay {",
            "optional int64 qty = 5 [json_name = \"quantity\"];",
            "repeated .shop.Order.Line lines = 6;",
            ".google.protobuf.Timestamp at = 7;",
            "reserved 2, 9 to 11;",
            "import \"google/protobuf/timestamp.proto\";",
        ] {
            assert!(text.contains(needle), "{needle} not in\n{text}");
        }
    }

    #[test]
    fn a_base64_descriptor_is_the_same_schema_as_its_text() {
        let (schema, text) = parse(ORDER, &[]).unwrap();
        let b64 = schema.serialized().unwrap();
        let (_, from_descriptor) = parse(&b64, &[]).unwrap();
        assert_eq!(text, from_descriptor);
    }

    #[test]
    fn verdicts_follow_confluents_rules() {
        let v1 = parse(ORDER, &[]).unwrap().0;
        let check = |new: &str| can_read(&parse(new, &[]).unwrap().0, &v1);
        assert!(check(&ORDER.replace("string id = 1;", "string ident = 1;")).is_empty());
        assert!(check(&ORDER.replace("string id = 1;", "bytes id = 1;")).is_empty());
        let changed = check(&ORDER.replace("string id = 1;", "int32 id = 1;"));
        assert!(
            changed[0].contains("FIELD_SCALAR_KIND_CHANGED"),
            "{changed:?}"
        );
        let moved = check(
            &ORDER
                .replace("Iban iban = 4;", "Iban iban = 4; string id2 = 1;")
                .replace("string id = 1;", ""),
        );
        assert!(
            moved[0].contains("FIELD_MOVED_TO_EXISTING_ONEOF"),
            "{moved:?}"
        );
        let gone = check(
            &ORDER
                .replace("message Iban { string number = 1; }", "")
                .replace("Iban iban", "string iban"),
        );
        assert!(
            gone.iter().any(|m| m.contains("MESSAGE_REMOVED")),
            "{gone:?}"
        );
        assert!(
            gone.iter().any(|m| m.contains("FIELD_KIND_CHANGED")),
            "{gone:?}"
        );
    }

    #[test]
    fn broken_schemas_are_refused() {
        // 100,000 nested messages: refused before the parser descends into them.
        let deep = format!(
            "syntax = \"proto3\"; {}{}",
            "message A { ".repeat(100_000),
            "}".repeat(100_000)
        );
        for bad in [
            "",
            "message {",
            "syntax = \"proto3\"; message A { Missing m = 1; }",
            "syntax = \"proto3\"; import \"nowhere.proto\"; message A {}",
            "bm90IGEgZGVzY3JpcHRvcg==",
            deep.as_str(),
        ] {
            assert!(parse(bad, &[]).is_err(), "{bad}");
        }
    }
}
