//! How the readers' plans run: on polars' streaming engine.
//!
//! The engine reads the scans in morsels and aggregates them as they come, so a `GROUP BY` holds
//! its groups, not the rows. Every plan the tables make can run there (Parquet and in-memory scans),
//! so nothing falls back to the in-memory engine as a whole; an operator the engine has no streaming
//! form for (a median or quantile per group) runs inside it on its whole input, and a sort or a
//! window holds its input too. A group-by past 4096 keys keeps the rows of keys that miss its table
//! of hot keys until its end (`report::topics` keys by value to stay under that).

use polars::prelude::{DataFrame, Engine, LazyFrame, PolarsError};

/// Runs a plan to its result on the streaming engine.
pub fn collect(plan: LazyFrame) -> Result<DataFrame, PolarsError> {
    Ok(plan.collect_with_engine(Engine::Streaming)?.unwrap_single())
}

/// The streaming engine's physical plan of a lazy frame, for tests to check what runs where.
#[cfg(test)]
pub(crate) mod physical {
    use std::collections::HashMap;

    use polars::prelude::LazyFrame;

    /// Kinds of nodes that aggregate their input as it streams by.
    const AGGREGATES: [&str; 3] = ["group-by", "sorted-group-by", "reduce"];
    /// Kinds of nodes that hold all of their input before they give anything out.
    const HOLDS_ALL: [&str; 5] = ["in-memory-map", "in-memory-join", "columnar-function", "sort", "in-memory-sink"];

    /// The nodes (by the dot graph's ids) with their kinds and the nodes they read from.
    #[derive(Debug)]
    pub struct Plan {
        kinds: HashMap<String, String>,
        inputs: HashMap<String, Vec<String>>,
        dot: String,
    }

    impl Plan {
        /// The optimized plan as the streaming engine would lower it.
        pub fn of(lf: &LazyFrame) -> Plan {
            let dot = lf.to_dot_streaming_phys(true).expect("the streaming engine can lower the plan");
            let (mut kinds, mut inputs) = (HashMap::new(), HashMap::<String, Vec<String>>::new());
            for line in dot.lines() {
                if let Some((from, to)) = line.trim_end_matches(';').split_once(" -> ") {
                    inputs.entry(to.to_string()).or_default().push(from.to_string());
                } else if let Some((id, rest)) = line.split_once(" [label=\"") {
                    let kind = rest.split(['\\', '"']).next().unwrap_or_default();
                    kinds.insert(id.to_string(), kind.to_string());
                }
            }
            Plan { kinds, inputs, dot }
        }

        /// The kinds of every node, sorted.
        pub fn kinds(&self) -> Vec<&str> {
            let mut kinds: Vec<&str> = self.kinds.values().map(String::as_str).collect();
            kinds.sort_unstable();
            kinds
        }

        /// The first node found that holds scanned rows before any aggregation has reduced them
        /// (looking upstream from each node that holds its input, through the nodes that pass rows on).
        pub fn holds_scanned_rows(&self) -> Option<&str> {
            let holders = self.kinds.iter().filter(|(_, k)| HOLDS_ALL.contains(&k.as_str()));
            holders.map(|(id, k)| (id, k.as_str())).find(|(id, _)| self.reaches_a_scan(id)).map(|(_, k)| k)
        }

        /// Whether rows of a scan reach this node without passing an aggregation.
        fn reaches_a_scan(&self, id: &str) -> bool {
            self.inputs.get(id).into_iter().flatten().any(|input| match self.kinds[input].as_str() {
                k if k.starts_with("multi-scan") => true,
                k if AGGREGATES.contains(&k) => false,
                _ => self.reaches_a_scan(input),
            })
        }

        /// The graph as polars draws it, for assertion messages.
        pub fn dot(&self) -> &str {
            &self.dot
        }
    }
}
