//! Compatibility cases written by others — Confluent Schema Registry's and Karapace's test
//! suites, turned into data (`tests/cases/*.json`, each case naming its source and
//! licence; see `tests/cases/README.md`) — run against this registry's checker. Each
//! case gives an old schema (or a history, oldest first), a new one, and the verdict each
//! named level must give. The test prints how many agree and fails if fewer than the
//! recorded floor do, so a regression shows; a case the checker gets wrong is listed.

use serde_json::Value;
use strom_registry::api::incompatibilities;
use strom_registry::format::{self, Dependency, SchemaType};
use strom_registry::store::Level;

struct Tally {
    agree: usize,
    disagree: Vec<String>,
    unparsed: Vec<String>,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn run(file: &str, t: SchemaType) -> Tally {
    let path = format!("{}/tests/cases/{file}", env!("CARGO_MANIFEST_DIR"));
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut tally = Tally {
        agree: 0,
        disagree: vec![],
        unparsed: vec![],
    };
    for c in &cases {
        let id = c["id"].as_str().unwrap();
        let history: Vec<String> = match c.get("history") {
            Some(Value::Array(h)) => h.iter().map(text).collect(),
            _ => vec![text(&c["writer_or_old"])],
        };
        let deps = |key: &str| -> Vec<Dependency> {
            c.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                // A reference without a text names a file the registry has built in.
                .filter(|r| !r["schema"].is_null())
                .map(|r| Dependency {
                    name: r["name"].as_str().unwrap_or_default().to_string(),
                    schema_type: t,
                    schema: text(&r["schema"]),
                })
                .collect()
        };
        let (old_deps, new_deps) = (deps("old_references"), deps("new_references"));
        let new = format::parse(t, &text(&c["reader_or_new"]), &new_deps);
        let olds: Result<Vec<_>, String> = history
            .iter()
            .enumerate()
            .rev()
            .map(|(i, s)| format::parse(t, s, &old_deps).map(|p| (i as i32 + 1, p)))
            .collect();
        let (new, olds) = match (new, olds) {
            (Ok(n), Ok(o)) => (n, o),
            (Err(e), _) | (_, Err(e)) => {
                tally.unparsed.push(format!("{id}: {e}"));
                continue;
            }
        };
        for (level, want) in c["expect"].as_object().unwrap() {
            let level = Level::parse(level).unwrap();
            let got = incompatibilities(level, &new, &olds).is_empty();
            if got == want.as_bool().unwrap() {
                tally.agree += 1;
            } else {
                tally.disagree.push(format!(
                    "{id} {level}: expected {want}, got {got} — {}",
                    c["name"].as_str().unwrap_or("")
                ));
            }
        }
    }
    tally
}

fn report(name: &str, t: &Tally) {
    println!(
        "{name}: {} verdicts agree, {} disagree, {} cases not run (a schema refused)",
        t.agree,
        t.disagree.len(),
        t.unparsed.len()
    );
    for d in &t.disagree {
        println!("  disagree: {d}");
    }
    for u in &t.unparsed {
        println!("  not run: {u}");
    }
}

#[test]
fn avro_cases_of_confluent_and_karapace() {
    let t = run("avro.json", SchemaType::Avro);
    report("avro", &t);
    // The floor: what this checker reached when the cases were added; raise it as it improves.
    assert!(t.agree >= AVRO_FLOOR, "{} < {AVRO_FLOOR}", t.agree);
}

const AVRO_FLOOR: usize = 194;

#[test]
fn json_schema_cases_of_confluent_and_karapace() {
    let t = run("json.json", SchemaType::Json);
    report("json", &t);
    assert!(t.agree >= JSON_FLOOR, "{} < {JSON_FLOOR}", t.agree);
}

// Every Confluent case agrees; the 69 that disagree are Karapace cases whose verdicts contradict
// Confluent's rules (Karapace takes a `true` or `{}` schema for an object schema, refuses a
// `false` writer, and matches patternProperties otherwise); there this registry answers as
// Confluent does.
const JSON_FLOOR: usize = 508;

#[test]
fn protobuf_cases_of_confluent_and_karapace() {
    let t = run("protobuf.json", SchemaType::Protobuf);
    report("protobuf", &t);
    assert!(t.agree >= PROTOBUF_FLOOR, "{} < {PROTOBUF_FLOOR}", t.agree);
}

// The 3 that disagree are Karapace's where Confluent answers otherwise: a changed package
// (incompatible for Confluent), a field's number changed (for Confluent a removed and an
// added field, both compatible). Not run: a field numbered 0 (Confluent's parser accepts
// it, protox does not), and two schemas importing Google's `google/type` files without a
// reference (Confluent has them built in; this registry has only `google/protobuf`).
const PROTOBUF_FLOOR: usize = 72;
