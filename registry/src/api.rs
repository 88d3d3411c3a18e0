//! Confluent Schema Registry's REST API (7.x) as a function of a [`Store`]: the
//! endpoints, their query parameters, their JSON bodies, and Confluent's error bodies
//! (`{"error_code": 40401, "message": …}`) and codes.
//!
//! A request that changes nothing is answered from any node's store. One that changes
//! something yields [`Action::Write`]: the records to append to `_schemas` and the reply
//! to give once they are in. Only the writer (the leader of `_schemas`) may act on it,
//! with a store that has read the whole topic; other nodes forward such requests.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::format::{self, Dependency, ParsedSchema, SchemaType};
use crate::records::{
    record, ConfigValue, DeleteSubjectValue, Key, ModeValue, Record, Reference, SchemaValue,
};
use crate::store::{Level, Mode, Store};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Other,
}

/// An HTTP request: the path (still percent-encoded), the raw query string and body.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub method: Method,
    pub path: &'a str,
    pub query: &'a str,
    pub body: &'a [u8],
}

#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Json(Value),
    /// A schema's text as it is stored (the `.../schema` endpoints).
    Text(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Body,
}

impl Reply {
    pub fn ok(v: Value) -> Reply {
        Reply {
            status: 200,
            body: Body::Json(v),
        }
    }

    pub fn error(status: u16, code: i32, message: impl Into<String>) -> Reply {
        Reply {
            status,
            body: Body::Json(json!({"error_code": code, "message": message.into()})),
        }
    }

    /// The Confluent error code of an error reply.
    pub fn error_code(&self) -> Option<i64> {
        match &self.body {
            Body::Json(v) => v.get("error_code").and_then(Value::as_i64),
            Body::Text(_) => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Reply(Reply),
    /// Append `records` to `_schemas` (acks=all), then give `reply`.
    Write {
        records: Vec<Record>,
        reply: Reply,
    },
}

/// Settings of the registry (Confluent's names).
#[derive(Clone, Debug)]
pub struct Config {
    /// `schema.compatibility.level`.
    pub default_level: Level,
    /// The largest schema text accepted (42209 above it).
    pub max_schema_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_level: Level::Backward,
            max_schema_bytes: 1 << 20,
        }
    }
}

type Result<T> = std::result::Result<T, Reply>;

fn not_found_subject(s: &str) -> Reply {
    Reply::error(404, 40401, format!("Subject '{s}' not found."))
}

fn not_found_version(v: &str) -> Reply {
    Reply::error(404, 40402, format!("Version {v} not found."))
}

fn not_found_schema() -> Reply {
    Reply::error(404, 40403, "Schema not found")
}

fn invalid_schema(msg: impl Into<String>) -> Reply {
    Reply::error(422, 42201, msg)
}

fn not_permitted(msg: impl Into<String>) -> Reply {
    Reply::error(422, 42205, msg)
}

fn unknown_route() -> Reply {
    Reply::error(404, 404, "HTTP 404 Not Found")
}

fn bad_method() -> Reply {
    Reply::error(405, 405, "HTTP 405 Method Not Allowed")
}

/// Answers one request.
pub fn handle(store: &Store, cfg: &Config, req: &Request) -> Action {
    match route(store, cfg, req) {
        Ok(a) => a,
        Err(r) => Action::Reply(r),
    }
}

struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: &str) -> Query {
        Query(
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(p), String::new()),
                })
                .collect(),
        )
    }

    fn get(&self, names: &[&str]) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| names.contains(&k.as_str()))
            .map(|(_, v)| v.as_str())
    }

    /// Java's `Boolean.parseBoolean`: "true" in any case; confluent-kafka-python sends
    /// Python's `True`/`False`.
    fn flag(&self, names: &[&str]) -> bool {
        self.get(names)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// Percent-decoding ('+' stays: subjects may hold it).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(store: &Store, cfg: &Config, req: &Request) -> Result<Action> {
    let q = Query::parse(req.query);
    let segs: Vec<String> = req
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let seg: Vec<&str> = segs.iter().map(String::as_str).collect();
    use Method::*;
    let reply = |r: Result<Reply>| r.map(Action::Reply);
    match (req.method, seg.as_slice()) {
        (Get | Post, []) => reply(Ok(Reply::ok(json!({})))),
        (Get, ["schemas", "types"]) => reply(Ok(Reply::ok(json!(SchemaType::supported()
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>())))),
        (Get, ["schemas"]) => reply(list_schemas(store, &q)),
        (Get, ["schemas", "ids", id]) => reply(schema_by_id(store, id, &q)),
        (Get, ["schemas", "ids", id, "schema"]) => reply(
            parse_id(id)
                .and_then(|id| store.schema(id).ok_or_else(not_found_schema))
                .map(|s| Reply {
                    status: 200,
                    body: Body::Text(s.schema.clone()),
                }),
        ),
        (Get, ["schemas", "ids", id, "subjects"]) => reply(id_uses(store, id, &q, false)),
        (Get, ["schemas", "ids", id, "versions"]) => reply(id_uses(store, id, &q, true)),
        (Get, ["subjects"]) => reply(list_subjects(store, &q)),
        (Post, ["subjects", s]) => reply(lookup(store, cfg, s, &q, req.body)),
        (Delete, ["subjects", s]) => delete_subject(store, s, &q),
        (Get, ["subjects", s, "versions"]) => reply(list_versions(store, s, &q)),
        (Post, ["subjects", s, "versions"]) => register(store, cfg, s, &q, req.body),
        (Get, ["subjects", s, "versions", v]) => {
            reply(get_version(store, s, v, &q).map(|(version, id)| {
                Reply::ok(version_json(store, s, version, id, q.get(&["format"])))
            }))
        }
        (Get, ["subjects", s, "versions", v, "schema"]) => {
            reply(get_version(store, s, v, &q).map(|(_, id)| {
                Reply {
                    status: 200,
                    body: Body::Text(
                        store
                            .schema(id)
                            .map(|x| x.schema.clone())
                            .unwrap_or_default(),
                    ),
                }
            }))
        }
        (Get, ["subjects", s, "versions", v, "referencedby"]) => reply(
            get_version(store, s, v, &q)
                .map(|(version, _)| Reply::ok(json!(store.referenced_by(s, version)))),
        ),
        (Delete, ["subjects", s, "versions", v]) => delete_version(store, s, v, &q),
        (Post, ["compatibility", "subjects", s, "versions"]) => {
            reply(compatibility(store, cfg, s, None, &q, req.body))
        }
        (Post, ["compatibility", "subjects", s, "versions", v]) => {
            reply(compatibility(store, cfg, s, Some(v), &q, req.body))
        }
        (Get, ["config"]) => reply(Ok(Reply::ok(
            json!({"compatibilityLevel": store.global_level().unwrap_or(cfg.default_level).name()}),
        ))),
        (Get, ["config", s]) => reply(match store.subject_level(s) {
            Some(l) => Ok(Reply::ok(json!({"compatibilityLevel": l.name()}))),
            None if q.flag(&["defaultToGlobal"]) => Ok(Reply::ok(
                json!({"compatibilityLevel": store.global_level().unwrap_or(cfg.default_level).name()}),
            )),
            None => Err(Reply::error(
                404,
                40408,
                format!("Subject '{s}' does not have subject-level compatibility configured"),
            )),
        }),
        (Put, ["config"]) => put_config(store, None, req.body),
        (Put, ["config", s]) => put_config(store, Some(s), req.body),
        (Delete, ["config"]) => Ok(Action::Write {
            records: vec![(Key::config(None).encode(), None)],
            reply: Reply::ok(
                json!({"compatibilityLevel": store.global_level().unwrap_or(cfg.default_level).name()}),
            ),
        }),
        (Delete, ["config", s]) => match store.subject_level(s) {
            Some(l) => Ok(Action::Write {
                records: vec![(Key::config(Some(s)).encode(), None)],
                reply: Reply::ok(json!({"compatibilityLevel": l.name()})),
            }),
            None => Err(not_found_subject(s)),
        },
        (Get, ["mode"]) => reply(Ok(Reply::ok(
            json!({"mode": store.global_mode().unwrap_or(Mode::ReadWrite).name()}),
        ))),
        (Get, ["mode", s]) => reply(match store.subject_mode(s) {
            Some(m) => Ok(Reply::ok(json!({"mode": m.name()}))),
            None if q.flag(&["defaultToGlobal"]) => Ok(Reply::ok(
                json!({"mode": store.global_mode().unwrap_or(Mode::ReadWrite).name()}),
            )),
            None => Err(Reply::error(
                404,
                40409,
                format!("Subject '{s}' does not have subject-level mode configured"),
            )),
        }),
        (Put, ["mode"]) => put_mode(store, None, &q, req.body),
        (Put, ["mode", s]) => put_mode(store, Some(s), &q, req.body),
        (Delete, ["mode", s]) => match store.subject_mode(s) {
            Some(m) => Ok(Action::Write {
                records: vec![(Key::mode(Some(s)).encode(), None)],
                reply: Reply::ok(json!({"mode": m.name()})),
            }),
            None => Err(not_found_subject(s)),
        },
        (Get, ["contexts"]) => reply(Ok(Reply::ok(json!(["."])))),
        (_, ["schemas" | "subjects" | "config" | "mode" | "compatibility" | "contexts", ..])
            if known_path(&seg) =>
        {
            Err(bad_method())
        }
        _ => Err(unknown_route()),
    }
}

