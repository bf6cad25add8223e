//! Content addressing: blobs keyed by the sha256 of their content and stored compressed,
//! descriptor sets split into one blob per file, and version manifests cut into chunks at
//! content-defined boundaries so that a version differing in a few files shares almost all
//! of its manifest with the version before it.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use sha2::{Digest, Sha256};

use crate::StoreError;

/// `sha256:<hex>` of some bytes.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

const RAW: u8 = 0;
const DEFLATE: u8 = 1;
/// Blobs smaller than this are stored as they are (deflate would not pay).
const COMPRESS_FROM: usize = 128;

/// How hard [`pack`] compresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    /// Deflate level 3: for work done beside something else (a push's texts while it
    /// compiles).
    Small,
    /// Deflate level 1 (1.5x as fast, about 13% larger for descriptors): for work a push
    /// waits for.
    Fast,
}

/// A blob as stored: one encoding byte, then the (compressed) content.
pub fn pack(content: &[u8], effort: Effort) -> Vec<u8> {
    if content.len() >= COMPRESS_FROM {
        let level = match effort {
            Effort::Small => 3,
            Effort::Fast => 1,
        };
        let mut enc = flate2::write::DeflateEncoder::new(
            Vec::with_capacity(content.len() / 3 + 16),
            flate2::Compression::new(level),
        );
        if enc.write_all(content).is_ok()
            && let Ok(mut out) = enc.finish()
            && out.len() < content.len()
        {
            out.insert(0, DEFLATE);
            return out;
        }
    }
    let mut out = Vec::with_capacity(content.len() + 1);
    out.push(RAW);
    out.extend_from_slice(content);
    out
}

/// [`pack`] of many blobs, on every core: (digest, stored bytes).
pub fn pack_all(blobs: Vec<(String, Vec<u8>)>, effort: Effort) -> Vec<(String, Vec<u8>)> {
    par_map(&blobs, |(d, c)| (d.clone(), pack(c, effort)))
}

/// `f` over `items` on every core (in chunks, one thread each), keeping their order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || items.len() < 64 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .skip(1)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<_>>()))
            .collect();
        let mut out: Vec<R> = items[..chunk].iter().map(f).collect();
        for h in handles {
            out.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        out
    })
}

/// The content of a stored blob, checked against its digest.
pub fn unpack(digest: &str, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
    let bad = |why: &str| StoreError::Corrupt(format!("blob {digest}: {why}"));
    let (kind, body) = stored.split_first().ok_or_else(|| bad("empty"))?;
    let content = match *kind {
        RAW => body.to_vec(),
        DEFLATE => {
            let mut out = Vec::with_capacity(body.len() * 4);
            flate2::read::DeflateDecoder::new(body)
                .read_to_end(&mut out)
                .map_err(|e| bad(&e.to_string()))?;
            out
        }
        _ => return Err(bad("unknown encoding")),
    };
    if sha256(&content) != digest {
        return Err(bad("content does not match its digest"));
    }
    Ok(content)
}

/// One file of a version's manifest, in descriptor-set order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// The import path.
    pub path: String,
    /// Digest of the text, for the version's own files (imports have none here).
    pub text: Option<String>,
    /// Digest of the encoded `FileDescriptorProto`.
    pub descriptor: Option<String>,
}

/// What a version row stores as its manifest (JSON): the digests of its chunks, or the
/// entries that differ from a *root* (a blob listing the chunks of an earlier full
/// manifest, in the same order) — so a version changing a few files of a large set stores
/// a few entries, not its whole file list again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Manifest {
    Full(Vec<String>),
    Delta { root: String, changes: Vec<Entry> },
}

/// A delta manifest holds at most this many changed entries; past it a version gets a full
/// manifest (whose chunks are mostly shared anyway) and becomes the next root.
pub const MAX_DELTA: usize = 64;

/// The changes of `entries` against `root` (same paths in the same order), or `None` when
/// the paths differ or too much changed.
pub fn delta(root: &[Entry], entries: &[Entry]) -> Option<Vec<Entry>> {
    if root.len() != entries.len() || root.iter().zip(entries).any(|(a, b)| a.path != b.path) {
        return None;
    }
    let changes: Vec<Entry> = root
        .iter()
        .zip(entries)
        .filter(|(a, b)| a != b)
        .map(|(_, b)| b.clone())
        .collect();
    (changes.len() <= MAX_DELTA).then_some(changes)
}

/// `root` with `changes` applied (each replaces the entry of its path).
pub fn apply(mut root: Vec<Entry>, changes: &[Entry]) -> Result<Vec<Entry>, StoreError> {
    let at: std::collections::HashMap<&str, usize> = root
        .iter()
        .enumerate()
        .map(|(i, e)| (e.path.as_str(), i))
        .collect();
    let mut replace = Vec::with_capacity(changes.len());
    for c in changes {
        let i = *at.get(c.path.as_str()).ok_or_else(|| {
            StoreError::Corrupt(format!("manifest change for {} not in its root", c.path))
        })?;
        replace.push((i, c.clone()));
    }
    for (i, c) in replace {
        root[i] = c;
    }
    Ok(root)
}

