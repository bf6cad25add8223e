//! Schemas as Confluent clients send and read them: request bodies, `.proto` text or base64
//! descriptors (rendered to text), references as named dependencies, and the cached views
//! of stored versions.

use super::*;

/// A reference as Confluent clients send and receive it.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub(super) struct Reference {
    name: String,
    subject: String,
    version: i64,
}

/// The body of a registration, lookup or compatibility test.
#[derive(Debug, Deserialize)]
pub(super) struct SchemaBody {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Reference>,
    /// IMPORT mode only: keep a previous registry's id and version.
    id: Option<i64>,
    version: Option<i64>,
}

pub(super) fn invalid_schema(message: impl Into<String>) -> CfError {
    err(StatusCode::UNPROCESSABLE_ENTITY, 42201, message)
}

/// A schema as received, ready to compile: its file and named dependencies.
pub(super) struct Parsed {
    pub(super) files: BTreeMap<String, String>,
    pub(super) deps: Vec<DepRef>,
    pub(super) explicit: Explicit,
}

/// Whether `s` is base64 (a serialized descriptor) rather than `.proto` text, which always
/// has spaces, `;` or `"` that base64 cannot.
pub(super) fn looks_like_base64(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty()
        && s.len().is_multiple_of(4)
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

/// The file name a schema is stored under: the descriptor's own name when one came, the
/// subject when it is an import path, else `<subject>.proto`.
pub(super) fn main_path(subject: &str, descriptor_name: Option<&str>) -> String {
    if let Some(n) = descriptor_name
        && n.ends_with(".proto")
        && protoreg_schema::check_relative(n).is_ok()
    {
        return n.to_string();
    }
    if subject.ends_with(".proto") && protoreg_schema::check_relative(subject).is_ok() {
        return subject.to_string();
    }
    format!("{subject}.proto")
}

/// Parses a body into the schema's file and resolved references.
pub(super) async fn parse_schema(
    state: &AppState,
    subject: &str,
    body: &Bytes,
    normalize: bool,
) -> CfResult<Parsed> {
    let b: SchemaBody = serde_json::from_slice(body).map_err(|e| {
        invalid_schema(format!(
            "body must be {{\"schema\": \"...\", \"schemaType\": \"PROTOBUF\", \"references\": [...]}}: {e}"
        ))
    })?;
    if let Some(t) = &b.schema_type
        && t != PROTOBUF
    {
        return Err(invalid_schema(format!(
            "schemaType {t:?} is not supported: this registry serves PROTOBUF"
        )));
    }
    let (text, name) = if looks_like_base64(&b.schema) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b.schema.trim())
            .map_err(|e| invalid_schema(format!("schema is not valid base64: {e}")))?;
        let (text, file) = protoreg_schema::render::render_encoded(&bytes)
            .map_err(|e| invalid_schema(format!("Invalid schema: {e}")))?;
        (text, file.name)
    } else {
        (b.schema.clone(), None)
    };
    let path = main_path(subject, name.as_deref());
    let mut deps = Vec::new();
    if b.references.len() > service::deps::MAX_DEPS {
        return Err(invalid_schema(format!(
            "too many references ({} > {})",
            b.references.len(),
            service::deps::MAX_DEPS
        )));
    }
    for r in &b.references {
        let ref_subject = subject_param(&r.subject)?;
        protoreg_schema::check_relative(&r.name)
            .map_err(|m| invalid_schema(format!("reference name {:?}: {m}", r.name)))?;
        let n = if r.version == -1 {
            None
        } else {
            version_param(&r.version.to_string())?
        };
        let (version, digest) = state
            .store
            .version_ref(&ref_subject, n)
            .await?
            .ok_or_else(|| {
                invalid_schema(format!(
                    "Invalid schema: reference {:?} names version {} of subject {:?}, which does not exist",
                    r.name, r.version, r.subject
                ))
            })?;
        deps.push(DepRef {
            subject: ref_subject,
            version,
            digest,
            name: Some(r.name.clone()),
        });
    }
    let mut files = BTreeMap::from([(path.clone(), text)]);
    if normalize {
        files = normalized(state, subject, files, &path, &deps).await?;
    }
    Ok(Parsed {
        files,
        deps,
        explicit: Explicit {
            schema_id: b.id,
            version: b.version,
        },
    })
}

/// `?normalize=true`: the schema in its canonical form, the compiled descriptor rendered
/// back to text (as it is for schemas that arrive as descriptors). A schema with options
/// the renderer cannot write back (custom options) keeps its text.
pub(super) async fn normalized(
    state: &AppState,
    subject: &str,
    files: BTreeMap<String, String>,
    path: &str,
    deps: &[DepRef],
) -> CfResult<BTreeMap<String, String>> {
    let shared = Arc::new(files);
    let compiled = state.compile_push(subject, &shared, deps).await?;
    let set = prost_types::FileDescriptorSet::decode(compiled.descriptor.as_slice())
        .map_err(|e| CfError::internal(format!("corrupt: {e}")))?;
    let files = Arc::unwrap_or_clone(shared);
    let Some(file) = set.file.iter().find(|f| f.name() == path) else {
        return Ok(files);
    };
    let mut file = file.clone();
    file.source_code_info = None;
    match protoreg_schema::render::render_encoded(&file.encode_to_vec()) {
        Ok((text, _)) => Ok(BTreeMap::from([(path.to_string(), text)])),
        Err(_) => Ok(files),
    }
}