/// Whether a path exists for some method (405 rather than 404 for the others).
fn known_path(seg: &[&str]) -> bool {
    matches!(
        seg,
        ["schemas"]
            | ["schemas", "types"]
            | ["schemas", "ids", _, ..]
            | ["subjects"]
            | ["subjects", _]
            | ["subjects", _, "versions"]
            | ["subjects", _, "versions", _]
            | ["subjects", _, "versions", _, "schema" | "referencedby"]
            | ["compatibility", "subjects", _, "versions", ..]
            | ["config"]
            | ["config", _]
            | ["mode"]
            | ["mode", _]
            | ["contexts"]
    )
}

fn parse_id(id: &str) -> Result<i32> {
    // Jersey answers a non-integer path parameter with a plain 404.
    id.parse().map_err(|_| unknown_route())
}

/// A version path parameter: a number ≥ 1, or "latest" / -1 (`None`).
fn parse_version(v: &str) -> Result<Option<i32>> {
    let t = v.trim();
    if t.eq_ignore_ascii_case("latest") {
        return Ok(None);
    }
    match t.parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(n) if (1..=i32::MAX as i64).contains(&n) => Ok(Some(n as i32)),
        _ => Err(Reply::error(
            422,
            42202,
            format!(
                "The specified version '{v}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
            ),
        )),
    }
}

/// `format` is the query's `format`: `serialized` gives a Protobuf schema as its base64
/// `FileDescriptorProto` (what confluent-kafka-python's deserializer asks for).
fn schema_fields(store: &Store, id: i32, format: Option<&str>) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    if let Some(s) = store.schema(id) {
        let serialized = format
            .filter(|f| f.eq_ignore_ascii_case("serialized"))
            .and_then(|_| parsed_version(store, id))
            .and_then(|p| p.serialized());
        if !s.schema_type.is_avro() {
            m.insert("schemaType".into(), json!(s.schema_type.name()));
        }
        if !s.references.is_empty() {
            m.insert("references".into(), json!(refs_json(&s.references)));
        }
        m.insert(
            "schema".into(),
            json!(serialized.unwrap_or_else(|| s.schema.clone())),
        );
    }
    m
}

fn refs_json(refs: &[Reference]) -> Value {
    json!(refs
        .iter()
        .map(|r| json!({"name": r.name, "subject": r.subject, "version": r.version}))
        .collect::<Vec<_>>())
}

/// Confluent's `Schema` entity for a subject's version.
fn version_json(
    store: &Store,
    subject: &str,
    version: i32,
    id: i32,
    format: Option<&str>,
) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("subject".into(), json!(subject));
    m.insert("version".into(), json!(version));
    m.insert("id".into(), json!(id));
    m.extend(schema_fields(store, id, format));
    Value::Object(m)
}

fn schema_by_id(store: &Store, id: &str, q: &Query) -> Result<Reply> {
    let n = parse_id(id)?;
    if store.schema(n).is_none() {
        return Err(Reply::error(404, 40403, format!("Schema {n} not found")));
    }
    let mut m = schema_fields(store, n, q.get(&["format"]));
    if q.flag(&["fetchMaxId"]) {
        m.insert("maxId".into(), json!(store.max_id()));
    }
    Ok(Reply::ok(Value::Object(m)))
}

fn id_uses(store: &Store, id: &str, q: &Query, versions: bool) -> Result<Reply> {
    let n = parse_id(id)?;
    if store.schema(n).is_none() {
        return Err(not_found_schema());
    }
    let deleted = q.flag(&["deleted"]);
    let uses: Vec<(String, i32)> = store
        .uses_of(n)
        .into_iter()
        .filter(|(_, _, d)| deleted || !d)
        .map(|(s, v, _)| (s, v))
        .collect();
    Ok(Reply::ok(if versions {
        json!(uses
            .iter()
            .map(|(s, v)| json!({"subject": s, "version": v}))
            .collect::<Vec<_>>())
    } else {
        let subjects: BTreeSet<&str> = uses.iter().map(|(s, _)| s.as_str()).collect();
        json!(subjects)
    }))
}