/// Entries per chunk on average, and at most.
const CHUNK_MASK: u64 = 63;
const CHUNK_MAX: usize = 512;

/// Cuts entries into chunks: a chunk ends after an entry whose path hashes to 0 mod 64
/// (so an inserted or changed file moves no boundary but its own), or at `CHUNK_MAX`.
pub fn chunk(entries: &[Entry]) -> Vec<&[Entry]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, e) in entries.iter().enumerate() {
        if fnv1a(e.path.as_bytes()) & CHUNK_MASK == 0 || i + 1 - start >= CHUNK_MAX {
            out.push(&entries[start..=i]);
            start = i + 1;
        }
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The files of an encoded `FileDescriptorSet`: (name, encoded `FileDescriptorProto`), in
/// order. Re-encoding them with [`join_descriptor_set`] gives the same bytes back.
pub fn split_descriptor_set(set: &[u8]) -> Result<Vec<(String, &[u8])>, StoreError> {
    let bad = |why: &str| StoreError::Corrupt(format!("descriptor set: {why}"));
    let mut out = Vec::new();
    let mut rest = set;
    while !rest.is_empty() {
        let (key, n) = varint(rest).ok_or_else(|| bad("truncated key"))?;
        rest = &rest[n..];
        if key != (1 << 3) | 2 {
            return Err(bad("expected only `file` (field 1) entries"));
        }
        let (len, n) = varint(rest).ok_or_else(|| bad("truncated length"))?;
        rest = &rest[n..];
        let len = usize::try_from(len).map_err(|_| bad("length"))?;
        if len > rest.len() {
            return Err(bad("truncated file"));
        }
        let (file, tail) = rest.split_at(len);
        out.push((
            file_name(file).ok_or_else(|| bad("a file has no name"))?,
            file,
        ));
        rest = tail;
    }
    Ok(out)
}

/// `FileDescriptorProto.name` (field 1) of an encoded file.
fn file_name(file: &[u8]) -> Option<String> {
    let mut rest = file;
    while !rest.is_empty() {
        let (key, n) = varint(rest)?;
        rest = &rest[n..];
        let skip = match key & 7 {
            0 => varint(rest)?.1,
            1 => 8,
            2 => {
                let (len, n) = varint(rest)?;
                let len = usize::try_from(len).ok()?;
                if key >> 3 == 1 {
                    return String::from_utf8(rest.get(n..n + len)?.to_vec()).ok();
                }
                n + len
            }
            5 => 4,
            _ => return None,
        };
        rest = rest.get(skip..)?;
    }
    None
}

fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Encodes files as a `FileDescriptorSet` (each as field 1).
pub fn join_descriptor_set<'a>(files: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for f in files {
        out.push((1 << 3) | 2);
        let mut len = f.len() as u64;
        loop {
            let b = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        out.extend_from_slice(f);
    }
    out
}

/// A version's content, content-addressed: its manifest entries and every blob they (and
/// the manifest chunks) name.
pub struct Addressed {
    pub entries: Vec<Entry>,
    /// Digests of the manifest chunks, in order: what the version row stores.
    pub chunks: Vec<String>,
    /// Every blob: digest -> uncompressed content.
    pub blobs: BTreeMap<String, Vec<u8>>,
}