/// Schema views by (subject, version, serialized): a version's content never changes and
/// its number is never reused, so a view stays true while the version exists (callers find
/// the version with a query first). Lookups by id then cost one query.
///
/// It also keeps the answers of `GET /schemas/ids/{id}`: what an id stands for never changes
/// (ids are never reused for other content), only whether it is still served after a
/// permanent delete. Those answers are dropped whenever this replica hears of any change
/// (its own, or another replica's through PostgreSQL notifications).
#[derive(Default)]
pub struct ViewCache {
    views: std::sync::Mutex<std::collections::HashMap<(String, i64, bool), Value>>,
    /// (change generation they were read at, answers by (id, serialized, subject)).
    ids: std::sync::Mutex<(u64, std::collections::HashMap<IdKey, Value>)>,
}

pub(super) type IdKey = (i64, bool, Option<String>);

impl ViewCache {
    const CAPACITY: usize = 4096;

    pub(super) fn get(&self, key: &(String, i64, bool)) -> Option<Value> {
        self.views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    pub(super) fn put(&self, key: (String, i64, bool), view: Value) {
        let mut map = self.views.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::CAPACITY {
            map.clear();
        }
        map.insert(key, view);
    }

    pub(super) fn get_id(&self, key: &IdKey, generation: u64) -> Option<Value> {
        let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        (ids.0 == generation).then(|| ids.1.get(key).cloned())?
    }

    /// Keeps an answer read at `generation` (a change heard since makes it unsure: dropped).
    pub(super) fn put_id(&self, key: IdKey, answer: Value, generation: u64, now: u64) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if generation != now {
            return;
        }
        if ids.0 != generation || ids.1.len() >= Self::CAPACITY {
            *ids = (generation, Default::default());
        }
        ids.1.insert(key, answer);
    }
}

/// A version as Confluent clients read it: its schema (its one file, or with several the
/// one no other imports), references, and with `serialized` the file's descriptor.
pub(super) async fn schema_view(
    state: &AppState,
    meta: &VersionMeta,
    serialized: bool,
) -> CfResult<Value> {
    let key = (meta.subject.clone(), meta.version, serialized);
    if let Some(v) = state.views.get(&key) {
        return Ok(v);
    }
    let view = read_schema_view(state, meta, serialized).await?;
    state.views.put(key, view.clone());
    Ok(view)
}

pub(super) async fn read_schema_view(
    state: &AppState,
    meta: &VersionMeta,
    serialized: bool,
) -> CfResult<Value> {
    let files = state.store.files(&meta.subject, meta.version).await?;
    let main = root_file(&files);
    let mut references = Vec::new();
    for d in &meta.deps {
        let name = match &d.name {
            Some(n) => n.clone(),
            None => root_file(&state.store.files(&d.subject, d.version).await?),
        };
        references.push(json!({"name": name, "subject": d.subject, "version": d.version}));
    }
    let schema = if serialized {
        let stored = state
            .store
            .descriptor(&meta.subject, meta.version)
            .await?
            .ok_or_else(|| err(StatusCode::NOT_FOUND, 40402, "version deleted"))?;
        let set = prost_types::FileDescriptorSet::decode(stored.bytes.as_slice())
            .map_err(|e| CfError::internal(format!("corrupt: {e}")))?;
        let mut file = set
            .file
            .into_iter()
            .find(|f| f.name() == main)
            .ok_or_else(|| CfError::internal(format!("corrupt: {main} not in descriptor")))?;
        file.source_code_info = None;
        base64::engine::general_purpose::STANDARD.encode(file.encode_to_vec())
    } else {
        files.get(&main).cloned().unwrap_or_default()
    };
    Ok(json!({
        "subject": meta.subject,
        "version": meta.version,
        "id": meta.schema_id,
        "schemaType": PROTOBUF,
        "references": references,
        "schema": schema,
    }))
}

/// The file no other file of the version imports (the first such by path).
pub(super) fn root_file(files: &BTreeMap<String, String>) -> String {
    let imported: Vec<&str> = files
        .values()
        .flat_map(|t| {
            t.lines().filter_map(|l| {
                let l = l.trim_start().strip_prefix("import")?;
                let start = l.find('"')? + 1;
                let end = start + l[start..].find('"')?;
                Some(&l[start..end])
            })
        })
        .collect();
    files
        .keys()
        .find(|p| !imported.contains(&p.as_str()))
        .or_else(|| files.keys().next())
        .cloned()
        .unwrap_or_default()
}

/// A registration's answer: the id and version, not the schema. Clients cache the schema
/// they sent under the id (Confluent's Python client caches a returned `schema` instead, and
/// then reads our text where it expects the base64 descriptor it sent).
pub(super) fn registered(meta: &VersionMeta) -> Value {
    json!({
        "id": meta.schema_id,
        "subject": meta.subject,
        "version": meta.version,
        "schemaType": PROTOBUF,
    })
}