fn list_subjects(store: &Store, q: &Query) -> Result<Reply> {
    let prefix = q.get(&["subjectPrefix", "subject"]).unwrap_or("");
    let prefix = if prefix == ":*:" { "" } else { prefix };
    let subjects: Vec<&str> = if q.flag(&["deletedOnly", "deleted_only"]) {
        store.deleted_subjects().collect()
    } else {
        store.subjects(q.flag(&["deleted"])).collect()
    };
    Ok(Reply::ok(json!(subjects
        .into_iter()
        .filter(|s| s.starts_with(prefix))
        .collect::<Vec<_>>())))
}

fn list_schemas(store: &Store, q: &Query) -> Result<Reply> {
    let prefix = q.get(&["subjectPrefix"]).unwrap_or("");
    let deleted = q.flag(&["deleted"]);
    let latest_only = q.flag(&["latestOnly"]);
    let mut out = Vec::new();
    for s in store.subjects(deleted) {
        if !s.starts_with(prefix) {
            continue;
        }
        let vs: Vec<(i32, i32)> = store
            .versions(s)
            .into_iter()
            .flatten()
            .filter(|(_, e)| deleted || !e.deleted)
            .map(|(v, e)| (*v, e.id))
            .collect();
        let pick: Vec<(i32, i32)> = if latest_only {
            vs.last().copied().into_iter().collect()
        } else {
            vs
        };
        for (v, id) in pick {
            out.push(version_json(store, s, v, id, q.get(&["format"])));
        }
    }
    Ok(Reply::ok(json!(out)))
}

fn list_versions(store: &Store, s: &str, q: &Query) -> Result<Reply> {
    let deleted_only = q.flag(&["deletedOnly", "deleted_only"]);
    let deleted = q.flag(&["deleted"]);
    let vs: Vec<i32> = store
        .versions(s)
        .into_iter()
        .flatten()
        .filter(|(_, e)| {
            if deleted_only {
                e.deleted
            } else {
                deleted || !e.deleted
            }
        })
        .map(|(v, _)| *v)
        .collect();
    if vs.is_empty() {
        return Err(not_found_subject(s));
    }
    Ok(Reply::ok(json!(vs)))
}

/// A subject's version by path parameter: (version, id).
fn get_version(store: &Store, s: &str, v: &str, q: &Query) -> Result<(i32, i32)> {
    let want = parse_version(v)?;
    let deleted = q.flag(&["deleted"]);
    let Some(vs) = store
        .versions(s)
        .filter(|vs| deleted || vs.values().any(|e| !e.deleted))
    else {
        return Err(not_found_subject(s));
    };
    let found = match want {
        None => vs.iter().rev().find(|(_, e)| !e.deleted),
        Some(n) => vs.get_key_value(&n).filter(|(_, e)| deleted || !e.deleted),
    };
    match found {
        Some((v, e)) => Ok((*v, e.id)),
        None => Err(not_found_version(&want.unwrap_or(-1).to_string())),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Option<Vec<Reference>>,
    #[serde(default)]
    version: Option<i32>,
    #[serde(default)]
    id: Option<i32>,
}

fn body_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| Reply::error(400, 400, format!("Unrecognized request body: {e}")))
}

/// A schema request's references resolved (transitively, dependencies first), with the
/// concrete versions the references name.
fn resolve(store: &Store, refs: &[Reference]) -> Result<(Vec<Reference>, Vec<Dependency>)> {
    let mut concrete = Vec::new();
    for r in refs {
        let version = if r.version == -1 {
            store.latest(&r.subject).map(|(v, _)| v)
        } else {
            Some(r.version)
        };
        let found = version.and_then(|v| {
            store
                .versions(&r.subject)
                .and_then(|vs| vs.get(&v))
                .map(|e| (v, e.id))
        });
        let Some((v, _)) = found else {
            return Err(invalid_schema(format!(
                "Invalid schema: No schema reference found for subject \"{}\" and version {}",
                r.subject, r.version
            )));
        };
        concrete.push(Reference {
            name: r.name.clone(),
            subject: r.subject.clone(),
            version: v,
        });
    }
    let mut deps = Vec::new();
    let mut seen = BTreeSet::new();
    for r in &concrete {
        collect(store, r, &mut deps, &mut seen, 0)?;
    }
    Ok((concrete, deps))
}

fn collect(
    store: &Store,
    r: &Reference,
    deps: &mut Vec<Dependency>,
    seen: &mut BTreeSet<(String, i32)>,
    depth: usize,
) -> Result<()> {
    if depth > 32 {
        return Err(invalid_schema(
            "Invalid schema: references nest too deeply (or form a cycle)",
        ));
    }
    if !seen.insert((r.subject.clone(), r.version)) {
        return Ok(());
    }
    let id = store
        .versions(&r.subject)
        .and_then(|vs| vs.get(&r.version))
        .map(|e| e.id)
        .ok_or_else(|| {
            invalid_schema(format!(
                "Invalid schema: No schema reference found for subject \"{}\" and version {}",
                r.subject, r.version
            ))
        })?;
    let s = store.schema(id).ok_or_else(not_found_schema)?;
    for inner in &s.references {
        collect(store, inner, deps, seen, depth + 1)?;
    }
    deps.push(Dependency {
        name: r.name.clone(),
        schema_type: s.schema_type,
        schema: s.schema.clone(),
    });
    Ok(())
}

/// Parses a schema request's schema: its type, concrete references and parsed form.
fn parse_request(
    store: &Store,
    cfg: &Config,
    req: &SchemaRequest,
) -> Result<(Vec<Reference>, ParsedSchema)> {
    let text = req.schema.as_deref().unwrap_or("");
    if text.trim().is_empty() {
        return Err(invalid_schema("Empty schema"));
    }
    if text.len() > cfg.max_schema_bytes {
        return Err(Reply::error(
            422,
            42209,
            "Register operation failed because schema is too large",
        ));
    }
    let t = match req.schema_type.as_deref() {
        None => SchemaType::Avro,
        Some(name) => SchemaType::parse(name)
            .ok_or_else(|| invalid_schema(format!("Invalid schema type {name}")))?,
    };
    let refs = req.references.clone().unwrap_or_default();
    let (concrete, deps) = resolve(store, &refs)?;
    let parsed = format::parse(t, text, &deps).map_err(|e| {
        invalid_schema(format!(
            "Invalid schema {text} with refs {:?} of type {t}, details: {e}",
            concrete
                .iter()
                .map(|r| format!(
                    "{{name={}, subject={}, version={}}}",
                    r.name, r.subject, r.version
                ))
                .collect::<Vec<_>>()
        ))
    })?;
    Ok((concrete, parsed))
}