/// Splits a version's files and descriptor set into blobs and a chunked manifest;
/// `text_digests` are digests of texts already known by path (the rest are hashed here).
pub fn address(
    files: &BTreeMap<String, String>,
    descriptor: &[u8],
    text_digests: &BTreeMap<String, String>,
) -> Result<Addressed, StoreError> {
    let mut blobs = BTreeMap::new();
    let mut entries = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let parts = split_descriptor_set(descriptor)?;
    // Each file's descriptor and text hashed on every core.
    let digests = par_map(&parts, |(name, bytes)| {
        let text = files.get(name).map(|t| {
            text_digests
                .get(name)
                .cloned()
                .unwrap_or_else(|| sha256(t.as_bytes()))
        });
        (sha256(bytes), text)
    });
    for ((name, bytes), (d, td)) in parts.into_iter().zip(digests) {
        blobs.entry(d.clone()).or_insert_with(|| bytes.to_vec());
        let text = files.get(&name).zip(td).map(|(t, td)| {
            blobs
                .entry(td.clone())
                .or_insert_with(|| t.as_bytes().to_vec());
            td
        });
        seen.insert(name.clone());
        entries.push(Entry {
            path: name,
            text,
            descriptor: Some(d),
        });
    }
    // A file of the version without a descriptor (not expected, but kept).
    for (name, t) in files.iter().filter(|(n, _)| !seen.contains(*n)) {
        let td = sha256(t.as_bytes());
        blobs
            .entry(td.clone())
            .or_insert_with(|| t.as_bytes().to_vec());
        entries.push(Entry {
            path: name.clone(),
            text: Some(td),
            descriptor: None,
        });
    }
    let mut chunks = Vec::new();
    for c in chunk(&entries) {
        let bytes = serde_json::to_vec(c).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let d = sha256(&bytes);
        chunks.push(d.clone());
        blobs.entry(d).or_insert(bytes);
    }
    Ok(Addressed {
        entries,
        chunks,
        blobs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, extra: &[u8]) -> Vec<u8> {
        let mut f = vec![0x0a, name.len() as u8];
        f.extend_from_slice(name.as_bytes());
        f.extend_from_slice(extra);
        f
    }

    #[test]
    fn pack_round_trips_and_checks_digests() {
        for content in [
            b"".to_vec(),
            b"short".to_vec(),
            "message M {}\n".repeat(400).into(),
        ] {
            let d = sha256(&content);
            for effort in [Effort::Small, Effort::Fast] {
                assert_eq!(unpack(&d, &pack(&content, effort)).unwrap(), content);
            }
        }
        let big = "syntax = \"proto3\";\n".repeat(100);
        assert!(
            pack(big.as_bytes(), Effort::Small).len() < big.len() / 4,
            "text compresses"
        );
        assert!(unpack(&sha256(b"other"), &pack(b"content", Effort::Fast)).is_err());
    }

    #[test]
    fn descriptor_sets_split_and_join_to_the_same_bytes() {
        let a = file("a.proto", &[0x12, 0x01, b'p']);
        let b = file(
            "dir/b.proto",
            &vec![0x42; 300]
                .iter()
                .flat_map(|_| [0x18, 0x01])
                .collect::<Vec<_>>(),
        );
        let set = join_descriptor_set([a.as_slice(), b.as_slice()]);
        let parts = split_descriptor_set(&set).unwrap();
        assert_eq!(parts[0].0, "a.proto");
        assert_eq!(parts[1].0, "dir/b.proto");
        assert_eq!(join_descriptor_set(parts.iter().map(|(_, f)| *f)), set);
        assert!(split_descriptor_set(&set[..set.len() - 1]).is_err());
        assert!(split_descriptor_set(&[0x12, 0x00]).is_err(), "only field 1");
    }

    #[test]
    fn deltas_round_trip_and_fall_back_to_full() {
        let e = |p: &str, t: &str| Entry {
            path: p.into(),
            text: Some(t.into()),
            descriptor: None,
        };
        let root = vec![e("a", "1"), e("b", "2"), e("c", "3")];
        let new = vec![e("a", "1"), e("b", "9"), e("c", "3")];
        let d = delta(&root, &new).unwrap();
        assert_eq!(d, vec![e("b", "9")]);
        assert_eq!(apply(root.clone(), &d).unwrap(), new);
        assert_eq!(delta(&root, &root).unwrap(), vec![]);
        assert!(delta(&root, &new[..2]).is_none(), "a file removed: full");
        let reordered = vec![e("b", "2"), e("a", "1"), e("c", "3")];
        assert!(delta(&root, &reordered).is_none(), "order changed: full");
        let many: Vec<Entry> = (0..100).map(|i| e(&i.to_string(), "x")).collect();
        let changed: Vec<Entry> = (0..100).map(|i| e(&i.to_string(), "y")).collect();
        assert!(delta(&many, &changed).is_none(), "too many changes: full");
        assert!(apply(root, &[e("zz", "1")]).is_err());
        // Both forms read back from JSON.
        let full: Manifest = serde_json::from_str(r#"["sha256:1","sha256:2"]"#).unwrap();
        assert_eq!(
            full,
            Manifest::Full(vec!["sha256:1".into(), "sha256:2".into()])
        );
        let m = Manifest::Delta {
            root: "sha256:r".into(),
            changes: d,
        };
        let back: Manifest = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn one_changed_file_changes_one_chunk() {
        let entries = |changed: &str| -> Vec<Entry> {
            (0..2000)
                .map(|i| {
                    let path = format!("pkg{}/file{i}.proto", i / 50);
                    Entry {
                        text: Some(if path == changed {
                            "x".into()
                        } else {
                            path.clone()
                        }),
                        descriptor: None,
                        path,
                    }
                })
                .collect()
        };
        let (a, b) = (entries(""), entries("pkg7/file371.proto"));
        let (ca, cb) = (chunk(&a), chunk(&b));
        assert!(ca.len() > 10, "{} chunks", ca.len());
        assert_eq!(ca.len(), cb.len());
        assert_eq!(ca.iter().zip(&cb).filter(|(x, y)| x != y).count(), 1);
        // An inserted file also changes only the chunk that holds it.
        let mut c = a.clone();
        c.insert(
            700,
            Entry {
                path: "new/x.proto".into(),
                text: None,
                descriptor: None,
            },
        );
        let cc = chunk(&c);
        let same = cc.iter().filter(|x| ca.contains(x)).count();
        assert!(same >= ca.len() - 1, "{same} of {} kept", ca.len());
    }
}
