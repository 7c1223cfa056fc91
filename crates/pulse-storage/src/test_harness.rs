//! Test support: one harness per engine, and a macro that runs a list of generic test cases
//! against every engine (STYLE.md rule 19). Used by the engine conformance suite and by the raft
//! log tests.

use tempfile::TempDir;

use crate::engine::{MemoryEngine, RocksEngine, StorageEngine};

/// Owns an engine for one test and can simulate a restart.
pub(crate) trait EngineHarness {
    /// The engine under test.
    type Engine: StorageEngine + std::fmt::Debug;

    /// A fresh, empty engine.
    fn new() -> Self;

    /// The engine; clone it to share.
    fn engine(&self) -> &Self::Engine;

    /// Closes the engine and opens it again over the same data: a node restart. Every clone of
    /// the engine taken before must have been dropped (RocksDB holds a lock file). The in-memory
    /// engine has nothing to reopen and keeps its handle: its data survives because nothing was
    /// closed, which is enough for tests of code above the engine (raft log recovery).
    fn reopen(&mut self);
}

/// [`MemoryEngine`] under test.
pub(crate) struct MemoryHarness {
    engine: MemoryEngine,
}

impl EngineHarness for MemoryHarness {
    type Engine = MemoryEngine;

    fn new() -> Self {
        MemoryHarness { engine: MemoryEngine::new() }
    }

    fn engine(&self) -> &MemoryEngine {
        &self.engine
    }

    fn reopen(&mut self) {}
}

/// [`RocksEngine`] in a temporary directory, removed at the end of the test.
pub(crate) struct RocksHarness {
    // Declared first so that the engine closes before the directory is removed.
    engine: Option<RocksEngine>,
    dir: TempDir,
}

impl EngineHarness for RocksHarness {
    type Engine = RocksEngine;

    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let engine = RocksEngine::open(dir.path()).expect("open rocksdb");
        RocksHarness { engine: Some(engine), dir }
    }

    fn engine(&self) -> &RocksEngine {
        self.engine.as_ref().expect("engine is open between reopens")
    }

    fn reopen(&mut self) {
        self.engine = None;
        self.engine = Some(RocksEngine::open(self.dir.path()).expect("reopen rocksdb"));
    }
}

/// Generates, in the invoking module, `mod memory_engine` and `mod rocks_engine` each holding
/// one `#[test]` per case; a case is a function `fn case<H: EngineHarness>(harness: H)` of the
/// invoking module.
macro_rules! engine_test_suite {
    ($($case:ident),+ $(,)?) => {
        mod memory_engine {
            $(
                #[test]
                fn $case() {
                    super::$case(
                        <crate::test_harness::MemoryHarness as crate::test_harness::EngineHarness>::new(),
                    );
                }
            )+
        }

        mod rocks_engine {
            $(
                #[test]
                fn $case() {
                    super::$case(
                        <crate::test_harness::RocksHarness as crate::test_harness::EngineHarness>::new(),
                    );
                }
            )+
        }
    };
}

pub(crate) use engine_test_suite;