/// A stored version parsed again (for compatibility checks).
fn parsed_version(store: &Store, id: i32) -> Option<ParsedSchema> {
    let s = store.schema(id)?;
    let (_, deps) = resolve(store, &s.references).ok()?;
    format::parse(s.schema_type, &s.schema, &deps).ok()
}

/// Why `new` is not compatible with `olds` (newest first) at `level`: empty when it is.
pub fn incompatibilities(
    level: Level,
    new: &ParsedSchema,
    olds: &[(i32, ParsedSchema)],
) -> Vec<String> {
    let olds = if level.transitive() {
        olds
    } else {
        &olds[..olds.len().min(1)]
    };
    let mut out = Vec::new();
    for (version, old) in olds {
        let mut why = Vec::new();
        if level.backward() {
            why.extend(new.can_read(old));
        }
        if level.forward() {
            why.extend(old.can_read(new));
        }
        if !why.is_empty() {
            out.extend(why);
            out.push(format!("{{oldSchemaVersion: {version}}}"));
            out.push(format!("{{compatibility: '{level}'}}"));
            break;
        }
    }
    out
}

fn level_of(store: &Store, cfg: &Config, s: &str) -> Level {
    store
        .subject_level(s)
        .or(store.global_level())
        .unwrap_or(cfg.default_level)
}

/// The subject's live versions, newest first, parsed: every one, or only the latest
/// (what a non-transitive level checks against).
fn live_parsed(store: &Store, s: &str, all: bool) -> Vec<(i32, ParsedSchema)> {
    store
        .versions(s)
        .into_iter()
        .flatten()
        .rev()
        .filter(|(_, e)| !e.deleted)
        .take(if all { usize::MAX } else { 1 })
        .filter_map(|(v, e)| parsed_version(store, e.id).map(|p| (*v, p)))
        .collect()
}

fn valid_subject(s: &str) -> Result<()> {
    if s.is_empty() || s.chars().any(char::is_control) || s == "__GLOBAL" || s == "__EMPTY" {
        return Err(Reply::error(
            422,
            42208,
            format!("The specified subject '{s}' is not a valid."),
        ));
    }
    Ok(())
}

fn register(store: &Store, cfg: &Config, s: &str, _q: &Query, body: &[u8]) -> Result<Action> {
    valid_subject(s)?;
    let req: SchemaRequest = body_json(body)?;
    let (refs, parsed) = parse_request(store, cfg, &req)?;
    let content = (parsed.schema_type, parsed.canonical.clone(), refs.clone());
    let existing_id = store.id_of(&content);
    // Registered already (and live) in this subject: its id, whatever the mode.
    if let Some(id) = existing_id {
        let live_here = store
            .versions(s)
            .into_iter()
            .flatten()
            .any(|(_, e)| e.id == id && !e.deleted);
        if live_here {
            return Ok(Action::Reply(Reply::ok(json!({"id": id}))));
        }
    }
    let mode = store.mode_of(s);
    let import_id = req.id.filter(|id| *id >= 0);
    match mode {
        Mode::ReadOnly | Mode::ReadOnlyOverride => {
            return Err(not_permitted(format!("Subject {s} is in read-only mode")))
        }
        Mode::Import if import_id.is_none() => {
            return Err(not_permitted(format!(
                "Subject {s} is not in read-write mode"
            )))
        }
        Mode::ReadWrite if import_id.is_some() => {
            return Err(not_permitted(format!("Subject {s} is not in import mode")))
        }
        _ => {}
    }
    let all_versions: Vec<(i32, bool, i32)> = store
        .versions(s)
        .into_iter()
        .flatten()
        .map(|(v, e)| (*v, e.deleted, e.id))
        .collect();
    let next_version = all_versions.last().map_or(1, |(v, _, _)| v + 1);
    let version = match (mode, req.version.filter(|v| *v > 0)) {
        (Mode::Import, Some(v)) => v,
        (_, Some(v)) if v != next_version => {
            return Err(invalid_schema(
                "Version is not one more than previous version",
            ))
        }
        _ => next_version,
    };
    if mode != Mode::Import {
        let level = level_of(store, cfg, s);
        let why = incompatibilities(level, &parsed, &live_parsed(store, s, level.transitive()));
        if !why.is_empty() {
            return Err(Reply::error(
                409,
                409,
                format!(
                    "Schema being registered is incompatible with an earlier schema for subject \"{s}\", details: [{}]",
                    why.join(", ")
                ),
            ));
        }
    }
    let id = match import_id {
        Some(id) => {
            if let Some(other) = store.schema(id) {
                if (other.schema_type, other.schema.as_str(), &other.references)
                    != (parsed.schema_type, parsed.canonical.as_str(), &refs)
                {
                    return Err(not_permitted(format!(
                        "Overwrite new schema with id {id} is not permitted."
                    )));
                }
            }
            id
        }
        None => existing_id.unwrap_or(store.max_id() + 1),
    };
    let mut records = Vec::new();
    // Older soft-deleted versions of this subject with the same id go for good.
    for (v, deleted, vid) in &all_versions {
        if *deleted && *vid == id && *v < version {
            records.push((Key::schema(s, *v).encode(), None));
        }
    }
    records.push(record(
        &Key::schema(s, version),
        Some(&SchemaValue {
            subject: s.to_string(),
            version,
            id,
            schema_type: parsed.schema_type,
            references: refs,
            schema: parsed.canonical,
            deleted: false,
        }),
    ));
    Ok(Action::Write {
        records,
        reply: Reply::ok(json!({"id": id})),
    })
}

fn lookup(store: &Store, cfg: &Config, s: &str, q: &Query, body: &[u8]) -> Result<Reply> {
    let req: SchemaRequest = body_json(body)?;
    let deleted = q.flag(&["deleted"]);
    let has_versions = store
        .versions(s)
        .is_some_and(|vs| vs.values().any(|e| deleted || !e.deleted));
    let (refs, parsed) = parse_request(store, cfg, &req)?;
    if !has_versions {
        return Err(not_found_subject(s));
    }
    let content = (parsed.schema_type, parsed.canonical.clone(), refs);
    let Some(id) = store.id_of(&content) else {
        return Err(not_found_schema());
    };
    let found = store
        .versions(s)
        .into_iter()
        .flatten()
        .rev()
        .find(|(_, e)| e.id == id && (deleted || !e.deleted));
    match found {
        Some((v, _)) => Ok(Reply::ok(version_json(
            store,
            s,
            *v,
            id,
            q.get(&["format"]),
        ))),
        None => Err(not_found_schema()),
    }
}

