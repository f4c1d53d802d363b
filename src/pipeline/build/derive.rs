//! The derived-column settings, resolved to column slots.

use arrow::datatypes::DataType;

use super::ColumnSlots;
use crate::pipeline::config::{DeriveConfig, DEFAULT_WORDS_PER_MINUTE};
use crate::pipeline::error::{ConfigError, ConfigText};
use crate::pipeline::Derive;

/// Score columns (int32, each normalized into a float64 column no entry fills), id columns, reading speed.
pub(super) fn build_derive(t: &ConfigText, cfg: &DeriveConfig, slots: &ColumnSlots) -> Result<Derive, ConfigError> {
    let mut scores = Vec::with_capacity(cfg.score.len());
    for (i, s) in cfg.score.iter().enumerate() {
        let (c, cdt) = slots.find(t, &s.column, &format!("derive.score[{i}].column"))?;
        if cdt != DataType::Int32 {
            return Err(t.err(
                Some(s.column.span()),
                format!("derive.score[{i}].column"),
                "expected an int32 score column",
            ));
        }
        let (n, ndt) = slots.find(t, &s.norm, &format!("derive.score[{i}].norm"))?;
        if ndt != DataType::Float64 || !slots.is_free(n) {
            return Err(t.err(
                Some(s.norm.span()),
                format!("derive.score[{i}].norm"),
                "expected a float64 column that no entry fills",
            ));
        }
        let weight = *s.weight.get_ref();
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(t.err(
                Some(s.weight.span()),
                format!("derive.score[{i}].weight"),
                "expected a finite weight ≥ 0",
            ));
        }
        scores.push((c, n, weight));
    }
    let mut ids = Vec::with_capacity(cfg.ids_consistent.len());
    for (i, c) in cfg.ids_consistent.iter().enumerate() {
        ids.push(slots.find(t, c, &format!("derive.ids_consistent[{i}]"))?.0);
    }
    let words_per_minute = match &cfg.words_per_minute {
        Some(w) if !(w.get_ref().is_finite() && *w.get_ref() > 0.0) => {
            return Err(t.err(Some(w.span()), "derive.words_per_minute", "expected a number > 0"));
        }
        Some(w) => *w.get_ref(),
        None => DEFAULT_WORDS_PER_MINUTE,
    };
    Ok(Derive { words_per_minute, scores, ids })
}
