//! The registry's state, rebuilt by applying the `_schemas` records in log order (the
//! rules of Confluent's `KafkaStoreReaderThread` and `InMemoryCache`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use crate::format::SchemaType;
use crate::records::{
    ClearSubjectValue, ConfigValue, DeleteSubjectValue, Key, ModeValue, Reference, SchemaValue,
};

/// A compatibility level (`schema.compatibility.level`, `/config`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Level {
    pub const ALL: [Level; 7] = [
        Level::None,
        Level::Backward,
        Level::BackwardTransitive,
        Level::Forward,
        Level::ForwardTransitive,
        Level::Full,
        Level::FullTransitive,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Level::None => "NONE",
            Level::Backward => "BACKWARD",
            Level::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Level::Forward => "FORWARD",
            Level::ForwardTransitive => "FORWARD_TRANSITIVE",
            Level::Full => "FULL",
            Level::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Case-insensitive, as Confluent's `CompatibilityLevel.forName`.
    pub fn parse(s: &str) -> Option<Level> {
        let up = s.trim().to_ascii_uppercase();
        Level::ALL.into_iter().find(|l| l.name() == up)
    }

    pub fn transitive(self) -> bool {
        matches!(
            self,
            Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive
        )
    }

    /// Whether the new schema must read the old ones' data.
    pub fn backward(self) -> bool {
        matches!(
            self,
            Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive
        )
    }

    /// Whether the old schemas must read the new one's data.
    pub fn forward(self) -> bool {
        matches!(
            self,
            Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive
        )
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A registry mode (`/mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    ReadWrite,
    ReadOnly,
    ReadOnlyOverride,
    Import,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::ReadWrite => "READWRITE",
            Mode::ReadOnly => "READONLY",
            Mode::ReadOnlyOverride => "READONLY_OVERRIDE",
            Mode::Import => "IMPORT",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim().to_ascii_uppercase().as_str() {
            "READWRITE" => Some(Mode::ReadWrite),
            "READONLY" => Some(Mode::ReadOnly),
            "READONLY_OVERRIDE" => Some(Mode::ReadOnlyOverride),
            "IMPORT" => Some(Mode::Import),
            _ => None,
        }
    }
}

/// One version of a subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionEntry {
    pub id: i32,
    pub deleted: bool,
}

/// A schema by id: what `GET /schemas/ids/{id}` serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSchema {
    pub schema_type: SchemaType,
    pub schema: String,
    pub references: Vec<Reference>,
}

type Content = (SchemaType, String, Vec<Reference>);

#[derive(Clone, Debug, Default)]
pub struct Store {
    subjects: BTreeMap<String, BTreeMap<i32, VersionEntry>>,
    schemas: BTreeMap<i32, StoredSchema>,
    /// Which (subject, version) use each id (an id lives while one does).
    uses: BTreeMap<i32, BTreeSet<(String, i32)>>,
    by_content: HashMap<Content, i32>,
    global_level: Option<Level>,
    subject_level: BTreeMap<String, Level>,
    global_mode: Option<Mode>,
    subject_mode: BTreeMap<String, Mode>,
    max_id: i32,
    /// Records applied, and those skipped as unreadable.
    pub applied: u64,
    pub skipped: u64,
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    /// Applies one `_schemas` record (value None: a tombstone). A record this registry
    /// cannot read is skipped, as Confluent's reader skips it; the error says why.
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), String> {
        let r = self.apply_inner(key, value);
        match &r {
            Ok(()) => self.applied += 1,
            Err(_) => self.skipped += 1,
        }
        r
    }

    fn apply_inner(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), String> {
        let key: Key = serde_json::from_slice(key).map_err(|e| format!("bad key: {e}"))?;
        fn val<T: serde::de::DeserializeOwned>(v: &[u8]) -> Result<T, String> {
            serde_json::from_slice(v).map_err(|e| format!("bad value: {e}"))
        }
        match key {
            Key::Noop { .. } => {}
            Key::Schema {
                subject, version, ..
            } => match value {
                None => self.remove_version(&subject, version),
                Some(v) => {
                    let v: SchemaValue = val(v)?;
                    self.put_version(&subject, version, v)?;
                }
            },
            Key::Config { subject, .. } => {
                let level = match value {
                    None => None,
                    Some(v) => {
                        let c: ConfigValue = val(v)?;
                        Some(Level::parse(&c.compatibility_level).ok_or_else(|| {
                            format!("unknown compatibility level {}", c.compatibility_level)
                        })?)
                    }
                };
                match (subject, level) {
                    (None, l) => self.global_level = l,
                    (Some(s), Some(l)) => {
                        self.subject_level.insert(s, l);
                    }
                    (Some(s), None) => {
                        self.subject_level.remove(&s);
                    }
                }
            }
            Key::Mode { subject, .. } => {
                let mode = match value {
                    None => None,
                    Some(v) => {
                        let m: ModeValue = val(v)?;
                        Some(
                            Mode::parse(&m.mode)
                                .ok_or_else(|| format!("unknown mode {}", m.mode))?,
                        )
                    }
                };
                match (subject, mode) {
                    (None, m) => self.global_mode = m,
                    (Some(s), Some(m)) => {
                        self.subject_mode.insert(s, m);
                    }
                    (Some(s), None) => {
                        self.subject_mode.remove(&s);
                    }
                }
            }
            Key::DeleteSubject { subject, .. } => {
                if let Some(v) = value {
                    let d: DeleteSubjectValue = val(v)?;
                    if let Some(vs) = self.subjects.get_mut(&subject) {
                        for (_, e) in vs.range_mut(..=d.version) {
                            e.deleted = true;
                        }
                    }
                }
            }
            Key::ClearSubject { subject, .. } => {
                if let Some(v) = value {
                    let c: ClearSubjectValue = val(v)?;
                    let _ = subject;
                    let doomed: Vec<(String, i32)> = self
                        .subjects
                        .iter()
                        .filter(|(s, _)| s.starts_with(&c.subject))
                        .flat_map(|(s, vs)| {
                            vs.iter()
                                .filter(|(_, e)| e.deleted)
                                .map(|(v, _)| (s.clone(), *v))
                        })
                        .collect();
                    for (s, v) in doomed {
                        self.remove_version(&s, v);
                    }
                }
            }
        }
        Ok(())
    }

    fn put_version(&mut self, subject: &str, version: i32, v: SchemaValue) -> Result<(), String> {
        if let Some(existing) = self.schemas.get(&v.id) {
            if existing.schema != v.schema
                || existing.schema_type != v.schema_type
                || existing.references != v.references
            {
                return Err(format!(
                    "id {} already names another schema; record for {subject} version {version} ignored",
                    v.id
                ));
            }
        }
        if let Some(old) = self.subjects.get(subject).and_then(|vs| vs.get(&version)) {
            if old.id != v.id {
                self.unuse(old.id, subject, version);
            }
        }
        self.subjects
            .entry(subject.to_string())
            .or_default()
            .insert(
                version,
                VersionEntry {
                    id: v.id,
                    deleted: v.deleted,
                },
            );
        self.uses
            .entry(v.id)
            .or_default()
            .insert((subject.to_string(), version));
        self.by_content.insert(
            (v.schema_type, v.schema.clone(), v.references.clone()),
            v.id,
        );
        self.schemas.insert(
            v.id,
            StoredSchema {
                schema_type: v.schema_type,
                schema: v.schema,
                references: v.references,
            },
        );
        self.max_id = self.max_id.max(v.id);
        Ok(())
    }

    fn remove_version(&mut self, subject: &str, version: i32) {
        let Some(vs) = self.subjects.get_mut(subject) else {
            return;
        };
        let Some(e) = vs.remove(&version) else {
            return;
        };
        if vs.is_empty() {
            self.subjects.remove(subject);
        }
        self.unuse(e.id, subject, version);
    }

    fn unuse(&mut self, id: i32, subject: &str, version: i32) {
        let Some(u) = self.uses.get_mut(&id) else {
            return;
        };
        u.remove(&(subject.to_string(), version));
        if u.is_empty() {
            self.uses.remove(&id);
            if let Some(s) = self.schemas.remove(&id) {
                self.by_content
                    .remove(&(s.schema_type, s.schema, s.references));
            }
        }
    }

    // --- reads ---

    /// Subjects with a version (`deleted`: soft-deleted ones count too).
    pub fn subjects(&self, deleted: bool) -> impl Iterator<Item = &str> {
        self.subjects
            .iter()
            .filter(move |(_, vs)| deleted || vs.values().any(|e| !e.deleted))
            .map(|(s, _)| s.as_str())
    }

    /// Subjects whose every version is soft-deleted.
    pub fn deleted_subjects(&self) -> impl Iterator<Item = &str> {
        self.subjects
            .iter()
            .filter(|(_, vs)| vs.values().all(|e| e.deleted))
            .map(|(s, _)| s.as_str())
    }

    pub fn versions(&self, subject: &str) -> Option<&BTreeMap<i32, VersionEntry>> {
        self.subjects.get(subject)
    }

    /// The subject's newest version that is not soft-deleted.
    pub fn latest(&self, subject: &str) -> Option<(i32, VersionEntry)> {
        self.subjects
            .get(subject)?
            .iter()
            .rev()
            .find(|(_, e)| !e.deleted)
            .map(|(v, e)| (*v, *e))
    }

    pub fn schema(&self, id: i32) -> Option<&StoredSchema> {
        self.schemas.get(&id)
    }

    /// The (subject, version) pairs using an id.
    pub fn uses_of(&self, id: i32) -> Vec<(String, i32, bool)> {
        self.uses
            .get(&id)
            .map(|u| {
                u.iter()
                    .map(|(s, v)| {
                        let deleted = self.subjects[s][v].deleted;
                        (s.clone(), *v, deleted)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn id_of(&self, content: &(SchemaType, String, Vec<Reference>)) -> Option<i32> {
        self.by_content.get(content).copied()
    }

    pub fn max_id(&self) -> i32 {
        self.max_id
    }

    /// Ids of live schemas that reference `subject` `version`.
    pub fn referenced_by(&self, subject: &str, version: i32) -> Vec<i32> {
        self.schemas
            .iter()
            .filter(|(_, s)| {
                s.references
                    .iter()
                    .any(|r| r.subject == subject && r.version == version)
            })
            .filter(|(id, _)| self.uses_of(**id).iter().any(|(_, _, deleted)| !deleted))
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn global_level(&self) -> Option<Level> {
        self.global_level
    }

    pub fn subject_level(&self, subject: &str) -> Option<Level> {
        self.subject_level.get(subject).copied()
    }

    pub fn global_mode(&self) -> Option<Mode> {
        self.global_mode
    }

    pub fn subject_mode(&self, subject: &str) -> Option<Mode> {
        self.subject_mode.get(subject).copied()
    }

    /// The mode a subject is in: a global READONLY_OVERRIDE, else its own, else the
    /// global mode, else READWRITE.
    pub fn mode_of(&self, subject: &str) -> Mode {
        match self.global_mode {
            Some(Mode::ReadOnlyOverride) => Mode::ReadOnlyOverride,
            g => self
                .subject_mode
                .get(subject)
                .copied()
                .or(g)
                .unwrap_or(Mode::ReadWrite),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::record;

    fn schema(s: &str, v: i32, id: i32, text: &str, deleted: bool) -> (Vec<u8>, Option<Vec<u8>>) {
        record(
            &Key::schema(s, v),
            Some(&SchemaValue {
                subject: s.into(),
                version: v,
                id,
                schema_type: SchemaType::Avro,
                references: vec![],
                schema: text.into(),
                deleted,
            }),
        )
    }

    fn apply(st: &mut Store, r: (Vec<u8>, Option<Vec<u8>>)) {
        st.apply(&r.0, r.1.as_deref()).unwrap();
    }

    #[test]
    fn versions_ids_soft_and_hard_deletes_follow_the_log() {
        let mut st = Store::new();
        apply(&mut st, schema("a", 1, 1, "\"int\"", false));
        apply(&mut st, schema("a", 2, 2, "\"long\"", false));
        apply(&mut st, schema("b", 1, 1, "\"int\"", false));
        assert_eq!(st.max_id(), 2);
        assert_eq!(
            st.latest("a"),
            Some((
                2,
                VersionEntry {
                    id: 2,
                    deleted: false
                }
            ))
        );
        assert_eq!(st.uses_of(1).len(), 2);
        // Soft delete of the whole subject: ids stay resolvable.
        apply(
            &mut st,
            record(
                &Key::delete_subject("a"),
                Some(&DeleteSubjectValue {
                    subject: "a".into(),
                    version: 2,
                }),
            ),
        );
        assert_eq!(st.latest("a"), None);
        assert_eq!(st.subjects(false).collect::<Vec<_>>(), vec!["b"]);
        assert_eq!(st.deleted_subjects().collect::<Vec<_>>(), vec!["a"]);
        assert!(st.schema(2).is_some());
        // Hard delete: id 2 is gone, id 1 lives on in b.
        apply(&mut st, (Key::schema("a", 1).encode(), None));
        apply(&mut st, (Key::schema("a", 2).encode(), None));
        assert!(st.versions("a").is_none());
        assert!(st.schema(2).is_none());
        assert!(st.schema(1).is_some());
        assert_eq!(st.max_id(), 2, "ids are not reissued");
        // An id naming another schema is refused, a bad key skipped.
        let r = schema("c", 1, 1, "\"string\"", false);
        assert!(st.apply(&r.0, r.1.as_deref()).is_err());
        assert!(st.apply(b"{}", None).is_err());
        assert_eq!(st.skipped, 2);
    }

    #[test]
    fn configs_and_modes_are_set_and_cleared() {
        let mut st = Store::new();
        let c = |s: Option<&str>, l: &str| {
            record(
                &Key::config(s),
                Some(&ConfigValue {
                    subject: s.map(str::to_string),
                    compatibility_level: l.into(),
                }),
            )
        };
        apply(&mut st, c(None, "FULL"));
        apply(&mut st, c(Some("s"), "none"));
        assert_eq!(st.global_level(), Some(Level::Full));
        assert_eq!(st.subject_level("s"), Some(Level::None));
        apply(&mut st, (Key::config(Some("s")).encode(), None));
        assert_eq!(st.subject_level("s"), None);
        apply(
            &mut st,
            record(
                &Key::mode(None),
                Some(&ModeValue {
                    subject: None,
                    mode: "READONLY".into(),
                }),
            ),
        );
        assert_eq!(st.mode_of("x"), Mode::ReadOnly);
    }
}
