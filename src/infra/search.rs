//! Full-text index of documents (tantivy) under `<data_dir>/search`. It holds
//! only what search needs: a document's id, its owner (client) and its text. It
//! can always be rebuilt from the database and the content store
//! (`portal reindex`), so a damaged index is simply recreated.

use std::path::Path;
use std::sync::Mutex;

use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::{
    Bm25StatisticsProvider, BooleanQuery, ConstScoreQuery, Occur, Query, QueryParser, TermQuery,
};
use tantivy::schema::{
    Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
    Value,
};
use tantivy::{
    DocId, DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, Score, Searcher, SegmentReader,
    TERMINATED, TantivyDocument, Term, doc,
};

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

    /// Lets go of the writer (and its lock on the index directory), as `serve`
    /// does when it stops; the next write opens it again.
    pub fn release_writer(&self) {
        if let Ok(mut slot) = self.writer.lock() {
            slot.take();
        }
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
        Ok(self
            .search_scored(owner, query, limit)?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// Like [`search`](Self::search), with each document's score. Scores are BM25
    /// with statistics (document count, average field length, document
    /// frequency) taken from `owner`'s documents only: with index-wide figures,
    /// a client could plant documents and tell from how they rank whether a word
    /// (a name, an SSN) appears in other clients' files.
    pub fn search_scored(
        &self,
        owner: i64,
        query: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<(String, Score)>> {
        let (parsed, _errors) = self.parser.parse_query_lenient(query);
        let owner_term = Term::from_field_u64(self.f.owner, owner as u64);
        let owned: Box<dyn Query> = Box::new(ConstScoreQuery::new(
            Box::new(TermQuery::new(owner_term.clone(), IndexRecordOption::Basic)),
            0.0,
        ));
        let query = BooleanQuery::new(vec![(Occur::Must, owned), (Occur::Must, parsed)]);
        let searcher = self.reader.searcher();
        let stats = OwnerStats::new(&searcher, &owner_term)?;
        if stats.total == 0 {
            return Ok(Vec::new());
        }
        let top = TopDocs::with_limit(limit).order_by_score();
        let hits = searcher.search_with_statistics_provider(&query, &top, &stats)?;
        let mut found = Vec::with_capacity(hits.len());
        for (score, address) in hits {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(id) = doc.get_first(self.f.id).and_then(|v| v.as_str()) {
                found.push((id.to_string(), score));
            }
        }
        Ok(found)
    }
}

/// BM25 statistics over one owner's live documents, so that scores depend on
/// nothing outside them.
struct OwnerStats<'a> {
    searcher: &'a Searcher,
    /// The owner's live documents in each segment, ascending.
    docs: Vec<Vec<DocId>>,
    total: u64,
}

impl<'a> OwnerStats<'a> {
    fn new(searcher: &'a Searcher, owner: &Term) -> tantivy::Result<Self> {
        let mut docs = Vec::with_capacity(searcher.segment_readers().len());
        for segment in searcher.segment_readers() {
            let mut ids = Vec::new();
            let postings = segment
                .inverted_index(owner.field())?
                .read_postings(owner, IndexRecordOption::Basic)?;
            if let Some(mut postings) = postings {
                let mut doc = postings.doc();
                while doc != TERMINATED {
                    if !segment.is_deleted(doc) {
                        ids.push(doc);
                    }
                    doc = postings.advance();
                }
            }
            docs.push(ids);
        }
        let total = docs.iter().map(|d| d.len() as u64).sum();
        Ok(OwnerStats {
            searcher,
            docs,
            total,
        })
    }

    fn segments(&self) -> impl Iterator<Item = (&SegmentReader, &[DocId])> {
        self.searcher
            .segment_readers()
            .iter()
            .zip(self.docs.iter().map(Vec::as_slice))
    }
}

impl Bm25StatisticsProvider for OwnerStats<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        let mut tokens = 0u64;
        for (segment, docs) in self.segments() {
            tokens += match segment.fieldnorms_readers().get_field(field)? {
                Some(norms) => docs.iter().map(|&d| u64::from(norms.fieldnorm(d))).sum(),
                // Fields without lengths (the owner, say) score every document as length 1.
                None => docs.len() as u64,
            };
        }
        // Never zero: an average length of 0 would divide by zero.
        Ok(tokens.max(1))
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.total.max(1))
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        let mut count = 0u64;
        for (segment, docs) in self.segments() {
            let postings = segment
                .inverted_index(term.field())?
                .read_postings(term, IndexRecordOption::Basic)?;
            let Some(mut postings) = postings else {
                continue;
            };
            for &doc in docs {
                if postings.doc() < doc {
                    postings.seek(doc);
                }
                match postings.doc() {
                    TERMINATED => break,
                    d if d == doc => count += 1,
                    _ => {}
                }
            }
        }
        Ok(count)
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
        assert!(
            idx.search(1, "owner:2 OR id:b OR message:x", 10)
                .unwrap()
                .is_empty(),
            "fields other than the text are no error and reach no one else's documents"
        );
        idx.remove(&["a".into()]).unwrap();
        assert!(idx.search(1, "depreciation", 10).unwrap().is_empty());
    }

    /// The probe of issue 6: client 2 plants documents whose order depends on how
    /// rare "secret" is compared with "alpha", then checks whether client 1's
    /// files are full of "secret". Neither the order nor any score may change.
    #[test]
    fn rankings_reveal_nothing_about_other_clients_documents() {
        let planted = [
            ("b1", "alpha alpha secret"),
            ("b2", "alpha secret secret"),
            ("b3", "alpha other words"),
        ];
        fn entry<'a>(id: &'a str, owner: i64, content: &'a str) -> Entry<'a> {
            Entry {
                id,
                owner,
                name: "statement.pdf",
                folder: "Uploaded",
                message: "",
                content,
            }
        }
        let probe = |others: &str, same_batch: bool| {
            let dir = tempfile::tempdir().unwrap();
            let idx = SearchIndex::open(dir.path()).unwrap();
            let theirs: Vec<String> = (0..40).map(|i| format!("a{i}")).collect();
            let mut batch: Vec<Entry> = planted.iter().map(|(id, c)| entry(id, 2, c)).collect();
            let more: Vec<Entry> = theirs.iter().map(|id| entry(id, 1, others)).collect();
            if same_batch {
                batch.extend(more);
                idx.upsert(&batch).unwrap();
            } else {
                idx.upsert(&more).unwrap();
                idx.upsert(&batch).unwrap();
            }
            idx.search_scored(2, "alpha secret", 10).unwrap()
        };
        let baseline = probe("nothing to see here", true);
        let ids: Vec<&str> = baseline.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            ["b2", "b1"],
            "within client 2, secret is the rarer word"
        );
        for same_batch in [true, false] {
            for others in ["nothing to see here", "secret secret secret", "alpha alpha"] {
                assert_eq!(
                    probe(others, same_batch),
                    baseline,
                    "client 1 holding {others:?} shows in client 2's scores"
                );
            }
        }
    }
}
