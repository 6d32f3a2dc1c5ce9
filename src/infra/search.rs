//! Full-text index of documents (tantivy) under `<data_dir>/search`. It holds
//! only what search needs: a document's id, its owner (client) and its text. It
//! can always be rebuilt from the database and the content store
//! (`portal reindex`), so a damaged index is simply recreated.

use std::path::Path;
use std::sync::Mutex;

use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{
    Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
    Value,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term, doc};

/// Another process (a running `portal serve`, or a `portal reindex`) holds the
/// index's writer.
#[derive(Debug, thiserror::Error)]
#[error(
    "the search index is in use by a running portal; stop it first (it also repairs the index at start)"
)]
pub struct IndexInUse;

pub struct SearchIndex {
    index: Index,
    /// Opened on the first write: tantivy's writer lock is exclusive to one
    /// process, and most commands (and readers) never write.
    writer: Mutex<Option<IndexWriter>>,
    reader: IndexReader,
    parser: QueryParser,
    f: Fields,
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    owner: Field,
    name: Field,
    folder: Field,
    message: Field,
    content: Field,
}

/// What is indexed for one document.
pub struct Entry<'a> {
    pub id: &'a str,
    pub owner: i64,
    pub name: &'a str,
    pub folder: &'a str,
    pub message: &'a str,
    pub content: &'a str,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("en_stem")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let f = Fields {
        id: b.add_text_field("id", STRING | STORED),
        owner: b.add_u64_field("owner", INDEXED),
        name: b.add_text_field("name", text.clone()),
        folder: b.add_text_field("folder", text.clone()),
        message: b.add_text_field("message", text.clone()),
        content: b.add_text_field("content", text),
    };
    (b.build(), f)
}

impl SearchIndex {
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let (schema, f) = schema();
        let index = match Index::open_or_create(MmapDirectory::open(dir)?, schema.clone()) {
            Ok(index) => index,
            Err(e) => {
                tracing::warn!(error = %e, "the search index could not be opened; recreating it (run `portal reindex`)");
                std::fs::remove_dir_all(dir)?;
                std::fs::create_dir_all(dir)?;
                Index::open_or_create(MmapDirectory::open(dir)?, schema)?
            }
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let mut parser =
            QueryParser::for_index(&index, vec![f.name, f.folder, f.message, f.content]);
        parser.set_conjunction_by_default();
        parser.set_field_boost(f.name, 3.0);
        parser.set_field_boost(f.folder, 2.0);
        Ok(SearchIndex {
            index,
            writer: Mutex::new(None),
            reader,
            parser,
            f,
        })
    }

    /// Runs `f` with the index writer, opening it on first use.
    fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut IndexWriter) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut slot = self
            .writer
            .lock()
            .map_err(|_| anyhow::anyhow!("search index writer poisoned"))?;
        if slot.is_none() {
            let writer = self.index.writer(32 * 1024 * 1024).map_err(|e| match e {
                tantivy::TantivyError::LockFailure(..) => anyhow::Error::new(IndexInUse),
                other => other.into(),
            })?;
            *slot = Some(writer);
        }
        let writer = slot
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("search index writer missing"))?;
        f(writer)
    }

    /// Opens the writer now, if it is not open yet. A command that will change the
    /// index calls this before it changes anything else, and `serve` holds the
    /// writer while it runs, so beside a running portal such a command does
    /// nothing rather than half its work.
    pub fn claim_writer(&self) -> anyhow::Result<()> {
        self.with_writer(|_| Ok(()))
    }

    /// How many documents the index holds.
    pub fn count(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Adds or replaces documents, then makes them searchable.
    pub fn upsert(&self, entries: &[Entry]) -> anyhow::Result<()> {
        self.with_writer(|w| {
            for e in entries {
                w.delete_term(Term::from_field_text(self.f.id, e.id));
                w.add_document(doc!(
                    self.f.id => e.id,
                    self.f.owner => e.owner as u64,
                    self.f.name => e.name,
                    self.f.folder => e.folder,
                    self.f.message => e.message,
                    self.f.content => e.content,
                ))?;
            }
            w.commit()?;
            Ok(())
        })?;
        self.reader.reload()?;
        Ok(())
    }

    pub fn remove(&self, ids: &[String]) -> anyhow::Result<()> {
        self.with_writer(|w| {
            for id in ids {
                w.delete_term(Term::from_field_text(self.f.id, id));
            }
            w.commit()?;
            Ok(())
        })?;
        self.reader.reload()?;
        Ok(())
    }

    /// Empties the index (before a rebuild).
    pub fn clear(&self) -> anyhow::Result<()> {
        self.with_writer(|w| {
            w.delete_all_documents()?;
            w.commit()?;
            Ok(())
        })?;
        self.reader.reload()?;
        Ok(())
    }

    /// Ids of `owner`'s documents matching `query`, best first. Any text is a valid
    /// query: what the parser cannot read is ignored.
    pub fn search(&self, owner: i64, query: &str, limit: usize) -> anyhow::Result<Vec<String>> {
        let (parsed, _errors) = self.parser.parse_query_lenient(query);
        let owned: Box<dyn Query> = Box::new(TermQuery::new(
            Term::from_field_u64(self.f.owner, owner as u64),
            IndexRecordOption::Basic,
        ));
        let query = BooleanQuery::new(vec![(Occur::Must, owned), (Occur::Must, parsed)]);
        let searcher = self.reader.searcher();
        let hits = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        let mut ids = Vec::with_capacity(hits.len());
        for (_score, address) in hits {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(id) = doc.get_first(self.f.id).and_then(|v| v.as_str()) {
                ids.push(id.to_string());
            }
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_words_in_any_field_but_only_for_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let idx = SearchIndex::open(dir.path()).unwrap();
        let e = |id, owner, name, content| Entry {
            id,
            owner,
            name,
            folder: "2025 / Returns",
            message: "",
            content,
        };
        idx.upsert(&[
            e(
                "a",
                1,
                "Form 1040.pdf",
                "adjusted gross income depreciation",
            ),
            e("b", 2, "Form 1040.pdf", "depreciation schedule"),
            e("c", 1, "W-2 Acme.pdf", "wages and tips"),
        ])
        .unwrap();
        assert_eq!(idx.search(1, "depreciation", 10).unwrap(), vec!["a"]);
        assert_eq!(idx.search(2, "depreciation", 10).unwrap(), vec!["b"]);
        assert_eq!(
            idx.search(1, "returns", 10).unwrap().len(),
            2,
            "folder names match, stemmed"
        );
        assert!(
            idx.search(1, "wage", 10)
                .unwrap()
                .contains(&"c".to_string())
        );
        assert!(
            idx.search(1, "\"unbalanced AND (", 10).is_ok(),
            "odd input is no error"
        );
        idx.remove(&["a".into()]).unwrap();
        assert!(idx.search(1, "depreciation", 10).unwrap().is_empty());
    }
}