fn compatibility(
    store: &Store,
    cfg: &Config,
    s: &str,
    version: Option<&str>,
    q: &Query,
    body: &[u8],
) -> Result<Reply> {
    let verbose = q.flag(&["verbose"]);
    let req: SchemaRequest = body_json(body)?;
    let want = version.map(parse_version).transpose()?;
    let olds: Vec<(i32, ParsedSchema)> = match want {
        // Against all live versions, as the level says.
        None => live_parsed(store, s, level_of(store, cfg, s).transitive()),
        Some(None) => live_parsed(store, s, false),
        Some(Some(n)) => {
            let e = store
                .versions(s)
                .and_then(|vs| vs.get(&n))
                .filter(|e| !e.deleted)
                .ok_or_else(|| not_found_version(&n.to_string()))?;
            parsed_version(store, e.id)
                .map(|p| vec![(n, p)])
                .unwrap_or_default()
        }
    };
    let parsed = match parse_request(store, cfg, &req) {
        Ok((_, p)) => p,
        Err(r) if verbose && r.error_code() == Some(42201) => {
            let msg = match r.body {
                Body::Json(v) => v["message"].as_str().unwrap_or_default().to_string(),
                Body::Text(t) => t,
            };
            return Ok(Reply::ok(
                json!({"is_compatible": false, "messages": [msg]}),
            ));
        }
        Err(r) => return Err(r),
    };
    let level = level_of(store, cfg, s);
    // One named version is checked alone, whatever the level's transitivity.
    let why = incompatibilities(level, &parsed, &olds);
    let mut out = json!({"is_compatible": why.is_empty()});
    if verbose {
        out["messages"] = json!(why);
    }
    Ok(Reply::ok(out))
}

fn delete_subject(store: &Store, s: &str, q: &Query) -> Result<Action> {
    let permanent = q.flag(&["permanent"]);
    let Some(vs) = store.versions(s) else {
        return Err(not_found_subject(s));
    };
    if matches!(store.mode_of(s), Mode::ReadOnly | Mode::ReadOnlyOverride) {
        return Err(not_permitted(format!("Subject {s} is in read-only mode")));
    }
    let live: Vec<i32> = vs
        .iter()
        .filter(|(_, e)| !e.deleted)
        .map(|(v, _)| *v)
        .collect();
    for v in &live {
        if !store.referenced_by(s, *v).is_empty() {
            return Err(referenced(s, *v));
        }
    }
    if !permanent {
        if live.is_empty() {
            return Err(Reply::error(
                404,
                40404,
                format!("Subject '{s}' was soft deleted.Set permanent=true to delete permanently"),
            ));
        }
        let top = *vs.keys().last().expect("a subject has versions");
        return Ok(Action::Write {
            records: vec![record(
                &Key::delete_subject(s),
                Some(&DeleteSubjectValue {
                    subject: s.to_string(),
                    version: top,
                }),
            )],
            reply: Reply::ok(json!(live)),
        });
    }
    if !live.is_empty() {
        return Err(Reply::error(
            404,
            40405,
            format!("Subject '{s}' was not deleted first before being permanently deleted"),
        ));
    }
    let all: Vec<i32> = vs.keys().copied().collect();
    let mut records: Vec<Record> = all
        .iter()
        .map(|v| (Key::schema(s, *v).encode(), None))
        .collect();
    records.extend(subject_settings_tombstones(store, s));
    Ok(Action::Write {
        records,
        reply: Reply::ok(json!(all)),
    })
}

fn subject_settings_tombstones(store: &Store, s: &str) -> Vec<Record> {
    let mut out = Vec::new();
    if store.subject_level(s).is_some() {
        out.push((Key::config(Some(s)).encode(), None));
    }
    if store.subject_mode(s).is_some() {
        out.push((Key::mode(Some(s)).encode(), None));
    }
    out
}

fn referenced(s: &str, v: i32) -> Reply {
    Reply::error(
        422,
        42206,
        format!("One or more references exist to the schema {{magic=1,keytype=SCHEMA,subject={s},version={v}}}."),
    )
}

fn delete_version(store: &Store, s: &str, v: &str, q: &Query) -> Result<Action> {
    let permanent = q.flag(&["permanent"]);
    let want = parse_version(v)?;
    let Some(vs) = store.versions(s) else {
        return Err(not_found_subject(s));
    };
    if matches!(store.mode_of(s), Mode::ReadOnly | Mode::ReadOnlyOverride) {
        return Err(not_permitted(format!("Subject {s} is in read-only mode")));
    }
    let found = match want {
        None => vs.iter().rev().find(|(_, e)| !e.deleted),
        Some(n) => vs.get_key_value(&n),
    };
    let Some((&version, &entry)) = found else {
        return Err(not_found_version(&want.unwrap_or(-1).to_string()));
    };
    if entry.deleted && !permanent {
        return Err(Reply::error(
            404,
            40406,
            format!("Subject '{s}' Version {version} was soft deleted.Set permanent=true to delete permanently"),
        ));
    }
    if !entry.deleted && permanent {
        return Err(Reply::error(
            404,
            40407,
            format!("Subject '{s}' Version {version} was not deleted first before being permanently deleted"),
        ));
    }
    if !store.referenced_by(s, version).is_empty() {
        return Err(referenced(s, version));
    }
    let records = if permanent {
        let mut r = vec![(Key::schema(s, version).encode(), None)];
        if vs.len() == 1 {
            r.extend(subject_settings_tombstones(store, s));
        }
        r
    } else {
        let stored = store.schema(entry.id).ok_or_else(not_found_schema)?;
        vec![record(
            &Key::schema(s, version),
            Some(&SchemaValue {
                subject: s.to_string(),
                version,
                id: entry.id,
                schema_type: stored.schema_type,
                references: stored.references.clone(),
                schema: stored.schema.clone(),
                deleted: true,
            }),
        )]
    };
    Ok(Action::Write {
        records,
        reply: Reply::ok(json!(version)),
    })
}

fn put_config(store: &Store, s: Option<&str>, body: &[u8]) -> Result<Action> {
    if let Some(s) = s {
        valid_subject(s)?;
    }
    let v: Value = body_json(body)?;
    let level = v
        .get("compatibility")
        .or_else(|| v.get("compatibilityLevel"))
        .and_then(Value::as_str)
        .and_then(Level::parse)
        .ok_or_else(|| {
            Reply::error(
                422,
                42203,
                "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive",
            )
        })?;
    if matches!(
        store.global_mode(),
        Some(Mode::ReadOnly | Mode::ReadOnlyOverride)
    ) {
        return Err(not_permitted("The registry is in read-only mode"));
    }
    Ok(Action::Write {
        records: vec![record(
            &Key::config(s),
            Some(&ConfigValue {
                subject: s.map(str::to_string),
                compatibility_level: level.name().to_string(),
            }),
        )],
        reply: Reply::ok(json!({"compatibility": level.name()})),
    })
}

