//! `sturdy hil --adapt`: the board's drift monitor against its host twin,
//! sample by sample — the statistic, the detector and every re-fit and
//! rollback must agree, not only the outputs — with the board's costs.

use crate::drift::stream::Trace;
use serde_json::{json, Value};
use sturdy_protocol::DriftStats;
use sturdy_runtime::DriftEvent;

/// The comparison so far.
#[derive(Debug, Clone, Default)]
pub struct DriftCheck {
    /// Samples whose statistic, CUSUM sum or event differed from the host's.
    pub mismatched_samples: usize,
    /// The first such sample.
    pub first_mismatch: Option<usize>,
    /// Samples at which the board re-fitted.
    pub refit_at: Vec<usize>,
    /// Samples at which the board rolled a re-fit back.
    pub rollback_at: Vec<usize>,
    /// The board's counters after the last sample.
    pub last: DriftStats,
    /// Largest cost of counting and mapping one input.
    pub input_cost_max: u64,
    /// Sum of the per-sample judgement costs (statistic and detector).
    pub output_cost_sum: u64,
    /// Largest cost of a sample that re-fitted.
    pub refit_cost_max: u64,
    samples: usize,
}

impl DriftCheck {
    /// Compares the board's counters after sample `i` with the host trace.
    pub fn record(&mut self, i: usize, board: DriftStats, host: &Trace) {
        let event = match (board.refitted, board.rolled_back) {
            (true, _) => DriftEvent::Refit,
            (false, true) => DriftEvent::Rollback,
            _ => DriftEvent::Quiet,
        };
        let agrees = host.records.get(i).is_some_and(|r| {
            r.statistic == board.statistic && r.cusum == board.cusum && r.event == event
        });
        if !agrees {
            self.mismatched_samples += 1;
            self.first_mismatch.get_or_insert(i);
        }
        match event {
            DriftEvent::Refit => self.refit_at.push(i),
            DriftEvent::Rollback => self.rollback_at.push(i),
            DriftEvent::Quiet => {}
        }
        self.input_cost_max = self.input_cost_max.max(board.input_cost);
        self.output_cost_sum += board.output_cost;
        if board.refitted {
            self.refit_cost_max = self.refit_cost_max.max(board.refit_cost);
        }
        self.last = board;
        self.samples += 1;
    }

    /// Every sample agreed.
    pub fn agrees(&self) -> bool {
        self.mismatched_samples == 0
    }

    /// The `drift` object of `sturdy hil --json`.
    pub fn to_json(&self) -> Value {
        let l = &self.last;
        let per_value = l.input_cost as f64 / f64::from(l.values_observed.max(1));
        json!({
            "agrees_with_host": self.agrees(),
            "mismatched_samples": self.mismatched_samples,
            "first_mismatch": self.first_mismatch,
            "samples": l.samples,
            "refits": l.refits,
            "rollbacks": l.rollbacks,
            "first_alarm": l.first_alarm,
            "refit_at": self.refit_at,
            "rollback_at": self.rollback_at,
            "ram_bytes": l.ram_bytes,
            "values_observed_per_input": l.values_observed,
            "input_cost_max": self.input_cost_max,
            "input_cost_per_observed_value": per_value,
            "output_cost_mean": self.output_cost_sum / self.samples.max(1) as u64,
            "refit_cost_max": self.refit_cost_max,
        })
    }
}