fn put_mode(store: &Store, s: Option<&str>, q: &Query, body: &[u8]) -> Result<Action> {
    if let Some(s) = s {
        valid_subject(s)?;
    }
    let v: Value = body_json(body)?;
    let mode = v
        .get("mode")
        .and_then(Value::as_str)
        .and_then(Mode::parse)
        .ok_or_else(|| {
            Reply::error(
                422,
                42204,
                "Invalid mode. Valid values are READWRITE, READONLY, and IMPORT.",
            )
        })?;
    let current = match s {
        Some(s) => store.subject_mode(s).or(store.global_mode()),
        None => store.global_mode(),
    }
    .unwrap_or(Mode::ReadWrite);
    if mode == Mode::Import && current != Mode::Import && !q.flag(&["force"]) {
        let busy = match s {
            Some(s) => store.latest(s).is_some(),
            None => store.subjects(false).next().is_some(),
        };
        if busy {
            return Err(not_permitted("Cannot import since found existing subjects"));
        }
    }
    Ok(Action::Write {
        records: vec![record(
            &Key::mode(s),
            Some(&ModeValue {
                subject: s.map(str::to_string),
                mode: mode.name().to_string(),
            }),
        )],
        reply: Reply::ok(json!({"mode": mode.name()})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a request as the writer does: a write's records are applied before the reply.
    fn run(st: &mut Store, method: Method, path: &str, query: &str, body: Value) -> (u16, Value) {
        let body = if body.is_null() {
            vec![]
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        let req = Request {
            method,
            path,
            query,
            body: &body,
        };
        let reply = match handle(st, &Config::default(), &req) {
            Action::Reply(r) => r,
            Action::Write { records, reply } => {
                for (k, v) in records {
                    st.apply(&k, v.as_deref()).unwrap();
                }
                reply
            }
        };
        let v = match reply.body {
            Body::Json(v) => v,
            Body::Text(t) => Value::String(t),
        };
        (reply.status, v)
    }

    fn rec(fields: &[(&str, &str)]) -> String {
        let f: Vec<Value> = fields
            .iter()
            .map(|(n, t)| serde_json::from_str(&format!(r#"{{"name":"{n}","type":{t}}}"#)).unwrap())
            .collect();
        json!({"type": "record", "name": "R", "fields": f}).to_string()
    }

    use Method::*;

    #[test]
    fn registering_is_idempotent_and_one_schema_has_one_id_across_subjects() {
        let mut st = Store::new();
        let s1 = rec(&[("a", r#""int""#)]);
        let (c, v) = run(
            &mut st,
            Post,
            "/subjects/t-value/versions",
            "",
            json!({"schema": s1}),
        );
        assert_eq!((c, v.clone()), (200, json!({"id": 1})));
        // Same schema, other whitespace, Python's body: same id, no new version.
        let spaced = s1.replace(',', ", ");
        let (_, v2) = run(
            &mut st,
            Post,
            "/subjects/t-value/versions",
            "normalize=False",
            json!({"schema": spaced, "schemaType": "AVRO", "references": []}),
        );
        assert_eq!(v2, json!({"id": 1}));
        assert_eq!(
            run(&mut st, Get, "/subjects/t-value/versions", "", Value::Null).1,
            json!([1])
        );
        // Another subject: version 1 there, the same id.
        assert_eq!(
            run(
                &mut st,
                Post,
                "/subjects/other/versions",
                "",
                json!({"schema": s1})
            )
            .1,
            json!({"id": 1})
        );
        let s2 = rec(&[("a", r#""int""#), ("b", r#""string""#)]).replace(
            r#"{"name":"b","type":"string"}"#,
            r#"{"name":"b","type":"string","default":"x"}"#,
        );
        assert_eq!(
            run(
                &mut st,
                Post,
                "/subjects/t-value/versions",
                "",
                json!({"schema": s2})
            )
            .1,
            json!({"id": 2})
        );
        let (_, latest) = run(
            &mut st,
            Get,
            "/subjects/t-value/versions/latest",
            "",
            Value::Null,
        );
        assert_eq!(latest["version"], 2);
        assert_eq!(latest["id"], 2);
        assert!(latest.get("schemaType").is_none(), "AVRO is omitted");
        assert_eq!(
            run(&mut st, Get, "/schemas/ids/1", "", Value::Null).1["schema"],
            json!(serde_json::to_string(&apache_avro::Schema::parse_str(&s1).unwrap()).unwrap())
        );
        assert_eq!(
            run(&mut st, Get, "/schemas/ids/1/versions", "", Value::Null).1,
            json!([{"subject": "other", "version": 1}, {"subject": "t-value", "version": 1}])
        );
        assert_eq!(
            run(&mut st, Get, "/schemas/ids/1/subjects", "", Value::Null).1,
            json!(["other", "t-value"])
        );
        assert_eq!(
            run(&mut st, Get, "/subjects", "", Value::Null).1,
            json!(["other", "t-value"])
        );
        let (c, v) = run(&mut st, Get, "/schemas/ids/9", "", Value::Null);
        assert_eq!((c, v["error_code"].clone()), (404, json!(40403)));
        // Lookup finds the version; an unknown schema is 40403, an unknown subject 40401.
        let (c, v) = run(
            &mut st,
            Post,
            "/subjects/t-value",
            "",
            json!({"schema": s1}),
        );
        assert_eq!(
            (c, v["version"].clone(), v["id"].clone()),
            (200, json!(1), json!(1))
        );
        assert_eq!(
            run(
                &mut st,
                Post,
                "/subjects/t-value",
                "",
                json!({"schema": r#""bytes""#})
            )
            .1["error_code"],
            40403
        );
        assert_eq!(
            run(&mut st, Post, "/subjects/nope", "", json!({"schema": s1})).1["error_code"],
            40401
        );
    }

    #[test]
    fn backward_refuses_a_field_without_default_and_levels_change_the_verdict() {
        let mut st = Store::new();
        run(
            &mut st,
            Post,
            "/subjects/s/versions",
            "",
            json!({"schema": rec(&[("a", r#""int""#)])}),
        );
        let bad = rec(&[("a", r#""int""#), ("b", r#""string""#)]);
        let (c, v) = run(
            &mut st,
            Post,
            "/subjects/s/versions",
            "",
            json!({"schema": bad}),
        );
        assert_eq!((c, v["error_code"].clone()), (409, json!(409)));
        assert!(
            v["message"].as_str().unwrap().starts_with(
                "Schema being registered is incompatible with an earlier schema for subject \"s\""
            ),
            "{v}"
        );
        let (_, v) = run(
            &mut st,
            Post,
            "/compatibility/subjects/s/versions/latest",
            "verbose=true",
            json!({"schema": bad}),
        );
        assert_eq!(v["is_compatible"], false);
        assert!(!v["messages"].as_array().unwrap().is_empty());
        // FORWARD: old readers ignore the added field: compatible.
        assert_eq!(
            run(
                &mut st,
                Put,
                "/config/s",
                "",
                json!({"compatibility": "forward"})
            )
            .1,
            json!({"compatibility": "FORWARD"})
        );
        assert_eq!(
            run(&mut st, Get, "/config/s", "", Value::Null).1,
            json!({"compatibilityLevel": "FORWARD"})
        );
        assert_eq!(
            run(
                &mut st,
                Post,
                "/compatibility/subjects/s/versions/1",
                "",
                json!({"schema": bad})
            )
            .1,
            json!({"is_compatible": true})
        );
        assert_eq!(
            run(
                &mut st,
                Post,
                "/subjects/s/versions",
                "",
                json!({"schema": bad})
            )
            .1,
            json!({"id": 2})
        );
        // Removing a field without default is not FORWARD-compatible (old readers need it).
        let (c, _) = run(
            &mut st,
            Post,
            "/subjects/s/versions",
            "",
            json!({"schema": rec(&[("b", r#""string""#)])}),
        );
        assert_eq!(c, 409);
        assert_eq!(
            run(
                &mut st,
                Put,
                "/config/s",
                "",
                json!({"compatibility": "NONE"})
            )
            .0,
            200
        );
        assert_eq!(
            run(
                &mut st,
                Post,
                "/subjects/s/versions",
                "",
                json!({"schema": rec(&[("b", r#""string""#)])})
            )
            .1,
            json!({"id": 3})
        );
        assert_eq!(
            run(
                &mut st,
                Put,
                "/config",
                "",
                json!({"compatibility": "sideways"})
            )
            .1["error_code"],
            42203
        );
        assert_eq!(
            run(&mut st, Get, "/config/x", "", Value::Null).1["error_code"],
            40408
        );
        assert_eq!(
            run(
                &mut st,
                Get,
                "/config/x",
                "defaultToGlobal=true",
                Value::Null
            )
            .1,
            json!({"compatibilityLevel": "BACKWARD"})
        );
        assert_eq!(
            run(&mut st, Delete, "/config/s", "", Value::Null).1,
            json!({"compatibilityLevel": "NONE"})
        );
        assert_eq!(
            run(&mut st, Delete, "/config/s", "", Value::Null).1["error_code"],
            40401
        );
    }

    #[test]
    fn deletes_go_soft_then_permanent_and_numbering_goes_on() {
        let mut st = Store::new();
        run(
            &mut st,
            Post,
            "/subjects/d/versions",
            "",
            json!({"schema": r#""int""#}),
        );
        run(
            &mut st,
            Put,
            "/config/d",
            "",
            json!({"compatibility": "NONE"}),
        );
        run(
            &mut st,
            Post,
            "/subjects/d/versions",
            "",
            json!({"schema": r#""string""#}),
        );
        assert_eq!(
            run(
                &mut st,
                Delete,
                "/subjects/d",
                "permanent=true",
                Value::Null
            )
            .1["error_code"],
            40405
        );
        assert_eq!(
            run(
                &mut st,
                Delete,
                "/subjects/d/versions/1",
                "permanent=true",
                Value::Null
            )
            .1["error_code"],
            40407
        );
        assert_eq!(
            run(&mut st, Delete, "/subjects/d/versions/1", "", Value::Null).1,
            json!(1)
        );
        assert_eq!(
            run(&mut st, Delete, "/subjects/d/versions/1", "", Value::Null).1["error_code"],
            40406
        );
        assert_eq!(
            run(&mut st, Get, "/subjects/d/versions", "", Value::Null).1,
            json!([2])
        );
        assert_eq!(
            run(
                &mut st,
                Get,
                "/subjects/d/versions",
                "deleted=true",
                Value::Null
            )
            .1,
            json!([1, 2])
        );
        assert_eq!(
            run(&mut st, Get, "/subjects/d/versions/1", "", Value::Null).1["error_code"],
            40402
        );
        assert_eq!(
            run(
                &mut st,
                Get,
                "/subjects/d/versions/1",
                "deleted=True",
                Value::Null
            )
            .1["version"],
            1
        );
        assert_eq!(
            run(&mut st, Delete, "/subjects/d", "", Value::Null).1,
            json!([2])
        );
        assert_eq!(
            run(&mut st, Delete, "/subjects/d", "", Value::Null).1["error_code"],
            40404
        );
        assert_eq!(run(&mut st, Get, "/subjects", "", Value::Null).1, json!([]));
        assert_eq!(
            run(&mut st, Get, "/subjects", "deleted=true", Value::Null).1,
            json!(["d"])
        );
        // Ids of soft-deleted versions still resolve.
        assert_eq!(run(&mut st, Get, "/schemas/ids/2", "", Value::Null).0, 200);
        // Re-registering after a soft delete: a new version number.
        assert_eq!(
            run(
                &mut st,
                Post,
                "/subjects/d/versions",
                "",
                json!({"schema": r#""string""#})
            )
            .1,
            json!({"id": 2})
        );
        assert_eq!(
            run(&mut st, Get, "/subjects/d/versions", "", Value::Null).1,
            json!([3])
        );
        run(&mut st, Delete, "/subjects/d", "", Value::Null);
        assert_eq!(
            run(
                &mut st,
                Delete,
                "/subjects/d",
                "permanent=true",
                Value::Null
            )
            .1,
            json!([1, 3])
        );
        assert_eq!(
            run(
                &mut st,
                Get,
                "/subjects/d/versions",
                "deleted=true",
                Value::Null
            )
            .1["error_code"],
            40401
        );
        assert_eq!(run(&mut st, Get, "/schemas/ids/2", "", Value::Null).0, 404);
        assert_eq!(
            run(&mut st, Get, "/config/d", "", Value::Null).1["error_code"],
            40408,
            "its config went with it"
        );
        // New ids never reuse old ones.
        assert_eq!(
            run(
                &mut st,
                Post,
                "/subjects/d/versions",
                "",
                json!({"schema": r#""long""#})
            )
            .1,
            json!({"id": 3})
        );
    }

    #[test]
    fn references_resolve_and_block_deleting_what_they_name() {
        let mut st = Store::new();
        let addr = r#"{"type":"record","name":"Address","namespace":"ex","fields":[{"name":"city","type":"string"}]}"#;
        assert_eq!(
            run(
                &mut st,
                Post,
                "/subjects/addr/versions",
                "",
                json!({"schema": addr})
            )
            .1,
            json!({"id": 1})
        );
        let person = r#"{"type":"record","name":"Person","namespace":"ex","fields":[{"name":"home","type":"Address"}]}"#;
        let refs = json!([{"name": "ex.Address", "subject": "addr", "version": -1}]);
        let (c, v) = run(
            &mut st,
            Post,
            "/subjects/person/versions",
            "",
            json!({"schema": person, "references": refs}),
        );
        assert_eq!((c, v), (200, json!({"id": 2})));
        let (_, v) = run(&mut st, Get, "/schemas/ids/2", "", Value::Null);
        assert_eq!(
            v["references"],
            json!([{"name": "ex.Address", "subject": "addr", "version": 1}])
        );
        assert_eq!(
            run(
                &mut st,
                Get,
                "/subjects/addr/versions/1/referencedby",
                "",
                Value::Null
            )
            .1,
            json!([2])
        );
        assert_eq!(
            run(
                &mut st,
                Delete,
                "/subjects/addr/versions/1",
                "",
                Value::Null
            )
            .1["error_code"],
            42206
        );
        let (c, v) = run(
            &mut st,
            Post,
            "/subjects/p2/versions",
            "",
            json!({"schema": person, "references": [{"name": "ex.Address", "subject": "nope", "version": 1}]}),
        );
        assert_eq!((c, v["error_code"].clone()), (422, json!(42201)));
        // Without its reference the schema does not parse.
        assert_eq!(
            run(
                &mut st,
                Post,
                "/subjects/p3/versions",
                "",
                json!({"schema": person})
            )
            .1["error_code"],
            42201
        );
    }

    #[test]
    fn bad_input_gets_confluent_codes_and_writes_nothing() {
        let mut st = Store::new();
        let cases: Vec<(Method, &str, &str, Value, u16, i64)> = vec![
            (
                Post,
                "/subjects/s/versions",
                "",
                json!({"schema": "{not json"}),
                422,
                42201,
            ),
            (
                Post,
                "/subjects/s/versions",
                "",
                json!({"schema": r#"{"type":"record","name":"R"}"#}),
                422,
                42201,
            ),
            (
                Post,
                "/subjects/s/versions",
                "",
                json!({"schema": ""}),
                422,
                42201,
            ),
            (Post, "/subjects/s/versions", "", json!({}), 422, 42201),
            (
                Post,
                "/subjects/s/versions",
                "",
                json!({"schema": r#""int""#, "schemaType": "XML"}),
                422,
                42201,
            ),
            (
                Post,
                "/subjects/s/versions",
                "",
                json!({"schema": "x".repeat(2 << 20)}),
                422,
                42209,
            ),
            (Post, "/subjects/s/versions", "", json!([1, 2]), 400, 400),
            (Get, "/subjects/s/versions/0", "", Value::Null, 422, 42202),
            (Get, "/subjects/s/versions/abc", "", Value::Null, 422, 42202),
            (Get, "/subjects/s/versions/1", "", Value::Null, 404, 40401),
            (Get, "/schemas/ids/abc", "", Value::Null, 404, 404),
            (Get, "/nowhere", "", Value::Null, 404, 404),
            (Put, "/subjects", "", Value::Null, 405, 405),
            (Put, "/mode", "", json!({"mode": "SIDEWAYS"}), 422, 42204),
            (
                Post,
                "/subjects/%00/versions",
                "",
                json!({"schema": r#""int""#}),
                422,
                42208,
            ),
        ];
        for (m, path, q, body, status, code) in cases {
            let (c, v) = run(&mut st, m, path, q, body);
            assert_eq!(
                (c, v["error_code"].as_i64()),
                (status, Some(code)),
                "{m:?} {path}: {v}"
            );
        }
        assert_eq!(st.applied, 0);
        assert_eq!(st.max_id(), 0);
    }

    #[test]
    fn modes_gate_writes_and_import_takes_ids_as_given() {
        let mut st = Store::new();
        assert_eq!(
            run(&mut st, Put, "/mode", "", json!({"mode": "READONLY"})).1,
            json!({"mode": "READONLY"})
        );
        assert_eq!(
            run(
                &mut st,
                Post,
                "/subjects/s/versions",
                "",
                json!({"schema": r#""int""#})
            )
            .1["error_code"],
            42205
        );
        assert_eq!(
            run(&mut st, Put, "/mode", "", json!({"mode": "IMPORT"})).1,
            json!({"mode": "IMPORT"})
        );
        assert_eq!(
            run(
                &mut st,
                Post,
                "/subjects/s/versions",
                "",
                json!({"schema": r#""int""#})
            )
            .1["error_code"],
            42205
        );
        assert_eq!(
            run(
                &mut st,
                Post,
                "/subjects/s/versions",
                "",
                json!({"schema": r#""int""#, "id": 100, "version": 5})
            )
            .1,
            json!({"id": 100})
        );
        assert_eq!(
            run(&mut st, Get, "/subjects/s/versions/5", "", Value::Null).1["id"],
            100
        );
        assert_eq!(
            run(
                &mut st,
                Post,
                "/subjects/t/versions",
                "",
                json!({"schema": r#""long""#, "id": 100})
            )
            .1["error_code"],
            42205
        );
        run(&mut st, Put, "/mode", "", json!({"mode": "READWRITE"}));
        assert_eq!(
            run(
                &mut st,
                Post,
                "/subjects/t/versions",
                "",
                json!({"schema": r#""long""#})
            )
            .1,
            json!({"id": 101})
        );
        // IMPORT over live subjects needs force.
        assert_eq!(
            run(&mut st, Put, "/mode/t", "", json!({"mode": "IMPORT"})).1["error_code"],
            42205
        );
        assert_eq!(
            run(
                &mut st,
                Put,
                "/mode/t",
                "force=true",
                json!({"mode": "IMPORT"})
            )
            .1,
            json!({"mode": "IMPORT"})
        );
        assert_eq!(
            run(&mut st, Get, "/mode/t", "", Value::Null).1,
            json!({"mode": "IMPORT"})
        );
        assert_eq!(
            run(&mut st, Get, "/mode/u", "", Value::Null).1["error_code"],
            40409
        );
        assert_eq!(
            run(&mut st, Delete, "/mode/t", "", Value::Null).1,
            json!({"mode": "IMPORT"})
        );
    }
}
